"""KPIs from orders, shipments, returns and cases built through the real services, at known times.

The week 2026-W47 (Monday 16 to Sunday 22 November, Europe/Paris):
- Monday: a, b (web) and c (marketplace) are paid and prepared 2, 4 and 6 hours later; a and b ship
  6 and 10 hours after payment; c's Paris parcel is short-picked (1 of 2 mugs); d is canceled
  (customer request); h is placed at 00:30 (Sunday 23:30 UTC: still Monday in Paris).
- Tuesday: g is prepared after 2 hours, shipped after 4, delivered and partly returned; e and f are
  canceled (out of stock, customer request).
- Test orders (prepared in 30 minutes, canceled, a quick case) count nowhere; z, placed on Sunday
  15 at 23:30, is the week before.
"""

import csv
import datetime
import io
import zoneinfo

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.urls import reverse

from fulfillment import services as fulfillment
from fulfillment.models import Shipment
from fulfillment.tests.fixtures import make_two_locations
from oms.cockpit import kpis as kpi_module
from oms.cockpit.kpis import CSV_HEADER, iso_week_bounds, kpis_compute, kpis_weekly_csv, percentile
from oms.cockpit.roles import SUPPORT_L1
from oms.core.actors import get_system_user
from orders import cases
from orders import services as orders
from orders.choices import CaseKind
from orders.models import Channel, Order
from orders.tests.factories import make_user, order_payload
from returns import services as returns
from returns.tests.fixtures import deliver, ship

pytestmark = pytest.mark.django_db

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
H = datetime.timedelta(hours=1)
MONDAY, TUESDAY = datetime.date(2026, 11, 16), datetime.date(2026, 11, 17)


def at(day: int, hour: int, minute: int = 0) -> datetime.datetime:
    return datetime.datetime(2026, 11, day, hour, minute, tzinfo=PARIS)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.OMS_NOTIFICATION_GROUP_SECONDS = 0


def placed(when, **overrides) -> Order:
    with time_machine.travel(when, tick=False):
        order, created = orders.order_create(actor=get_system_user(), **order_payload(**overrides))
    assert created
    return order


def prepared(order, when) -> Order:
    with time_machine.travel(when, tick=False):
        return orders.order_start_preparation(order=order, actor=get_system_user())


def shipped(order, when, world) -> None:
    with time_machine.travel(when, tick=False):
        for shipment in Shipment.objects.filter(order=order).order_by("location__priority"):
            ship(shipment, world.warehouse)


def canceled(order, when, reason_code: str) -> None:
    with time_machine.travel(when, tick=False):
        orders.order_cancel(order=order, actor=get_system_user(), reason_code=reason_code, reason="Test")


def hand_case(order, opened, resolved, actor) -> None:
    with time_machine.travel(opened, tick=False):
        case, _ = cases.case_open(
            kind=CaseKind.ESCALATION, source_key=f"vip:{order.pk}", title="VIP", actor=actor, order=order, by_hand=True
        )
    with time_machine.travel(resolved, tick=False):
        cases.case_resolve(case=case, actor=actor, decision="customer_contacted", resolution="Called back")


