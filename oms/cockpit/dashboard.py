"""The cockpit home: what is open right now, the case queues I work, SLA breaches and the KPIs.

Cheap on tables of any size, in a constant number of queries: the counts group the open statuses
only (the status index, not the millions of completed and canceled orders), the active holds (a
partial index), the open cases (a partial index), and the KPIs of the last 14 days (ranges on
indexed dates, see oms.cockpit.kpis). The charts are inline SVG drawn here (no script, no CDN),
each with its figures in a table next to it.
"""

import datetime
import math

from django.db.models import Count
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from integrations.selectors import outbox_dead_letter_count
from oms.cockpit.kpis import kpis_compute, last_complete_week
from orders.cases import case_queue_counts
from orders.choices import CaseKind, CaseLevel, HoldReason, OrderStatus
from orders.models import Order, OrderEvent, OrderHold

OPEN_STATUSES = [status for status in OrderStatus if status not in {OrderStatus.COMPLETED, OrderStatus.CANCELED}]
KPI_PERMISSION = "orders.view_order"
KPI_DAYS = 14
SLA_RECENT_DAYS = 7
MAX_CHANNEL_SERIES = 5  # then "Other channels"


def _url(name: str, **query) -> str | None:
    try:
        url = reverse(name)
    except NoReverseMatch:
        return None
    return f"{url}?{urlencode(query)}" if query else url


def cockpit_dashboard(*, user) -> dict | None:
    """Each block only for whom may see it: orders and KPIs need orders.view_order, the case
    queues are those the user works. None when there is nothing to show."""
    may_view_orders = user.has_perm(KPI_PERMISSION)
    cases = _case_queues(user)
    if not may_view_orders and not cases:
        return None
    dashboard = {
        "may_view_orders": may_view_orders,
        "cases": cases,
        "case_levels": case_queue_levels(cases),
        "sla": None,
        "kpis": None,
    }
    if may_view_orders:
        dashboard.update(_orders_now(user))
        today = timezone.localdate()
        kpis = kpis_compute(start=today - datetime.timedelta(days=KPI_DAYS - 1), end=today)
        dashboard["kpis"] = _kpi_view(kpis)
        dashboard["sla"] = {
            "open": kpis["sla_breaches_open"],
            "recent": sum(day["sla_breaches"] for day in kpis["days"][-SLA_RECENT_DAYS:]),
            "recent_days": SLA_RECENT_DAYS,
            "url": (
                _url("admin:orders_case_changelist", kind__exact=CaseKind.SLA_BREACH.value)
                if any(row["kind"] == CaseKind.SLA_BREACH for row in cases)
                else None
            ),
        }
    return dashboard


def _orders_now(user) -> dict:
    # All open orders on the status index alone (an index-only scan: COUNT(*) reads no column),
    # minus the test orders among them (the is_test index): the heap of the tens of thousands of
    # open orders is never read.
    open_orders = Order.objects.filter(status__in=OPEN_STATUSES)
    by_status = dict(open_orders.values_list("status").annotate(n=Count("*")).order_by())
    for status, tests in open_orders.filter(is_test=True).values_list("status").annotate(n=Count("*")).order_by():
        by_status[status] -= tests
    orders_url = _url("admin:orders_order_changelist")
    statuses = [
        {
            "label": status.label,
            "value": status.value,
            "count": by_status.get(status.value, 0),
            "url": f"{orders_url}?status__exact={status.value}&is_test__exact=0",
        }
        for status in OPEN_STATUSES
    ]
    holds_by_reason = dict(
        OrderHold.objects.filter(released_at__isnull=True).values_list("reason").annotate(n=Count("pk")).order_by()
    )
    holds_url = _url("admin:orders_orderhold_changelist")
    holds = [
        {
            "label": reason.label,
            "count": holds_by_reason[reason.value],
            "url": f"{holds_url}?reason__exact={reason.value}",
        }
        for reason in HoldReason
        if holds_by_reason.get(reason.value)
    ]
    block = {
        "orders_url": orders_url,
        "statuses": statuses,
        "open_total": sum(item["count"] for item in statuses),
        "holds": holds,
        "holds_total": sum(item["count"] for item in holds),
        "holds_url": holds_url,
        "dead_letters": None,
        # The actor's foreign-key index, newest first: what did I just do?
        "recent": list(OrderEvent.objects.filter(actor=user).select_related("order").order_by("-pk")[:8]),
    }
    if user.has_perm("integrations.view_outboxmessage"):
        block["dead_letters"] = outbox_dead_letter_count()
        block["dead_letters_url"] = _url("admin:integrations_outboxmessage_changelist", status__exact="dead")
    return block


