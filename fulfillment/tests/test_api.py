"""The fulfillment API, through HTTP with token auth: a 3PL picks, packs and dispatches; a carrier
pushes tracking; support resolves short picks; the warehouse prints waves; the order's parcels."""

import datetime
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pypdf import PdfReader

from fulfillment import services
from fulfillment.choices import ShipmentStatus, ShortPickResolution
from fulfillment.models import Shipment, ShortPick, TrackingUpdate, Wave
from fulfillment.tests.fixtures import make_two_locations, prepared_order
from inventory.models import StockItem, StockMovement
from oms.cockpit import roles
from oms.core.models import IdempotencyRecord
from orders.choices import FulfillmentStatus, OrderEventType, OrderStatus
from orders.models import Order
from orders.tests.api_fixtures import error_of, token_client
from orders.tests.factories import make_user

pytestmark = pytest.mark.django_db

API = "/api/v1/fulfillment/"


def shipment_url(number: str, action: str = "") -> str:
    return f"{API}shipments/{number}/{action}"


def post(client, url: str, body=None, **headers):
    return client.post(url, {} if body is None else body, format="json", **headers)


def pdf_text(content: bytes) -> str:
    assert content.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def stock(product, location) -> tuple[int, int]:
    item = StockItem.objects.get(product=product, location=location)
    return item.on_hand, item.reserved


def written(order: Order, shipment: Shipment) -> dict:
    """What a refused or replayed write must leave as it was."""
    shipment = Shipment.objects.get(pk=shipment.pk)
    order = Order.objects.get(pk=order.pk)
    return {
        "shipment": (shipment.status, shipment.carrier, shipment.tracking_number, shipment.weight_grams),
        "shipment_history": shipment.history.count(),
        "picked": sorted(shipment.lines.values_list("pk", "quantity", "quantity_picked")),
        "short_picks": ShortPick.objects.count(),
        "order": (order.status, order.fulfillment_status),
        "order_events": order.events.count(),
        "movements": StockMovement.objects.count(),
        "tracking": TrackingUpdate.objects.count(),
    }


@pytest.fixture
def wms(db):
    """A 3PL's WMS: the 3PL API client role, with its token."""
    user = make_user(roles.API_3PL, username="3pl")
    client = token_client(user)
    client.user = user
    return client


@pytest.fixture
def world(two_locations):
    return two_locations


def paris_parcel(order) -> Shipment:
    return Shipment.objects.get(order=order, location__code="paris-wh")


def packed(order, actor) -> Shipment:
    """The Paris parcel, picked and packed through the services."""
    shipment = paris_parcel(order)
    services.shipment_confirm_picks(
        shipment=shipment, actor=actor, picked={line.pk: line.quantity for line in shipment.lines.all()}
    )
    return services.shipment_pack(shipment=shipment, actor=actor)


# --- the 3PL flow --------------------------------------------------------------------------------


