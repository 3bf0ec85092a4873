"""The KPIs of the cockpit: one function for the home page (last 14 days) and the weekly CSV.

Definitions (test orders and test cases are excluded everywhere):

- Order KPIs follow the orders *placed* on each day (a cohort, by local date in TIME_ZONE): how many
  were placed, per channel; how many of them were canceled (and why); how long they took from
  payment (`confirmed_at`, else `paid_at`: what the SLA counts from) to preparation and to the first
  dispatch (p50 and p90, over the orders that reached the stage); the short picks over the shipments
  whose picking started; the return requests (not withdrawn) over the delivered orders. A day's
  figures mature as its orders move on. Every order query is bounded by the `placed_at` index.
- Case KPIs follow the case's own dates: the cases resolved on each day and their resolution time
  (`resolved_at - opened_at`, p50 / p90; the partial index on `resolved_at`), the SLA-breach cases
  opened on each day, and the open cases by kind right now (the partial index of open cases).

Cost (PostgreSQL, 1,000,000 orders, ~18,000 in 14 days: ~90 ms, 9 queries whatever the size): one
pass over the period's orders on the `placed_at` index computes the counts per day, channel and
cancel reason and the stage-time percentiles per day and for the period (grouping sets); the child
tables (shipments, short picks, returns) are read on their order foreign-key index between the
cohort's first and last order id; the case figures read the partial indexes of open and resolved
cases only. No new index is needed for these definitions.

Percentiles are PostgreSQL's `percentile_cont` (linear interpolation); on SQLite (the embedded
`make run`) the same figures come from the ORM, with the interpolation computed in Python.
"""

import csv
import datetime
import io
import math
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import Aggregate, Count, DurationField, ExpressionWrapper, F, Max, Min, Q
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from fulfillment.models import Shipment, ShortPick
from orders.choices import CancelReason, CaseKind, CaseStatus, OrderStatus
from orders.models import Case, Channel, Order
from returns.choices import ReturnStatus
from returns.models import ReturnRequest

FRACTIONS = {"p50": 0.5, "p90": 0.9}
# name → (end field, start fields coalesced): the stage times the KPIs report.
ORDER_DURATIONS = {
    "payment_to_preparation": ("preparation_started_at", ("confirmed_at", "paid_at")),
    "payment_to_dispatch": ("first_shipped_at", ("confirmed_at", "paid_at")),
}
CASE_DURATIONS = {"resolution_time": ("resolved_at", ("opened_at",))}


class PercentileCont(Aggregate):
    """PostgreSQL's ordered-set aggregate: the interpolated `fraction` percentile (nulls ignored)."""

    function = "PERCENTILE_CONT"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression, *, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), output_field=DurationField(), **extra)


def _duration(end: str, starts: tuple[str, ...], prefix: str = ""):
    start = F(prefix + starts[0]) if len(starts) == 1 else Coalesce(*[F(prefix + name) for name in starts])
    return ExpressionWrapper(F(prefix + end) - start, output_field=DurationField())


def percentile(values: list, fraction: float):
    """`percentile_cont` in Python: linear interpolation between the two closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _percentiles(queryset, *, day_field: str, durations: dict, tz) -> tuple[dict, dict]:
    """({day: {name: {"p50", "p90"}}}, {name: {"p50", "p90"}}) for the durations of `queryset`'s rows."""
    empty = {name: dict.fromkeys(FRACTIONS) for name in durations}
    if connection.vendor == "postgresql":
        aggregates = {
            f"{name}__{key}": PercentileCont(_duration(end, starts), fraction=fraction)
            for name, (end, starts) in durations.items()
            for key, fraction in FRACTIONS.items()
        }
        rows = queryset.annotate(day=TruncDate(day_field, tzinfo=tz)).values("day").annotate(**aggregates).order_by()
        total = queryset.aggregate(**aggregates)

        def unpack(row):
            return {name: {key: row[f"{name}__{key}"] for key in FRACTIONS} for name in durations}

        return {row["day"]: unpack(row) for row in rows}, unpack(total)
    # SQLite: one query for the timestamps, the percentiles in Python.
    fields = sorted({day_field} | {f for end, starts in durations.values() for f in (end, *starts)})
    by_day: dict = defaultdict(lambda: defaultdict(list))
    overall: dict = defaultdict(list)
    for row in queryset.values(*fields):
        day = timezone.localtime(row[day_field], tz).date()
        for name, (end, starts) in durations.items():
            start = next((row[f] for f in starts if row[f] is not None), None)
            if row[end] is not None and start is not None:
                by_day[day][name].append(row[end] - start)
                overall[name].append(row[end] - start)

    def summarize(values_by_name):
        return {
            name: {key: percentile(values_by_name.get(name, []), fraction) for key, fraction in FRACTIONS.items()}
            for name in durations
        }

    return {day: summarize(values) for day, values in by_day.items()}, (summarize(overall) if overall else empty)


