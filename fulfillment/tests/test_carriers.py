import datetime
import io
from decimal import Decimal

import pytest
from pypdf import PdfReader

from fulfillment.carriers.base import CarrierAdapter, Parcel, TrackingEvent
from fulfillment.carriers.choices import TrackingStatus
from fulfillment.carriers.registry import get_carrier
from fulfillment.carriers.sandbox import SandboxCarrier, sandbox_tracking_number
from oms.core.errors import ValidationError

BERLIN = {
    "name": "OMS Warehouse",
    "company": "Example GmbH",
    "line1": "Lagerstraße 5",
    "line2": "",
    "postal_code": "10115",
    "city": "Berlin",
    "region": "",
    "country": "DE",
    "phone": "+49 30 1234567",
}
MUNICH = {
    "name": "Max Mustermann",
    "company": "",
    "line1": "Marienplatz 1",
    "line2": "",
    "postal_code": "80331",
    "city": "München",
    "region": "Bayern",
    "country": "DE",
    "phone": "",
}
LONDON = {
    "name": "Jane Doe",
    "company": "Acme Ltd",
    "line1": "221B Baker Street",
    "line2": "Flat 2",
    "postal_code": "NW1 6XE",
    "city": "London",
    "region": "Greater London",
    "country": "GB",
    "phone": "+44 20 7946 0000",
}
LINES = [
    ("SKU-RED-M", "T-shirt red M", 2, "610910", "PT", Decimal("19.95")),
    ("SKU-MUG", "Ceramic mug", 1, "691200", "DE", Decimal("110.00")),
]


def make_parcel(*, ship_to=MUNICH, reference="SHP-2026-000123", **overrides) -> Parcel:
    values = {
        "shipment_reference": reference,
        "order_number": "ORD-2026-004711",
        "weight_grams": 1250,
        "declared_value": Decimal("149.90"),
        "currency": "EUR",
        "insurance": True,
        "ship_from": BERLIN,
        "ship_to": ship_to,
        "lines": LINES,
    }
    values.update(overrides)
    return Parcel(**values)


def pdf_text(pdf: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(pdf))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


@pytest.fixture(scope="module")
def domestic_label():
    return SandboxCarrier().create_label(make_parcel(ship_to=MUNICH), "standard")


@pytest.fixture(scope="module")
def international_label():
    return SandboxCarrier().create_label(make_parcel(ship_to=LONDON), "express")


def test_registry_returns_the_sandbox_carrier():
    carrier = get_carrier("sandbox")

    assert isinstance(carrier, SandboxCarrier)
    assert isinstance(carrier, CarrierAdapter)
    assert carrier.code == "sandbox"
    assert "standard" in carrier.services


def test_registry_refuses_an_unknown_carrier():
    with pytest.raises(ValidationError) as excinfo:
        get_carrier("pigeon")

    assert excinfo.value.code == "unknown_carrier"
    assert "carrier" in excinfo.value.extra["fields"]


def test_label_is_a_one_page_pdf_with_tracking_number_cities_and_order(domestic_label):
    pages, text = pdf_text(domestic_label.pdf)

    assert domestic_label.pdf.startswith(b"%PDF")
    assert pages == 1
    assert domestic_label.tracking_number in text
    assert "Berlin" in text
    assert "München" in text
    assert "ORD-2026-004711" in text
    assert "SHP-2026-000123" in text
    assert domestic_label.carrier_code == "sandbox"
    assert domestic_label.service == "standard"
    assert domestic_label.tracking_url == f"https://tracking.sandbox.invalid/{domestic_label.tracking_number}"


def test_label_page_is_100_by_150_mm(domestic_label):
    page = PdfReader(io.BytesIO(domestic_label.pdf)).pages[0]
    points_per_mm = 72 / 25.4

    assert float(page.mediabox.width) / points_per_mm == pytest.approx(100, abs=0.5)
    assert float(page.mediabox.height) / points_per_mm == pytest.approx(150, abs=0.5)


def test_domestic_label_has_no_customs_block(domestic_label):
    _, text = pdf_text(domestic_label.pdf)

    assert "Customs" not in text and "CUSTOMS" not in text
    assert "610910" not in text