def test_a_3pl_confirms_picks_packs_and_dispatches_with_its_own_tracking_number(wms, world):
    order = prepared_order()
    shipment = paris_parcel(order)
    mug = shipment.lines.get(order_line__sku="MUG-1")

    detail = wms.get(shipment_url(shipment.number))
    assert detail.status_code == 200
    body = detail.json()
    assert (body["status"], body["location"], body["order"], body["orders"]) == (
        "pending",
        "paris-wh",
        order.number,
        [order.number],
    )
    assert [(line["sku"], line["quantity"], line["quantity_picked"]) for line in body["lines"]] == [
        ("MUG-1", 2, 0),
        ("BOOK-1", 1, 0),
    ]
    assert (
        body["lines"][0] | {"id": mug.pk, "hs_code": "691200", "origin_country": "PT", "customs_value": "12.00"}
        == (body["lines"][0])
    )
    assert (body["label_url"], body["tracking_updates"], body["open_short_picks"]) == (None, [], [])

    # Picks keyed by shipment line id and by SKU; sending them again changes nothing.
    picks = {"picked": {str(mug.pk): 2, "BOOK-1": 1}, "final": True}
    picked = post(wms, shipment_url(shipment.number, "picks/"), picks)
    assert picked.status_code == 200, picked.json()
    assert picked.json()["status"] == "picking"
    assert [line["quantity_picked"] for line in picked.json()["lines"]] == [2, 1]
    assert post(wms, shipment_url(shipment.number, "picks/"), picks).json()["lines"] == picked.json()["lines"]

    packed_response = post(wms, shipment_url(shipment.number, "pack/"), {"weight_grams": 1320, "insured": True})
    assert packed_response.status_code == 200
    body = packed_response.json()
    assert (body["status"], body["weight_grams"], body["insured"]) == ("packed", 1320, True)
    assert body["insurance_amount"] == body["declared_value"] == "34.55"  # 2 × 12.00 + 10.55

    dispatched = post(
        wms,
        shipment_url(shipment.number, "dispatch/"),
        {
            "carrier": "colissimo",
            "service": "expert",
            "tracking_number": "6A12345678901",
            "tracking_url": "https://www.laposte.fr/outils/suivre-vos-envois?code=6A12345678901",
        },
        HTTP_IDEMPOTENCY_KEY="dispatch-1",
    )

    assert dispatched.status_code == 200, dispatched.json()
    body = dispatched.json()
    assert (body["status"], body["carrier"], body["service"], body["tracking_number"]) == (
        "shipped",
        "colissimo",
        "expert",
        "6A12345678901",
    )
    assert body["tracking_url"].endswith("code=6A12345678901")
    assert body["label_url"] is None  # labelled by the 3PL, not here
    assert body["shipped_at"] is not None
    order.refresh_from_db()
    assert (order.status, order.fulfillment_status) == (
        OrderStatus.PARTIALLY_SHIPPED,
        FulfillmentStatus.PARTIALLY_SHIPPED,
    )
    assert list(order.lines.order_by("line_number").values_list("sku", "quantity_shipped")) == [
        ("MUG-1", 2),
        ("TEE-1", 0),
        ("BOOK-1", 1),
    ]
    assert stock(world.mug, world.paris) == (18, 0)
    event = order.events.get(type=OrderEventType.SHIPMENT_RECORDED)
    assert (event.actor, event.payload["tracking_number"]) == (wms.user, "6A12345678901")
    assert Shipment.history.filter(number=shipment.number).latest("history_date").history_user == wms.user


def test_replaying_a_dispatch_with_its_key_answers_the_same_and_changes_nothing(wms, world):
    order = prepared_order()
    shipment = packed(order, world.warehouse)
    body = {"carrier": "colissimo", "tracking_number": "6A99"}
    first = post(wms, shipment_url(shipment.number, "dispatch/"), body, HTTP_IDEMPOTENCY_KEY="d-1")
    assert first.status_code == 200
    before = written(order, shipment)

    again = post(wms, shipment_url(shipment.number, "dispatch/"), body, HTTP_IDEMPOTENCY_KEY="d-1")

    assert again.status_code == 200
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert written(order, shipment) == before

    other = post(
        wms,
        shipment_url(shipment.number, "dispatch/"),
        {"carrier": "colissimo", "tracking_number": "6A00"},
        HTTP_IDEMPOTENCY_KEY="d-1",
    )

    assert other.status_code == 422
    assert error_of(other)["code"] == "idempotency_key_reused"
    assert written(order, shipment) == before
    assert Shipment.objects.get(pk=shipment.pk).tracking_number == "6A99"
    record = IdempotencyRecord.objects.get(key="d-1")
    assert (record.client, record.response_status) == (wms.user, 200)

    # Without a key the same dispatch is a state conflict, never a second hand-over.
    twice = post(wms, shipment_url(shipment.number, "dispatch/"), body)
    assert twice.status_code == 409
    assert error_of(twice)["code"] == "transition_not_allowed"
    assert written(order, shipment) == before


