"""Money: Decimal amounts, ISO 4217 currencies and explicit half-up rounding to the minor unit."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel.numbers import get_currency_precision, list_currencies

from oms.core.errors import ValidationError

ZERO = Decimal("0")
_KNOWN_CURRENCIES = frozenset(list_currencies())


def validate_currency(code: str) -> str:
    code = (code or "").upper()
    if code not in _KNOWN_CURRENCIES:
        raise ValidationError(
            f"Unknown currency {code!r}.", code="invalid_currency", fields={"currency": ["Not an ISO 4217 code."]}
        )
    return code


def minor_unit_exponent(currency: str) -> Decimal:
    """Decimal("0.01") for EUR, Decimal("1") for JPY, Decimal("0.001") for KWD."""
    digits = get_currency_precision(currency)
    return Decimal(1).scaleb(-digits)


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit (banker's rounding is not what invoices use)."""
    return Decimal(amount).quantize(minor_unit_exponent(currency), rounding=ROUND_HALF_UP)


def to_decimal(value, *, field: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        raise ValidationError(f"{field}: not a number.", fields={field: ["A valid number is required."]}) from None
    if not result.is_finite():
        raise ValidationError(f"{field}: not a number.", fields={field: ["A valid number is required."]})
    return result
