"""Customer notifications: what happens together is told together, in the customer's language,
with a link to the tracking page; test orders are never emailed; a mail server that fails is retried
with backoff, then the message is marked failed."""

import datetime
import re
import socket

import pytest
from django.contrib import admin
from django.contrib.messages.storage.cookie import CookieStorage
from django.core import mail
from django.db import connection, transaction
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import formats, timezone, translation

from fulfillment import services as fulfillment
from fulfillment.links import tracking_url
from fulfillment.models import Shipment, ShortPick
from fulfillment.tests.fixtures import make_two_locations, prepared_order
from integrations import tasks
from integrations.admin import NotificationAdmin
from integrations.models import Notification
from integrations.services import (
    NOTIFICATION_MAX_ATTEMPTS,
    notification_queue,
    notification_render,
    notifications_send_due,
)
from integrations.tests.factories import UserFactory
from inventory.models import Location, Product
from inventory.services import stock_receive
from oms.core.actors import get_system_user
from orders.tests.factories import order_payload

pytestmark = pytest.mark.django_db

GROUP_SECONDS = 120
CAP_LINE = {"sku": "CAP-1", "name": "Cap", "quantity": 1, "unit_price": "15.00", "tax_rate": "0.20"}


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"  # carrier labels
    settings.OMS_NOTIFICATION_GROUP_SECONDS = GROUP_SECONDS
    settings.OMS_PUBLIC_URL = "https://shop.example"
    settings.OMS_NOTIFICATION_FROM = "orders@shop.example"


def later(seconds: float = GROUP_SECONDS + 1) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(seconds=seconds)


def pack(shipment, actor):
    fulfillment.shipment_confirm_picks(
        shipment=shipment, actor=actor, picked={line.pk: line.quantity for line in shipment.lines.all()}
    )
    return fulfillment.shipment_pack(shipment=shipment, actor=actor)


def three_parcel_order(**overrides):
    """MUG and BOOK from Paris, TEE from Lyon, CAP from Marseille: three parcels."""
    world = make_two_locations()
    marseille = Location.objects.create(
        code="marseille-wh", name="Marseille warehouse", kind="warehouse", country="FR", city="Marseille", priority=30
    )
    cap = Product.objects.create(sku="CAP-1", name="Cap", weight_grams=100)
    stock_receive(product=cap, location=marseille, quantity=5, actor=get_system_user())
    base = order_payload()["lines"]
    order = prepared_order(lines=[*base, CAP_LINE], **overrides)
    return world, order


def queue(kind: str, data: dict, *, order_number="ORD-2026-000042", locale="en", is_test=False) -> Notification:
    with transaction.atomic():
        return notification_queue(
            kind=kind,
            recipient="ann@example.com",
            group_key=f"{kind}:{order_number}",
            data={"order": order_number, **data},
            locale=locale,
            order_number=order_number,
            is_test=is_test,
        )


