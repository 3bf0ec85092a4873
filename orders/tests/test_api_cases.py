"""The cases API and the clear-fraud action: the cockpit's services, scoped to the user's queues."""

import pytest

from oms.cockpit import roles
from oms.core.actors import get_system_user
from orders import services
from orders.models import Case
from orders.tests.api_fixtures import post_action, token_client
from orders.tests.factories import make_user, order_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def risky(channel):
    order, _ = services.order_create(
        actor=get_system_user(), **order_payload(risk={"score": 93, "facts": ["Card BIN from another country"]})
    )
    return order


def test_clear_fraud_needs_the_permission_and_a_reason_and_answers_with_the_order(risky):
    l1, l2 = make_user(roles.SUPPORT_L1), make_user(roles.SUPPORT_L2)
    assert post_action(token_client(l1), risky, "clear-fraud", {"reason": "ok"}).status_code == 403
    missing = post_action(token_client(l2), risky, "clear-fraud", {})
    assert missing.status_code == 400 and "reason" in missing.json()["extra"]["fields"]

    response = post_action(token_client(l2), risky, "clear-fraud", {"reason": "3-D Secure passed; genuine"})
    assert response.status_code == 200
    body = response.json()
    assert body["customer_label"] == "Confirmed"
    assert [hold["is_active"] for hold in body["holds"]] == [False]
    assert {"fraud_cleared", "case_resolved"} <= {event["type"] for event in body["events"]}
    again = post_action(token_client(l2), risky, "clear-fraud", {"reason": "again"})
    assert (again.status_code, again.json()["code"]) == (409, "not_under_review")


def test_the_case_list_shows_only_the_users_queues(risky):
    services.order_hold(order=risky, actor=get_system_user(), reason="address_check", note="Bad postcode")
    l1, l2, warehouse = make_user(roles.SUPPORT_L1), make_user(roles.SUPPORT_L2), make_user(roles.WAREHOUSE)

    def kinds(user, query=""):
        response = token_client(user).get(f"/api/v1/cases/{query}")
        assert response.status_code == 200
        return sorted(case["kind"] for case in response.json()["results"])

    assert kinds(l1) == ["address_check"]
    assert kinds(l2) == ["address_check", "fraud_review"]
    assert kinds(warehouse) == []
    assert kinds(l2, "?kind=fraud_review") == ["fraud_review"]
    bad = token_client(l2).get("/api/v1/cases/?level=l3")
    assert bad.status_code == 400 and "level" in bad.json()["extra"]["fields"]
    fraud = Case.objects.get(kind="fraud_review")
    assert token_client(l1).get(f"/api/v1/cases/{fraud.number}/").status_code == 404
    detail = token_client(l2).get(f"/api/v1/cases/{fraud.number}/").json()
    assert (detail["order"], detail["facts"]["risk_score"], detail["team"]) == (risky.number, 93, "fraud")


def test_take_escalate_and_resolve_through_the_api(risky):
    hold = services.order_hold(order=risky, actor=get_system_user(), reason="address_check", note="n")
    case = Case.objects.get(kind="address_check")
    l1, l2 = make_user(roles.SUPPORT_L1), make_user(roles.SUPPORT_L2)
    client = token_client(l1)
    url = f"/api/v1/cases/{case.number}/"

    taken = client.post(url + "assign/", {}, format="json")
    assert (taken.status_code, taken.json()["status"], taken.json()["assignee"]) == (200, "in_progress", l1.username)
    nobody = client.post(url + "assign/", {"assignee": "ghost"}, format="json")
    assert nobody.status_code == 400 and "assignee" in nobody.json()["extra"]["fields"]
    assert client.post(url + "escalate/", {}, format="json").status_code == 400
    escalated = client.post(url + "escalate/", {"reason": "Needs a refund decision"}, format="json")
    assert (escalated.status_code, escalated.json()["level"], escalated.json()["status"]) == (200, "l2", "escalated")
    # Out of L1's queues now.
    assert client.post(url + "assign/", {}, format="json").status_code == 404

    l2_client = token_client(l2)
    blocked = l2_client.post(url + "resolve/", {"decision": "fixed", "resolution": "Done"}, format="json")
    assert (blocked.status_code, blocked.json()["code"]) == (409, "source_still_open")
    services.order_release_hold(hold=hold, actor=l2, note="Postcode fixed with the customer")
    resolved = l2_client.get(url).json()
    assert (resolved["status"], resolved["resolution"]) == ("resolved", "Postcode fixed with the customer")
    bad = l2_client.post(url + "resolve/", {"decision": "maybe", "resolution": "x"}, format="json")
    assert bad.status_code == 400 and "decision" in bad.json()["extra"]["fields"]
    again = l2_client.post(url + "resolve/", {"decision": "fixed", "resolution": "x"}, format="json")
    assert (again.status_code, again.json()["code"]) == (409, "case_resolved")
