"""`Idempotency-Key` for write endpoints, after Stripe and the IETF draft.

- same key, same request  → the first response again, byte for byte (header `Idempotent-Replayed`);
- same key, other request → 422 `idempotency_key_reused`;
- same key while the first request still runs → 409 `idempotency_request_in_progress`.

Keys are scoped per API client (the authenticated user) and kept
`OMS_IDEMPOTENCY_RETENTION_HOURS` (at least 72). The claim is committed in its own short
transaction before the work starts, so a concurrent duplicate sees it at once. The work and the
stored response then commit together, in one transaction: a crash between the two cannot leave
a change without its recorded response (which a retry would repeat). A claim whose request died
(no response within `OMS_IDEMPOTENCY_LOCK_SECONDS`) may be taken over. Server errors (5xx) are
not stored: the client may retry them with the same key.
"""

import datetime
import hashlib
import json
import sys

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.http import HttpResponse
from django.utils import timezone

from oms.core.errors import ConflictError, UnprocessableError, ValidationError
from oms.core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def request_fingerprint(*, method: str, path: str, body: bytes, content_type: str = "") -> str:
    payload = body
    if "json" in (content_type or "") and body:
        try:
            # Same JSON document, other key order or spacing: still the same request.
            payload = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
        except (ValueError, UnicodeDecodeError, RecursionError):
            payload = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), b"\n", path.encode(), b"\n", payload):
        digest.update(part)
    return digest.hexdigest()


def idempotency_claim(*, client, key: str, method: str, path: str, fingerprint: str):
    """Return (record, None) when this request should run, or (None, record) to replay."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationError(
            "Idempotency-Key must be 1 to 255 characters.",
            code="invalid_idempotency_key",
            fields={HEADER: [f"1 to {MAX_KEY_LENGTH} characters."]},
        )
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                client=client, key=key, method=method, path=path, request_fingerprint=fingerprint
            )
        return record, None
    except IntegrityError:
        pass
    in_progress = ConflictError(
        "A request with this Idempotency-Key is still being processed; retry later.",
        code="idempotency_request_in_progress",
    )
    with transaction.atomic():
        try:
            # The first request holds this row locked while its work commits: answer at once
            # rather than hold a server thread and a connection waiting for it.
            record = IdempotencyRecord.objects.select_for_update(nowait=True).get(client=client, key=key)
        except OperationalError:
            raise in_progress from None
        if record.request_fingerprint != fingerprint:
            raise UnprocessableError(
                "This Idempotency-Key was already used with a different request.",
                code="idempotency_key_reused",
            )
        if record.state == IdempotencyRecord.State.COMPLETED:
            return None, record
        stale_before = timezone.now() - datetime.timedelta(seconds=settings.OMS_IDEMPOTENCY_LOCK_SECONDS)
        if record.created_at > stale_before:
            raise in_progress
        # The first request died without answering: this one takes the key over.
        record.created_at = timezone.now()
        record.save(update_fields=["created_at"])
        return record, None


def idempotency_complete(*, record: IdempotencyRecord, status: int, body: bytes, content_type: str) -> None:
    record.state = IdempotencyRecord.State.COMPLETED
    record.response_status = status
    record.response_body = body
    record.response_content_type = content_type
    record.completed_at = timezone.now()
    record.save(update_fields=["state", "response_status", "response_body", "response_content_type", "completed_at"])


def idempotency_release(*, record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyRecord.State.IN_PROGRESS).delete()


def idempotency_purge(*, now=None) -> int:
    hours = max(settings.OMS_IDEMPOTENCY_RETENTION_HOURS, 72)
    cutoff = (now or timezone.now()) - datetime.timedelta(hours=hours)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def replay_response(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(
        bytes(record.response_body or b""),
        status=record.response_status,
        content_type=record.response_content_type or "application/json",
    )
    response["Idempotent-Replayed"] = "true"
    return response


class _Replay(Exception):
    def __init__(self, record: IdempotencyRecord):
        self.record = record


class IdempotentAPIMixin:
    """Mix into a DRF APIView (before APIView) to honour Idempotency-Key on its POST handler."""

    idempotent_methods = ("POST",)

    def dispatch(self, request, *args, **kwargs):
        self._idempotency_record = None
        self._idempotency_atomic = None
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            # Only when an exception escaped DRF's handling: roll the work back.
            self._close_atomic(*sys.exc_info())

    def _close_atomic(self, exc_type=None, exc=None, tb=None) -> None:
        atomic, self._idempotency_atomic = self._idempotency_atomic, None
        if atomic is not None:
            atomic.__exit__(exc_type, exc, tb)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication first: keys are per client
        key = request.headers.get(HEADER)
        if key is None or request.method not in self.idempotent_methods:
            return
        django_request = request._request
        fingerprint = request_fingerprint(
            method=request.method,
            path=django_request.get_full_path(),
            body=django_request.body,
            content_type=django_request.content_type,
        )
        record, replay = idempotency_claim(
            client=request.user, key=key, method=request.method, path=django_request.path, fingerprint=fingerprint
        )
        if replay is not None:
            raise _Replay(replay)
        self._idempotency_record = record
        # The handler's work and the stored response commit together (see finalize_response).
        self._idempotency_atomic = transaction.atomic()
        self._idempotency_atomic.__enter__()

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            return replay_response(exc.record)
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        record = self._idempotency_record
        if record is None:
            return response
        self._idempotency_record = None
        if response.status_code >= 500:
            self._close_atomic(RuntimeError, RuntimeError("server error"), None)  # roll back the work
            idempotency_release(record=record)
            return response
        if hasattr(response, "render"):
            response.render()
        idempotency_complete(
            record=record,
            status=response.status_code,
            body=bytes(response.content),
            content_type=response.get("Content-Type", "application/json"),
        )
        self._close_atomic()  # commit the work and its recorded response as one
        return response
