"""The cockpit's case queues, case page, order-page case actions, rules, SLAs and the merge screen."""

import datetime
import re

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from oms.cockpit import roles
from oms.core.actors import get_system_user
from orders import cases, identity, services
from orders.choices import CaseDecision, CaseKind, CaseLevel, CaseStatus, HoldReason, OrderEventType
from orders.models import AutomationRule, Case, Customer, SlaPolicy
from orders.tests.factories import make_user

pytestmark = pytest.mark.django_db

QUEUE = "/admin/orders/case/"


def case_url(case) -> str:
    return reverse("admin:orders_case_change", args=[case.pk])


def work_url(case, verb: str) -> str:
    return reverse("admin:orders_case_work", args=[case.pk, verb])


def order_url(order) -> str:
    return reverse("admin:orders_order_change", args=[order.pk])


def action_url(order, action: str) -> str:
    return reverse("admin:orders_order_action", args=[order.pk, action])


def page_messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def listed(response) -> list[str]:
    return re.findall(r"(CASE-\d{4}-\d{6})</a></th>", response.content.decode())


def buttons(response) -> set[str]:
    return set(re.findall(r'data-action="([a-z_]+)"', response.content.decode()))


def address_case(make_order, note="Street number missing"):
    order = make_order()
    hold = services.order_hold(order=order, actor=get_system_user(), reason=HoldReason.ADDRESS_CHECK, note=note)
    return order, Case.objects.get(source_key=f"hold:{hold.pk}")


def fraud_order(make_order):
    order = make_order(risk={"score": 90, "facts": ["Card country differs from IP", "New account"]})
    return order, Case.objects.get(order=order, kind=CaseKind.FRAUD_REVIEW)


def short_pick_case(order, n=1):
    case, _ = cases.case_open(
        kind=CaseKind.SHORT_PICK,
        source_key=f"short_pick:test-{order.pk}-{n}",
        title=f"Short pick: 1 × MUG-1 (test {n})",
        actor=get_system_user(),
        order=order,
        facts={"sku": "MUG-1", "missing": 1},
    )
    return case


# --- the queue -----------------------------------------------------------------------------------


def test_each_role_sees_only_the_cases_it_works(client, make_order):
    order, address = address_case(make_order)
    _fraud, fraud = fraud_order(make_order)
    short = short_pick_case(order)
    _other, escalated = address_case(make_order, note="Flat number unclear")
    cases.case_escalate(case=escalated, actor=make_user(roles.SUPPORT_L2), reason="Customer unreachable")

    expectations = {
        roles.SUPPORT_L1: {address.number},
        roles.SUPPORT_L2: {address.number, fraud.number, escalated.number},
        roles.WAREHOUSE: {short.number},
    }
    for role, expected in expectations.items():
        client.force_login(make_user(role))
        assert set(listed(client.get(QUEUE))) == expected, role

    client.force_login(make_user(roles.WAREHOUSE))
    # Not in the user's queues: the case page does not exist for them.
    response = client.get(case_url(fraud))
    assert response.status_code == 302 and response.url == reverse("admin:index")


def test_queue_shows_open_cases_by_default_most_urgent_first(client, make_order):
    _order, later = address_case(make_order)
    _order2, sooner = address_case(make_order)
    Case.objects.filter(pk=sooner.pk).update(due_at=timezone.now() - datetime.timedelta(hours=1))  # not audited
    order3, done = address_case(make_order)
    services.order_release_hold(hold=order3.holds.get(), actor=make_user(roles.SUPPORT_L2), note="Customer confirmed")
    client.force_login(make_user(roles.SUPPORT_L1))

    queue = client.get(QUEUE)
    resolved = client.get(QUEUE, {"state": "resolved"})
    overdue = client.get(QUEUE, {"overdue": "yes"})

    assert listed(queue) == [sooner.number, later.number]
    assert listed(resolved) == [done.number]
    assert listed(overdue) == [sooner.number]
    assert "oms-overdue" in queue.content.decode()


def test_mine_filter_lists_the_cases_assigned_to_me(client, make_order):
    _o1, mine = address_case(make_order)
    _o2, theirs = address_case(make_order)
    agent = make_user(roles.SUPPORT_L1)
    cases.case_assign(case=mine, actor=agent)
    client.force_login(agent)

    assert listed(client.get(QUEUE, {"assignee": "mine"})) == [mine.number]
    assert set(listed(client.get(QUEUE))) == {mine.number, theirs.number}


