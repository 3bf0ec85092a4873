"""XLSX writer in openpyxl's write-only mode: rows go to the file as they come (constant memory)."""

from collections.abc import Iterable
from typing import BinaryIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from billing.exports.csv import document_header, document_values


def write_xlsx(out: BinaryIO | str, *, title: str, header: Iterable[str], rows: Iterable[Iterable]) -> None:
    """One sheet: a bold header, then the rows (dates stay dates, Decimals become numbers)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    cells = []
    for name in header:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        cells.append(cell)
    sheet.append(cells)
    for row in rows:
        sheet.append(list(row))
    workbook.save(out)


def write_documents_xlsx(out: BinaryIO | str, rows, *, title: str) -> None:
    write_xlsx(out, title=title, header=document_header(), rows=(document_values(row) for row in rows))