@pytest.fixture
def week():
    world = make_two_locations(mug=60, tee=60, book=60)
    Channel.objects.create(code="market", name="Marketplace", kind="marketplace")
    system = get_system_user()
    support = make_user(SUPPORT_L1)

    a = prepared(placed(at(16, 9)), at(16, 11))
    b = prepared(placed(at(16, 9)), at(16, 13))
    c = prepared(placed(at(16, 10), channel="market"), at(16, 16))
    shipped(a, at(16, 15), world)
    shipped(b, at(16, 19), world)
    with time_machine.travel(at(16, 17), tick=False):
        paris = Shipment.objects.get(order=c, location=world.paris)
        fulfillment.shipment_start_picking(shipment=paris, actor=world.warehouse)
        mug, book = paris.lines.get(order_line__sku="MUG-1"), paris.lines.get(order_line__sku="BOOK-1")
        fulfillment.shipment_confirm_picks(shipment=paris, actor=world.warehouse, picked={mug.pk: 1, book.pk: 1})
    canceled(placed(at(16, 9, 30)), at(16, 10), "customer_request")
    h = placed(at(16, 0, 30))
    with time_machine.travel(at(17, 10), tick=False):
        for shipment in Shipment.objects.filter(order=a):
            deliver(shipment, at=at(17, 10))

    g = prepared(placed(at(17, 10)), at(17, 12))
    shipped(g, at(17, 14), world)
    with time_machine.travel(at(17, 18), tick=False):
        for shipment in Shipment.objects.filter(order=g):
            deliver(shipment, at=at(17, 18))
    with time_machine.travel(at(19, 9), tick=False):
        mug_line = g.lines.get(sku="MUG-1")
        returns.return_request(
            order=g, actor=system, reason="changed_mind", lines=[{"line": mug_line.pk, "quantity": 1}]
        )
    canceled(placed(at(17, 10)), at(17, 11), "out_of_stock")
    canceled(placed(at(17, 10)), at(17, 11), "customer_request")

    # Test orders: fast, canceled, with a quick case; and an order of the week before.
    test_order = prepared(placed(at(16, 9), is_test=True), at(16, 9, 30))
    canceled(placed(at(16, 9), is_test=True), at(16, 10), "fraud")
    hand_case(test_order, at(16, 10), at(16, 10, 30), support)
    z = placed(at(15, 23, 30))

    # Cases: one resolved after 42 h (on Wednesday), one after 24 h (on Saturday); the SLA sweep on
    # Friday noon finds c not shipped and h and z not prepared.
    hand_case(a, at(16, 17), at(18, 11), support)
    hand_case(b, at(20, 12), at(21, 12), support)
    with time_machine.travel(at(20, 12), tick=False):
        assert cases.sla_sweep(actor=system) == 3
    return {"a": a, "b": b, "c": c, "g": g, "h": h, "z": z, "world": world, "support": support}


def by_date(kpis):
    return {row["date"]: row for row in kpis["days"]}


def test_order_kpis_count_the_orders_placed_each_local_day_and_exclude_test_orders(week):
    kpis = kpis_compute(start=MONDAY, end=MONDAY + datetime.timedelta(days=6))
    days = by_date(kpis)
    assert [row["date"] for row in kpis["days"]] == [MONDAY + datetime.timedelta(days=n) for n in range(7)]
    monday, tuesday = days[MONDAY], days[TUESDAY]
    # a, b, c, d and h (00:30 in Paris is Sunday in UTC): five; no test order, not z.
    assert (monday["orders"], monday["canceled"], monday["cancellation_rate"]) == (5, 1, 0.2)
    assert (tuesday["orders"], tuesday["canceled"], tuesday["cancellation_rate"]) == (3, 2, 2 / 3)
    assert days[MONDAY + datetime.timedelta(days=2)]["orders"] == 0
    assert days[MONDAY + datetime.timedelta(days=2)]["cancellation_rate"] is None
    totals = kpis["totals"]
    assert (totals["orders"], totals["canceled"], totals["cancellation_rate"]) == (8, 3, 3 / 8)
    assert [(c["code"], c["orders"], c["canceled"], c["daily"][:2]) for c in kpis["channels"]] == [
        ("web", 7, 3, [4, 3]),
        ("market", 1, 0, [1, 0]),
    ]
    assert [(r["reason"], r["count"]) for r in kpis["cancel_reasons"]] == [("customer_request", 2), ("out_of_stock", 1)]
    assert kpis["cancel_reasons"][0]["share"] == 2 / 3