def test_dispatch_without_tracking_gets_a_sandbox_label_to_download(wms, world):
    order = prepared_order()
    shipment = packed(order, world.warehouse)

    response = post(wms, shipment_url(shipment.number, "dispatch/"))

    assert response.status_code == 200
    body = response.json()
    assert (body["carrier"], body["status"], body["tracking_status"]) == ("sandbox", "shipped", "label_created")
    assert body["tracking_number"].startswith("SBX")
    assert body["label_url"] == f"http://testserver{shipment_url(shipment.number, 'label.pdf')}"
    label = wms.get(body["label_url"])
    assert (label.status_code, label["Content-Type"]) == (200, "application/pdf")
    text = pdf_text(b"".join(label.streaming_content))
    assert body["tracking_number"] in text and shipment.number in text

    slip = wms.get(body["packing_slip_url"], HTTP_ACCEPT="application/pdf")
    assert (slip.status_code, slip["Content-Type"]) == (200, "application/pdf")
    text = pdf_text(slip.content)
    assert all(word in text for word in (shipment.number, order.number, "MUG-1", "BOOK-1"))
    assert "TEE-1" not in text  # in the Lyon parcel


# --- carrier tracking ----------------------------------------------------------------------------


def _events(tracking_number: str, *steps) -> dict:
    return {
        "events": [
            {
                "id": f"{tracking_number}-{code}",
                "tracking_number": tracking_number,
                "status": code,
                "occurred_at": at.isoformat(),
                "location": "Lyon hub",
            }
            for code, at in steps
        ]
    }


def test_carrier_webhook_stores_events_once_and_a_replay_changes_nothing(wms, world):
    order = prepared_order()
    shipment = services.shipment_dispatch(shipment=packed(order, world.warehouse), actor=world.warehouse)
    carrier = make_user(roles.API_3PL, username="sandbox-carrier")
    client = token_client(carrier)
    now = timezone.now()
    payload = _events(
        shipment.tracking_number,
        ("SHIPPED", now + datetime.timedelta(minutes=5)),
        ("DELIVERED", now + datetime.timedelta(hours=20)),
    )

    response = post(client, f"{API}carriers/sandbox/tracking/", payload)

    assert response.status_code == 200
    assert response.json() == {"stored": 2}
    shipment.refresh_from_db()
    assert (shipment.status, shipment.tracking_status) == (ShipmentStatus.DELIVERED, "delivered")
    order.refresh_from_db()
    assert list(order.lines.order_by("line_number").values_list("sku", "quantity_delivered")) == [
        ("MUG-1", 2),
        ("TEE-1", 0),
        ("BOOK-1", 1),
    ]
    detail = wms.get(shipment_url(shipment.number)).json()
    assert [(u["carrier_status_code"], u["status"], u["applied"]) for u in detail["tracking_updates"]] == [
        ("SHIPPED", "in_transit", True),
        ("DELIVERED", "delivered", True),
    ]
    before = written(order, shipment)

    replay = post(client, f"{API}carriers/sandbox/tracking/", payload)

    assert replay.status_code == 200
    assert replay.json() == {"stored": 0}
    assert written(order, shipment) == before


def test_carrier_webhook_refuses_bad_payloads_unknown_carriers_and_users_without_the_permission(wms, world):
    order = prepared_order()
    shipment = services.shipment_dispatch(shipment=packed(order, world.warehouse), actor=world.warehouse)
    before = written(order, shipment)
    bad = {"events": [{"id": "e1", "tracking_number": shipment.tracking_number, "status": "DELIVERED"}]}

    response = post(wms, f"{API}carriers/sandbox/tracking/", bad)

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_webhook"
    assert list(error["extra"]["fields"]) == ["events.0.occurred_at"]

    unknown = post(wms, f"{API}carriers/pigeon/tracking/", {"events": []})
    assert (unknown.status_code, error_of(unknown)["code"]) == (404, "carrier_not_found")

    support = token_client(make_user(roles.SUPPORT_L1))
    good = _events(shipment.tracking_number, ("DELIVERED", timezone.now()))
    refused = post(support, f"{API}carriers/sandbox/tracking/", good)
    assert (refused.status_code, error_of(refused)["code"]) == (403, "permission_denied")
    assert written(order, shipment) == before


# --- errors --------------------------------------------------------------------------------------


