"""What the customer hears about their order: one message per burst of changes, by email and (for
parcels, pickups and delays) by SMS, in the order's language; nothing for test orders; nothing
more once an order is canceled, and marketing told to stop through the outbox."""

import datetime

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from fulfillment import services as fulfillment
from fulfillment.links import tracking_url, tracking_url_for_number
from fulfillment.models import Shipment
from fulfillment.tests.fixtures import make_two_locations, prepared_order
from integrations.adapters.sms import BaseSmsBackend
from integrations.models import Notification, OutboxMessage, WebhookEndpoint
from integrations.services import (
    SMS_KINDS,
    NotificationOutcome,
    notification_queue,
    notification_render,
    notification_send,
    notifications_send_due,
)
from oms.cockpit.roles import SUPPORT_L2
from oms.core.actors import get_system_user
from orders import services as orders
from orders.choices import CancelReason, OrderEventType, OrderStatus
from orders.events import events_record
from orders.notify import order_sms_phone
from orders.tests.factories import make_user

pytestmark = pytest.mark.django_db

GROUP_SECONDS = 120
PHONE = "06 12 34 56 78"


class DownSmsBackend(BaseSmsBackend):
    """An SMS provider that does not answer."""

    def send(self, message):
        raise ConnectionError("SMS gateway unreachable")


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.OMS_NOTIFICATION_GROUP_SECONDS = GROUP_SECONDS
    settings.OMS_PUBLIC_URL = "https://shop.example"
    settings.OMS_NOTIFICATION_FROM = "orders@shop.example"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.OMS_SMS_BACKEND = "integrations.adapters.sms.FileSmsBackend"
    settings.OMS_SMS_DIR = tmp_path / "sms"
    settings.OMS_SMS_FROM = "ShopSMS"


def later(seconds: float = GROUP_SECONDS + 1) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(seconds=seconds)


def sms_files(settings) -> list[str]:
    directory = settings.OMS_SMS_DIR
    return [p.read_text() for p in sorted(directory.glob("*.txt"))] if directory.exists() else []


def customer(**extra) -> dict:
    return {"email": extra.pop("email", "ann@example.com"), "first_name": "Ann", "last_name": "Lee", **extra}


def dispatch_all(world, order) -> list[Shipment]:
    shipments = list(Shipment.objects.filter(order=order).order_by("location__priority"))
    for shipment in shipments:
        fulfillment.shipment_confirm_picks(
            shipment=shipment, actor=world.warehouse, picked={line.pk: line.quantity for line in shipment.lines.all()}
        )
        fulfillment.shipment_pack(shipment=shipment, actor=world.warehouse)
    fulfillment.shipments_dispatch(shipments=shipments, actor=world.warehouse)
    return shipments


def test_confirmed_then_two_parcels_dispatched_in_one_burst_are_one_email_and_one_sms(settings):
    world = make_two_locations()
    order = prepared_order(customer=customer(phone=PHONE))
    # Confirmed at intake: the message waits for the grouping window.
    [confirmation] = Notification.objects.filter(order_number=order.number)
    assert (confirmation.kind, confirmation.channel, confirmation.status) == ("order_confirmed", "email", "pending")

    shipments = dispatch_all(world, order)

    email_note = Notification.objects.get(order_number=order.number, channel="email")
    sms_note = Notification.objects.get(order_number=order.number, channel="sms")
    # The confirmation was taken over by the dispatch: one message about the order.
    assert email_note.pk == confirmation.pk and email_note.kind == "parcels_dispatched"
    assert len(email_note.data["parcels"]) == 2
    assert (sms_note.kind, sms_note.recipient, len(sms_note.data["parcels"])) == (
        "parcels_dispatched",
        "+33612345678",
        2,
    )
    assert email_note.group_key != sms_note.group_key
    assert notifications_send_due() == 0  # inside the window nothing leaves

    assert notifications_send_due(now=later()) == 2

    [email] = mail.outbox
    assert email.to == ["ann@example.com"]
    assert email.subject == f"Your order {order.number}: 2 parcels are on their way"
    for shipment in shipments:
        shipment.refresh_from_db()
        assert shipment.tracking_number in email.body
    [sms] = sms_files(settings)
    assert "From: ShopSMS\nTo: +33612345678\n" in sms
    assert f"Your order {order.number}: 2 parcels are on their way\n{tracking_url(order)}" in sms
    sms_note.refresh_from_db()
    assert (sms_note.status, sms_note.attempts, sms_note.subject) == ("sent", 1, "")
    assert sms_note.body == f"Your order {order.number}: 2 parcels are on their way\n{tracking_url(order)}"
    # Sent once: a later sweep sends nothing more.
    assert notifications_send_due(now=later(3600)) == 0
    assert len(mail.outbox) == 1 and len(sms_files(settings)) == 1