def test_queue_query_count_is_constant_and_never_counts_the_whole_table(client, make_order):
    agent = make_user(roles.SUPPORT_L2)
    client.force_login(agent)
    address_case(make_order)
    client.get(QUEUE)  # warm the caches (content types, sessions)
    with CaptureQueriesContext(connection) as few:
        assert client.get(QUEUE).status_code == 200
    for _ in range(4):
        _order, case = address_case(make_order)
        cases.case_assign(case=case, actor=agent)
        fraud_order(make_order)
    with CaptureQueriesContext(connection) as many:
        response = client.get(QUEUE)
    assert len(listed(response)) == 9
    assert len(many) == len(few)
    assert not [q for q in many if re.search(r'COUNT\(\*\).*FROM "orders_case"\s*$', q["sql"])]


def test_search_in_the_queue_finds_a_case_by_its_number_or_its_order(client, make_order):
    order, case = address_case(make_order)
    address_case(make_order)
    client.force_login(make_user(roles.SUPPORT_L1))

    assert listed(client.get(QUEUE, {"q": case.number.lower()})) == [case.number]
    assert listed(client.get(QUEUE, {"q": order.number})) == [case.number]


# --- the case page -------------------------------------------------------------------------------


def test_case_page_shows_facts_order_and_timeline_with_buttons_for_the_user(client, make_order):
    order, case = fraud_order(make_order)
    client.force_login(make_user(roles.SUPPORT_L2))

    page = client.get(case_url(case))

    content = page.content.decode()
    assert page.status_code == 200
    assert "Card country differs from IP" in content and "Risk score" in content
    assert order_url(order) in content
    assert 'id="oms-timeline"' in content and "Open" in content
    # The fraud case is closed by the clearing protocol on its order (one click from here), not by
    # "Resolve" while the hold is on.
    assert buttons(page) == {"take", "escalate", "clear_fraud"}
    assert f"/admin/orders/order/{order.pk}/action/clear_fraud/" in content


def test_take_assigns_the_case_to_me_with_a_history_row(client, make_order):
    _order, case = address_case(make_order)
    agent = make_user(roles.SUPPORT_L1)
    client.force_login(agent)

    response = client.post(work_url(case, "take"))

    assert response.status_code == 302 and response.url == case_url(case)
    case.refresh_from_db()
    assert (case.status, case.assignee) == (CaseStatus.IN_PROGRESS, agent)
    assert case.history.latest().history_user == agent
    page = client.get(case_url(case))
    assert "take" not in buttons(page)  # already mine


def test_escalating_needs_a_reason_then_the_case_leaves_the_l1_queue(client, make_order):
    order, case = address_case(make_order)
    agent = make_user(roles.SUPPORT_L1)
    client.force_login(agent)

    refused = client.post(work_url(case, "escalate"), {"reason": "  "})
    case.refresh_from_db()
    assert refused.status_code == 200 and "This field is required" in refused.content.decode()
    assert case.level == CaseLevel.L1

    done = client.post(work_url(case, "escalate"), {"reason": "Customer disputes the address"})

    assert done.status_code == 302 and done.url == QUEUE
    assert page_messages(done) == [f"Case {case.number} escalated to level 2: it left your queue."]
    case.refresh_from_db()
    assert (case.level, case.status, case.escalation_reason) == (
        CaseLevel.L2,
        CaseStatus.ESCALATED,
        "Customer disputes the address",
    )
    event = order.events.get(type=OrderEventType.CASE_ESCALATED)
    assert (event.actor, event.reason) == (agent, "Customer disputes the address")
    assert case.number not in listed(client.get(QUEUE))
    client.force_login(make_user(roles.SUPPORT_L2))
    assert buttons(client.get(case_url(case))) == {"take"}  # resolved by releasing its hold


def test_resolving_a_case_whose_hold_is_active_shows_the_service_message(client, make_order):
    _order, case = address_case(make_order)
    client.force_login(make_user(roles.SUPPORT_L1))

    response = client.post(work_url(case, "resolve"), {"decision": "fixed", "resolution": "Called the customer"})

    assert response.status_code == 200
    assert page_messages(response) == ["The hold is still active: release it (the case closes with it)."]
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN


