"""The offline sandbox provider: a fixed webhook format and deterministic refunds, for demos and tests.

Webhook payload (one event per call):
    {"id": "evt_1", "type": "authorized|captured|failed|refunded|dispute_opened|dispute_won|dispute_lost",
     "payment_reference": "pay_1", "amount": "12.34", "currency": "EUR",
     "order": "ORD-2026-000001",            # to create the payment when we do not know it yet
     "method": "card", "reason": "...",     # optional
     "refund_reference": "...",             # refunded: the refund it confirms
     "dispute_reference": "...", "respond_by": "2026-12-01T00:00:00Z"}   # dispute_*

Refunds succeed with a reference derived from the payment, the amount and the idempotency key,
unless `OMS_PAYMENT_SANDBOX_FAIL_REFUNDS` is true or the payment's reference contains "fail-refund".
"""

import hashlib
from decimal import Decimal

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from billing.providers.base import EVENT_KINDS, PaymentProvider, ProviderError, ProviderEvent, register
from oms.core.errors import ValidationError
from oms.core.inputs import PROMISE_AHEAD, datetime_problem
from oms.core.money import CURRENCIES, amount_parse

# The sandbox also reports a dispute's outcome (the dispute named by `dispute_reference`).
SANDBOX_EVENT_KINDS = (*EVENT_KINDS, "dispute_won", "dispute_lost")


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError("The payment event is not valid.", code="invalid_event", fields={field: [message]})


def _text(payload: dict, key: str, *, required: bool = False, max_length: int = 128) -> str:
    value = payload.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _invalid(key, "Must be a string.")
    value = value.strip()
    if required and not value:
        raise _invalid(key, "This field is required.")
    if len(value) > max_length:
        raise _invalid(key, f"At most {max_length} characters.")
    return value


class SandboxProvider(PaymentProvider):
    code = "sandbox"
    name = "Sandbox"

    def parse_event(self, payload) -> ProviderEvent:
        if not isinstance(payload, dict):
            raise _invalid("non_field_errors", "A JSON object is required.")
        kind = _text(payload, "type", required=True, max_length=40)
        if kind not in SANDBOX_EVENT_KINDS:
            raise _invalid("type", f"One of: {', '.join(SANDBOX_EVENT_KINDS)}.")
        currency = _text(payload, "currency", max_length=3).upper()
        if currency and currency not in CURRENCIES:
            raise _invalid("currency", "Not the ISO 4217 code of a currency in use.")
        amount = None
        if payload.get("amount") not in (None, ""):
            try:
                amount = amount_parse(payload["amount"], currency=currency or None, field="amount", minimum=None)
            except ValidationError as exc:
                raise _invalid("amount", exc.extra["fields"]["amount"][0]) from None
            if amount <= 0:
                raise _invalid("amount", "Must be positive.")
        respond_by = None
        if payload.get("respond_by"):
            try:
                respond_by = parse_datetime(str(payload["respond_by"]))
            except ValueError:
                respond_by = None
            if respond_by is None or timezone.is_naive(respond_by):
                raise _invalid("respond_by", "An ISO 8601 date-time with its UTC offset is required.")
            problem = datetime_problem(respond_by, ahead=PROMISE_AHEAD)
            if problem:
                raise _invalid("respond_by", problem)
        return ProviderEvent(
            event_id=_text(payload, "id", required=True),
            kind=kind,
            payment_reference=_text(payload, "payment_reference", required=True),
            amount=amount,
            currency=currency,
            method=_text(payload, "method", max_length=40),
            order_number=_text(payload, "order", max_length=32),
            reason=_text(payload, "reason", max_length=500),
            refund_reference=_text(payload, "refund_reference"),
            dispute_reference=_text(payload, "dispute_reference"),
            respond_by=respond_by,
            raw=payload,
        )

    def refund(self, payment, amount: Decimal, idempotency_key: str) -> str:
        if getattr(settings, "OMS_PAYMENT_SANDBOX_FAIL_REFUNDS", False) or "fail-refund" in payment.provider_reference:
            raise ProviderError("The sandbox refused the refund.", code="provider_refused")
        digest = hashlib.sha256(f"{payment.provider_reference}|{amount}|{idempotency_key}".encode()).hexdigest()
        return f"SBXR-{digest[:16].upper()}"


register(SandboxProvider())