def test_international_label_carries_the_customs_declaration(international_label):
    pages, text = pdf_text(international_label.pdf)

    assert pages == 1
    assert "CUSTOMS DECLARATION" in text.upper()
    assert "610910" in text
    assert "691200" in text
    assert "PT" in text
    assert "39.90 EUR" in text  # 2 × 19.95
    assert "149.90 EUR" in text
    assert "Berlin" in text and "London" in text


def test_international_parcel_without_hs_codes_is_refused():
    lines = [("SKU-MUG", "Ceramic mug", 1, "", "DE", Decimal("110.00"))]

    with pytest.raises(ValidationError) as excinfo:
        SandboxCarrier().create_label(make_parcel(ship_to=LONDON, lines=lines), "express")

    assert "lines[0].hs_code" in excinfo.value.extra["fields"]


def test_unknown_service_and_bad_parcel_are_refused_with_field_errors():
    parcel = make_parcel(weight_grams=0, currency="XXY", ship_to={**MUNICH, "city": ""})

    with pytest.raises(ValidationError) as excinfo:
        SandboxCarrier().create_label(parcel, "teleport")

    assert excinfo.value.code == "invalid_parcel"
    assert set(excinfo.value.extra["fields"]) == {"service", "weight_grams", "currency", "ship_to.city"}


def test_tracking_number_is_stable_per_reference_and_differs_between_references():
    first = sandbox_tracking_number(shipment_reference="SHP-2026-000001")
    again = sandbox_tracking_number(shipment_reference="SHP-2026-000001")
    other = sandbox_tracking_number(shipment_reference="SHP-2026-000002")

    assert first == again
    assert first != other
    for number in (first, other):
        assert number.startswith("SBX")
        assert len(number) == 13
        assert number[3:].isdigit()


def test_tracking_number_comes_from_the_counter_when_one_is_given():
    carrier = SandboxCarrier(counter=lambda: 42)

    assert sandbox_tracking_number(shipment_reference="any", counter=42) == "SBX0000000042"
    assert carrier.tracking_url("SBX0000000042") == "https://tracking.sandbox.invalid/SBX0000000042"


def test_tracking_url_refuses_a_foreign_number():
    with pytest.raises(ValidationError):
        SandboxCarrier().tracking_url("1Z999AA10123456784")


@pytest.mark.parametrize(
    ("carrier_code", "expected"),
    [
        ("ACCEPTED", TrackingStatus.LABEL_CREATED),
        ("PICKED_UP", TrackingStatus.IN_TRANSIT),
        ("SHIPPED", TrackingStatus.IN_TRANSIT),
        ("OUT_FOR_DELIVERY", TrackingStatus.OUT_FOR_DELIVERY),
        ("DELIVERED", TrackingStatus.DELIVERED),
        ("DELIVERY_FAILED", TrackingStatus.EXCEPTION),
        ("RETURNED", TrackingStatus.RETURNED_TO_SENDER),
        ("LOST", TrackingStatus.LOST),
        ("DAMAGED", TrackingStatus.DAMAGED),
    ],
)
def test_carrier_statuses_map_to_ours(carrier_code, expected):
    assert SandboxCarrier().map_status(carrier_code) == expected


def test_carrier_shipped_is_not_delivered():
    assert SandboxCarrier().map_status("SHIPPED") != TrackingStatus.DELIVERED


def test_unknown_carrier_status_is_an_exception_and_logged(caplog):
    with caplog.at_level("WARNING", logger="fulfillment.carriers.sandbox"):
        status = SandboxCarrier().map_status("TELEPORTED")

    assert status == TrackingStatus.EXCEPTION
    assert any(getattr(r, "carrier_status_code", None) == "TELEPORTED" for r in caplog.records)


