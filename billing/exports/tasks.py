"""The background export's Celery task: thin, takes an id, safe to redeliver (a finished export is
left as it is; an interrupted one is written again from the start)."""

from celery import shared_task

from billing.models import Export


@shared_task(acks_late=True)
def export_run_task(*, export_id: int) -> None:
    # The service enqueues this task and the task runs the service: one side of the pair resolves
    # the other when it runs (HackSoft's task/service pattern).
    from billing.services.exports import export_run  # noqa: PLC0415 (billing.services.exports imports this task)

    export = Export.objects.filter(pk=export_id).first()
    if export is not None:
        export_run(export=export)
