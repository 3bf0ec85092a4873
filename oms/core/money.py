"""Money: Decimal amounts, ISO 4217 currencies and explicit half-up rounding to the minor unit.

Only currencies that are legal tender somewhere today are accepted: not the codes for testing (XTS),
"no currency" (XXX), precious metals (XAU …) or units of account (XDR), nor withdrawn ones (HRK).
An amount from outside must fit its currency's minor unit (19.50 is no JPY amount) and stay within
`AMOUNT_MAX`, which every total the OMS computes from such amounts also respects: the money columns
(14 digits, 4 decimals) hold it with room to spare.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel.core import get_global
from babel.numbers import get_currency_precision, get_territory_currencies

from oms.core.errors import ValidationError

ZERO = Decimal("0")
# The largest amount (a price, a line, an order, a payment, a refund) the OMS records.
AMOUNT_MAX = Decimal("1000000000")
AMOUNT_MAX_TEXT = "1,000,000,000"


def _tender_currencies() -> frozenset[str]:
    codes: set[str] = set()
    for territory in get_global("territory_currencies"):
        codes.update(get_territory_currencies(territory, tender=True, non_tender=False))
    return frozenset(codes)


CURRENCIES = _tender_currencies()


def validate_currency(code: str, *, field: str = "currency") -> str:
    code = code.upper() if isinstance(code, str) else ""
    if code not in CURRENCIES:
        raise ValidationError(
            f"Unknown currency {code!r}.",
            code="invalid_currency",
            fields={field: ["Not the ISO 4217 code of a currency in use (e.g. EUR, USD, JPY)."]},
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
    """A number from outside as a Decimal, finite and within ±AMOUNT_MAX (no "1e15", no "1e999999")."""
    try:
        result = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        raise ValidationError(f"{field}: not a number.", fields={field: ["A valid number is required."]}) from None
    if not result.is_finite():
        raise ValidationError(f"{field}: not a number.", fields={field: ["A valid number is required."]})
    if abs(result) > AMOUNT_MAX:
        message = f"Must be at most {AMOUNT_MAX_TEXT}."
        raise ValidationError(f"{field}: {message}", code="invalid", fields={field: [message]})
    if result.as_tuple().exponent < -12:
        message = "At most 12 decimals."
        raise ValidationError(f"{field}: {message}", code="invalid", fields={field: [message]})
    return result


def amount_problem(amount: Decimal, currency: str | None, *, minimum: Decimal | None = ZERO) -> str | None:
    """Why `amount` is no amount in `currency` the OMS can record, or None.

    Without a currency (not known yet), only the bounds are checked.
    """
    if minimum is not None and amount < minimum:
        return f"Must be at least {minimum}."
    if abs(amount) > AMOUNT_MAX:
        return f"Must be at most {AMOUNT_MAX_TEXT}."
    if currency and currency in CURRENCIES and amount != amount.quantize(minor_unit_exponent(currency)):
        digits = get_currency_precision(currency)
        if digits == 0:
            return f"{currency} amounts are whole numbers."
        return f"{currency} amounts have at most {digits} decimals."
    return None


def amount_parse(value, *, currency: str | None, field: str, minimum: Decimal | None = ZERO) -> Decimal:
    """An amount from outside (a string or a number), checked; a ValidationError on `field` otherwise."""
    if isinstance(value, bool) or value is None or value == "":
        raise ValidationError(f"{field}: not a number.", fields={field: ["A valid number is required."]})
    amount = to_decimal(value, field=field)
    problem = amount_problem(amount, currency, minimum=minimum)
    if problem:
        raise ValidationError(f"{field}: {problem}", code="invalid", fields={field: [problem]})
    # It fits the minor unit: quantizing only writes it out in full ("5" → "5.00" EUR).
    return quantize(amount, currency) if currency and currency in CURRENCIES else amount