def closed_port() -> int:
    """A local port nothing listens on: connecting to it is refused (a mail server that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_three_parcels_dispatched_together_are_one_email_listing_three_tracking_numbers():
    world, order = three_parcel_order()
    shipments = list(Shipment.objects.filter(order=order).order_by("location__priority"))
    assert [s.location.code for s in shipments] == ["paris-wh", "lyon-wh", "marseille-wh"]
    for shipment in shipments:
        pack(shipment, world.warehouse)

    fulfillment.shipments_dispatch(shipments=shipments, actor=world.warehouse)

    [note] = Notification.objects.filter(order_number=order.number)
    assert (note.kind, note.status, len(note.data["parcels"])) == ("parcels_dispatched", "pending", 3)
    # Inside the grouping window nothing leaves: more may happen to the order.
    assert notifications_send_due() == 0
    assert mail.outbox == []

    assert notifications_send_due(now=later()) == 1
    [email] = mail.outbox
    tracking_numbers = [s.tracking_number for s in Shipment.objects.filter(order=order).order_by("location__priority")]
    assert len(set(tracking_numbers)) == 3 and all(tracking_numbers)
    assert email.to == [order.email] and email.from_email == "orders@shop.example"
    assert email.subject == f"Your order {order.number}: 3 parcels are on their way"
    for number in tracking_numbers:
        assert number in email.body
    for title in ("Parcel 1 of 3", "Parcel 2 of 3", "Parcel 3 of 3"):
        assert title in email.body
    assert "2 × Mug" in email.body and "1 × T-shirt" in email.body and "1 × Cap" in email.body
    assert "Carrier: Sandbox Parcel" in email.body
    page = tracking_url(order)
    assert page.startswith("https://shop.example/track/") and page in email.body
    [(html, mimetype)] = email.alternatives
    assert mimetype == "text/html"
    assert f'href="{page}"' in html and all(number in html for number in tracking_numbers)

    note.refresh_from_db()
    assert (note.status, note.attempts, note.subject, note.body) == ("sent", 1, email.subject, email.body)
    assert note.sent_at is not None
    # Sent once: the next sweep finds nothing.
    assert notifications_send_due(now=later(3600)) == 0
    assert len(mail.outbox) == 1


def test_the_tracking_link_in_the_email_opens_the_order_page(client):
    world = make_two_locations()
    order = prepared_order()
    paris = pack(Shipment.objects.get(order=order, location=world.paris), world.warehouse)
    fulfillment.shipment_dispatch(shipment=paris, actor=world.warehouse)
    notifications_send_due(now=later())
    [email] = mail.outbox
    [link] = re.findall(r"https://shop\.example(/track/\S+)", email.body)

    response = client.get(link)

    assert response.status_code == 200
    assert order.number in response.content.decode()
    paris.refresh_from_db()
    assert paris.tracking_number in response.content.decode()


def test_a_french_order_gets_its_messages_in_french():
    world = make_two_locations()
    order = prepared_order(locale="fr")
    assert order.locale == "fr"
    paris = pack(Shipment.objects.get(order=order, location=world.paris), world.warehouse)
    fulfillment.shipment_dispatch(shipment=paris, actor=world.warehouse)

    assert notifications_send_due(now=later()) == 1

    [email] = mail.outbox
    paris.refresh_from_db()
    assert email.subject == f"Votre commande {order.number} : un colis est en route"
    assert "Bonjour," in email.body
    assert f"Numéro de suivi : {paris.tracking_number}" in email.body
    assert "2 × Mug" in email.body
    assert "Suivez vos colis" in email.body and "Merci pour votre commande." in email.body
    assert "Hello" not in email.body and "Tracking number" not in email.body
    html = email.alternatives[0][0]
    assert '<html lang="fr">' in html and "Suivre ma commande" in html


def test_messages_of_test_orders_are_skipped_never_sent():
    note = queue("parcels_dispatched", {"parcels": []}, is_test=True)

    assert notifications_send_due(now=later()) == 0

    assert mail.outbox == []
    note.refresh_from_db()
    assert (note.status, note.attempts, note.subject, note.sent_at) == ("skipped", 0, "", None)
    assert notifications_send_due(now=later(3600)) == 0


def test_a_mail_server_that_is_down_is_retried_with_backoff_then_the_message_fails(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2
    note = queue("delivery_delayed", {"promised_at": later(86400).isoformat(), "items": []})
    now = later()
    delays = []
    for attempt in range(1, NOTIFICATION_MAX_ATTEMPTS):
        assert notifications_send_due(now=now) == 0
        note.refresh_from_db()
        assert (note.status, note.attempts) == ("pending", attempt)
        assert "ConnectionRefusedError" in note.last_error
        delays.append((note.send_after - now).total_seconds())
        # Not due again before its backoff has passed.
        assert notifications_send_due(now=now + datetime.timedelta(seconds=delays[-1] - 1)) == 0
        note.refresh_from_db()
        assert note.attempts == attempt
        now = note.send_after

    assert delays == [60, 120, 240, 480]
    assert notifications_send_due(now=now) == 0
    note.refresh_from_db()
    assert (note.status, note.attempts, note.sent_at, note.subject) == ("failed", NOTIFICATION_MAX_ATTEMPTS, None, "")
    # A failed message is never picked up again by the sweep.
    assert notifications_send_due(now=now + datetime.timedelta(days=1)) == 0
    note.refresh_from_db()
    assert note.attempts == NOTIFICATION_MAX_ATTEMPTS


def test_a_message_that_failed_once_is_sent_on_the_next_attempt(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2
    note = queue("pickup_reminder", {"store": "Lyon store", "expires_at": later(86400).isoformat()})
    assert notifications_send_due(now=later()) == 0
    note.refresh_from_db()

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # the server is back
    assert notifications_send_due(now=note.send_after) == 1

    note.refresh_from_db()
    assert (note.status, note.attempts) == ("sent", 2)
    [email] = mail.outbox
    assert email.subject == "Reminder: your order ORD-2026-000042 is waiting for you"


def test_a_delay_notice_names_the_delayed_items_and_their_new_date():
    world = make_two_locations(mug=2)
    order = prepared_order()
    shipment = Shipment.objects.get(order=order, location=world.paris)
    mug = shipment.lines.get(order_line__sku="MUG-1")
    book = shipment.lines.get(order_line__sku="BOOK-1")
    fulfillment.shipment_confirm_picks(shipment=shipment, actor=world.warehouse, picked={mug.pk: 1, book.pk: 1})
    promised = timezone.now() + datetime.timedelta(days=10)
    fulfillment.short_pick_delay(
        short_pick=ShortPick.objects.get(shipment=shipment), actor=world.support, promised_at=promised
    )

    assert notifications_send_due(now=later()) == 1

    [email] = mail.outbox
    with translation.override("en"):
        date = formats.date_format(timezone.localtime(promised), "DATE_FORMAT")
    assert email.subject == f"Your order {order.number}: some items will arrive later"
    assert f"We are sorry: part of your order {order.number} will arrive later than planned." in email.body
    assert f"These items are now expected by {date}:\n  1 × Mug\n" in email.body
    assert "T-shirt" not in email.body and "Book" not in email.body  # only what is late
    assert tracking_url(order) in email.body


@pytest.mark.parametrize("locale", ["en", "fr"])
@pytest.mark.parametrize(
    "kind, data",
    [
        (
            "parcels_dispatched",
            {
                "parcels": [
                    {
                        "shipment": "SHP-1",
                        "carrier": "sandbox",
                        "tracking_number": "SBX123",
                        "tracking_url": "https://track.example/SBX123",
                        "items": [{"sku": "MUG-1", "name": "Mug & Co", "quantity": 2}],
                    }
                ]
            },
        ),
        (
            "delivery_delayed",
            {"promised_at": "2026-03-12T10:00:00+00:00", "items": [{"name": "Mug & Co", "quantity": 1}]},
        ),
        (
            "ready_for_pickup",
            {
                "store": "Lyon store",
                "expires_at": "2026-03-12T18:00:00+00:00",
                "parcels": [{"items": [{"name": "Mug & Co", "quantity": 1}]}],
            },
        ),
        ("pickup_reminder", {"store": "Lyon store", "expires_at": "2026-03-12T18:00:00+00:00"}),
    ],
)
def test_every_kind_renders_a_subject_a_text_and_an_html_body_with_the_tracking_link(kind, data, locale):
    note = queue(kind, data, locale=locale)

    subject, text, html = notification_render(note)

    link = "https://shop.example/track/"
    assert subject and "ORD-2026-000042" in subject and "\n" not in subject
    assert "ORD-2026-000042" in text and link in text and f'href="{link}' in html
    assert "Mug & Co" in text or kind == "pickup_reminder"  # plain text is not HTML-escaped
    assert "&amp;" not in text and ("Mug &amp; Co" in html or kind == "pickup_reminder")
    assert "{{" not in text + html and "{%" not in text + html and "\n\n\n" not in text
    greeting = "Bonjour," if locale == "fr" else "Hello,"
    assert text.startswith(greeting) and greeting in html
    if "store" in data:
        assert "Lyon store" in text and ("12 mars 2026" if locale == "fr" else "March 12, 2026") in text


def test_the_beat_task_sends_what_is_due(settings):
    settings.OMS_NOTIFICATION_GROUP_SECONDS = 0
    queue("pickup_reminder", {"store": "Lyon store", "expires_at": later(86400).isoformat()})

    assert tasks.notifications_send_due() == 1

    assert len(mail.outbox) == 1


def _admin_request(user, method="get"):
    request = getattr(RequestFactory(), method)("/admin/integrations/notification/")
    request.user = user
    request._messages = CookieStorage(request)
    return request


def test_admin_is_read_only_and_send_now_needs_the_permission():
    viewer = UserFactory(permissions=["integrations.view_notification"])
    sender = UserFactory(permissions=["integrations.view_notification", "integrations.change_notification"])
    model_admin = NotificationAdmin(Notification, admin.site)
    assert list(model_admin.get_actions(_admin_request(viewer))) == []
    assert list(model_admin.get_actions(_admin_request(sender))) == ["send_now"]
    request = _admin_request(sender)
    assert (
        model_admin.has_add_permission(request),
        model_admin.has_change_permission(request),
        model_admin.has_delete_permission(request),
    ) == (False, False, False)


def test_send_now_sends_before_the_window_ends_and_reports_what_it_did():
    waiting = queue("pickup_reminder", {"store": "Lyon store"}, order_number="ORD-2026-000001")
    test_order = queue("pickup_reminder", {"store": "Lyon store"}, order_number="ORD-2026-000002", is_test=True)
    sender = UserFactory(permissions=["integrations.view_notification", "integrations.change_notification"])
    model_admin = NotificationAdmin(Notification, admin.site)
    request = _admin_request(sender, "post")

    model_admin.send_now(request, Notification.objects.filter(pk__in=[waiting.pk, test_order.pk]))

    waiting.refresh_from_db()
    test_order.refresh_from_db()
    assert (waiting.status, test_order.status) == ("sent", "skipped")
    assert [email.to for email in mail.outbox] == [["ann@example.com"]]
    texts = [str(message) for message in request._messages]
    assert texts == [
        "1 notification sent.",
        "1 notification of a test order skipped (never sent).",
    ]
    # Searching by order number, exactly, in any case; or by the address.
    found, _ = model_admin.get_search_results(request, Notification.objects.all(), "ord-2026-000001")
    assert list(found) == [waiting]
    found, _ = model_admin.get_search_results(request, Notification.objects.all(), "ANN@example.com")
    assert set(found) == {waiting, test_order}


def test_send_now_without_the_permission_changes_nothing():
    waiting = queue("pickup_reminder", {"store": "Lyon store"})
    viewer = UserFactory(permissions=["integrations.view_notification"])
    request = _admin_request(viewer, "post")

    NotificationAdmin(Notification, admin.site).send_now(request, Notification.objects.filter(pk=waiting.pk))

    waiting.refresh_from_db()
    assert (waiting.status, waiting.attempts) == ("pending", 0) and mail.outbox == []
    assert [str(message) for message in request._messages] == ["You are not allowed to send customer notifications."]


def test_the_cockpit_lists_notifications_by_kind_and_status_in_a_fixed_number_of_queries(client):
    client.force_login(UserFactory(is_superuser=True))
    url = "/admin/integrations/notification/"
    queue("pickup_reminder", {"store": "Lyon store"}, order_number="ORD-2026-000001")
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    for n in range(2, 8):
        queue("delivery_delayed", {"items": []}, order_number=f"ORD-2026-00001{n}")
    with CaptureQueriesContext(connection) as many:
        page = client.get(url).content.decode()
    assert len(many) == len(few)
    assert page.count("ORD-2026-0000") == 7

    page = client.get(url, {"kind": "pickup_reminder", "status": "pending"}).content.decode()
    assert "ORD-2026-000001" in page and "ORD-2026-000012" not in page
    page = client.get(url, {"q": "ord-2026-000013"}).content.decode()
    assert "ORD-2026-000013" in page and "ORD-2026-000001<" not in page
    detail = client.get(f"{url}{Notification.objects.get(order_number='ORD-2026-000001').pk}/change/")
    assert detail.status_code == 200 and "Lyon store" in detail.content.decode()
