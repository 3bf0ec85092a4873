"""The cockpit home page: case queues per role, SLA breaches, KPI charts, in a constant number of queries."""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from oms.cockpit.dashboard import _nice_max, bar_chart, line_chart
from oms.cockpit.roles import FINANCE, SUPPORT_L1
from oms.core.actors import get_system_user
from oms.core.history import stamp
from orders import cases, services
from orders.choices import CaseKind, CaseLevel, HoldReason
from orders.models import Channel
from orders.tests.factories import make_user

pytestmark = pytest.mark.django_db

HOME = "/admin/"
MAX_HOME_QUERIES = 30


def open_case(kind, key, *, level=CaseLevel.L1, overdue=False, order=None):
    due = timezone.now() + datetime.timedelta(hours=-2 if overdue else 4)
    case, created = cases.case_open(
        kind=kind, source_key=key, title=key, actor=get_system_user(), order=order, level=level, due_at=due
    )
    assert created
    return case


def block(html: str, element_id: str, end: str = "div|section") -> str:
    match = re.search(rf'id="{element_id}".*?</(?:{end})>', html, re.S)
    return match.group(0) if match else ""


def queue_cell(html: str, kind: str, level: str) -> str:
    row = re.search(rf'<tr data-kind="{kind}">(.*?)</tr>', block(html, "oms-case-queues"), re.S)
    assert row, f"no row for {kind}"
    cell = re.search(rf'<td class="num" data-level="{level}">(.*?)</td>', row.group(1), re.S)
    return cell.group(1) if cell else ""


def test_support_l1_sees_the_counts_of_its_queues_only(client, make_order):
    support = make_user(SUPPORT_L1)
    open_case(CaseKind.ESCALATION, "vip:1")
    open_case(CaseKind.ESCALATION, "vip:2", overdue=True)
    open_case(CaseKind.ESCALATION, "vip:3", level=CaseLevel.L2)  # L2: not this agent's queue
    open_case(CaseKind.FRAUD_REVIEW, "fraud:1")
    open_case(CaseKind.PAYMENT_OVERDUE, "overdue:INV-1")
    order = make_order()
    services.order_hold(order=order, actor=get_system_user(), reason=HoldReason.ADDRESS_CHECK, note="No number")

    client.force_login(support)
    html = client.get(HOME).content.decode()

    queues = block(html, "oms-case-queues")
    assert queues, "the case queues block is missing"
    changelist = reverse("admin:orders_case_changelist")
    escalations = queue_cell(html, "escalation", "l1")
    assert f'href="{changelist}?kind__exact=escalation&amp;level__exact=l1"' in escalations
    assert ">2</a>" in escalations and "oms-badge--alert" in escalations and ">1</span>" in escalations
    address = queue_cell(html, "address_check", "l1")
    assert ">1</a>" in address and "oms-badge" not in address
    assert 'data-level="l2"' not in queues  # Support L1 works level 1 only
    for other_team in ("fraud_review", "payment_overdue", "short_pick", "credit_hold", "integration_failure"):
        assert f'data-kind="{other_team}"' not in queues


def test_finance_sees_its_queues_and_not_the_support_queues(client):
    finance = make_user(FINANCE)
    open_case(CaseKind.PAYMENT_OVERDUE, "overdue:INV-1", overdue=True)
    open_case(CaseKind.ESCALATION, "vip:1")
    client.force_login(finance)
    html = client.get(HOME).content.decode()
    assert ">1</a>" in queue_cell(html, "payment_overdue", "l1")
    assert 'data-kind="escalation"' not in block(html, "oms-case-queues")


def test_sla_breaches_open_and_opened_this_week(client, make_order):
    support = make_user(SUPPORT_L1)
    orders = [make_order() for _ in range(3)]
    old = open_case(CaseKind.SLA_BREACH, "sla:preparation:1", order=orders[0])
    # Opened 10 days ago (stamped for the clock only): open, but not of the last 7 days.
    old.opened_at = timezone.now() - datetime.timedelta(days=10)
    stamp(old, actor=get_system_user(), reason="Test clock")
    old.save(update_fields=["opened_at"])
    open_case(CaseKind.SLA_BREACH, "sla:dispatch:2", order=orders[1])
    resolved = open_case(CaseKind.SLA_BREACH, "sla:refund:3", order=orders[2])
    cases.case_resolve(case=resolved, actor=support, decision="fixed", resolution="Refund sent")
    test_order = make_order(is_test=True)
    open_case(CaseKind.SLA_BREACH, "sla:preparation:test", order=test_order)  # a test order's: not counted

    client.force_login(support)
    html = client.get(HOME).content.decode()
    sla = block(html, "oms-sla")
    assert f'href="{reverse("admin:orders_case_changelist")}?kind__exact=sla_breach"' in sla
    figures = re.findall(r'<td class="num">(?:<span[^>]*>)?(\d+)', sla)
    assert figures == ["2", "2"]  # open now: old + dispatch; opened in 7 days: dispatch + the resolved one