def test_stage_times_are_p50_and_p90_from_payment(week):
    kpis = kpis_compute(start=MONDAY, end=MONDAY + datetime.timedelta(days=6))
    monday, tuesday = by_date(kpis)[MONDAY], by_date(kpis)[TUESDAY]
    # Monday: prepared after 2, 4 and 6 h; shipped after 6 and 10 h. The test order (30 min) is out.
    assert monday["payment_to_preparation"] == {"p50": 4 * H, "p90": 5.6 * H}
    assert monday["payment_to_dispatch"] == {"p50": 8 * H, "p90": 9.6 * H}
    assert tuesday["payment_to_preparation"] == {"p50": 2 * H, "p90": 2 * H}
    assert tuesday["payment_to_dispatch"] == {"p50": 4 * H, "p90": 4 * H}
    # The week: preparation 2, 2, 4, 6 h; dispatch 4, 6, 10 h.
    assert kpis["totals"]["payment_to_preparation"] == {"p50": 3 * H, "p90": 5.4 * H}
    assert kpis["totals"]["payment_to_dispatch"] == {"p50": 6 * H, "p90": 9.2 * H}
    assert by_date(kpis)[MONDAY + datetime.timedelta(days=2)]["payment_to_preparation"] == {"p50": None, "p90": None}


def test_picking_return_and_case_kpis(week):
    kpis = kpis_compute(start=MONDAY, end=MONDAY + datetime.timedelta(days=6))
    days, totals = by_date(kpis), kpis["totals"]
    # Monday: a and b's two parcels and c's Paris parcel picked, one short pick.
    assert (days[MONDAY]["picked_shipments"], days[MONDAY]["short_picks"], days[MONDAY]["picking_error_rate"]) == (
        5,
        1,
        0.2,
    )
    assert (totals["picked_shipments"], totals["short_picks"], totals["picking_error_rate"]) == (7, 1, 1 / 7)
    # a (Monday) delivered, not returned; g (Tuesday) delivered and returned.
    assert (days[MONDAY]["delivered"], days[MONDAY]["returns"], days[MONDAY]["return_rate"]) == (1, 0, 0.0)
    assert (days[TUESDAY]["delivered"], days[TUESDAY]["returns"], days[TUESDAY]["return_rate"]) == (1, 1, 1.0)
    assert (totals["delivered"], totals["returns"], totals["return_rate"]) == (2, 1, 0.5)
    # Resolved: 42 h on Wednesday, 24 h on Saturday (the test case is out).
    wednesday, saturday = MONDAY + datetime.timedelta(days=2), MONDAY + datetime.timedelta(days=5)
    assert (days[wednesday]["cases_resolved"], days[wednesday]["resolution_time"]) == (
        1,
        {"p50": 42 * H, "p90": 42 * H},
    )
    assert days[saturday]["resolution_time"]["p50"] == 24 * H
    assert (totals["cases_resolved"], totals["resolution_time"]) == (2, {"p50": 33 * H, "p90": 40.2 * H})
    # Three SLA breaches opened on Friday (c, h and z: z's order is of the week before, the case is not).
    friday = MONDAY + datetime.timedelta(days=4)
    assert [row["sla_breaches"] for row in kpis["days"]] == [0, 0, 0, 0, 3, 0, 0]
    assert totals["sla_breaches"] == 3
    assert kpis["sla_breaches_open"] == 3
    open_cases = {row["kind"]: row["open"] for row in kpis["open_cases"]}
    assert open_cases == {"short_pick": 1, "sla_breach": 3}
    assert kpis["open_cases_total"] == 4
    assert days[friday]["sla_breaches"] == 3


def test_a_period_without_data_is_all_zeros_and_blanks(week):
    kpis = kpis_compute(start=datetime.date(2026, 10, 1), end=datetime.date(2026, 10, 2))
    assert [row["orders"] for row in kpis["days"]] == [0, 0]
    assert kpis["totals"]["payment_to_dispatch"] == {"p50": None, "p90": None}
    assert kpis["totals"]["return_rate"] is None and kpis["channels"] == [] and kpis["cancel_reasons"] == []


def test_python_percentiles_match_percentile_cont():
    assert percentile([], 0.5) is None
    assert percentile([6 * H, 2 * H, 4 * H], 0.9) == 5.6 * H
    assert percentile([2.0, 2.0, 4.0, 6.0], 0.5) == 3.0