def test_bad_picks_are_refused_with_dotted_field_paths_and_change_nothing(wms, world):
    order = prepared_order()
    shipment = paris_parcel(order)
    mug = shipment.lines.get(order_line__sku="MUG-1")
    book = shipment.lines.get(order_line__sku="BOOK-1")
    before = written(order, shipment)
    url = shipment_url(shipment.number, "picks/")

    shape = post(wms, url, {"picked": {str(mug.pk): "two", str(book.pk): -1}, "finall": True})

    assert shape.status_code == 400
    error = error_of(shape)
    assert error["code"] == "invalid"
    assert set(error["extra"]["fields"]) == {f"picked.{mug.pk}", f"picked.{book.pk}", "finall"}
    assert error["extra"]["fields"]["finall"] == ["Unknown field."]

    rules = post(wms, url, {"picked": {str(mug.pk): 3, "TEE-1": 1, f"line:{book.order_line_id}": 1}})

    assert rules.status_code == 400
    error = error_of(rules)
    assert error["code"] == "invalid_picks"
    assert error["extra"]["fields"] == {
        f"picked.{mug.pk}": ["At most 2 (MUG-1)."],
        "picked.TEE-1": ["Not a line of this shipment."],
    }

    heavy = post(wms, shipment_url(shipment.number, "pack/"), {"weight_grams": 2**31, "insured": "maybe"})
    assert (heavy.status_code, set(error_of(heavy)["extra"]["fields"])) == (400, {"weight_grams", "insured"})
    empty = post(wms, url, {"picked": {}})
    assert (empty.status_code, list(error_of(empty)["extra"]["fields"])) == (400, ["picked"])
    not_json = wms.post(url, "picked=1", content_type="application/x-www-form-urlencoded")
    assert not_json.status_code == 415
    assert written(order, shipment) == before


def test_unknown_shipments_are_404_and_actions_in_the_wrong_state_409(wms, world):
    order = prepared_order()
    shipment = paris_parcel(order)
    before = written(order, shipment)

    missing = post(wms, shipment_url("SHP-0000-999999", "pack/"))
    assert (missing.status_code, error_of(missing)["code"]) == (404, "shipment_not_found")
    assert wms.get(shipment_url("SHP-0000-999999")).status_code == 404
    no_pdf = wms.get(shipment_url("SHP-0000-999999", "label.pdf"), HTTP_ACCEPT="application/pdf")
    assert (no_pdf.status_code, error_of(no_pdf)["code"]) == (404, "shipment_not_found")
    no_label = wms.get(shipment_url(shipment.number, "label.pdf"))
    assert (no_label.status_code, error_of(no_label)["code"]) == (404, "label_not_found")

    pack = post(wms, shipment_url(shipment.number, "pack/"), {"weight_grams": 900})
    assert pack.status_code == 409
    assert error_of(pack)["code"] == "transition_not_allowed"
    pickup = post(wms, shipment_url(shipment.number, "ready-for-pickup/"))
    assert pickup.status_code == 409  # a delivery, not a store pickup
    picking = post(wms, shipment_url(shipment.number, "picks/"), {"picked": {"MUG-1": 1}, "final": False})
    assert picking.status_code == 200
    not_picked = post(wms, shipment_url(shipment.number, "pack/"))
    assert (not_picked.status_code, error_of(not_picked)["code"]) == (409, "transition_condition_failed")
    assert "nothing ships that was not picked" in error_of(not_picked)["message"]
    assert Shipment.objects.get(pk=shipment.pk).status == ShipmentStatus.PICKING
    assert written(order, shipment)["order"] == before["order"]


def test_support_l1_may_not_dispatch(world):
    order = prepared_order()
    shipment = packed(order, world.warehouse)
    before = written(order, shipment)
    support = token_client(make_user(roles.SUPPORT_L1))

    response = post(support, shipment_url(shipment.number, "dispatch/"), {"carrier": "sandbox"})

    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"
    assert written(order, shipment) == before
    assert Shipment.objects.get(pk=shipment.pk).label.name == ""
    # Reading is theirs to do.
    assert support.get(shipment_url(shipment.number)).status_code == 200


def test_cancel_needs_a_reason_and_the_permission(wms, world):
    order = prepared_order()
    shipment = paris_parcel(order)
    warehouse = token_client(world.warehouse)

    refused = post(wms, shipment_url(shipment.number, "cancel/"), {"reason": "Address problem"})
    assert (refused.status_code, error_of(refused)["code"]) == (403, "permission_denied")
    no_reason = post(warehouse, shipment_url(shipment.number, "cancel/"), {})
    assert (no_reason.status_code, list(error_of(no_reason)["extra"]["fields"])) == (400, ["reason"])

    canceled = post(warehouse, shipment_url(shipment.number, "cancel/"), {"reason": "Address problem"})

    assert canceled.status_code == 200
    assert (canceled.json()["status"], canceled.json()["canceled_at"] is not None) == ("canceled", True)


