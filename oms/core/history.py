"""simple-history, set up once for every audited model."""

from django.db import models
from simple_history.models import HistoricalRecords


def AuditHistory(**kwargs) -> HistoricalRecords:  # noqa: N802 (reads like the field it builds)
    """History with a free-length change reason: services store the actor's reason there."""
    kwargs.setdefault("history_change_reason_field", models.TextField(null=True))
    return HistoricalRecords(**kwargs)


def stamp(instance, *, actor, reason: str = "") -> None:
    """Who and why, for the history row the next save() writes."""
    instance._history_user = actor
    instance._change_reason = str(reason) if reason else None