def test_parse_webhook_returns_events_with_aware_datetimes():
    payload = {
        "events": [
            {
                "id": "evt-1",
                "tracking_number": "SBX0000000042",
                "status": "SHIPPED",
                "occurred_at": "2026-11-26T08:15:00+01:00",
                "description": "Left the depot",
                "location": "Berlin",
            },
            {"id": 2, "tracking_number": "SBX0000000042", "status": "DELIVERED", "occurred_at": "2026-11-27T10:00:00Z"},
        ]
    }

    events = SandboxCarrier().parse_webhook(payload)

    assert events == [
        TrackingEvent(
            carrier_event_id="evt-1",
            tracking_number="SBX0000000042",
            carrier_status_code="SHIPPED",
            status=TrackingStatus.IN_TRANSIT,
            occurred_at=datetime.datetime(2026, 11, 26, 7, 15, tzinfo=datetime.UTC),
            description="Left the depot",
            location="Berlin",
        ),
        TrackingEvent(
            carrier_event_id="2",
            tracking_number="SBX0000000042",
            carrier_status_code="DELIVERED",
            status=TrackingStatus.DELIVERED,
            occurred_at=datetime.datetime(2026, 11, 27, 10, 0, tzinfo=datetime.UTC),
        ),
    ]
    assert all(event.occurred_at.tzinfo is not None for event in events)


def test_parse_webhook_keeps_an_unknown_status_code_in_the_description():
    payload = {
        "events": [
            {"id": "e", "tracking_number": "SBX0000000042", "status": "TELEPORTED", "occurred_at": "2026-11-26T08:15Z"}
        ]
    }

    (event,) = SandboxCarrier().parse_webhook(payload)

    assert event.status == TrackingStatus.EXCEPTION
    assert "TELEPORTED" in event.description


def test_parse_webhook_accepts_an_empty_event_list():
    assert SandboxCarrier().parse_webhook({"events": []}) == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ("not a dict", "payload"),
        ({}, "events"),
        ({"events": {"id": "e"}}, "events"),
        ({"events": ["e"]}, "events[0]"),
        (
            {"events": [{"tracking_number": "SBX0000000042", "status": "SHIPPED", "occurred_at": "2026-11-26T08:15Z"}]},
            "events[0].id",
        ),
        (
            {"events": [{"id": "e", "status": "SHIPPED", "occurred_at": "2026-11-26T08:15Z"}]},
            "events[0].tracking_number",
        ),
        (
            {"events": [{"id": "e", "tracking_number": "SBX0000000042", "occurred_at": "2026-11-26T08:15Z"}]},
            "events[0].status",
        ),
        ({"events": [{"id": "e", "tracking_number": "SBX0000000042", "status": "SHIPPED"}]}, "events[0].occurred_at"),
        (
            {
                "events": [
                    {"id": "e", "tracking_number": "SBX0000000042", "status": "SHIPPED", "occurred_at": "yesterday"}
                ]
            },
            "events[0].occurred_at",
        ),
        (
            {
                "events": [
                    {
                        "id": "e",
                        "tracking_number": "SBX0000000042",
                        "status": "SHIPPED",
                        "occurred_at": "2026-11-26T08:15:00",
                    }
                ]
            },
            "events[0].occurred_at",
        ),
        (
            {
                "events": [
                    {
                        "id": "e",
                        "tracking_number": "SBX0000000042",
                        "status": ["SHIPPED"],
                        "occurred_at": "2026-11-26T08:15Z",
                    }
                ]
            },
            "events[0].status",
        ),
        (
            {
                "events": [
                    {"id": "e", "tracking_number": "SBX0000000042", "status": "SHIPPED", "occurred_at": 1764145000}
                ]
            },
            "events[0].occurred_at",
        ),
    ],
)
def test_parse_webhook_refuses_a_bad_payload_naming_the_field(payload, field):
    with pytest.raises(ValidationError) as excinfo:
        SandboxCarrier().parse_webhook(payload)

    assert field in excinfo.value.extra["fields"]


def test_parse_webhook_reports_every_bad_event_at_once():
    good = {"id": "ok", "tracking_number": "SBX0000000042", "status": "SHIPPED", "occurred_at": "2026-11-26T08:15Z"}
    payload = {"events": [good, {**good, "occurred_at": "bad"}, {**good, "id": ""}]}

    with pytest.raises(ValidationError) as excinfo:
        SandboxCarrier().parse_webhook(payload)

    assert set(excinfo.value.extra["fields"]) == {"events[1].occurred_at", "events[2].id"}