def test_without_a_phone_only_the_email_is_queued():
    world = make_two_locations()
    order = prepared_order(customer=customer())
    dispatch_all(world, order)
    assert list(Notification.objects.filter(order_number=order.number).values_list("channel", flat=True)) == ["email"]


def test_the_shipping_address_phone_is_texted_when_the_customer_has_none(settings):
    world = make_two_locations()
    address = {"name": "Ann Lee", "line1": "1 rue X", "postal_code": "75002", "city": "Paris", "country": "FR"}
    order = prepared_order(customer=customer(), shipping_address={**address, "phone": "+33 7 00 11 22 33"})
    dispatch_all(world, order)
    assert Notification.objects.get(order_number=order.number, channel="sms").recipient == "+33700112233"


def test_a_french_order_gets_its_email_and_its_sms_in_french(settings):
    world = make_two_locations()
    order = prepared_order(customer=customer(phone=PHONE), locale="fr")
    shipments = dispatch_all(world, order)

    assert notifications_send_due(now=later()) == 2

    [email] = mail.outbox
    assert email.subject == f"Votre commande {order.number} : 2 colis sont en route"
    assert email.body.startswith("Bonjour,") and "Merci pour votre commande." in email.body
    assert "Hello" not in email.body
    shipments[0].refresh_from_db()
    assert f"Numéro de suivi : {shipments[0].tracking_number}" in email.body
    [sms] = sms_files(settings)
    assert f"Votre commande {order.number} : 2 colis sont en route" in sms and "parcels" not in sms


def test_a_test_order_is_never_emailed_nor_texted(settings):
    make_two_locations()
    order = prepared_order(customer=customer(phone=PHONE), is_test=True)
    with transaction.atomic():
        notification_queue(
            kind="parcels_dispatched",
            recipient=order.email,
            group_key=f"dispatch:{order.number}",
            data={"order": order.number, "parcels": []},
            order_number=order.number,
            is_test=order.is_test,
            phone=order_sms_phone(order),  # what orders.notify.order_notify passes
        )
    assert sorted(Notification.objects.filter(order_number=order.number).values_list("kind", "channel")) == [
        ("parcels_dispatched", "email"),
        ("parcels_dispatched", "sms"),
    ]

    assert notifications_send_due(now=later()) == 0

    assert mail.outbox == [] and sms_files(settings) == []
    assert set(Notification.objects.filter(order_number=order.number).values_list("status", "last_error")) == {
        ("skipped", "Test order: never sent.")
    }


def test_canceling_an_order_skips_its_pending_messages_and_tells_marketing_to_stop():
    marketing = WebhookEndpoint.objects.create(name="marketing", url="https://crm.example/hook", topics=["marketing.*"])
    make_two_locations()
    order = prepared_order(customer=customer(phone=PHONE))
    with transaction.atomic():  # a delay notice queued earlier, still in its window
        delay = notification_queue(
            kind="delivery_delayed",
            recipient=order.email,
            group_key=f"delay:{order.number}",
            data={"order": order.number, "items": [{"name": "Mug", "quantity": 1}]},
            order_number=order.number,
            phone=order_sms_phone(order),  # what orders.notify.order_notify passes
        )
    assert Notification.objects.filter(order_number=order.number, status="pending").count() == 2
    agent = make_user(SUPPORT_L2)

    orders.order_cancel(order=order, actor=agent, reason_code=CancelReason.CUSTOMER_REQUEST, reason="Changed mind")

    skipped = Notification.objects.filter(order_number=order.number, status="skipped")
    # The delay notice took over the confirmation (one burst); it and its SMS are skipped.
    assert sorted(skipped.values_list("kind", "channel")) == [
        ("delivery_delayed", "email"),
        ("delivery_delayed", "sms"),
    ]
    assert {n.last_error for n in skipped} == {"Order canceled before this message was sent."}
    delay.refresh_from_db()
    assert delay.status == "skipped"
    [cancellation] = Notification.objects.filter(order_number=order.number, status="pending")
    assert (cancellation.kind, cancellation.channel) == ("order_canceled", "email")
    [suppress] = OutboxMessage.objects.filter(topic="marketing.suppress")
    assert suppress.endpoint == marketing and suppress.key == order.number
    assert suppress.payload == {"order": order.number, "email": order.email, "reason": "order_canceled"}

    assert notifications_send_due(now=later()) == 1
    [email] = mail.outbox
    assert email.subject == f"Your order {order.number} has been canceled"
    assert "will be refunded to your original payment method" in email.body


