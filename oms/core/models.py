from django.conf import settings
from django.db import models


class NumberSequence(models.Model):
    """A counter per (series, year).

    Gap-free series (invoices, credit notes) draw from this row under a row lock held until the
    issuing transaction commits. Series that only need "unique, never reused" (orders) use a
    PostgreSQL sequence instead, which never blocks; this table is their fallback on SQLite.
    """

    series = models.CharField(max_length=32)
    year = models.PositiveSmallIntegerField()
    last_value = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "year"], name="uniq_number_sequence")]

    def __str__(self) -> str:
        return f"{self.series}-{self.year}: {self.last_value}"


class IdempotencyRecord(models.Model):
    """The first response to a write request carrying an `Idempotency-Key`, kept for replay."""

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"

    # Keys are scoped per API client: two clients may use the same key for different things.
    client = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=512)
    request_fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.BinaryField(null=True, blank=True)
    response_content_type = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "key"], name="uniq_idempotency_client_key")]

    def __str__(self) -> str:
        return f"{self.client_id}:{self.key} ({self.state})"
