"""A dispute's outcome: evidence submitted (only with the pack), then won (no money moves) or lost
(the chargeback counts as refunded, never above what was captured) — from the service, the cockpit,
the API and the provider's events (as the system user, once)."""

import datetime
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import Dispute, Payment, PaymentEvent
from billing.services.disputes import dispute_close, dispute_evidence_pack, dispute_open, dispute_submit_evidence
from billing.services.payments import payment_event_receive
from billing.services.refunds import refund_approve, refund_process, refund_request
from billing.tests.refund_support import APPROVER, REQUESTER, finance_user, paid_order
from oms.core.actors import get_system_user
from oms.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from oms.core.testing import run_together
from orders.models import OrderEvent

pytestmark = pytest.mark.django_db
DISPUTE_PERMS = ("billing.view_dispute", "billing.change_dispute")


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.OMS_NOTIFICATION_GROUP_SECONDS = 0
    settings.OMS_REFUND_SECOND_APPROVER_ABOVE = Decimal("500.00")
    settings.OMS_PAYMENT_SANDBOX_FAIL_REFUNDS = False


def _disputed(amount=None, reference="dp_1"):
    order = paid_order()
    payment = order.payments.get()
    dispute, _created = dispute_open(
        payment=payment,
        provider_reference=reference,
        reason="fraudulent",
        amount=amount,
        respond_by=timezone.now() + datetime.timedelta(days=7),
    )
    return order, payment, dispute


def _with_evidence(dispute):
    dispute.evidence.save("evidence.pdf", ContentFile(b"%PDF-1.4 test"), save=True)
    return dispute


def _money(order, payment):
    order.refresh_from_db()
    payment.refresh_from_db()
    return order.amount_refunded, payment.amount_refunded, payment.status


# --- service -------------------------------------------------------------------------------------


def test_submitting_needs_the_evidence_pack_first():
    order, _payment, dispute = _disputed()
    clerk = finance_user(*DISPUTE_PERMS)

    with pytest.raises(ConflictError) as refused:
        dispute_submit_evidence(dispute=dispute, actor=clerk)
    assert refused.value.code == "evidence_pack_missing"

    dispute_evidence_pack(dispute=dispute, actor=clerk)  # the real WeasyPrint pack
    submitted = dispute_submit_evidence(dispute=dispute.pk, actor=clerk, note="sent on the portal")
    again = dispute_submit_evidence(dispute=dispute.pk, actor=clerk)

    assert (submitted.status, again.status) == ("evidence_submitted", "evidence_submitted")
    assert OrderEvent.objects.filter(order=order, type="dispute_evidence_submitted").count() == 1
    assert submitted.history.latest().history_user == clerk


def test_a_lost_dispute_counts_as_refunded_on_the_payment_and_the_order():
    order, payment, dispute = _disputed(amount="20.00")
    clerk = finance_user(*DISPUTE_PERMS)

    lost = dispute_close(dispute=dispute, actor=clerk, won=False, note="issuer sided with the cardholder")

    assert lost.status == "lost"
    assert _money(order, payment) == (Decimal("20.00"), Decimal("20.00"), "partially_refunded")
    assert order.payment_status == "partially_refunded"
    event = OrderEvent.objects.get(order=order, type="dispute_lost")
    assert event.payload["charged_back"] == "20.00" and event.actor == clerk
    # Closing it again as lost changes nothing; as won is refused.
    dispute_close(dispute=dispute, actor=clerk, won=False)
    assert _money(order, payment)[:2] == (Decimal("20.00"), Decimal("20.00"))
    with pytest.raises(ConflictError):
        dispute_close(dispute=dispute, actor=clerk, won=True)


def test_a_lost_dispute_never_counts_above_what_was_captured():
    order, payment, dispute = _disputed()  # the whole payment, 64.45
    requester, approver = finance_user(*REQUESTER), finance_user(*APPROVER)
    refund = refund_request(order=order, actor=requester, amount="10.00", reason="goodwill")
    refund_approve(refund=refund, actor=approver)
    refund_process(refund=refund, actor=approver)

    dispute_close(dispute=dispute, actor=finance_user(*DISPUTE_PERMS), won=False)

    order_refunded, payment_refunded, status = _money(order, payment)
    assert payment_refunded == payment.amount_captured == Decimal("64.45") and status == "refunded"
    assert order_refunded == order.amount_paid == Decimal("64.45")
    assert OrderEvent.objects.get(order=order, type="dispute_lost").payload["charged_back"] == "54.45"