# --- short picks ---------------------------------------------------------------------------------


def test_support_resolves_a_short_pick_by_substitution_through_the_api(wms, world):
    order = prepared_order()
    shipment = paris_parcel(order)
    picks = post(wms, shipment_url(shipment.number, "picks/"), {"picked": {"MUG-1": 1, "BOOK-1": 1}, "note": "A-10-1"})
    assert picks.status_code == 200
    body = picks.json()
    assert body["status"] == "short_picked"
    [short] = body["open_short_picks"]
    assert (short["sku"], short["quantity"], short["note"], short["is_open"], short["reported_by"]) == (
        "MUG-1",
        1,
        "A-10-1",
        True,
        "3pl",
    )
    support = token_client(make_user(roles.SUPPORT_L1, username="support"))
    url = f"{API}short-picks/{short['id']}/substitute/"

    no_consent = post(support, url, {"sku": "CUP-1", "consent_channel": "phone", "consent_note": " "})
    # Refused by the input check the schema states (a note with a non-space character).
    assert (no_consent.status_code, error_of(no_consent)["code"]) == (400, "invalid")
    assert list(error_of(no_consent)["extra"]["fields"]) == ["consent_note"]
    unknown = post(support, url, {"sku": "NOPE", "consent_channel": "fax", "consent_note": "ok"})
    assert list(error_of(unknown)["extra"]["fields"]) == ["consent_channel"]
    unknown = post(support, url, {"sku": "NOPE", "consent_channel": "phone", "consent_note": "ok"})
    assert (unknown.status_code, error_of(unknown)["extra"]["fields"]) == (400, {"sku": ["Unknown SKU NOPE."]})
    assert post(support, f"{API}short-picks/999999/substitute/", {}).status_code == 404

    response = post(support, url, {"sku": "CUP-1", "consent_channel": "phone", "consent_note": "A cup is fine."})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["resolution"], body["substitute_sku"], body["resolved_by"], body["shipment_status"]) == (
        ShortPickResolution.SUBSTITUTE,
        "CUP-1",
        "support",
        "picking",
    )
    assert stock(world.cup, world.paris) == (20, 1)
    detail = wms.get(shipment_url(shipment.number)).json()
    assert detail["open_short_picks"] == []
    assert sorted((line["sku"], line["quantity"]) for line in detail["lines"]) == [
        ("BOOK-1", 1),
        ("CUP-1", 1),
        ("MUG-1", 1),
    ]
    again = post(
        support, f"{API}short-picks/{short['id']}/cancel-line/", {"consent_channel": "email", "consent_note": "x"}
    )
    assert (again.status_code, error_of(again)["code"]) == (409, "already_resolved")