def test_resolving_from_the_case_page_records_decision_and_resolution(client, make_order):
    order = make_order()
    case, _ = cases.case_open(
        kind=CaseKind.LOST_PARCEL, source_key="parcel:test", title="Lost parcel", actor=get_system_user(), order=order
    )
    agent = make_user(roles.SUPPORT_L1)
    client.force_login(agent)
    assert "resolve" in buttons(client.get(case_url(case)))  # nothing upstream keeps it open

    response = client.post(work_url(case, "resolve"), {"decision": "reshipped", "resolution": "Sent again"})

    assert response.status_code == 302
    case.refresh_from_db()
    assert (case.status, case.decision, case.resolution, case.resolved_by) == (
        CaseStatus.RESOLVED,
        CaseDecision.RESHIPPED,
        "Sent again",
        agent,
    )
    page = client.get(case_url(case)).content.decode()
    assert "Reshipped" in page and "Sent again" in page


def test_cases_cannot_be_added_or_edited_through_the_generic_form(client, make_order):
    _order, case = address_case(make_order)
    client.force_login(make_user(roles.ADMINISTRATOR))

    assert client.get(f"{QUEUE}add/").status_code == 403
    assert client.post(f"{QUEUE}{case.pk}/delete/").status_code == 403


# --- bulk actions --------------------------------------------------------------------------------


def test_bulk_assign_to_me(client, make_order):
    _o1, first = address_case(make_order)
    _o2, second = address_case(make_order)
    agent = make_user(roles.SUPPORT_L1)
    client.force_login(agent)

    response = client.post(QUEUE, {"action": "assign_to_me", "_selected_action": [first.pk, second.pk], "index": 0})

    assert response.status_code == 302
    assert set(Case.objects.filter(assignee=agent).values_list("number", flat=True)) == {first.number, second.number}


def test_bulk_escalate_asks_the_reason_on_an_intermediate_page(client, make_order):
    _o1, first = address_case(make_order)
    _o2, second = address_case(make_order)
    client.force_login(make_user(roles.SUPPORT_L1))
    selected = {"action": "escalate_selected", "_selected_action": [first.pk, second.pk]}

    asked = client.post(QUEUE, {**selected, "index": 0})
    assert asked.status_code == 200
    assert 'name="reason"' in asked.content.decode() and first.number in asked.content.decode()
    assert Case.objects.filter(level=CaseLevel.L2).count() == 0

    missing = client.post(QUEUE, {**selected, "apply": "1", "reason": ""})
    assert missing.status_code == 200 and Case.objects.filter(level=CaseLevel.L2).count() == 0

    done = client.post(QUEUE, {**selected, "apply": "1", "reason": "Needs a supervisor"})

    assert done.status_code == 302
    assert set(Case.objects.filter(level=CaseLevel.L2).values_list("escalation_reason", flat=True)) == {
        "Needs a supervisor"
    }


def test_bulk_resolve_reports_each_refusal_as_a_message(client, make_order):
    order = make_order()
    lost, _ = cases.case_open(
        kind=CaseKind.LOST_PARCEL, source_key="parcel:bulk", title="Lost", actor=get_system_user(), order=order
    )
    _o2, held = address_case(make_order)
    client.force_login(make_user(roles.SUPPORT_L1))

    done = client.post(
        QUEUE,
        {
            "action": "resolve_selected",
            "_selected_action": [lost.pk, held.pk],
            "apply": "1",
            "decision": "claim_filed",
            "resolution": "Claim 42",
        },
    )

    assert done.status_code == 302
    lost.refresh_from_db()
    held.refresh_from_db()
    assert (lost.status, held.status) == (CaseStatus.RESOLVED, CaseStatus.OPEN)
    assert page_messages(done) == [
        f"Resolved: {lost.number}.",
        f"{held.number}: The hold is still active: release it (the case closes with it).",
    ]


def test_warehouse_has_no_escalate_or_resolve_for_cases_it_does_not_work(client, make_order):
    order = make_order()
    short_pick_case(order)
    client.force_login(make_user(roles.WAREHOUSE))
    content = client.get(QUEUE).content.decode()
    assert 'value="assign_to_me"' in content


# --- the order page ------------------------------------------------------------------------------