def test_a_won_dispute_changes_no_money():
    order, payment, dispute = _disputed()
    before = _money(order, payment)

    won = dispute_close(dispute=_with_evidence(dispute), actor=finance_user(*DISPUTE_PERMS), won=True)

    assert won.status == "won" and _money(order, payment) == before
    assert OrderEvent.objects.filter(order=order, type="dispute_won").count() == 1
    with pytest.raises(ConflictError):
        dispute_submit_evidence(dispute=won, actor=finance_user(*DISPUTE_PERMS))


def test_outcomes_need_the_permission():
    _order, _payment, dispute = _disputed()
    viewer = finance_user("billing.view_dispute")

    with pytest.raises(PermissionDeniedError):
        dispute_submit_evidence(dispute=_with_evidence(dispute), actor=viewer)
    with pytest.raises(PermissionDeniedError):
        dispute_close(dispute=dispute, actor=viewer, won=False)
    with pytest.raises(NotFoundError):
        dispute_close(dispute=999_999, actor=finance_user(*DISPUTE_PERMS), won=True)
    dispute.refresh_from_db()
    assert dispute.status == "open"


# --- provider events -----------------------------------------------------------------------------


def _event(payment, event_id, kind, **extra):
    return payment_event_receive(
        provider="sandbox",
        payload={"id": event_id, "type": kind, "payment_reference": payment.provider_reference, **extra},
        actor=get_system_user(),
    )


def test_provider_events_close_the_dispute_as_the_system_user_once():
    order = paid_order()
    payment = order.payments.get()
    payment.provider = "sandbox"
    payment.save(update_fields=["provider"])
    _event(payment, "evt_open", "dispute_opened", dispute_reference="dp_9", amount="30.00", reason="fraudulent")

    _row, applied = _event(payment, "evt_lost", "dispute_lost", dispute_reference="dp_9")
    _row, replay = _event(payment, "evt_lost", "dispute_lost", dispute_reference="dp_9")
    _row, other_id = _event(payment, "evt_lost_2", "dispute_lost", dispute_reference="dp_9")

    assert (applied, replay) == (True, False) and other_id is True
    assert Dispute.objects.get(payment=payment, provider_reference="dp_9").status == "lost"
    assert _money(order, payment)[:2] == (Decimal("30.00"), Decimal("30.00"))
    event = OrderEvent.objects.get(order=order, type="dispute_lost")
    assert event.actor == get_system_user()
    assert PaymentEvent.objects.filter(payment=payment, kind="dispute_lost").count() == 2


def test_a_won_event_changes_no_money_and_an_unknown_dispute_is_recorded_first():
    order = paid_order()
    payment = order.payments.get()
    payment.provider = "sandbox"
    payment.save(update_fields=["provider"])
    before = _money(order, payment)

    _row, applied = _event(payment, "evt_won", "dispute_won", dispute_reference="dp_new")

    assert applied is True and _money(order, payment) == before
    assert Dispute.objects.get(payment=payment, provider_reference="dp_new").status == "won"


def test_the_sandbox_refuses_unknown_event_types():
    order = paid_order()
    payment = order.payments.get()

    with pytest.raises(ValidationError):
        _event(payment, "evt_x", "dispute_maybe")


# --- API -----------------------------------------------------------------------------------------


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_the_api_submits_and_closes_disputes():
    order, payment, dispute = _disputed(amount="15.00")
    api = _api(finance_user(*DISPUTE_PERMS))
    submit = reverse("billing-dispute-submit", args=[dispute.pk])
    close = reverse("billing-dispute-close", args=[dispute.pk])

    missing = api.post(submit, {}, format="json")
    assert missing.status_code == 409 and missing.json()["code"] == "evidence_pack_missing"
    _with_evidence(dispute)
    submitted = api.post(submit, {"note": "uploaded"}, format="json", HTTP_IDEMPOTENCY_KEY="ds-1")
    assert submitted.status_code == 200 and submitted.json()["status"] == "evidence_submitted"

    first = api.post(close, {"won": False}, format="json", HTTP_IDEMPOTENCY_KEY="dc-1")
    again = api.post(close, {"won": False}, format="json", HTTP_IDEMPOTENCY_KEY="dc-1")
    other = api.post(close, {"won": True}, format="json")

    assert first.status_code == 200 and first.json()["status"] == "lost" and again.json() == first.json()
    assert other.status_code == 409
    assert _money(order, payment)[:2] == (Decimal("15.00"), Decimal("15.00"))