def _case_queues(user) -> list[dict]:
    """The queues the user works, one row per kind with a cell per level (open, overdue, link)."""
    rows: dict[str, dict] = {}
    for count in case_queue_counts(user=user):
        row = rows.setdefault(
            count["kind"], {"kind": count["kind"], "label": count["kind_label"], "levels": [], "open": 0, "overdue": 0}
        )
        row["levels"].append(
            {
                "level": count["level"],
                "label": count["level_label"],
                "open": count["open"],
                "overdue": count["overdue"],
                "url": _url("admin:orders_case_changelist", kind__exact=count["kind"], level__exact=count["level"]),
            }
        )
        row["open"] += count["open"]
        row["overdue"] += count["overdue"]
    return list(rows.values())


def case_queue_levels(queues: list[dict]) -> list[dict]:
    levels = {cell["level"] for row in queues for cell in row["levels"]}
    return [{"value": level.value, "label": level.label} for level in CaseLevel if level.value in levels]


# --- KPIs and their charts ------------------------------------------------------------------------


def _hours(value: datetime.timedelta | None) -> float | None:
    return None if value is None else value.total_seconds() / 3600


def _percent(value: float | None) -> float | None:
    return None if value is None else value * 100


def _h(value: datetime.timedelta | None) -> str:
    return _number(_hours(value), 1)


def _pc(value: float | None) -> str:
    return _number(_percent(value), 1)


def _kpi_view(kpis: dict) -> dict:
    days = kpis["days"]
    labels = [date_format(day["date"], "j M") for day in days]
    channel_series = [(channel["name"], channel["daily"]) for channel in kpis["channels"][:MAX_CHANNEL_SERIES]]
    others = kpis["channels"][MAX_CHANNEL_SERIES:]
    if others:
        channel_series.append(
            (str(_("Other channels")), [sum(values) for values in zip(*(c["daily"] for c in others), strict=True)])
        )
    charts = [
        bar_chart(
            chart_id="orders",
            title=_("Orders per day, by channel"),
            labels=labels,
            series=channel_series or [(str(_("Orders")), [0] * len(days))],
            stacked=True,
            decimals=0,
        ),
        _stage_chart("preparation", days, "payment_to_preparation"),
        _stage_chart("dispatch", days, "payment_to_dispatch"),
        line_chart(
            chart_id="rates",
            title=_("Cancellations, picking errors and returns (%)"),
            labels=labels,
            series=[
                (str(_("Canceled")), [_percent(day["cancellation_rate"]) for day in days]),
                (str(_("Picking errors")), [_percent(day["picking_error_rate"]) for day in days]),
                (str(_("Returns")), [_percent(day["return_rate"]) for day in days]),
            ],
        ),
        bar_chart(
            chart_id="cases",
            title=_("Cases: SLA breaches opened and cases resolved"),
            labels=labels,
            series=[
                (str(_("SLA breaches")), [day["sla_breaches"] for day in days]),
                (str(_("Resolved")), [day["cases_resolved"] for day in days]),
            ],
            stacked=False,
            decimals=0,
        ),
    ]
    totals = kpis["totals"]
    table = [
        {
            "date": day["date"],
            "orders": day["orders"],
            "canceled": day["canceled"],
            "cancellation_rate": _pc(day["cancellation_rate"]),
            "preparation_p50": _h(day["payment_to_preparation"]["p50"]),
            "preparation_p90": _h(day["payment_to_preparation"]["p90"]),
            "dispatch_p50": _h(day["payment_to_dispatch"]["p50"]),
            "dispatch_p90": _h(day["payment_to_dispatch"]["p90"]),
            "picking_error_rate": _pc(day["picking_error_rate"]),
            "return_rate": _pc(day["return_rate"]),
            "sla_breaches": day["sla_breaches"],
            "cases_resolved": day["cases_resolved"],
        }
        for day in days
    ]
    return {
        "start": kpis["start"],
        "end": kpis["end"],
        "days": len(days),
        "totals": {
            "orders": totals["orders"],
            "canceled": totals["canceled"],
            "cancellation_rate": _pc(totals["cancellation_rate"]),
            "preparation_p50": _h(totals["payment_to_preparation"]["p50"]),
            "preparation_p90": _h(totals["payment_to_preparation"]["p90"]),
            "dispatch_p50": _h(totals["payment_to_dispatch"]["p50"]),
            "dispatch_p90": _h(totals["payment_to_dispatch"]["p90"]),
            "picking_error_rate": _pc(totals["picking_error_rate"]),
            "return_rate": _pc(totals["return_rate"]),
            "resolution_p50": _h(totals["resolution_time"]["p50"]),
            "cases_resolved": totals["cases_resolved"],
            "sla_breaches": totals["sla_breaches"],
        },
        "cancel_reasons": [
            {**reason, "percent": _number(reason["share"] * 100, 1)} for reason in kpis["cancel_reasons"][:3]
        ],
        "open_cases": kpis["open_cases"],
        "open_cases_total": kpis["open_cases_total"],
        "charts": charts,
        "table": table,
        "csv_url": _url("cockpit_kpis_weekly_csv"),
        "csv_week": last_complete_week(),
    }