# One pass over the orders placed in the period (PostgreSQL): the counts per day, channel and
# cancel reason, and the stage-time percentiles per day and for the whole period, by grouping sets.
_ORDERS_PLACED_SQL = """
SELECT day, channel_code, channel_name, cancel_reason,
       GROUPING(channel_code) AS by_day, GROUPING(day) AS whole_period,
       COUNT(*) AS orders,
       COUNT(*) FILTER (WHERE status = %(canceled)s) AS canceled,
       COUNT(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered,
       MIN(id) AS first_id, MAX(id) AS last_id,
       PERCENTILE_CONT(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY preparation_started_at - paid) AS preparation,
       PERCENTILE_CONT(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY first_shipped_at - paid) AS dispatch
FROM (
    SELECT (o.placed_at AT TIME ZONE %(tz)s)::date AS day, c.code AS channel_code, c.name AS channel_name,
           o.cancel_reason, o.status, o.delivered_at, o.id, o.preparation_started_at, o.first_shipped_at,
           COALESCE(o.confirmed_at, o.paid_at) AS paid
    FROM {order} o JOIN {channel} c ON c.id = o.channel_id
    WHERE o.placed_at >= %(low)s AND o.placed_at < %(high)s AND NOT o.is_test
) cohort
GROUP BY GROUPING SETS ((day, channel_code, channel_name, cancel_reason), (day), ())
"""


def _orders_placed(low, high, tz) -> tuple[list[dict], dict, dict, tuple[int, int]]:
    """(rows per day × channel × cancel reason, stage times per day, for the period, (first id, last id))."""
    if connection.vendor == "postgresql":
        sql = _ORDERS_PLACED_SQL.format(order=Order._meta.db_table, channel=Channel._meta.db_table)
        params = {"tz": str(tz), "low": low, "high": high, "canceled": OrderStatus.CANCELED.value}
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            names = [column.name for column in cursor.description]
            result = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]

        def stages(row):
            return {
                name: dict(zip(FRACTIONS, row[name.split("_to_")[1]] or [None, None], strict=True))
                for name in ORDER_DURATIONS
            }

        rows = [row for row in result if not row["by_day"]]
        by_day = {row["day"]: stages(row) for row in result if row["by_day"] and not row["whole_period"]}
        total = next((row for row in result if row["whole_period"]), None)
        empty = {name: dict.fromkeys(FRACTIONS) for name in ORDER_DURATIONS}
        ids = (total["first_id"], total["last_id"]) if total and total["orders"] else (0, 0)
        return rows, by_day, stages(total) if total else empty, ids
    # SQLite (the embedded `make run`): the same figures through the ORM and Python.
    cohort = Order.objects.filter(placed_at__gte=low, placed_at__lt=high, is_test=False)
    rows = list(
        cohort.annotate(
            day=TruncDate("placed_at", tzinfo=tz), channel_code=F("channel__code"), channel_name=F("channel__name")
        )
        .values("day", "channel_code", "channel_name", "cancel_reason")
        .annotate(
            orders=Count("pk"),
            canceled=Count("pk", filter=Q(status=OrderStatus.CANCELED)),
            delivered=Count("pk", filter=Q(delivered_at__isnull=False)),
            first_id=Min("pk"),
            last_id=Max("pk"),
        )
        .order_by()
    )
    by_day, total = _percentiles(
        cohort.filter(Q(preparation_started_at__isnull=False) | Q(first_shipped_at__isnull=False)),
        day_field="placed_at",
        durations=ORDER_DURATIONS,
        tz=tz,
    )
    ids = (min(row["first_id"] for row in rows), max(row["last_id"] for row in rows)) if rows else (0, 0)
    return rows, by_day, total, ids


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _period_bounds(start: datetime.date, end: datetime.date, tz) -> tuple[datetime.datetime, datetime.datetime]:
    """[start 00:00, the day after end 00:00) in local time: `end` is included."""
    low = timezone.make_aware(datetime.datetime.combine(start, datetime.time.min), tz)
    high = timezone.make_aware(datetime.datetime.combine(end + datetime.timedelta(days=1), datetime.time.min), tz)
    return low, high


