"""Exports of invoices, credit notes, the FEC journal and the reconciliation report.

Two ways out, one writer each (billing.exports): `export_stream` streams a small export straight
into an HTTP response; `export_request` records an `Export` and a Celery task runs `export_run`,
which writes the file row by row to a temporary file, updates the row's progress as it goes, then
stores the file. Both read rows with server-side cursors, so memory stays flat whatever the period.
Permission: billing.export_invoice.
"""

import datetime
import functools
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.exports import sources
from billing.exports.csv import documents_csv
from billing.exports.fec import fec_filename, fec_lines
from billing.exports.formatting import batched_text
from billing.exports.reconciliation import reconciliation_csv
from billing.exports.tasks import export_run_task
from billing.exports.xlsx import write_documents_xlsx
from billing.models import Export, ExportKind
from oms.core.errors import ConflictError, ValidationError
from oms.core.permissions import require_perm

logger = logging.getLogger(__name__)

PERMISSION = "billing.export_invoice"
MAX_PERIOD_DAYS = 366
PROGRESS_EVERY = 1000  # rows between two progress writes


class ExportStatus:
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


CONTENT_TYPES = {
    ExportKind.INVOICES_CSV: "text/csv; charset=utf-8",
    ExportKind.INVOICES_XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ExportKind.FEC: "text/tab-separated-values; charset=utf-8",
    ExportKind.RECONCILIATION: "text/csv; charset=utf-8",
}


def _accounting() -> dict:
    return settings.OMS_ACCOUNTING


def _validate(kind, period_start, period_end) -> None:
    fields = {}
    if kind not in ExportKind.values:
        fields["kind"] = [f"Unknown export kind. Choose one of: {', '.join(ExportKind.values)}."]
    if not isinstance(period_start, datetime.date):
        fields["period_start"] = ["A date is required."]
    if not isinstance(period_end, datetime.date):
        fields["period_end"] = ["A date is required."]
    if not fields and period_end < period_start:
        fields["period_end"] = ["The period ends before it starts."]
    elif not fields and (period_end - period_start).days >= MAX_PERIOD_DAYS:
        fields["period_end"] = [f"A period covers at most {MAX_PERIOD_DAYS} days."]
    if fields:
        raise ValidationError("The export request is not valid.", code="invalid", fields=fields)


def export_filename(*, kind, period_start, period_end, channel=None) -> str:
    if kind == ExportKind.FEC:
        return fec_filename(_accounting()["siren"], period_end)
    suffix = f"-{channel.code}" if channel is not None else ""
    stem = "reconciliation" if kind == ExportKind.RECONCILIATION else "invoices"
    ext = "xlsx" if kind == ExportKind.INVOICES_XLSX else "csv"
    return f"{stem}-{period_start:%Y%m%d}-{period_end:%Y%m%d}{suffix}.{ext}"


def export_size(*, kind, period_start, period_end, channel=None) -> int:
    """Documents in the period (orders, for the reconciliation)."""
    if kind == ExportKind.RECONCILIATION:
        return sources.orders_in(period_start, period_end, channel).count()
    return sources.document_count(period_start, period_end, channel)


def _counted(rows: Iterable, progress: Callable[[int], None] | None) -> Iterator:
    count = 0
    for row in rows:
        yield row
        count += 1
        if progress is not None and count % PROGRESS_EVERY == 0:
            progress(count)
    if progress is not None:
        progress(count)


def _text_lines(kind, period_start, period_end, channel, progress=None) -> Iterator[str]:
    if kind == ExportKind.INVOICES_CSV:
        return documents_csv(_counted(sources.document_rows(period_start, period_end, channel), progress))
    if kind == ExportKind.FEC:
        documents = _counted(sources.journal_documents(period_start, period_end, channel), progress)
        return fec_lines(documents, _accounting())
    if kind == ExportKind.RECONCILIATION:
        return reconciliation_csv(_counted(sources.order_figures(period_start, period_end, channel), progress))
    raise ValueError(kind)


def _encoding(kind) -> str:
    return _accounting().get("fec_encoding", "utf-8") if kind == ExportKind.FEC else "utf-8"


def write_export(out, *, kind, period_start, period_end, channel=None, progress=None) -> None:
    """Write one export into a binary file object, row by row."""
    if kind == ExportKind.INVOICES_XLSX:
        rows = _counted(sources.document_rows(period_start, period_end, channel), progress)
        write_documents_xlsx(out, rows, title=_("Invoices"))
        return
    encoding = _encoding(kind)
    if kind != ExportKind.FEC:
        out.write("\ufeff".encode(encoding))  # a BOM: spreadsheets then read the CSV as UTF-8
    for chunk in batched_text(_text_lines(kind, period_start, period_end, channel, progress)):
        out.write(chunk.encode(encoding, errors="replace"))