def test_clear_fraud_is_offered_only_with_its_permission_and_needs_a_reason(client, make_order):
    order, case = fraud_order(make_order)
    client.force_login(make_user(roles.SUPPORT_L1))
    assert "clear_fraud" not in buttons(client.get(order_url(order)))
    assert client.get(action_url(order, "clear_fraud")).status_code == 302  # not offered: back to the order
    refused = client.post(action_url(order, "clear_fraud"), {"reason": "Looks fine"})
    assert "You do not have permission to clear fraud reviews." in page_messages(refused)
    assert order.holds.filter(released_at__isnull=True).count() == 1

    agent = make_user(roles.SUPPORT_L2)
    client.force_login(agent)
    page = client.get(order_url(order))
    assert "clear_fraud" in buttons(page)
    panel = page.context["cases_panel"]
    assert [row["case"].number for row in panel["cases"]] == [case.number]
    html = render_to_string("admin/orders/case/order_panel.html", {"cases_panel": panel})
    assert case.number in html and case_url(case) in html and "1 open" in html
    missing = client.post(action_url(order, "clear_fraud"), {"reason": ""})
    assert missing.status_code == 200 and order.holds.filter(released_at__isnull=True).count() == 1

    done = client.post(action_url(order, "clear_fraud"), {"reason": "Customer confirmed by phone"})

    assert done.status_code == 302 and done.url == order_url(order)
    assert order.holds.filter(released_at__isnull=True).count() == 0
    cleared = order.events.get(type=OrderEventType.FRAUD_CLEARED)
    assert (cleared.actor, cleared.reason) == (agent, "Customer confirmed by phone")
    case.refresh_from_db()
    assert (case.status, case.decision) == (CaseStatus.RESOLVED, CaseDecision.FALSE_POSITIVE)
    assert "clear_fraud" not in buttons(client.get(order_url(order)))


def test_open_escalation_case_from_the_order_page(client, make_order):
    order = make_order()
    agent = make_user(roles.SUPPORT_L1)
    client.force_login(agent)
    assert "open_escalation" in buttons(client.get(order_url(order)))

    done = client.post(
        action_url(order, "open_escalation"), {"subtype": "medical", "level": "l1", "reason": "Insulin in the parcel"}
    )

    assert done.status_code == 302
    case = Case.objects.get(order=order, kind=CaseKind.ESCALATION)
    assert (case.facts["subtype"], case.opened_by, case.level) == ("medical", agent, CaseLevel.L1)
    assert case.title == "Medical emergency: Insulin in the parcel"
    again = client.post(action_url(order, "open_escalation"), {"subtype": "medical", "level": "l1", "reason": "Again"})
    assert page_messages(again)[-1] == f"Case {case.number} is already open for this escalation."
    assert Case.objects.filter(order=order, kind=CaseKind.ESCALATION).count() == 1
    # A level 1 agent cannot open a level 2 case: the level is not offered.
    form = client.get(action_url(order, "open_escalation")).context["form"]
    assert [value for value, _label in form.fields["level"].choices] == ["l1"]


def test_warehouse_cannot_open_escalations(client, make_order):
    order = make_order()
    client.force_login(make_user(roles.WAREHOUSE))
    assert not {"open_escalation", "clear_fraud"} & buttons(client.get(order_url(order)))


# --- rules and SLAs ------------------------------------------------------------------------------


def rule_data(**overrides):
    data = {
        "name": "Big orders",
        "description": "",
        "is_active": "on",
        "trigger": "order_placed",
        "priority": "100",
        "min_total": "",
        "max_total": "",
        "countries": "",
        "customer_tags": "",
        "skus": "",
        "min_risk_score": "",
        "add_tag": "",
        "hold_reason": "",
        "case_kind": "",
        "case_level": "l1",
        "notify_emails": "",
        "risk_score": "",
        "firings-TOTAL_FORMS": "0",
        "firings-INITIAL_FORMS": "0",
        "firings-MIN_NUM_FORMS": "0",
        "firings-MAX_NUM_FORMS": "0",
    }
    data.update(overrides)
    return data


