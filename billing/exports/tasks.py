"""The background export's Celery task: thin, takes an id, safe to redeliver (a finished export is
left as it is; an interrupted one is written again from the start)."""

from celery import shared_task


@shared_task(acks_late=True)
def export_run_task(*, export_id: int) -> None:
    from billing.models import Export
    from billing.services.exports import export_run

    export = Export.objects.filter(pk=export_id).first()
    if export is not None:
        export_run(export=export)
