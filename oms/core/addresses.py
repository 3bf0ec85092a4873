"""The rules of a postal address, declared once: the services check them (orders.addresses) and the
API's schema states them (oms.core.api.AddressInputSerializer)."""

from django_countries import countries

ADDRESS_FIELDS = ("name", "company", "line1", "line2", "postal_code", "city", "region", "country", "phone")
REQUIRED_FIELDS = ("name", "line1", "city", "country")
MAX_LENGTH = 200
# ISO 3166-1 alpha-2, as django-countries knows them (a country is accepted in any letter case).
COUNTRY_CODES = [code for code, _name in countries]
