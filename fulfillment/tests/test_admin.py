"""The cockpit's fulfillment screens: lists and filters, bulk actions, the shipment page and its
forms, waves and pick lists, the short-pick queue, all through the real services."""

import datetime
import io
import re

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from fulfillment import services
from fulfillment.choices import ShipmentStatus, ShortPickResolution, WaveRender
from fulfillment.models import ConsolidationRule, Shipment, ShortPick, TrackingUpdate, Wave
from fulfillment.tests.fixtures import prepared_order
from inventory.models import StockItem
from oms.celery import app
from oms.cockpit import roles
from oms.core.actors import get_system_user
from orders.choices import OrderEventType
from orders.tests.factories import make_user

pytestmark = pytest.mark.django_db

SHIPMENTS = "/admin/fulfillment/shipment/"
WAVES = "/admin/fulfillment/wave/"
SHORT_PICKS = "/admin/fulfillment/shortpick/"


# --- helpers ---------------------------------------------------------------------------------------


def page_messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def buttons(response) -> set[str]:
    return set(re.findall(r'data-action="([a-z_]+)"', response.content.decode()))


def listed(response) -> set[str]:
    """Shipment numbers in the list's rows."""
    return set(re.findall(r"<strong>(SHP-\d{4}-\d{6})</strong>", response.content.decode()))


def shipment_url(shipment) -> str:
    return reverse("admin:fulfillment_shipment_change", args=[shipment.pk])


def action_url(shipment, action: str) -> str:
    return reverse("admin:fulfillment_shipment_action", args=[shipment.pk, action])


def resolve_url(short, how: str) -> str:
    return reverse("admin:fulfillment_shortpick_resolve", args=[short.pk, how])


def bulk(client: Client, action: str, shipments, **extra):
    data = {"action": action, "_selected_action": [s.pk for s in shipments], "index": "0", "select_across": "0"}
    return client.post(SHIPMENTS, {**data, **extra})


