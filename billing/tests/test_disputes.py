import datetime
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from billing.models import Dispute
from billing.services.disputes import dispute_evidence_pack, dispute_open
from billing.tests.refund_support import delivered_order_with_invoice, finance_user
from fulfillment.models import Shipment
from integrations.models import Notification
from integrations.services import notification_render
from oms.core.errors import PermissionDeniedError
from orders.models import OrderEvent

pytestmark = pytest.mark.django_db
DISPUTE_PERMS = ("billing.add_dispute", "billing.change_dispute", "billing.view_dispute")


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.OMS_NOTIFICATION_GROUP_SECONDS = 0


def _pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def test_a_dispute_is_recorded_once_per_provider_reference():
    _order, payment, _invoice = delivered_order_with_invoice()
    respond_by = timezone.now() + datetime.timedelta(days=7)

    dispute, created = dispute_open(
        payment=payment, provider_reference="dp_1", reason="not_received", amount="64.45", respond_by=respond_by
    )
    again, created_again = dispute_open(
        payment=payment, provider_reference="dp_1", reason="not_received", amount="64.45", respond_by=respond_by
    )

    assert (created, created_again) == (True, False) and again.pk == dispute.pk
    assert (dispute.amount, dispute.currency, dispute.status, dispute.order) == (
        Decimal("64.45"),
        "EUR",
        "open",
        payment.order,
    )
    assert OrderEvent.objects.filter(order=payment.order, type="dispute_opened").count() == 1


def test_the_evidence_pack_shows_the_invoice_the_tracking_the_delivery_and_the_messages():
    order, payment, invoice = delivered_order_with_invoice()
    dispute, _ = dispute_open(
        payment=payment,
        provider_reference="dp_42",
        reason="not_received",
        amount=None,
        respond_by=timezone.now() + datetime.timedelta(days=5),
    )
    clerk = finance_user(*DISPUTE_PERMS)

    pdf = dispute_evidence_pack(dispute=dispute, actor=clerk)

    text = _pdf_text(pdf)
    assert pdf.startswith(b"%PDF")
    assert "Evidence for dispute dp_42" in text
    assert order.number in text and invoice.number in text
    for shipment in Shipment.objects.filter(order=order):
        assert shipment.tracking_number in text
    assert text.count("Proof of delivery") == 2 and "In transit" in text and "Delivered" in text
    messages = Notification.objects.filter(order_number=order.number)
    assert messages.exists()
    assert "Messages sent to the customer" in text and order.email in text

    for message in messages:
        subject, _text, _html = notification_render(message)
        assert subject in text
    dispute.refresh_from_db()
    assert dispute.evidence.name.endswith(".pdf")
    with dispute.evidence.open("rb") as stored:
        assert stored.read() == pdf
    assert dispute.history.latest().history_user == clerk


def test_the_evidence_pack_needs_the_permission():
    _order, payment, _invoice = delivered_order_with_invoice()
    dispute, _ = dispute_open(
        payment=payment, provider_reference="dp_7", reason="fraud", amount="10", respond_by=timezone.now()
    )
    with pytest.raises(PermissionDeniedError):
        dispute_evidence_pack(dispute=dispute, actor=finance_user("billing.view_dispute"))


def test_the_cockpit_lists_disputes_by_deadline_with_late_ones_highlighted_and_serves_the_pack(client):
    _order, payment, _invoice = delivered_order_with_invoice()
    late, _ = dispute_open(
        payment=payment,
        provider_reference="dp_late",
        reason="fraud",
        amount="10",
        respond_by=timezone.now() - datetime.timedelta(days=1),
    )
    dispute_open(
        payment=payment,
        provider_reference="dp_soon",
        reason="fraud",
        amount="10",
        respond_by=timezone.now() + datetime.timedelta(days=3),
    )
    client.force_login(finance_user(*DISPUTE_PERMS, "orders.view_order"))

    page = client.get(reverse("admin:billing_dispute_changelist")).content.decode()

    assert page.index("dp_late") < page.index("dp_soon")
    assert "oms-late" in page
    response = client.get(reverse("admin:billing_dispute_evidence", args=[late.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert "dp_late" in _pdf_text(response.content)
    assert Dispute.objects.get(pk=late.pk).evidence
