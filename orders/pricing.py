"""Line and order amounts. Pure functions: Decimal in, Decimal out, rounding explicit.

Each line is rounded on its own (half-up to the currency's minor unit), then summed: what the
customer sees per line adds up to the order total, to the cent.
"""

from dataclasses import dataclass
from decimal import Decimal

from oms.core.money import ZERO, quantize


@dataclass(frozen=True)
class Amounts:
    net: Decimal
    tax: Decimal
    gross: Decimal


def split_amount(*, amount: Decimal, tax_rate: Decimal, includes_tax: bool, currency: str) -> Amounts:
    """Net, tax and gross of an amount given tax-inclusive (B2C) or tax-exclusive (B2B)."""
    amount = quantize(amount, currency)
    if includes_tax:
        tax = quantize(amount * tax_rate / (1 + tax_rate), currency)
        return Amounts(net=amount - tax, tax=tax, gross=amount)
    tax = quantize(amount * tax_rate, currency)
    return Amounts(net=amount, tax=tax, gross=amount + tax)


def line_amounts(
    *, quantity: int, unit_price: Decimal, discount: Decimal, tax_rate: Decimal, includes_tax: bool, currency: str
) -> Amounts:
    return split_amount(
        amount=unit_price * quantity - discount, tax_rate=tax_rate, includes_tax=includes_tax, currency=currency
    )


def order_totals(*, lines: list[Amounts], shipping: Amounts) -> Amounts:
    net = sum((line.net for line in lines), ZERO) + shipping.net
    tax = sum((line.tax for line in lines), ZERO) + shipping.tax
    gross = sum((line.gross for line in lines), ZERO) + shipping.gross
    return Amounts(net=net, tax=tax, gross=gross)