STAGE_TITLES = {
    ("preparation", "hours"): _("Hours from payment to preparation"),
    ("preparation", "minutes"): _("Minutes from payment to preparation"),
    ("dispatch", "hours"): _("Hours from payment to dispatch"),
    ("dispatch", "minutes"): _("Minutes from payment to dispatch"),
}


def _stage_chart(chart_id: str, days: list[dict], name: str) -> dict:
    """p50 and p90 per day, in hours; in minutes when every value is under an hour."""
    values = [day[name][key] for day in days for key in ("p50", "p90") if day[name][key] is not None]
    in_minutes = bool(values) and max(values) < datetime.timedelta(hours=1)
    scale = 60 if in_minutes else 3600

    def series(key):
        return [None if day[name][key] is None else day[name][key].total_seconds() / scale for day in days]

    return line_chart(
        chart_id=chart_id,
        title=STAGE_TITLES[(chart_id, "minutes" if in_minutes else "hours")],
        labels=[date_format(day["date"], "j M") for day in days],
        series=[("p50", series("p50")), ("p90", series("p90"))],
    )


# Geometry of the inline SVG charts (viewBox units; the SVG scales to its box).
WIDTH, HEIGHT = 640, 230
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 44, 12, 22, 34
GRID_LINES = 4
LABELED_SERIES = 2