@dataclass(frozen=True)
class StreamedExport:
    filename: str
    content_type: str
    chunks: Iterator[bytes]


def _xlsx_chunks(period_start, period_end, channel) -> Iterator[bytes]:
    # A zip is written whole before it can be read: XLSX goes through a temporary file on disk.
    with tempfile.TemporaryFile() as handle:
        write_export(
            handle, kind=ExportKind.INVOICES_XLSX, period_start=period_start, period_end=period_end, channel=channel
        )
        handle.seek(0)
        while chunk := handle.read(64 * 1024):
            yield chunk


def export_stream(*, kind, period_start, period_end, channel=None, actor) -> StreamedExport:
    """A small export as a stream of bytes for an HTTP response (refused above OMS_EXPORT_STREAM_ROWS)."""
    require_perm(actor, PERMISSION, "export invoices")
    _validate(kind, period_start, period_end)
    size = export_size(kind=kind, period_start=period_start, period_end=period_end, channel=channel)
    if size > settings.OMS_EXPORT_STREAM_ROWS:
        raise ConflictError(
            f"This export holds {size} documents: above {settings.OMS_EXPORT_STREAM_ROWS}, exports run in the "
            "background.",
            code="export_too_large",
            extra={"documents": size, "limit": settings.OMS_EXPORT_STREAM_ROWS},
        )
    filename = export_filename(kind=kind, period_start=period_start, period_end=period_end, channel=channel)
    if kind == ExportKind.INVOICES_XLSX:
        chunks = _xlsx_chunks(period_start, period_end, channel)
    else:
        encoding = _encoding(kind)
        lines = _text_lines(kind, period_start, period_end, channel)
        bom = [] if kind == ExportKind.FEC else ["\ufeff"]
        chunks = _encoded(bom, lines, encoding)
    logger.info("export streamed", extra={"kind": kind, "documents": size, "actor": actor.pk})
    return StreamedExport(filename, CONTENT_TYPES[kind], chunks)


def _encoded(prefix: list[str], lines: Iterator[str], encoding: str) -> Iterator[bytes]:
    for text in prefix:
        yield text.encode(encoding)
    for chunk in batched_text(lines):
        yield chunk.encode(encoding, errors="replace")


@transaction.atomic
def export_request(*, kind, period_start, period_end, channel=None, actor) -> Export:
    """Record a background export; a Celery task writes it after commit (the cockpit polls its progress)."""
    require_perm(actor, PERMISSION, "export invoices")
    _validate(kind, period_start, period_end)
    export = Export(
        kind=kind,
        period_start=period_start,
        period_end=period_end,
        channel=channel,
        status=ExportStatus.QUEUED,
        requested_by=actor,
    )
    export.full_clean()
    export.save()
    transaction.on_commit(functools.partial(export_run_task.delay, export_id=export.pk))
    logger.info("export requested", extra={"export": export.pk, "kind": kind, "actor": actor.pk})
    return export


def _set_progress(export_id: int, **fields) -> None:
    # Export rows keep no history: the progress is a plain column the cockpit polls.
    Export.objects.filter(pk=export_id).update(**fields)


def export_run(*, export: Export | int) -> Export:
    """The task body: write the export to a temporary file with progress, then store it."""
    export = Export.objects.select_related("channel").get(pk=export.pk if isinstance(export, Export) else export)
    if export.status == ExportStatus.DONE and export.file:
        return export  # a redelivered task
    args = {"kind": export.kind, "period_start": export.period_start, "period_end": export.period_end}
    channel = export.channel
    total = max(export_size(**args, channel=channel), 1)
    _set_progress(export.pk, status=ExportStatus.RUNNING, progress=0, rows=0, error="")

    def progress(count: int) -> None:
        _set_progress(export.pk, progress=min(99, count * 100 // total), rows=count)

    filename = export_filename(**args, channel=channel)
    try:
        with tempfile.TemporaryFile() as handle:
            write_export(handle, **args, channel=channel, progress=progress)
            handle.seek(0)
            with transaction.atomic():
                export = Export.objects.select_for_update().get(pk=export.pk)
                export.file.save(filename, File(handle, name=filename), save=False)
                export.status = ExportStatus.DONE
                export.progress = 100
                export.finished_at = timezone.now()
                export.save(update_fields=["file", "status", "progress", "finished_at"])
    except Exception as exc:
        logger.exception("export failed", extra={"export": export.pk})
        _set_progress(export.pk, status=ExportStatus.FAILED, error=str(exc)[:2000], finished_at=timezone.now())
        raise
    logger.info("export done", extra={"export": export.pk, "rows": export.rows})
    return export
