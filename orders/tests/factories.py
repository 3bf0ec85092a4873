"""Test data built through the real services (factories only for rows that have no service)."""

import itertools
from decimal import Decimal

import factory
from django.contrib.auth.models import Group, User
from django.core.management import call_command

from inventory.models import Location, Product
from inventory.services import stock_receive
from oms.core.actors import get_system_user
from orders.choices import API_CLIENT_GROUPS, ApiClientRole
from orders.models import Channel
from orders.services import api_client_save

_seq = itertools.count(1)


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel
        django_get_or_create = ("code",)

    code = "web"
    name = "Web store"
    kind = "web"
    commission_rate = Decimal("0")


def ensure_roles() -> None:
    if not Group.objects.filter(name=API_CLIENT_GROUPS[ApiClientRole.READ_ONLY]).exists():
        call_command("sync_roles", stdout=open("/dev/null", "w"))  # noqa: SIM115


def make_user(*roles: str, username: str | None = None, **extra) -> User:
    """A staff user in the given role groups (names from oms.cockpit.roles). One API client role
    makes an API client on the `web` channel instead (make_api_client)."""
    ensure_roles()
    api_roles = {group: role for role, group in API_CLIENT_GROUPS.items()}
    if set(roles) & set(api_roles):
        assert len(roles) == 1 and not extra, "an API client has one role and is not staff"
        return make_api_client(api_roles[roles[0]], username=username)
    user = User.objects.create_user(username=username or f"user{next(_seq)}", password="pw", is_staff=True, **extra)
    for role in roles:
        user.groups.add(Group.objects.get(name=role))
    return user


def make_api_client(role: str, *channels: str, username: str | None = None) -> User:
    """An API client (a token user, not staff) in `role` (an ApiClientRole) on the channels named by
    code (`web` when none is named; created when missing), through the real service."""
    ensure_roles()
    user = User.objects.create_user(username=username or f"api{next(_seq)}")
    codes = channels or ("web",)
    for code in codes:
        if code == "web":
            ChannelFactory()
        else:
            ChannelFactory(code=code, name=code)
    api_client_save(user=user, role=role, channels=codes, actor=get_system_user())
    return user


def order_payload(**overrides) -> dict:
    """A valid intake payload: 3 lines, tax-inclusive EUR, paid by card."""
    n = next(_seq)
    payload = {
        "channel": "web",
        "external_id": f"ext-{n}",
        "currency": "EUR",
        "customer": {"email": f"customer{n}@example.com", "first_name": "Ann", "last_name": "Lee"},
        "billing_address": {
            "name": "Ann Lee",
            "line1": "1 rue de la Paix",
            "postal_code": "75002",
            "city": "Paris",
            "country": "FR",
        },
        "shipping": {"method": "standard", "price": "4.90", "tax_rate": "0.20"},
        "lines": [
            {"sku": "MUG-1", "name": "Mug", "quantity": 2, "unit_price": "12.00", "tax_rate": "0.20"},
            {"sku": "TEE-1", "name": "T-shirt", "quantity": 1, "unit_price": "25.00", "tax_rate": "0.20"},
            {"sku": "BOOK-1", "name": "Book", "quantity": 1, "unit_price": "10.55", "tax_rate": "0.055"},
        ],
        "payment": {"status": "paid", "method": "card", "reference": f"pay-{n}"},
    }
    payload.update(overrides)
    return payload


CATALOG = {"MUG-1": "Mug", "TEE-1": "T-shirt", "BOOK-1": "Book"}


def make_catalog(units: int = 10_000):
    """The products order_payload sells, with stock at one warehouse (received through the service)."""
    location, _ = Location.objects.get_or_create(
        code="paris-wh", defaults={"name": "Paris warehouse", "kind": "warehouse", "country": "FR"}
    )
    products = []
    for sku, name in CATALOG.items():
        product, created = Product.objects.get_or_create(sku=sku, defaults={"name": name})
        if created and units:
            stock_receive(product=product, location=location, quantity=units, actor=get_system_user())
        products.append(product)
    return location, products