def test_rule_form_shows_the_rule_check_errors_and_saves_with_history(client, channel):
    agent = make_user(roles.SUPPORT_L2)
    client.force_login(agent)
    add = reverse("admin:orders_automationrule_add")

    refused = client.post(add, rule_data(countries="France"))
    assert refused.status_code == 200
    errors = refused.context["adminform"].form.errors
    assert errors["add_tag"] == ["Set at least one action: tag, hold, case, notify or risk score."]
    assert errors["countries"] == ["'FRANCE' is not a two-letter country code."]
    assert not AutomationRule.objects.exists()

    saved = client.post(add, rule_data(min_total="500", add_tag="big", countries="FR"))

    assert saved.status_code == 302
    rule = AutomationRule.objects.get()
    assert (rule.add_tag, rule.countries) == ("big", "FR")
    assert rule.history.get().history_user == agent
    listing = client.get(reverse("admin:orders_automationrule_changelist")).content.decode()
    assert "Big orders" in listing and "tag big" in listing


def test_rule_page_lists_its_firings(client, make_order):
    rule = AutomationRule.objects.create(name="Tag all", trigger="order_placed", add_tag="seen")
    order = make_order()
    firing = rule.firings.get()  # fired on the order's placement
    client.force_login(make_user(roles.SUPPORT_L2))

    page = client.get(reverse("admin:orders_automationrule_change", args=[rule.pk])).content.decode()
    listing = client.get(reverse("admin:orders_automationrule_changelist")).content.decode()

    assert order.number in page and firing.order_id == order.pk
    assert f'?rule__id__exact={rule.pk}">1</a>' in listing


def test_sla_policy_is_edited_in_hours(client, channel):
    client.force_login(make_user(roles.SUPPORT_L2))

    response = client.post(
        reverse("admin:orders_slapolicy_add"),
        {"channel": channel.pk, "payment_to_preparation": "12", "preparation_to_dispatch": "36.5", "refund": "48"},
    )

    assert response.status_code == 302
    policy = SlaPolicy.objects.get(channel=channel)
    assert (policy.payment_to_preparation, policy.preparation_to_dispatch) == (
        datetime.timedelta(hours=12),
        datetime.timedelta(hours=36, minutes=30),
    )
    listing = client.get(reverse("admin:orders_slapolicy_changelist")).content.decode()
    assert "12 h" in listing and "36.5 h" in listing
    edit = client.get(reverse("admin:orders_slapolicy_change", args=[policy.pk]))
    assert edit.context["adminform"].form.initial["refund"] == 48


def test_support_l1_cannot_edit_rules_or_slas(client, channel):
    client.force_login(make_user(roles.SUPPORT_L1))
    assert client.get(reverse("admin:orders_automationrule_add")).status_code == 403
    assert client.get(reverse("admin:orders_slapolicy_add")).status_code == 403


# --- possible duplicates -------------------------------------------------------------------------


def test_duplicates_page_merges_a_group(client, make_order):
    first = make_order(customer={"email": "ann@example.com", "first_name": "Ann", "phone": "06 12 34 56 78"})
    second = make_order(customer={"email": "ann.lee@example.com", "first_name": "Ann", "phone": "+33 6 12 34 56 78"})
    keep, other = (identity.customer_keys_refresh(customer=o.customer) for o in (first, second))
    assert keep.phone_key == other.phone_key == "33612345678"
    url = reverse("admin:orders_customer_duplicates")
    client.force_login(make_user(roles.SUPPORT_L1))
    assert client.get(url).status_code == 403
    agent = make_user(roles.SUPPORT_L2)
    client.force_login(agent)
    page = client.get(url).content.decode()
    assert keep.email in page and other.email in page

    done = client.post(
        url, {"group": f"{keep.pk},{other.pk}", "keep": keep.pk, "merge": [other.pk], "reason": "Same person"}
    )

    assert done.status_code == 302 and done.url == reverse("admin:orders_customer_change", args=[keep.pk])
    other = Customer.objects.get(pk=other.pk)
    assert other.merged_into_id == keep.pk
    second.refresh_from_db()
    assert second.customer_id == keep.pk
    assert 'id="oms-duplicates-link"' in client.get(reverse("admin:orders_customer_changelist")).content.decode()


def test_case_history_page_opens_for_who_works_the_case(client, make_order):
    _order, case = address_case(make_order)
    agent = make_user(roles.SUPPORT_L1)
    cases.case_assign(case=case, actor=agent)
    client.force_login(agent)

    history = client.get(reverse("admin:orders_case_history", args=[case.pk]))

    assert history.status_code == 200 and agent.username in history.content.decode()