def pdf_text(content: bytes) -> str:
    assert content.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def streamed(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def parcels(order) -> tuple[Shipment, Shipment]:
    """(Paris: MUG ×2 + BOOK ×1, Lyon: TEE ×1)."""
    by_code = {s.location.code: s for s in Shipment.objects.filter(order=order).select_related("location")}
    return by_code["paris-wh"], by_code["lyon-wh"]


def pick_all(shipment, actor):
    services.shipment_confirm_picks(
        shipment=shipment, actor=actor, picked={line.pk: line.quantity for line in shipment.lines.all()}
    )


def packed(shipment, actor) -> Shipment:
    pick_all(shipment, actor)
    return services.shipment_pack(shipment=shipment, actor=actor)


def short_on_mugs(world):
    """A Paris parcel with 1 of 2 mugs found: an open short pick."""
    order = prepared_order()
    paris, _lyon = parcels(order)
    mug = paris.lines.get(order_line__sku="MUG-1")
    book = paris.lines.get(order_line__sku="BOOK-1")
    services.shipment_confirm_picks(
        shipment=paris, actor=world.warehouse, picked={mug.pk: 1, book.pk: 1}, note="Bin A-10-1 empty"
    )
    return order, paris, ShortPick.objects.get(shipment=paris)


# --- the shipment list -----------------------------------------------------------------------------


def test_shipment_list_filters_by_location_status_carrier_kind_and_wave(client, two_locations):
    world = two_locations
    first, second = prepared_order(), prepared_order()
    paris1, lyon1 = parcels(first)
    paris2, lyon2 = parcels(second)
    wave = services.wave_create(location=world.paris, actor=world.warehouse, shipment_ids=[paris1.pk])
    labelled = services.shipment_create_label(shipment=paris1, actor=world.warehouse)
    client.force_login(world.warehouse)

    everything = client.get(SHIPMENTS)
    assert listed(everything) == {s.number for s in (paris1, lyon1, paris2, lyon2)}
    assert first.number in everything.content.decode()

    assert listed(client.get(SHIPMENTS, {"location": world.lyon.pk})) == {lyon1.number, lyon2.number}
    assert listed(client.get(SHIPMENTS, {"status__exact": "picking"})) == {paris1.number}
    assert listed(client.get(SHIPMENTS, {"carrier": "sandbox"})) == {paris1.number}
    assert listed(client.get(SHIPMENTS, {"carrier": "-"})) == {lyon1.number, paris2.number, lyon2.number}
    assert listed(client.get(SHIPMENTS, {"kind__exact": "pickup"})) == set()
    assert listed(client.get(SHIPMENTS, {"wave": wave.pk})) == {paris1.number}
    assert listed(client.get(SHIPMENTS, {"wave": "none"})) == {lyon1.number, paris2.number, lyon2.number}
    # The carrier column links the tracking number to the carrier's page.
    assert labelled.tracking_url in everything.content.decode()


def test_late_filter_shows_parcels_whose_ship_by_passed_and_that_have_not_left(client, two_locations):
    world = two_locations
    order = prepared_order()
    paris, lyon = parcels(order)
    services.shipment_dispatch(shipment=packed(paris, world.warehouse), actor=world.warehouse)
    client.force_login(world.warehouse)
    assert listed(client.get(SHIPMENTS, {"late": "yes"})) == set()  # nothing is due yet

    with time_machine.travel(lyon.ship_by + datetime.timedelta(hours=1), tick=True):
        late = client.get(SHIPMENTS, {"late": "yes"})
        on_time = client.get(SHIPMENTS, {"late": "no"})

    assert listed(late) == {lyon.number}  # the Paris parcel left: never late any more
    assert listed(on_time) == {paris.number}
    assert 'class="oms-delta oms-delta--down oms-late"' in late.content.decode()  # ship-by in red


@pytest.mark.parametrize("term", ["shipment", "digits", "tracking", "order"])
def test_search_finds_a_shipment_by_number_tracking_number_or_order(client, two_locations, term):
    world = two_locations
    other = prepared_order()
    order = prepared_order()  # its parcels' digits are not an order's: "3" finds one shipment
    paris, lyon = parcels(order)
    services.shipment_start_picking(shipment=paris, actor=world.warehouse)
    paris = services.shipment_create_label(shipment=paris, actor=world.warehouse)
    client.force_login(world.warehouse)
    query = {
        "shipment": paris.number.lower(),
        "digits": str(int(paris.number.rsplit("-", 1)[1])),
        "tracking": paris.tracking_number,
        "order": order.number,
    }[term]

    found = listed(client.get(SHIPMENTS, {"q": query}))

    assert found == ({paris.number, lyon.number} if term == "order" else {paris.number})
    assert not found & {s.number for s in Shipment.objects.filter(order=other)}


def test_shipment_list_has_a_constant_query_count(client, two_locations):
    world = two_locations
    prepared_order()
    client.force_login(world.warehouse)
    urls = [SHIPMENTS, f"{SHIPMENTS}?late=yes&location={world.paris.pk}", f"{WAVES}", f"{SHORT_PICKS}"]

    def measure():
        counts = {}
        for url in urls:
            with CaptureQueriesContext(connection) as captured:
                assert client.get(url).status_code == 200
            counts[url] = len(captured.captured_queries)
        return counts

    few = measure()
    for _ in range(6):
        order = prepared_order()
        paris, _lyon = parcels(order)
        services.wave_create(location=world.paris, actor=world.warehouse, shipment_ids=[paris.pk])
    short_on_mugs(world)
    many = measure()

    assert many == few
    assert max(few.values()) <= 16


# --- bulk actions ----------------------------------------------------------------------------------


def test_bulk_wave_from_selected_pending_shipments_of_one_location(client, two_locations):
    world = two_locations
    paris1, _ = parcels(prepared_order())
    paris2, _ = parcels(prepared_order())
    paris3, _ = parcels(prepared_order())
    services.shipment_start_picking(shipment=paris3, actor=world.warehouse)
    client.force_login(world.warehouse)

    response = bulk(client, "create_wave", [paris1, paris2, paris3])

    wave = Wave.objects.get()
    assert response.status_code == 302 and response.url == reverse("admin:fulfillment_wave_change", args=[wave.pk])
    assert set(wave.shipments.values_list("pk", flat=True)) == {paris1.pk, paris2.pk}
    assert set(Shipment.objects.filter(wave=wave).values_list("status", flat=True)) == {ShipmentStatus.PICKING}
    assert (wave.location, wave.created_by) == (world.paris, world.warehouse)
    notes = page_messages(response)
    assert f"Wave {wave.number} created with 2 shipments: print its pick list." in notes
    assert f"{paris3.number} was left out: it is picking." in notes


def test_bulk_wave_across_two_locations_is_refused_with_a_clear_message(client, two_locations):
    world = two_locations
    paris, lyon = parcels(prepared_order())
    client.force_login(world.warehouse)

    response = bulk(client, "create_wave", [paris, lyon])

    assert response.status_code == 302
    assert page_messages(response) == [
        "A wave is picked in one location: the selection is at Lyon warehouse, Paris warehouse. "
        "Filter by location first."
    ]
    assert not Wave.objects.exists()
    assert set(Shipment.objects.values_list("status", flat=True)) == {ShipmentStatus.PENDING}


def test_bulk_dispatch_sends_the_packed_ones_together_and_names_the_others(client, two_locations):
    world = two_locations
    order = prepared_order()
    paris, lyon = parcels(order)
    paris, lyon = packed(paris, world.warehouse), packed(lyon, world.warehouse)
    pending, _ = parcels(prepared_order())
    client.force_login(world.warehouse)

    response = bulk(client, "dispatch_selected", [paris, lyon, pending])

    paris.refresh_from_db()
    lyon.refresh_from_db()
    assert (paris.status, lyon.status) == (ShipmentStatus.SHIPPED, ShipmentStatus.SHIPPED)
    assert paris.tracking_number and lyon.tracking_number and paris.tracking_number != lyon.tracking_number
    notes = page_messages(response)
    assert f"{pending.number} was not dispatched: it is pending." in notes
    assert (
        f"2 shipments dispatched: {paris.number} ({paris.tracking_number}), {lyon.number} ({lyon.tracking_number})."
        in notes
    )
    order.refresh_from_db()
    assert order.status == "shipped"


def test_bulk_print_labels_lists_each_label_and_merges_them_into_one_pdf(client, two_locations):
    world = two_locations
    order = prepared_order()
    paris, lyon = parcels(order)
    services.shipment_start_picking(shipment=paris, actor=world.warehouse)
    services.shipment_start_picking(shipment=lyon, actor=world.warehouse)
    pending, _ = parcels(prepared_order())
    client.force_login(world.warehouse)

    response = bulk(client, "print_labels", [paris, lyon, pending])

    assert response.status_code == 200
    paris.refresh_from_db()
    lyon.refresh_from_db()
    content = response.content.decode()
    assert paris.tracking_number in content and lyon.tracking_number in content
    assert [m for m in page_messages(response) if pending.number in m] == [
        f"{pending.number}: Cannot label shipment {pending.number}: it is pending."
    ]
    merged_url = re.search(r'id="oms-labels-merged"', content) and re.search(
        r'href="([^"]+labels\.pdf\?ids=[^"]+)"', content
    ).group(1)
    merged = client.get(merged_url.replace("&amp;", "&"))
    assert merged["Content-Type"] == "application/pdf"
    content = streamed(merged)
    text = pdf_text(content)
    assert len(PdfReader(io.BytesIO(content)).pages) == 2
    assert paris.tracking_number in text and lyon.tracking_number in text


def test_bulk_cancel_asks_for_a_reason_then_cancels_through_the_service(client, two_locations):
    world = two_locations
    paris, lyon = parcels(prepared_order())
    client.force_login(world.warehouse)

    confirm = bulk(client, "cancel_selected", [paris, lyon])
    assert confirm.status_code == 200 and 'name="reason"' in confirm.content.decode()
    assert set(Shipment.objects.values_list("status", flat=True)) == {ShipmentStatus.PENDING}

    no_reason = bulk(client, "cancel_selected", [paris, lyon], post="yes", reason="")
    assert no_reason.status_code == 200 and "This field is required." in no_reason.content.decode()

    done = bulk(client, "cancel_selected", [paris, lyon], post="yes", reason="Customer asked to wait")
    assert done.status_code == 302
    assert set(Shipment.objects.filter(pk__in=[paris.pk, lyon.pk]).values_list("status", flat=True)) == {"canceled"}
    assert paris.history.latest().history_change_reason == "Customer asked to wait"
    assert paris.history.latest().history_user == world.warehouse


def test_bulk_actions_a_role_may_not_use_are_not_offered_and_refused_when_posted(client, two_locations):
    paris, _ = parcels(prepared_order())
    client.force_login(make_user(roles.SUPPORT_L1))

    page = client.get(SHIPMENTS)
    assert 'value="create_wave"' not in page.content.decode()
    assert 'value="dispatch_selected"' not in page.content.decode()

    no_actions = bulk(client, "create_wave", [paris])  # support L1 has no bulk action: the list again
    client.force_login(make_user(roles.SUPPORT_L2))  # may cancel parcels, not make waves
    not_this_one = bulk(client, "create_wave", [paris])

    assert no_actions.status_code == 200 and 'name="_selected_action"' not in no_actions.content.decode()
    assert not_this_one.status_code == 302 and page_messages(not_this_one) == ["No action selected."]
    assert not Wave.objects.exists()
    paris.refresh_from_db()
    assert paris.status == ShipmentStatus.PENDING


# --- the shipment page -----------------------------------------------------------------------------


def test_shipment_page_shows_lines_bins_customs_and_the_buttons_of_the_role(client, two_locations):
    world = two_locations
    paris, _ = parcels(prepared_order())
    client.force_login(world.warehouse)

    response = client.get(shipment_url(paris))

    content = response.content.decode()
    assert response.status_code == 200
    assert paris.number in content and paris.order.number in content
    assert "A-10-1" in content and "A-2-3" in content  # bins of the mug and the book in Paris
    assert "HS 691200" in content and "PT" in content  # customs data of the mug
    assert buttons(response) >= {"start_picking", "confirm_picks", "cancel", "packing_slip"}

    client.force_login(make_user(roles.SUPPORT_L1))
    assert buttons(client.get(shipment_url(paris))) & {"start_picking", "confirm_picks", "cancel", "pack"} == set()


def test_confirm_picks_form_with_a_short_line_opens_a_short_pick(client, two_locations):
    world = two_locations
    paris, _ = parcels(prepared_order())
    mug = paris.lines.get(order_line__sku="MUG-1")
    book = paris.lines.get(order_line__sku="BOOK-1")
    client.force_login(world.warehouse)

    form = client.get(action_url(paris, "confirm_picks"))
    content = form.content.decode()
    assert f'name="line_{mug.pk}"' in content and f'name="line_{book.pk}"' in content
    assert content.index("A-2-3") < content.index("A-10-1")  # in bin order: walk the aisle once

    response = client.post(
        action_url(paris, "confirm_picks"),
        {f"line_{mug.pk}": "1", f"line_{book.pk}": "1", "final": "on", "note": "Only one mug in the bin"},
    )

    assert response.status_code == 302 and response.url == shipment_url(paris)
    paris.refresh_from_db()
    short = ShortPick.objects.get(shipment=paris)
    assert paris.status == ShipmentStatus.SHORT_PICKED
    assert (short.quantity, short.note, short.reported_by) == (1, "Only one mug in the bin", world.warehouse)
    page = client.get(shipment_url(paris)).content.decode()
    assert "Short picks" in page and reverse("admin:fulfillment_shortpick_change", args=[short.pk]) in page


def test_confirm_picks_errors_land_on_the_line_and_change_nothing(client, two_locations):
    world = two_locations
    paris, _ = parcels(prepared_order())
    mug = paris.lines.get(order_line__sku="MUG-1")
    book = paris.lines.get(order_line__sku="BOOK-1")
    client.force_login(world.warehouse)
    client.post(action_url(paris, "confirm_picks"), {f"line_{mug.pk}": "2", f"line_{book.pk}": "0"})  # not final

    too_many = client.post(action_url(paris, "confirm_picks"), {f"line_{mug.pk}": "3", f"line_{book.pk}": "1"})
    undo = client.post(action_url(paris, "confirm_picks"), {f"line_{mug.pk}": "1", f"line_{book.pk}": "1"})

    assert too_many.status_code == 200 and "less than or equal to 2" in too_many.content.decode()
    assert undo.status_code == 200
    assert "2 already confirmed; a pick cannot be undone here." in undo.content.decode()
    assert 'class="oms-row--error"' in undo.content.decode()
    mug.refresh_from_db()
    paris.refresh_from_db()
    assert (mug.quantity_picked, paris.status, ShortPick.objects.count()) == (2, ShipmentStatus.PICKING, 0)


def test_pack_print_label_dispatch_from_the_shipment_page(client, two_locations):
    world = two_locations
    paris, _ = parcels(prepared_order())
    client.force_login(world.warehouse)
    assert client.post(action_url(paris, "start_picking")).status_code == 302
    pick_all(paris, world.warehouse)

    page = client.get(shipment_url(paris))
    assert {"pack", "print_label"} <= buttons(page) and "confirm_picks" not in buttons(page)
    packing = client.post(action_url(paris, "pack"), {"weight_grams": "1234", "insured": "on"})
    assert packing.status_code == 302
    labelling = client.post(action_url(paris, "print_label"))
    assert labelling.status_code == 302 and labelling.url == shipment_url(paris)

    paris.refresh_from_db()
    assert (paris.status, paris.weight_grams, paris.insured) == (ShipmentStatus.PACKED, 1234, True)
    assert paris.insurance_amount == paris.declared_value
    label = client.get(reverse("admin:fulfillment_shipment_label", args=[paris.pk]))
    assert label["Content-Type"] == "application/pdf"
    assert paris.tracking_number in pdf_text(streamed(label))

    dispatched = client.post(action_url(paris, "dispatch"), {"carrier": "", "tracking_number": ""})
    assert dispatched.status_code == 302
    paris.refresh_from_db()
    assert paris.status == ShipmentStatus.SHIPPED
    after = client.get(shipment_url(paris)).content.decode()
    assert paris.tracking_number in after and paris.tracking_url in after
    assert f"{paris.number} handed to the carrier." in page_messages(dispatched)


def test_dispatch_with_a_3pl_tracking_number_needs_a_carrier(client, two_locations):
    world = two_locations
    paris, _ = parcels(prepared_order())
    paris = packed(paris, world.warehouse)
    client.force_login(world.warehouse)

    missing = client.post(action_url(paris, "dispatch"), {"tracking_number": "1Z999"})
    assert missing.status_code == 200 and "Required with a tracking number." in missing.content.decode()
    paris.refresh_from_db()
    assert paris.status == ShipmentStatus.PACKED

    client.post(action_url(paris, "dispatch"), {"carrier": "ups", "tracking_number": "1Z999"})
    paris.refresh_from_db()
    assert (paris.status, paris.carrier, paris.tracking_number) == (ShipmentStatus.SHIPPED, "ups", "1Z999")


def test_packing_slip_is_a_pdf_with_the_lines(client, two_locations):
    world = two_locations
    paris, _ = parcels(prepared_order())
    client.force_login(make_user(roles.SUPPORT_L1))

    response = client.get(reverse("admin:fulfillment_shipment_packing_slip", args=[paris.pk]))

    assert response["Content-Type"] == "application/pdf"
    text = pdf_text(streamed(response))
    assert paris.number in text and "MUG-1" in text and "BOOK-1" in text
    del world


def test_a_role_without_the_permission_gets_a_message_not_an_error_page(client, two_locations):
    world = two_locations
    paris, _ = parcels(prepared_order())
    paris = packed(paris, world.warehouse)
    client.force_login(make_user(roles.SUPPORT_L1))

    response = client.post(action_url(paris, "dispatch"), {})

    assert response.status_code == 200
    assert "You do not have permission to dispatch shipments." in page_messages(response)
    paris.refresh_from_db()
    assert paris.status == ShipmentStatus.PACKED
    # A button not open now is a redirect with a message (GET), an unknown action a 404.
    opened = client.get(action_url(paris, "dispatch"))
    assert opened.status_code == 302 and "“Dispatch” is not available" in page_messages(opened)[0]
    assert client.get(action_url(paris, "explode")).status_code == 404


def test_tracking_timeline_and_history_on_the_shipment_page(client, two_locations):
    world = two_locations
    paris, _ = parcels(prepared_order())
    paris = services.shipment_dispatch(shipment=packed(paris, world.warehouse), actor=world.warehouse)
    at = (timezone.now() + datetime.timedelta(minutes=5)).isoformat()
    services.carrier_webhook_receive(
        carrier="sandbox",
        payload={
            "events": [{"id": "e1", "tracking_number": paris.tracking_number, "status": "SHIPPED", "occurred_at": at}]
        },
        actor=get_system_user(),
    )
    client.force_login(world.warehouse)

    content = client.get(shipment_url(paris)).content.decode()

    timeline = content[content.index('id="oms-tracking"') : content.index('id="oms-shipment-history"')]
    assert "In transit" in timeline and "SHIPPED" in timeline
    history = content[content.index('id="oms-shipment-history"') :]
    assert "Packed" in history and world.warehouse.username in history
    full_history = client.get(reverse("admin:fulfillment_shipment_history", args=[paris.pk]))
    assert full_history.status_code == 200 and "Handed to sandbox" in full_history.content.decode()


# --- short picks -----------------------------------------------------------------------------------


def test_short_pick_queue_lists_open_ones_first_with_a_resolve_link(client, two_locations):
    world = two_locations
    _order, paris, short = short_on_mugs(world)
    client.force_login(world.support)

    response = client.get(SHORT_PICKS)

    content = response.content.decode()
    assert paris.number in content and "MUG-1" in content and "Bin A-10-1 empty" in content
    assert reverse("admin:fulfillment_shortpick_change", args=[short.pk]) in content
    assert "Resolve" in content


def test_substitute_from_the_short_pick_page(client, two_locations):
    world = two_locations
    order, paris, short = short_on_mugs(world)
    client.force_login(world.support)
    assert "resolve_short_pick" in buttons(client.get(shipment_url(paris)))
    page = client.get(reverse("admin:fulfillment_shortpick_change", args=[short.pk])).content.decode()
    assert {"substitute", "delay", "cancel_line"} <= set(re.findall(r'data-action="([a-z_]+)"', page))
    assert '<option value="CUP-1">' in page  # free stock in Paris, suggested

    response = client.post(
        resolve_url(short, "substitute"),
        {"substitute-sku": "cup-1", "substitute-consent_channel": "phone", "substitute-consent_note": "OK for a cup"},
    )

    assert response.status_code == 302 and response.url == shipment_url(paris)
    short.refresh_from_db()
    paris.refresh_from_db()
    assert (short.resolution, short.substitute_product, short.resolved_by) == (
        ShortPickResolution.SUBSTITUTE,
        world.cup,
        world.support,
    )
    assert paris.status == ShipmentStatus.PICKING
    assert paris.lines.filter(order_line__sku="CUP-1").exists()
    assert StockItem.objects.get(product=world.cup, location=world.paris).reserved == 1
    assert order.events.filter(type=OrderEventType.LINE_SUBSTITUTED).exists()


def test_delay_and_cancel_line_from_the_short_pick_page(client, two_locations):
    world = two_locations
    _order, first, delayed = short_on_mugs(world)
    order, second, canceled = short_on_mugs(world)
    client.force_login(world.support)
    day = timezone.localdate() + datetime.timedelta(days=10)

    delay = client.post(
        resolve_url(delayed, "delay"),
        {"delay-promised_at": day.isoformat(), "delay-consent_channel": "", "delay-consent_note": ""},
    )
    cancel = client.post(
        resolve_url(canceled, "cancel_line"),
        {"cancel_line-consent_channel": "email", "cancel_line-consent_note": "Refund the mug"},
    )

    assert delay.status_code == 302 and cancel.status_code == 302
    delayed.refresh_from_db()
    canceled.refresh_from_db()
    assert delayed.resolution == ShortPickResolution.DELAY
    assert timezone.localtime(delayed.promised_at).date() == day
    assert (canceled.resolution, canceled.consent_channel) == (ShortPickResolution.CANCEL_LINE, "email")
    assert order.lines.get(sku="MUG-1").quantity_canceled == 1
    second.refresh_from_db()
    assert second.status == ShipmentStatus.PICKING  # back to picking: the book and the one mug


def test_resolve_form_errors_and_permission_refusals_are_messages_and_change_nothing(client, two_locations):
    world = two_locations
    _order, paris, short = short_on_mugs(world)
    client.force_login(world.support)

    unknown = client.post(
        resolve_url(short, "substitute"),
        {"substitute-sku": "NOPE", "substitute-consent_channel": "phone", "substitute-consent_note": "ok"},
    )
    no_consent = client.post(
        resolve_url(short, "cancel_line"), {"cancel_line-consent_channel": "email", "cancel_line-consent_note": ""}
    )
    past = client.post(resolve_url(short, "delay"), {"delay-promised_at": "2001-01-01"})
    assert unknown.status_code == 200 and "No product has this SKU." in unknown.content.decode()
    assert no_consent.status_code == 200 and "This field is required." in no_consent.content.decode()
    assert past.status_code == 200 and "Must be in the future." in past.content.decode()

    client.force_login(world.warehouse)  # the warehouse reports short picks; support resolves them
    page = client.get(reverse("admin:fulfillment_shortpick_change", args=[short.pk]))
    assert 'id="oms-resolve-not-yours"' in page.content.decode()
    refused = client.post(
        resolve_url(short, "cancel_line"),
        {"cancel_line-consent_channel": "email", "cancel_line-consent_note": "Refund the mug"},
    )
    assert refused.status_code == 200
    assert "You do not have permission to resolve short picks." in page_messages(refused)

    short.refresh_from_db()
    paris.refresh_from_db()
    assert (short.is_open, paris.status) == (True, ShipmentStatus.SHORT_PICKED)


# --- waves and pick lists --------------------------------------------------------------------------


def test_new_wave_page_creates_a_wave_by_location_and_criteria(client, two_locations):
    world = two_locations
    parcels(prepared_order())
    parcels(prepared_order())
    client.force_login(world.warehouse)

    page = client.get(reverse("admin:fulfillment_wave_add"))
    assert 'id="oms-pending-by-location"' in page.content.decode() and "Paris warehouse" in page.content.decode()
    empty = client.post(
        reverse("admin:fulfillment_wave_add"), {"location": world.paris.pk, "limit": "5", "max_priority": "5"}
    )
    assert empty.status_code == 200 and "Nothing to pick here now." in empty.content.decode()

    response = client.post(reverse("admin:fulfillment_wave_add"), {"location": world.paris.pk, "limit": "1"})

    wave = Wave.objects.get()
    assert response.status_code == 302 and response.url == reverse("admin:fulfillment_wave_change", args=[wave.pk])
    assert wave.shipments.count() == 1 and wave.criteria == {"limit": 1}
    client.force_login(make_user(roles.SUPPORT_L1))
    assert client.get(reverse("admin:fulfillment_wave_add")).status_code == 403


def test_printing_a_small_wave_renders_at_once_and_downloads_a_pdf(client, two_locations):
    world = two_locations
    paris, _ = parcels(prepared_order())
    wave = services.wave_create(location=world.paris, actor=world.warehouse, shipment_ids=[paris.pk])
    client.force_login(world.warehouse)

    response = client.post(reverse("admin:fulfillment_wave_print", args=[wave.pk]))

    assert response.status_code == 302
    wave.refresh_from_db()
    assert (wave.render_status, wave.render_progress) == (WaveRender.READY, 100)
    page = client.get(reverse("admin:fulfillment_wave_change", args=[wave.pk])).content.decode()
    download = reverse("admin:fulfillment_wave_pick_list", args=[wave.pk])
    assert f'href="{download}"' in page
    pdf = client.get(download)
    text = pdf_text(streamed(pdf))
    assert wave.number in text and "MUG-1" in text and paris.order.number in text
    assert text.index("A-2-3") < text.index("A-10-1")  # bins in walking order


def test_a_large_wave_renders_in_the_background_and_its_status_is_polled(
    client, two_locations, settings, django_capture_on_commit_callbacks
):
    world = two_locations
    settings.OMS_PICKLIST_SYNC_ROWS = 0
    paris, _ = parcels(prepared_order())
    wave = services.wave_create(location=world.paris, actor=world.warehouse, shipment_ids=[paris.pk])
    client.force_login(world.warehouse)
    status_url = reverse("admin:fulfillment_wave_render_status", args=[wave.pk])

    with django_capture_on_commit_callbacks(execute=False) as queued:
        client.post(reverse("admin:fulfillment_wave_print", args=[wave.pk]))
    assert len(queued) == 1  # the render waits for the commit, then goes to Celery
    waiting = client.get(status_url).json()
    assert (waiting["status"], waiting["progress"], waiting["url"]) == ("queued", 0, None)
    page = client.get(reverse("admin:fulfillment_wave_change", args=[wave.pk])).content.decode()
    assert 'id="oms-picklist-progress"' in page and 'data-status="queued"' in page

    previous, app.conf.task_always_eager = app.conf.task_always_eager, True
    try:
        queued[0]()  # what the worker runs
    finally:
        app.conf.task_always_eager = previous

    done = client.get(status_url).json()
    assert (done["status"], done["progress"]) == ("ready", 100)
    assert done["url"] == reverse("admin:fulfillment_wave_pick_list", args=[wave.pk])
    assert pdf_text(streamed(client.get(done["url"]))).count("MUG-1") >= 1


def test_wave_list_shows_render_state_and_support_cannot_print(client, two_locations):
    world = two_locations
    paris, _ = parcels(prepared_order())
    wave = services.wave_create(location=world.paris, actor=world.warehouse, shipment_ids=[paris.pk])
    services.wave_print(wave=wave, actor=world.warehouse)
    client.force_login(make_user(roles.SUPPORT_L1))

    listing = client.get(WAVES).content.decode()
    assert wave.number in listing and "Ready" in listing
    assert reverse("admin:fulfillment_wave_pick_list", args=[wave.pk]) in listing
    page = client.get(reverse("admin:fulfillment_wave_change", args=[wave.pk]))
    assert 'data-action="print"' not in page.content.decode()
    refused = client.post(reverse("admin:fulfillment_wave_print", args=[wave.pk]))
    assert refused.status_code == 302
    assert "You do not have permission to print pick lists." in page_messages(refused)


# --- tracking updates, consolidation rules, the order page ------------------------------------------


def test_tracking_updates_are_listed_read_only_with_filters(client, two_locations):
    world = two_locations
    paris, _ = parcels(prepared_order())
    paris = services.shipment_dispatch(shipment=packed(paris, world.warehouse), actor=world.warehouse)
    at = timezone.now().isoformat()
    services.carrier_webhook_receive(
        carrier="sandbox",
        payload={
            "events": [
                {"id": "a", "tracking_number": paris.tracking_number, "status": "SHIPPED", "occurred_at": at},
                {"id": "b", "tracking_number": "SBX0000000001", "status": "SHIPPED", "occurred_at": at},
            ]
        },
        actor=get_system_user(),
    )
    client.force_login(world.warehouse)
    url = reverse("admin:fulfillment_trackingupdate_changelist")

    everything = client.get(url).content.decode()
    applied = client.get(url, {"applied__exact": "1"}).content.decode()
    searched = client.get(url, {"q": paris.tracking_number}).content.decode()

    assert "SBX0000000001" in everything and "unmatched" in everything
    assert paris.number in applied and "SBX0000000001" not in applied
    assert "SBX0000000001" not in searched and paris.tracking_number in searched
    update = TrackingUpdate.objects.get(carrier_event_id="a")
    assert client.get(reverse("admin:fulfillment_trackingupdate_change", args=[update.pk])).status_code == 200
    assert client.get(reverse("admin:fulfillment_trackingupdate_add")).status_code == 403


def test_consolidation_rules_are_configuration(client, two_locations):
    client.force_login(make_user(roles.ADMINISTRATOR))

    response = client.post(
        reverse("admin:fulfillment_consolidationrule_add"), {"channel": "", "window_hours": "12", "is_active": "on"}
    )

    assert response.status_code == 302
    assert ConsolidationRule.objects.get().window_hours == 12


def test_order_page_lists_its_parcels_with_tracking_and_contents(client, two_locations):
    world = two_locations
    order = prepared_order()
    paris, lyon = parcels(order)
    paris = services.shipment_dispatch(shipment=packed(paris, world.warehouse), actor=world.warehouse)
    client.force_login(make_user(roles.SUPPORT_L1))

    content = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()

    panel = content[content.index('id="oms-shipments"') :]
    panel = panel[: panel.index("</section>")]
    assert shipment_url(paris) in panel and shipment_url(lyon) in panel
    assert "Paris warehouse" in panel and "Lyon warehouse" in panel
    assert paris.tracking_url in panel and paris.tracking_number in panel
    assert "<code>MUG-1</code> × 2" in panel and "<code>TEE-1</code> × 1" in panel
    assert "Shipped" in panel and "Pending" in panel