def kpis_compute(*, start: datetime.date, end: datetime.date) -> dict:
    """Every KPI for the days `start` to `end` (both included), per day and for the whole period.

    A constant number of queries whatever the period or the data size, each bounded by an index
    (see the module docstring for what each figure counts).
    """
    if end < start:
        raise ValueError("end is before start")
    tz = timezone.get_current_timezone()
    low, high = _period_bounds(start, end, tz)
    days = [start + datetime.timedelta(days=n) for n in range((end - start).days + 1)]
    now = timezone.now()

    rows, stage_by_day, stage_total, (first_id, last_id) = _orders_placed(low, high, tz)
    daily = {day: defaultdict(int) for day in days}
    channels: dict[str, dict] = {}
    reasons: dict[str, int] = defaultdict(int)
    for row in rows:
        day = daily.get(row["day"])
        if day is None:  # a DST edge case can only fall outside by an hour: ignore
            continue
        for key in ("orders", "canceled", "delivered"):
            day[key] += row[key]
        channel = channels.setdefault(
            row["channel_code"],
            {
                "code": row["channel_code"],
                "name": row["channel_name"],
                "daily": dict.fromkeys(days, 0),
                "canceled_daily": dict.fromkeys(days, 0),
            },
        )
        channel["daily"][row["day"]] += row["orders"]
        channel["canceled_daily"][row["day"]] += row["canceled"]
        if row["canceled"]:
            reasons[row["cancel_reason"] or CancelReason.OTHER.value] += row["canceled"]

    # The cohort's shipments whose picking started, its short picks and returns. The order ids of
    # the cohort bound each child table on its order foreign-key index (a range, not a hash of the
    # whole table); the join on placed_at keeps the figures exact whatever the ids.
    in_cohort = {
        "order_id__gte": first_id,
        "order_id__lte": last_id,
        "order__placed_at__gte": low,
        "order__placed_at__lt": high,
        "order__is_test": False,
    }
    picked = _count_by_day(
        # Picking cannot start before the order is placed: the lower bound uses the partial index.
        Shipment.objects.filter(picking_started_at__gte=low, **in_cohort),
        "order__placed_at",
        tz,
    )
    short_picks = _count_by_day(ShortPick.objects.filter(**in_cohort), "order__placed_at", tz)
    returns = _count_by_day(
        ReturnRequest.objects.filter(order__delivered_at__isnull=False, **in_cohort).exclude(
            status=ReturnStatus.CANCELED
        ),
        "order__placed_at",
        tz,
    )

    # Cases: resolved in the period (partial index on resolved_at), SLA breaches opened in it.
    resolved = Case.objects.filter(
        status=CaseStatus.RESOLVED, resolved_at__gte=low, resolved_at__lt=high, is_test=False
    )
    resolved_count = _count_by_day(resolved, "resolved_at", tz)
    resolution_by_day, resolution_total = _percentiles(
        resolved, day_field="resolved_at", durations=CASE_DURATIONS, tz=tz
    )
    # A breach opened in the period is either open now or resolved after the period started: both
    # halves are on a partial index (open cases; resolved_at), never on the whole case table.
    breaches = _count_by_day(
        Case.objects.filter(kind=CaseKind.SLA_BREACH, opened_at__gte=low, opened_at__lt=high, is_test=False).filter(
            ~Q(status=CaseStatus.RESOLVED) | Q(status=CaseStatus.RESOLVED, resolved_at__gte=low)
        ),
        "opened_at",
        tz,
    )
    open_rows = (
        Case.objects.exclude(status=CaseStatus.RESOLVED)
        .filter(is_test=False)
        .values("kind")
        .annotate(open=Count("pk"), overdue=Count("pk", filter=Q(due_at__lt=now)))
        .order_by()
    )
    open_by_kind = {row["kind"]: row for row in open_rows}

    def figures(orders, canceled, delivered, n_picked, n_short, n_returns, n_breaches, n_resolved, stages, resolution):
        return {
            "orders": orders,
            "canceled": canceled,
            "cancellation_rate": _ratio(canceled, orders),
            "delivered": delivered,
            "returns": n_returns,
            "return_rate": _ratio(n_returns, delivered),
            "picked_shipments": n_picked,
            "short_picks": n_short,
            "picking_error_rate": _ratio(n_short, n_picked),
            "payment_to_preparation": stages["payment_to_preparation"],
            "payment_to_dispatch": stages["payment_to_dispatch"],
            "sla_breaches": n_breaches,
            "cases_resolved": n_resolved,
            "resolution_time": resolution["resolution_time"],
        }

    no_stage = {name: dict.fromkeys(FRACTIONS) for name in ORDER_DURATIONS}
    no_resolution = {name: dict.fromkeys(FRACTIONS) for name in CASE_DURATIONS}
    per_day = [
        {
            "date": day,
            **figures(
                daily[day]["orders"],
                daily[day]["canceled"],
                daily[day]["delivered"],
                picked.get(day, 0),
                short_picks.get(day, 0),
                returns.get(day, 0),
                breaches.get(day, 0),
                resolved_count.get(day, 0),
                stage_by_day.get(day, no_stage),
                resolution_by_day.get(day, no_resolution),
            ),
        }
        for day in days
    ]
    totals = figures(
        *(
            sum(row[key] for row in per_day)
            for key in (
                "orders",
                "canceled",
                "delivered",
                "picked_shipments",
                "short_picks",
                "returns",
                "sla_breaches",
                "cases_resolved",
            )
        ),
        stage_total,
        resolution_total,
    )
    total_canceled = sum(reasons.values())
    return {
        "start": start,
        "end": end,
        "days": per_day,
        "totals": totals,
        "channels": sorted(
            (
                {
                    "code": channel["code"],
                    "name": channel["name"],
                    "orders": sum(channel["daily"].values()),
                    "canceled": sum(channel["canceled_daily"].values()),
                    "daily": [channel["daily"][day] for day in days],
                    "canceled_daily": [channel["canceled_daily"][day] for day in days],
                }
                for channel in channels.values()
            ),
            key=lambda channel: (-channel["orders"], channel["code"]),
        ),
        "cancel_reasons": sorted(
            (
                {
                    "reason": reason,
                    "label": _label(CancelReason, reason),
                    "count": count,
                    "share": count / total_canceled,
                }
                for reason, count in reasons.items()
            ),
            key=lambda item: (-item["count"], item["reason"]),
        ),
        "open_cases": [
            {
                "kind": kind.value,
                "label": kind.label,
                "open": open_by_kind[kind.value]["open"],
                "overdue": open_by_kind[kind.value]["overdue"],
            }
            for kind in CaseKind
            if kind.value in open_by_kind
        ],
        "open_cases_total": sum(row["open"] for row in open_by_kind.values()),
        "sla_breaches_open": open_by_kind.get(CaseKind.SLA_BREACH.value, {}).get("open", 0),
    }