def test_the_api_refuses_without_permission_and_bad_input_never_500():
    _order, _payment, dispute = _disputed()
    close = reverse("billing-dispute-close", args=[dispute.pk])

    assert _api(finance_user("billing.view_dispute")).post(close, {"won": True}, format="json").status_code == 403
    api = _api(finance_user(*DISPUTE_PERMS))
    assert api.post(close, {}, format="json").status_code == 400
    assert api.post(close, {"won": "perhaps"}, format="json").status_code == 400
    assert api.post(close, {"won": True, "x": 1}, format="json").status_code == 400
    assert api.post("/api/v1/billing/disputes/999999/close/", {"won": True}, format="json").status_code == 404
    dispute.refresh_from_db()
    assert dispute.status == "open"


# --- cockpit -------------------------------------------------------------------------------------


def test_the_dispute_page_has_the_outcome_buttons_and_they_call_the_services(client):
    order, payment, dispute = _disputed(amount="12.00")
    client.force_login(finance_user(*DISPUTE_PERMS))
    page_url = reverse("admin:billing_dispute_change", args=[dispute.pk])
    outcome = lambda name: reverse("admin:billing_dispute_outcome", args=[dispute.pk, name])  # noqa: E731

    page = client.get(page_url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Generate the evidence pack before submitting it." in html and outcome("lost") in html

    refused = client.post(outcome("submit"))
    assert refused.status_code == 303
    assert any("evidence pack" in str(m) for m in get_messages(refused.wsgi_request))
    _with_evidence(dispute)
    assert outcome("submit") in client.get(page_url).content.decode()
    client.post(outcome("submit"))
    dispute.refresh_from_db()
    assert dispute.status == "evidence_submitted"

    lost = client.post(outcome("lost"), {"note": "lost at the issuer"})
    assert lost.status_code == 303
    dispute.refresh_from_db()
    assert dispute.status == "lost" and _money(order, payment)[:2] == (Decimal("12.00"), Decimal("12.00"))
    assert outcome("won") not in client.get(page_url).content.decode()


def test_the_dispute_page_shows_no_buttons_and_refuses_without_the_permission(client):
    _order, _payment, dispute = _disputed()
    client.force_login(finance_user("billing.view_dispute"))

    page = client.get(reverse("admin:billing_dispute_change", args=[dispute.pk]))
    assert page.status_code == 200 and "dispute-outcomes" not in page.content.decode()
    response = client.post(reverse("admin:billing_dispute_outcome", args=[dispute.pk, "won"]))

    assert response.status_code == 303
    assert any("permission" in str(m) for m in get_messages(response.wsgi_request))
    dispute.refresh_from_db()
    assert dispute.status == "open"
    assert client.get(reverse("admin:billing_dispute_outcome", args=[dispute.pk, "bogus"])).status_code == 404
    assert Payment.objects.get(pk=_payment.pk).amount_refunded == 0


@pytest.mark.django_db(transaction=True)
def test_a_lost_event_delivered_twice_at_the_same_moment_counts_the_chargeback_once():
    order, payment, _dispute = _disputed(amount="25.00", reference="dp_race")
    payment.provider = "sandbox"
    payment.save(update_fields=["provider"])

    results = run_together(2, lambda i: _event(payment, f"evt_race_{i}", "dispute_lost", dispute_reference="dp_race"))

    assert all(not isinstance(r, Exception) for r in results), results
    assert _money(order, payment)[:2] == (Decimal("25.00"), Decimal("25.00"))
    assert OrderEvent.objects.filter(order=order, type="dispute_lost").count() == 1
