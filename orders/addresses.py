"""Postal addresses as snapshots on the order (a later change to the customer never rewrites them)."""

from django_countries import countries

from oms.core.addresses import ADDRESS_FIELDS, MAX_LENGTH, REQUIRED_FIELDS  # noqa: F401 (the address's rules)


def address_errors(data) -> dict[str, list[str]]:
    """Field errors of an address, empty when it is valid."""
    if not isinstance(data, dict):
        return {"non_field_errors": ["An address object is required."]}
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(data) - set(ADDRESS_FIELDS))
    if unknown:
        errors["non_field_errors"] = [f"Unknown field(s): {', '.join(unknown)}."]
    for field in ADDRESS_FIELDS:
        value = data.get(field, "")
        if value is None:
            value = ""
        if not isinstance(value, str):
            errors[field] = ["Must be a string."]
        elif len(value) > MAX_LENGTH:
            errors[field] = [f"At most {MAX_LENGTH} characters."]
        elif field in REQUIRED_FIELDS and not value.strip():
            errors[field] = ["This field is required."]
    country = data.get("country")
    if isinstance(country, str) and country and "country" not in errors and country.upper() not in countries:
        errors["country"] = ["Not an ISO 3166-1 alpha-2 country code."]
    return errors


def normalize_address(data: dict) -> dict:
    result = {field: (data.get(field) or "").strip() for field in ADDRESS_FIELDS}
    result["country"] = result["country"].upper()
    return result


def format_address(address: dict) -> str:
    parts = [
        address.get("name"),
        address.get("company"),
        address.get("line1"),
        address.get("line2"),
        " ".join(p for p in (address.get("postal_code"), address.get("city")) if p),
        address.get("region"),
        address.get("country"),
    ]
    return "\n".join(p for p in parts if p)