def _label(choices, value: str) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return value


def _count_by_day(queryset, field: str, tz) -> dict[datetime.date, int]:
    return dict(
        queryset.annotate(day=TruncDate(field, tzinfo=tz)).values_list("day").annotate(n=Count("pk")).order_by()
    )


# --- the weekly CSV --------------------------------------------------------------------------------

CSV_HEADER = ["period", "date", "channel", "metric", "detail", "value", "unit"]
ALL_CHANNELS = "all"


def iso_week_bounds(week: str) -> tuple[datetime.date, datetime.date]:
    """'2026-W47' → (Monday, Sunday). Raises ValueError on anything else."""
    try:
        year, number = week.strip().upper().split("-W")
        monday = datetime.date.fromisocalendar(int(year), int(number), 1)
    except (ValueError, AttributeError) as error:
        raise ValueError(f"{week!r} is not an ISO week like 2026-W47") from error
    return monday, monday + datetime.timedelta(days=6)


def iso_week_label(day: datetime.date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def last_complete_week(today: datetime.date | None = None) -> str:
    today = today or timezone.localdate()
    return iso_week_label(today - datetime.timedelta(days=7))


def _hours(value: datetime.timedelta | None) -> str:
    if value is None:
        return ""
    return str((Decimal(value.total_seconds()) / 3600).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _percent(value: float | None) -> str:
    if value is None:
        return ""
    return str((Decimal(value) * 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _figure_rows(figures: dict) -> list[tuple[str, str, str]]:
    """(metric, value, unit) for one day's (or the period's) figures, all channels together."""
    rows = [
        ("orders", str(figures["orders"]), "orders"),
        ("canceled_orders", str(figures["canceled"]), "orders"),
        ("cancellation_rate", _percent(figures["cancellation_rate"]), "percent"),
    ]
    for name in ORDER_DURATIONS:
        rows += [(f"{name}_{key}", _hours(figures[name][key]), "hours") for key in FRACTIONS]
    rows += [
        ("picked_shipments", str(figures["picked_shipments"]), "shipments"),
        ("short_picks", str(figures["short_picks"]), "short_picks"),
        ("picking_error_rate", _percent(figures["picking_error_rate"]), "percent"),
        ("delivered_orders", str(figures["delivered"]), "orders"),
        ("return_requests", str(figures["returns"]), "returns"),
        ("return_rate", _percent(figures["return_rate"]), "percent"),
        ("sla_breaches_opened", str(figures["sla_breaches"]), "cases"),
        ("cases_resolved", str(figures["cases_resolved"]), "cases"),
    ]
    rows += [(f"case_resolution_time_{key}", _hours(figures["resolution_time"][key]), "hours") for key in FRACTIONS]
    return rows


def kpis_csv_rows(kpis: dict, *, period: str) -> list[list[str]]:
    """The flat ("long") layout: one row per period, date, channel, metric and detail.

    `date` is empty on the rows for the whole period; `channel` is a channel code or "all"; `detail`
    names the cancel reason or the case kind where the metric has one; `value` is a plain number
    (a dot for decimals, empty when there is nothing to measure), in `unit`. A pivot table on
    date × metric gives the daily sheet.
    """
    rows = []
    for day in kpis["days"]:
        date = day["date"].isoformat()
        rows += [[period, date, ALL_CHANNELS, metric, "", value, unit] for metric, value, unit in _figure_rows(day)]
        for channel in kpis["channels"]:
            index = kpis["days"].index(day)
            rows.append([period, date, channel["code"], "orders", "", str(channel["daily"][index]), "orders"])
            rows.append(
                [period, date, channel["code"], "canceled_orders", "", str(channel["canceled_daily"][index]), "orders"]
            )
    rows += [
        [period, "", ALL_CHANNELS, metric, "", value, unit] for metric, value, unit in _figure_rows(kpis["totals"])
    ]
    for channel in kpis["channels"]:
        rows.append([period, "", channel["code"], "orders", "", str(channel["orders"]), "orders"])
        rows.append([period, "", channel["code"], "canceled_orders", "", str(channel["canceled"]), "orders"])
    for reason in kpis["cancel_reasons"]:
        rows.append(
            [period, "", ALL_CHANNELS, "canceled_orders_by_reason", reason["reason"], str(reason["count"]), "orders"]
        )
    for kind in kpis["open_cases"]:
        rows.append([period, "", ALL_CHANNELS, "open_cases_at_export", kind["kind"], str(kind["open"]), "cases"])
    return rows


def kpis_weekly_csv(week: str) -> str:
    """The weekly CSV (UTF-8, comma-separated, one line per row, a header row) for an ISO week like '2026-W47'."""
    start, end = iso_week_bounds(week)
    kpis = kpis_compute(start=start, end=end)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(kpis_csv_rows(kpis, period=iso_week_label(start)))
    return buffer.getvalue()