def _nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^n at least `value` (so the grid reads in round numbers)."""
    if value <= 0:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def _number(value: float | None, decimals: int) -> str:
    if value is None:
        return "–"
    return f"{value:,.{decimals}f}".replace(",", "\u202f")


def _frame(labels: list[str], top: float) -> dict:
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    slot = plot_w / max(len(labels), 1)
    grid = []
    for n in range(GRID_LINES + 1):
        value = top * n / GRID_LINES
        grid.append(
            {
                "y": round(PAD_TOP + plot_h * (1 - n / GRID_LINES), 1),
                "label": f"{value:,.10g}".replace(",", "\u202f"),  # round steps: as many decimals as they have
            }
        )
    x_labels = [
        {"x": round(PAD_LEFT + slot * (i + 0.5), 1), "y": HEIGHT - PAD_BOTTOM + 16, "text": label}
        for i, label in enumerate(labels)
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": PAD_LEFT,
        "right": WIDTH - PAD_RIGHT,
        "baseline": HEIGHT - PAD_BOTTOM,
        "grid": grid,
        "x_labels": x_labels,
        "slot": slot,
        "plot_h": plot_h,
        "center_x": round(PAD_LEFT + plot_w / 2, 1),
        "center_y": round(PAD_TOP + plot_h / 2, 1),
    }


def _y(value: float, top: float, plot_h: float) -> float:
    return round(PAD_TOP + plot_h * (1 - value / top), 1)


def bar_chart(*, chart_id, title, labels, series, stacked: bool, decimals: int = 0) -> dict:
    """Bars per label: stacked (a total on top) or side by side (each value on top)."""
    if stacked:
        peak = max((sum(values[i] for _, values in series) for i in range(len(labels))), default=0)
    else:
        peak = max((v for _, values in series for v in values), default=0)
    top = _nice_max(peak)
    frame = _frame(labels, top)
    slot, plot_h = frame["slot"], frame["plot_h"]
    bars, values_text = [], []
    for i, label in enumerate(labels):
        x0 = PAD_LEFT + slot * i
        if stacked:
            width = slot * 0.68
            x = x0 + (slot - width) / 2
            running = 0
            for n, (name, values) in enumerate(series):
                value = values[i]
                if value:
                    y_top, y_bottom = _y(running + value, top, plot_h), _y(running, top, plot_h)
                    bars.append(
                        _bar(x, y_top, width, y_bottom - y_top, n, f"{label} · {name}: {_number(value, decimals)}")
                    )
                running += value
            values_text.append(
                {"x": round(x + width / 2, 1), "y": _y(running, top, plot_h) - 4, "text": _number(running, decimals)}
            )
        else:
            width = slot * 0.8 / len(series)
            for n, (name, values) in enumerate(series):
                value = values[i]
                x = x0 + slot * 0.1 + width * n
                y_top = _y(value, top, plot_h)
                if value:
                    bars.append(
                        _bar(
                            x,
                            y_top,
                            width,
                            frame["baseline"] - y_top,
                            n,
                            f"{label} · {name}: {_number(value, decimals)}",
                        )
                    )
                    values_text.append({"x": round(x + width / 2, 1), "y": y_top - 4, "text": _number(value, decimals)})
    return {
        **frame,
        "id": chart_id,
        "title": title,
        "kind": "bar",
        "bars": bars,
        "lines": [],
        "dots": [],
        "values": values_text,
        "legend": [{"name": name, "series": n} for n, (name, _values) in enumerate(series)],
        "empty": peak == 0,
    }


def _bar(x, y, width, height, series, title) -> dict:
    return {
        "x": round(x, 1),
        "y": y,
        "width": round(width, 1),
        "height": round(max(height, 0), 1),
        "series": series,
        "title": title,
    }


def line_chart(*, chart_id, title, labels, series, decimals: int = 1) -> dict:
    """A line per series, broken where a day has no value; the first two series' points labeled."""
    peak = max((v for _, values in series for v in values if v is not None), default=0)
    top = _nice_max(peak)
    if top < 1:  # minutes in hours, small rates: enough decimals to tell the points apart
        decimals = max(decimals, min(3, 1 - math.floor(math.log10(top))))
    frame = _frame(labels, top)
    slot, plot_h = frame["slot"], frame["plot_h"]
    lines, dots, values_text = [], [], []
    for n, (name, values) in enumerate(series):
        segment: list[str] = []
        for i, value in enumerate(values + [None]):
            if value is None:
                if segment:
                    lines.append({"series": n, "points": " ".join(segment)})
                segment = []
                continue
            x, y = round(PAD_LEFT + slot * (i + 0.5), 1), _y(value, top, plot_h)
            segment.append(f"{x},{y}")
            dots.append({"x": x, "y": y, "series": n, "title": f"{labels[i]} · {name}: {_number(value, decimals)}"})
            # The first series labeled above its points, the second below; more would not read.
            if n < LABELED_SERIES:
                label_y = round(y - 6 if n == 0 else y + 13, 1)
                values_text.append({"x": x, "y": label_y, "text": _number(value, decimals), "series": n})
    return {
        **frame,
        "id": chart_id,
        "title": title,
        "kind": "line",
        "bars": [],
        "lines": lines,
        "dots": dots,
        "values": values_text,
        "legend": [{"name": name, "series": n} for n, (name, _values) in enumerate(series)],
        "empty": not dots,
    }