def test_a_message_queued_about_a_canceled_order_is_skipped_at_send_time():
    make_two_locations()
    order = prepared_order(customer=customer())
    orders.order_cancel(order=order, actor=make_user(SUPPORT_L2), reason_code=CancelReason.CUSTOMER_REQUEST)
    with transaction.atomic():
        late = notification_queue(
            kind="parcels_dispatched",
            recipient=order.email,
            group_key=f"dispatch:{order.number}",
            data={"order": order.number, "parcels": []},
            order_number=order.number,
        )

    assert notification_send(notification_id=late.pk, now=later()) == NotificationOutcome.SKIPPED

    late.refresh_from_db()
    assert (late.status, late.attempts) == ("skipped", 0)
    assert "Order canceled" in late.last_error
    # The cancellation itself still goes.
    assert notifications_send_due(now=later()) == 1
    assert [m.subject for m in mail.outbox] == [f"Your order {order.number} has been canceled"]


def test_a_text_message_that_fails_is_retried_with_backoff_then_sent(settings):
    world = make_two_locations()
    order = prepared_order(customer=customer(phone=PHONE))
    dispatch_all(world, order)
    settings.OMS_SMS_BACKEND = "orders.tests.test_notify.DownSmsBackend"
    sms_note = Notification.objects.get(order_number=order.number, channel="sms")
    now = later()

    assert notifications_send_due(now=now) == 1  # the email

    sms_note.refresh_from_db()
    assert (sms_note.status, sms_note.attempts) == ("pending", 1)
    assert sms_note.last_error == "ConnectionError: SMS gateway unreachable"
    assert sms_note.send_after == now + datetime.timedelta(seconds=60)
    assert notifications_send_due(now=now + datetime.timedelta(seconds=59)) == 0  # not due yet
    assert notifications_send_due(now=sms_note.send_after) == 0
    sms_note.refresh_from_db()
    assert sms_note.attempts == 2 and sms_note.send_after - now == datetime.timedelta(seconds=60 + 120)
    assert sms_files(settings) == []

    settings.OMS_SMS_BACKEND = "integrations.adapters.sms.FileSmsBackend"  # the gateway is back
    assert notifications_send_due(now=sms_note.send_after) == 1
    sms_note.refresh_from_db()
    assert (sms_note.status, sms_note.attempts) == ("sent", 3)
    assert len(sms_files(settings)) == 1 and len(mail.outbox) == 1


def test_a_return_received_and_refunded_together_is_one_message():
    make_two_locations()
    order = prepared_order(customer=customer())
    with transaction.atomic():
        events_record(
            order=order,
            actor=get_system_user(),
            events=[
                (OrderEventType.RETURN_RECEIVED, "", {"return": "RMA-2026-000001"}),
                (
                    OrderEventType.REFUND_PROCESSED,
                    "",
                    {"refund": "RF-1", "amount": "24.00", "currency": "EUR", "method": "original"},
                ),
                (
                    OrderEventType.REFUND_PROCESSED,
                    "",
                    {"refund": "RF-2", "amount": "5.00", "currency": "EUR", "method": "voucher"},
                ),
            ],
        )
    [note] = Notification.objects.filter(order_number=order.number, status="pending")
    assert note.kind == "refund_processed" and [r["refund"] for r in note.data["refunds"]] == ["RF-1", "RF-2"]

    assert notifications_send_due(now=later()) == 1

    [email] = mail.outbox
    assert email.subject == f"Your order {order.number}: your refund is on its way"
    assert "We have received your return RMA-2026-000001." in email.body
    assert "24.00 EUR have been refunded to your original payment method" in email.body
    assert "A voucher of 5.00 EUR has been issued to you." in email.body