def test_the_python_fallback_gives_the_same_figures_as_postgresql(week, monkeypatch):
    in_sql = kpis_compute(start=MONDAY, end=MONDAY + datetime.timedelta(days=6))
    monkeypatch.setattr(kpi_module.connection, "vendor", "sqlite")
    in_python = kpis_compute(start=MONDAY, end=MONDAY + datetime.timedelta(days=6))
    assert in_python == in_sql


def test_iso_weeks():
    assert iso_week_bounds("2026-W47") == (MONDAY, MONDAY + datetime.timedelta(days=6))
    assert iso_week_bounds("2026-w01") == (datetime.date(2025, 12, 29), datetime.date(2026, 1, 4))
    for bad in ("2026-47", "2026-W54", "W47", ""):
        with pytest.raises(ValueError):
            iso_week_bounds(bad)


def parse(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_weekly_csv_has_one_row_per_date_channel_and_metric(week):
    text = kpis_weekly_csv("2026-W47")
    assert text.splitlines()[0] == ",".join(CSV_HEADER)
    rows = parse(text)
    index = {(r["date"], r["channel"], r["metric"], r["detail"]): (r["value"], r["unit"]) for r in rows}
    assert {r["period"] for r in rows} == {"2026-W47"}
    assert index[("2026-11-16", "all", "orders", "")] == ("5", "orders")
    assert index[("2026-11-16", "web", "orders", "")] == ("4", "orders")
    assert index[("2026-11-16", "market", "orders", "")] == ("1", "orders")
    assert index[("2026-11-17", "all", "cancellation_rate", "")] == ("66.67", "percent")
    assert index[("2026-11-16", "all", "payment_to_preparation_p90", "")] == ("5.60", "hours")
    assert index[("2026-11-18", "all", "payment_to_preparation_p50", "")] == ("", "hours")
    assert index[("", "all", "orders", "")] == ("8", "orders")
    assert index[("", "all", "payment_to_dispatch_p90", "")] == ("9.20", "hours")
    assert index[("", "all", "picking_error_rate", "")] == ("14.29", "percent")
    assert index[("", "all", "return_rate", "")] == ("50.00", "percent")
    assert index[("", "all", "case_resolution_time_p50", "")] == ("33.00", "hours")
    assert index[("", "all", "sla_breaches_opened", "")] == ("3", "cases")
    assert index[("", "all", "canceled_orders_by_reason", "customer_request")] == ("2", "orders")
    assert index[("", "all", "open_cases_at_export", "sla_breach")] == ("3", "cases")
    # Every day of the week has its figures (7 days × (17 metrics + 2 channels × 2)).
    assert len([r for r in rows if r["date"]]) == 7 * (17 + 4)
    assert len(rows) == len(index)  # no duplicate key


def test_kpi_export_command_writes_the_same_csv(week, tmp_path, capsys):
    expected = kpis_weekly_csv("2026-W47")
    call_command("kpi_export", "--week", "2026-W47")
    assert capsys.readouterr().out == expected
    target = tmp_path / "kpis.csv"
    call_command("kpi_export", "--week", "2026-W47", "--output", str(target))
    assert target.read_text(encoding="utf-8") == expected
    with pytest.raises(CommandError, match="ISO week"):
        call_command("kpi_export", "--week", "last week")


def test_weekly_csv_download_needs_the_view_order_permission(week, client):
    url = reverse("cockpit_kpis_weekly_csv")
    client.force_login(week["support"])
    response = client.get(url, {"week": "2026-W47"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="oms-kpis-2026-W47.csv"'
    assert response.content.decode() == kpis_weekly_csv("2026-W47")
    assert client.get(url, {"week": "nope"}).status_code == 400

    no_orders = make_user(username="nobody")
    client.force_login(no_orders)
    assert client.get(url, {"week": "2026-W47"}).status_code == 403
    client.logout()
    response = client.get(url, {"week": "2026-W47"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
