"""The reconciliation report: per order, what was paid, shipped, invoiced, credited and collected,
and why it does not match when it does not.

Per order (amounts gross, in the order's currency):
- collected: captured by the payment provider;
- paid: collected − refunded to the payment method;
- shipped: value of the units that left (plus shipping once one did);
- invoiced / credited: invoices and credit notes issued;
and it matches when invoiced − credited = paid − refunds given as store credit or voucher
(those refunds are credited but no money went back), nothing shipped is left uninvoiced, and no
more was credited than invoiced.
"""

from collections.abc import Iterable, Iterator

from django.utils.translation import gettext as _

from billing.exports.csv import csv_lines
from billing.exports.formatting import amount, local_date


def reconciliation_header() -> list[str]:
    return [
        _("Order"),
        _("Placed on"),
        _("Channel"),
        _("Currency"),
        _("Collected"),
        _("Refunded"),
        _("Paid"),
        _("Refunded as credit"),
        _("Shipped"),
        _("Invoiced"),
        _("Credited"),
        _("Invoiced − credited"),
        _("Matches"),
        _("Differences"),
    ]


def order_issues(figures) -> list[str]:
    """What does not add up for one order (empty: it matches)."""
    cur = figures.currency
    invoiced = amount(figures.invoiced, cur)
    credited = amount(figures.credited, cur)
    paid = amount(figures.captured - figures.refunded, cur)
    kept_as_credit = amount(figures.refunded_as_credit, cur)
    shipped = amount(figures.shipped, cur)
    issues = []
    if invoiced - credited != paid - kept_as_credit:
        issues.append(_("invoiced − credited ≠ paid"))
    if shipped > invoiced:
        issues.append(_("shipped but not invoiced"))
    if credited > invoiced:
        issues.append(_("credited above invoiced"))
    return issues


def reconciliation_values(figures) -> list:
    cur = figures.currency
    issues = order_issues(figures)
    return [
        figures.number,
        local_date(figures.placed_at),
        figures.channel,
        cur,
        amount(figures.captured, cur),
        amount(figures.refunded, cur),
        amount(figures.captured - figures.refunded, cur),
        amount(figures.refunded_as_credit, cur),
        amount(figures.shipped, cur),
        amount(figures.invoiced, cur),
        amount(figures.credited, cur),
        amount(figures.invoiced - figures.credited, cur),
        "no" if issues else "yes",
        "; ".join(issues),
    ]


def reconciliation_csv(orders: Iterable) -> Iterator[str]:
    """From billing.exports.sources.order_figures; a 'no' in Matches flags the order."""
    return csv_lines(
        reconciliation_header(),
        (
            [cell.isoformat() if hasattr(cell, "isoformat") else cell for cell in values]
            for values in map(reconciliation_values, orders)
        ),
    )
