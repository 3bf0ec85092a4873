"""Outbox destination "webhook": a signed JSON POST to a WebhookEndpoint.

The body is `{"id", "topic", "key", "created_at", "payload"}`; `id` (also in `X-OMS-Message-Id`)
is the same on every retry and replay, so receivers deduplicate on it. `X-OMS-Signature` is
`sha256=<hex HMAC-SHA256 of the raw body with the endpoint's secret>`: receivers check it with
`verify_signature` (or the same three lines in their language) before trusting the body.
"""

import hashlib
import hmac
import json

import requests
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from integrations.models import OutboxMessage

SIGNATURE_HEADER = "X-OMS-Signature"
MESSAGE_ID_HEADER = "X-OMS-Message-Id"
TOPIC_HEADER = "X-OMS-Topic"
SIGNATURE_PREFIX = "sha256="
USER_AGENT = "OMS-Webhooks/1"


class WebhookDeliveryError(Exception):
    """The receiver did not acknowledge the message (network error, timeout, non-2xx answer)."""


def webhook_body(message: OutboxMessage) -> bytes:
    document = {
        "id": str(message.id),
        "topic": message.topic,
        "key": message.key,
        "created_at": message.created_at.isoformat(),
        "payload": message.payload,
    }
    return json.dumps(document, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def webhook_signature(secret: str, body: bytes) -> str:
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes | str, header: str | None) -> bool:
    """True when `header` (the X-OMS-Signature value) signs exactly `body` with `secret`."""
    if not secret or not header:
        return False
    if isinstance(body, str):
        body = body.encode()
    expected = webhook_signature(secret, body).encode()
    return hmac.compare_digest(expected, header.strip().encode("utf-8", "replace"))


def webhook_deliver(message: OutboxMessage) -> None:
    endpoint = message.endpoint
    if endpoint is None:
        raise WebhookDeliveryError("The message has no webhook endpoint.")
    if not endpoint.is_active:
        # Kept pending-then-dead rather than dropped: it can be replayed once the endpoint is back.
        raise WebhookDeliveryError(f"Endpoint {endpoint.name!r} is inactive.")
    body = webhook_body(message)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        MESSAGE_ID_HEADER: str(message.id),
        TOPIC_HEADER: message.topic,
        SIGNATURE_HEADER: webhook_signature(endpoint.secret, body),
    }
    try:
        # A redirect is not an acknowledgement: following it would resend the signed body elsewhere.
        with requests.post(
            endpoint.url,
            data=body,
            headers=headers,
            timeout=settings.OMS_WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        ) as response:
            if not 200 <= response.status_code < 300:
                raise WebhookDeliveryError(
                    f"{endpoint.url} answered HTTP {response.status_code}: {response.text[:300]}"
                )
    except requests.RequestException as exc:
        raise WebhookDeliveryError(f"{endpoint.url}: {exc}") from exc
