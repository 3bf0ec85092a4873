"""Fraud details (risk score and facts, fraud notes and reasons) are for those who work fraud.

A Support L1 agent cannot open fraud cases; they see that an order is held for a fraud review, not
why, on every screen that shows the order. A Support L2 agent (orders.work_fraud_case) reads it all.
"""

import html

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from oms.cockpit import roles
from oms.core.actors import get_system_user
from orders import automation, services
from orders.choices import HoldReason, OrderEventType, OrderStatus
from orders.models import AutomationRule, OrderHold, RuleFiring
from orders.tests.factories import make_user, order_payload
from orders.tests.states import order_in_state

CHANNEL_FACTS = ["IP country differs", "Three cards tried in ten minutes"]
FLAG_REASON = "Card country differs from the IP"
WITHHELD = "Fraud details are for the fraud team."


@pytest.fixture
def world(channel):
    system = get_system_user()
    l1 = make_user(roles.SUPPORT_L1, username="l1")
    l2 = make_user(roles.SUPPORT_L2, username="l2")
    rule = AutomationRule(
        name="Belgian orders", description="Seen on stolen cards", trigger="order_placed", countries="BE", risk_score=77
    )
    automation.rule_clean(rule)
    rule.save()
    # Held at intake for the channel's score, with its facts in the hold's note and the fraud case.
    risky, _ = services.order_create(actor=system, **order_payload(risk={"score": 91, "facts": CHANNEL_FACTS}))
    # Flagged by hand with a reason and a score.
    flagged = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=system)
    flagged = services.order_flag_for_review(order=flagged, actor=l2, reason=FLAG_REASON, risk_score=85)
    # Scored by an automation rule.
    scored, _ = services.order_create(
        actor=system, **order_payload(billing_address={**order_payload()["billing_address"], "country": "BE"})
    )
    scored.refresh_from_db()
    assert (risky.risk_score, flagged.risk_score, scored.risk_score) == (91, 85, 77)
    return {"l1": l1, "l2": l2, "risky": risky, "flagged": flagged, "scored": scored}


def page(user, url: str) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return html.unescape(response.content.decode())


def order_page(user, order) -> str:
    return page(user, reverse("admin:orders_order_change", args=[order.pk]))


def secrets_in(text: str) -> list[str]:
    secrets = [*CHANNEL_FACTS, FLAG_REASON, "Risk score", "'risk_score': 77", '"risk_score": 77', "risk score: 77"]
    return [secret for secret in secrets if secret in text]


def test_an_l1_agent_reads_on_the_order_page_that_an_order_is_held_for_fraud_review_but_not_why(world):
    risky = order_page(world["l1"], world["risky"])
    flagged = order_page(world["l1"], world["flagged"])
    scored = order_page(world["l1"], world["scored"])

    assert secrets_in(risky) == secrets_in(flagged) == secrets_in(scored) == []
    assert "Fraud review" in risky  # the hold's reason and the case's kind
    assert WITHHELD in risky and WITHHELD in flagged and WITHHELD in scored
    assert "Flagged for review" in flagged and "Under review" in flagged


def test_a_fraud_worker_reads_the_score_facts_and_notes_on_the_order_page(world):
    risky = order_page(world["l2"], world["risky"])
    flagged = order_page(world["l2"], world["flagged"])
    scored = order_page(world["l2"], world["scored"])

    assert "Risk score" in risky and "91" in risky
    assert all(fact in risky for fact in CHANNEL_FACTS)  # the hold's note and the fraud case's title
    assert FLAG_REASON in flagged and "85" in flagged
    assert "'risk_score': 77" in scored  # the rule's action on the timeline
    assert WITHHELD not in risky + flagged + scored


@pytest.mark.parametrize(
    "url",
    [
        reverse("admin:orders_order_changelist"),
        reverse("admin:orders_orderhold_changelist"),
        reverse("admin:orders_orderevent_changelist"),
        reverse("admin:orders_rulefiring_changelist"),
    ],
    ids=["orders", "holds", "events", "rule firings"],
)
def test_the_lists_keep_the_fraud_details_to_fraud_workers(world, url):
    for_l1 = page(world["l1"], url)
    for_l2 = page(world["l2"], url)

    assert secrets_in(for_l1) == []
    assert secrets_in(for_l2) != []


def test_the_event_hold_and_rule_firing_pages_keep_the_fraud_details_to_fraud_workers(world):
    hold = OrderHold.objects.get(order=world["risky"], reason=HoldReason.FRAUD_REVIEW)
    event = world["flagged"].events.get(type=OrderEventType.FLAGGED_FOR_REVIEW)
    firing = RuleFiring.objects.get(order=world["scored"])
    hold_url = reverse("admin:orders_orderhold_change", args=[hold.pk])
    event_url = reverse("admin:orders_orderevent_change", args=[event.pk])
    firing_url = reverse("admin:orders_rulefiring_change", args=[firing.pk])
    rule_url = reverse("admin:orders_automationrule_change", args=[firing.rule_id])

    for_l1 = page(world["l1"], hold_url) + page(world["l1"], event_url) + page(world["l1"], firing_url)
    assert secrets_in(for_l1) == []
    assert "risk score: 77" not in page(world["l1"], rule_url)  # the rule's own settings stay readable
    assert "risk score raised (for the fraud team)" in for_l1
    assert CHANNEL_FACTS[0] in page(world["l2"], hold_url)
    assert FLAG_REASON in page(world["l2"], event_url)
    assert '"risk_score": 77' in page(world["l2"], firing_url)
    assert "risk score: 77" in page(world["l2"], rule_url)  # the rule's latest firings


def test_the_order_history_keeps_the_score_and_the_review_reason_to_fraud_workers(world):
    url = reverse("admin:orders_order_history", args=[world["flagged"].pk])

    for_l1 = page(world["l1"], url)
    for_l2 = page(world["l2"], url)

    assert secrets_in(for_l1) == []
    assert "Under review" in for_l1 or "under_review" in for_l1  # the status change itself is shown
    assert FLAG_REASON in for_l2 and "Risk score" in for_l2


def test_the_order_api_keeps_the_fraud_details_to_fraud_workers(world):
    def detail(user) -> dict:
        client = APIClient()
        client.force_authenticate(user)
        response = client.get(f"/api/v1/orders/{world['risky'].number}/")
        assert response.status_code == 200, response.content
        return response.json()

    for_l1, for_l2 = detail(world["l1"]), detail(world["l2"])

    assert (for_l1["risk_score"], for_l1["risk_facts"]) == (None, [])
    (l1_hold,) = [hold for hold in for_l1["holds"] if hold["reason"] == HoldReason.FRAUD_REVIEW]
    assert (l1_hold["reason_display"], l1_hold["note"], l1_hold["is_active"]) == ("Fraud review", "", True)
    assert secrets_in(str(for_l1)) == []
    assert "hold_placed" in [event["type"] for event in for_l1["events"]]  # the event, not its note
    assert for_l2["risk_score"] == 91
    assert [fact["fact"] for fact in for_l2["risk_facts"]] == CHANNEL_FACTS
    assert all(fact in str(for_l2) for fact in CHANNEL_FACTS)
