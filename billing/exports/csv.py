"""CSV writers: lines of text, one at a time (the csv module writes into a one-line buffer)."""

import csv
from collections.abc import Iterable, Iterator

from django.utils.translation import gettext as _

from billing.exports.formatting import amount, local_date


class _LineBuffer:
    """csv.writer's file: keeps the last line written, for the caller to yield."""

    def __init__(self):
        self.line = ""

    def write(self, text: str) -> None:
        self.line = text


def csv_lines(header: Iterable[str], rows: Iterable[Iterable]) -> Iterator[str]:
    buffer = _LineBuffer()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    yield buffer.line
    for row in rows:
        writer.writerow(row)
        yield buffer.line


def document_header() -> list[str]:
    return [
        _("Type"),
        _("Number"),
        _("Issued on"),
        _("Credited invoice"),
        _("Order"),
        _("Channel"),
        _("Customer"),
        _("Currency"),
        _("Net"),
        _("Tax"),
        _("Gross"),
        _("Due on"),
    ]


def document_values(row) -> list:
    """A DocumentRow as cells: dates as dates, amounts rounded to the currency (credit notes negative)."""
    return [
        row.kind,
        row.number,
        local_date(row.issued_at),
        row.invoice_number,
        row.order_number,
        row.channel,
        row.customer,
        row.currency,
        amount(row.net, row.currency),
        amount(row.tax, row.currency),
        amount(row.gross, row.currency),
        row.due_on,
    ]


def documents_csv(rows) -> Iterator[str]:
    """Invoices and credit notes (billing.exports.sources.document_rows) as CSV lines."""
    return csv_lines(document_header(), (_csv_cells(document_values(row)) for row in rows))


def _csv_cells(values: list) -> list:
    return ["" if value is None else value.isoformat() if hasattr(value, "isoformat") else value for value in values]