def test_order_shipments_show_two_parcels_and_what_remains(wms, db):
    world = make_two_locations(mug=2)  # nowhere another mug to send
    order = prepared_order()
    paris = paris_parcel(order)
    post(wms, shipment_url(paris.number, "picks/"), {"picked": {"MUG-1": 1, "BOOK-1": 1}})
    short = ShortPick.objects.get(shipment=paris)
    promised = (timezone.now() + datetime.timedelta(days=10)).replace(microsecond=0)
    support = token_client(make_user(roles.SUPPORT_L1))
    delayed = post(
        support,
        f"{API}short-picks/{short.pk}/delay/",
        {"promised_at": promised.isoformat(), "consent_channel": "email", "consent_note": "Fine, send it later."},
    )
    assert delayed.status_code == 200
    assert (delayed.json()["resolution"], delayed.json()["shipment_status"]) == ("delay", "picking")
    post(wms, shipment_url(paris.number, "pack/"))
    dispatched = post(wms, shipment_url(paris.number, "dispatch/"))
    assert dispatched.status_code == 200
    tracking_number = dispatched.json()["tracking_number"]

    response = wms.get(f"/api/v1/orders/{order.number}/shipments/")

    assert response.status_code == 200
    body = response.json()
    assert (body["order"], body["fulfillment_status"], body["parcel_count"]) == (
        order.number,
        FulfillmentStatus.PARTIALLY_SHIPPED,
        2,
    )
    lyon = Shipment.objects.get(order=order, location=world.lyon)
    assert [
        (p["number"], p["status"], p["label"], p["tracking_number"], p["carrier"], p["items"]) for p in body["parcels"]
    ] == [
        (
            paris.number,
            "shipped",
            "Shipped",
            tracking_number,
            "sandbox",
            [{"sku": "MUG-1", "name": "Mug", "quantity": 1}, {"sku": "BOOK-1", "name": "Book", "quantity": 1}],
        ),
        (lyon.number, "pending", "Being prepared", "", "", [{"sku": "TEE-1", "name": "T-shirt", "quantity": 1}]),
    ]
    assert body["parcels"][0]["tracking_url"].endswith(tracking_number)
    [remaining] = body["remaining"]
    assert (remaining["sku"], remaining["name"], remaining["quantity"]) == ("MUG-1", "Mug", 1)
    assert datetime.datetime.fromisoformat(remaining["promised_at"]) == promised

    missing = wms.get("/api/v1/orders/NOPE-1/shipments/")
    assert (missing.status_code, error_of(missing)["code"]) == (404, "order_not_found")
    finance = token_client(make_user(roles.FINANCE))  # sees orders, not shipments
    assert finance.get(f"/api/v1/orders/{order.number}/shipments/").status_code == 403


# --- waves ---------------------------------------------------------------------------------------


def test_a_wave_is_created_printed_and_its_pick_list_downloaded(world):
    first, second = prepared_order(), prepared_order()
    warehouse = token_client(world.warehouse)

    created = post(warehouse, f"{API}waves/", {"location": "paris-wh", "limit": 10}, HTTP_IDEMPOTENCY_KEY="w-1")

    assert created.status_code == 201, created.json()
    wave = created.json()
    assert (wave["location"], wave["render_status"], wave["pick_list_url"], wave["shipment_count"]) == (
        "paris-wh",
        "idle",
        None,
        2,
    )
    assert {(s["order"], s["status"]) for s in wave["shipments"]} == {
        (first.number, "picking"),
        (second.number, "picking"),
    }
    url = f"{API}waves/{wave['number']}/"
    not_yet = warehouse.get(url + "pick-list.pdf")
    assert (not_yet.status_code, error_of(not_yet)["code"]) == (409, "pick_list_not_ready")
    # Nothing left pending at Paris: a second wave has nothing to take.
    empty = post(warehouse, f"{API}waves/", {"location": "paris-wh"})
    assert (empty.status_code, error_of(empty)["code"]) == (400, "empty_wave")

    printed = post(warehouse, url + "print/")

    assert printed.status_code == 200, printed.json()
    body = printed.json()
    assert (body["render_status"], body["render_progress"]) == ("ready", 100)
    assert body["pick_list_url"] == f"http://testserver{url}pick-list.pdf"
    assert warehouse.get(url).json()["pick_list_url"] == body["pick_list_url"]
    download = warehouse.get(body["pick_list_url"])
    assert (download.status_code, download["Content-Type"]) == (200, "application/pdf")
    text = pdf_text(b"".join(download.streaming_content))
    assert wave["number"] in text and "Paris warehouse" in text
    assert first.number in text and second.number in text
    # Sorted by bin: A-2-3 (books) before A-10-1 (mugs); 2 books and 4 mugs in all.
    assert text.index("A-2-3") < text.index("A-10-1")
    assert text.index("BOOK-1") < text.index("MUG-1")
    listed = warehouse.get(f"{API}waves/", {"location": "paris-wh"}).json()["results"]
    assert [(w["number"], w["shipment_count"], w["render_status"]) for w in listed] == [(wave["number"], 2, "ready")]