def test_a_delivery_is_its_own_message_even_in_the_dispatch_burst():
    world = make_two_locations()
    order = prepared_order(customer=customer())
    dispatch_all(world, order)

    orders.order_mark_delivered(order=order, actor=get_system_user())

    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert sorted(Notification.objects.filter(order_number=order.number).values_list("kind", flat=True)) == [
        "order_delivered",
        "parcels_dispatched",
    ]
    assert notifications_send_due(now=later()) == 2
    subjects = sorted(m.subject for m in mail.outbox)
    assert subjects == [
        f"Your order {order.number} has been delivered",
        f"Your order {order.number}: 2 parcels are on their way",
    ]
    delivered = next(m for m in mail.outbox if "delivered" in m.subject)
    assert "has been delivered. We hope you enjoy it." in delivered.body and tracking_url(order) in delivered.body


@pytest.mark.parametrize("locale", ["en", "fr"])
@pytest.mark.parametrize(
    "kind, data",
    [
        ("order_confirmed", {"confirmation": {"items": [{"name": "Mug & Co", "quantity": 2}], "total": "10.00"}}),
        ("order_canceled", {"refund_due": "10.00", "currency": "EUR"}),
        ("order_delivered", {"complete": False}),
        ("refund_processed", {"refunds": [{"amount": "3.00", "currency": "EUR", "method": "store_credit"}]}),
        ("return_approved", {"return": "RMA-1", "return_tracking_number": "RT123", "items": []}),
        ("return_received", {"return": "RMA-1"}),
    ],
)
def test_every_new_customer_kind_renders_in_the_order_language(kind, data, locale):
    with transaction.atomic():
        note = notification_queue(
            kind=kind,
            recipient="ann@example.com",
            group_key=f"{kind}:ORD-2026-000042",
            data={"order": "ORD-2026-000042", **data},
            locale=locale,
            order_number="ORD-2026-000042",
        )

    subject, text, html = notification_render(note)

    assert subject and "ORD-2026-000042" in subject and "\n" not in subject
    assert "ORD-2026-000042" in text and "https://shop.example/track/" in text and "\n\n\n" not in text
    assert "{{" not in text + html and "{%" not in text + html
    assert text.startswith("Bonjour," if locale == "fr" else "Hello,")
    assert f'<html lang="{locale}">' in html


def test_a_rule_alert_lists_the_orders_it_fired_on_without_a_customer_link():
    with transaction.atomic():
        for number in ("ORD-2026-000001", "ORD-2026-000002"):
            note = notification_queue(
                kind="rule_alert",
                recipient="ops@shop.example",
                group_key="rule:1:ops@shop.example",
                data={"rule": "Big orders", "description": "Over 1000 EUR", "orders": [number]},
                order_number=number,
                merge=("orders",),
            )

    subject, text, html = notification_render(note)

    assert subject == 'Rule "Big orders" fired on 2 orders'
    assert "ORD-2026-000001" in text and "ORD-2026-000002" in text and "Over 1000 EUR" in text
    assert "/track/" not in text + html
    assert notifications_send_due(now=later()) == 1
    assert mail.outbox[0].to == ["ops@shop.example"]


@pytest.mark.parametrize("locale, expected", [("en", "Please collect it by"), ("fr", "Merci de la retirer")])
@pytest.mark.parametrize("kind", sorted(SMS_KINDS))
def test_every_text_message_is_short_plain_text_in_the_order_language(kind, locale, expected):
    data = {
        "order": "ORD-2026-000042",
        "store": "Lyon store",
        "expires_at": "2026-03-12T18:00:00+00:00",
        "promised_at": "2026-03-20T09:00:00+00:00",
        "parcels": [{"items": [{"name": "Mug", "quantity": 1}]}],
    }
    note = Notification(kind=kind, channel="sms", locale=locale, order_number="ORD-2026-000042", data=data)

    subject, text, html = notification_render(note)

    assert (subject, html) == ("", "")
    assert "ORD-2026-000042" in text and text.endswith(tracking_url_for_number("ORD-2026-000042"))
    assert "<" not in text and "{" not in text and "\n\n" not in text and len(text) <= 320
    if "pickup" in kind:
        assert "Lyon store" in text and expected in text