def test_kpi_section_has_charts_a_table_and_the_csv_link(client, make_order):
    support = make_user(SUPPORT_L1)
    Channel.objects.create(code="market", name="Marketplace", kind="marketplace")
    make_order()
    make_order(channel="market")
    canceled = make_order()
    services.order_cancel(order=canceled, actor=get_system_user(), reason_code="customer_request", reason="Asked")
    make_order(is_test=True)

    client.force_login(support)
    html = client.get(HOME).content.decode()
    kpis = html[html.index('id="oms-kpis"') :]
    assert kpis.count('<figure class="oms-chart"') == 5 and kpis.count('<svg viewBox="0 0 640 230"') == 5
    orders_chart = block(kpis, "oms-chart-orders", end="figure")
    # Today's stacked bar: web 2 + marketplace 1, labeled with the total; the legend names channels.
    assert re.search(r'<text class="oms-chart__value"[^>]*>3</text>', orders_chart)
    assert "Web store" in orders_chart and "Marketplace" in orders_chart
    assert "<title>" in orders_chart and "Web store: 2" in orders_chart
    table = block(kpis, "oms-kpi-table")
    today_row = re.findall(r"<tr>\s*<th scope=\"row\">.*?</tr>", table, re.S)[-1]
    assert re.findall(r'<td class="num">([^<]*)</td>', today_row)[:3] == ["3", "1", "33.3"]
    assert "Customer request" in kpis
    csv_url = reverse("cockpit_kpis_weekly_csv")
    assert f'href="{csv_url}?week=' in kpis


def test_a_user_without_view_order_sees_no_kpis_and_no_queues(client):
    nobody = make_user()
    client.force_login(nobody)
    html = client.get(HOME).content.decode()
    assert 'id="oms-dashboard"' not in html and 'id="oms-kpis"' not in html


def home_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(HOME).status_code == 200
    return len(queries)


def grow(make_order, n: int) -> None:
    system = get_system_user()
    for i in range(n):
        order = make_order(channel="market" if i % 2 else "web")
        if i % 3 == 0:
            services.order_start_preparation(order=order, actor=system)
        elif i % 3 == 1:
            services.order_cancel(order=order, actor=system, reason_code="out_of_stock", reason="None left")
        open_case(CaseKind.ESCALATION, f"vip:{n}:{i}", overdue=bool(i % 2))
        open_case(CaseKind.SLA_BREACH, f"sla:{n}:{i}", order=order)


def test_the_home_page_runs_a_constant_number_of_queries(client, make_order, django_assert_max_num_queries):
    Channel.objects.create(code="market", name="Marketplace", kind="marketplace")
    support = make_user(SUPPORT_L1)
    client.force_login(support)
    grow(make_order, 1)
    with django_assert_max_num_queries(MAX_HOME_QUERIES):
        small = home_queries(client)
    grow(make_order, 12)
    with django_assert_max_num_queries(MAX_HOME_QUERIES):
        large = home_queries(client)
    assert small == large


def test_nice_axis_maximum():
    assert [_nice_max(v) for v in (0, 0.4, 1, 3, 7, 12, 24, 240)] == [1, 0.5, 1, 5, 10, 20, 25, 250]


def test_bar_chart_stacks_and_labels_totals():
    chart = bar_chart(
        chart_id="x", title="t", labels=["a", "b"], series=[("web", [2, 0]), ("market", [2, 0])], stacked=True
    )
    assert [value["text"] for value in chart["values"]] == ["4", "0"]
    assert len(chart["bars"]) == 2  # no empty rectangle for zeros
    web, market = chart["bars"]
    assert web["y"] + web["height"] == pytest.approx(chart["baseline"])  # the first series sits on the axis
    assert market["y"] + market["height"] == pytest.approx(web["y"])  # the next one on top of it
    assert chart["grid"][-1]["label"] == "5" and not chart["empty"]


def test_line_chart_breaks_where_a_day_has_no_value():
    chart = line_chart(chart_id="x", title="t", labels=["a", "b", "c", "d"], series=[("p50", [1.0, None, 2.0, 3.0])])
    assert [len(line["points"].split()) for line in chart["lines"]] == [1, 2]
    assert [value["text"] for value in chart["values"]] == ["1.0", "2.0", "3.0"]
    assert line_chart(chart_id="y", title="t", labels=["a"], series=[("p50", [None])])["empty"]