def test_a_wave_of_chosen_shipments_refuses_unknown_numbers_and_users_without_the_permission(wms, world):
    order = prepared_order()
    paris = paris_parcel(order)
    warehouse = token_client(world.warehouse)

    unknown = post(warehouse, f"{API}waves/", {"location": "paris-wh", "shipments": [paris.number, "SHP-X"]})
    assert (unknown.status_code, error_of(unknown)["extra"]["fields"]) == (
        400,
        {"shipments.1": ["Unknown shipment SHP-X."]},
    )
    nowhere = post(warehouse, f"{API}waves/", {"location": "mars"})
    assert error_of(nowhere)["extra"]["fields"] == {"location": ["Unknown location mars."]}
    refused = post(wms, f"{API}waves/", {"location": "paris-wh", "shipments": [paris.number]})
    assert (refused.status_code, error_of(refused)["code"]) == (403, "permission_denied")
    assert Wave.objects.count() == 0

    created = post(warehouse, f"{API}waves/", {"location": "paris-wh", "shipments": [paris.number]})

    assert created.status_code == 201
    assert [s["number"] for s in created.json()["shipments"]] == [paris.number]
    assert created.json()["criteria"]["shipments"] == [paris.pk]
    assert warehouse.get(f"{API}waves/NOPE/").status_code == 404
    assert wms.get(f"{API}waves/{created.json()['number']}/").status_code == 403  # waves are the warehouse's


# --- the shipment list ---------------------------------------------------------------------------


def test_the_shipment_list_filters_by_location_status_carrier_lateness_and_order(wms, world):
    first, second = prepared_order(), prepared_order()
    services.shipment_dispatch(shipment=packed(first, world.warehouse), actor=world.warehouse)
    # One parcel past its ship-by time, the others due tomorrow.
    Shipment.objects.update(ship_by=timezone.now() + datetime.timedelta(days=1))
    late = Shipment.objects.get(order=second, location=world.lyon)
    Shipment.objects.filter(pk=late.pk).update(ship_by=timezone.now() - datetime.timedelta(hours=1))

    def numbers(**query):
        response = wms.get(f"{API}shipments/", query)
        assert response.status_code == 200, response.json()
        return {row["number"] for row in response.json()["results"]}

    by_order = {
        order.pk: set(Shipment.objects.filter(order=order).values_list("number", flat=True))
        for order in (first, second)
    }
    assert numbers() == by_order[first.pk] | by_order[second.pk]
    assert numbers(location="lyon-wh") == set(
        Shipment.objects.filter(location=world.lyon).values_list("number", flat=True)
    )
    assert numbers(status="shipped") == {paris_parcel(first).number}
    assert numbers(status=["shipped", "pending"]) == numbers()
    assert numbers(carrier="sandbox") == {paris_parcel(first).number}
    assert numbers(late="true") == {late.number}
    assert numbers(late="false") == numbers() - {late.number}
    assert numbers(order=second.number) == by_order[second.pk]
    walked, url = [], f"{API}shipments/?page_size=1"
    while url:
        page = wms.get(url).json()
        walked += [row["number"] for row in page["results"]]
        url = page["next"]
    assert walked == sorted(numbers(), reverse=True)  # newest first, each once
    row = wms.get(f"{API}shipments/", {"late": "true"}).json()["results"][0]
    assert (row["is_late"], row["location"], row["order"], row["wave"]) == (True, "lyon-wh", second.number, None)

    bad = wms.get(f"{API}shipments/", {"location": "mars", "status": "lost-in-space", "late": "maybe"})
    assert bad.status_code == 400
    assert set(error_of(bad)["extra"]["fields"]) == {"status.0", "late"}
    assert error_of(wms.get(f"{API}shipments/", {"order": "NOPE"}))["extra"]["fields"] == {
        "order": ["Unknown order NOPE."]
    }
    assert token_client(make_user(roles.FINANCE)).get(f"{API}shipments/").status_code == 403


def test_the_shipment_list_runs_the_same_queries_for_2_shipments_as_for_10(wms, world):
    prepared_order()
    with CaptureQueriesContext(connection) as two:
        assert len(wms.get(f"{API}shipments/").json()["results"]) == 2

    for _ in range(4):
        prepared_order()
    services.wave_create(location=world.paris, actor=world.warehouse, limit=3)
    with CaptureQueriesContext(connection) as ten:
        assert len(wms.get(f"{API}shipments/").json()["results"]) == 10

    assert len(ten) == len(two)
    assert len(two) <= 5
