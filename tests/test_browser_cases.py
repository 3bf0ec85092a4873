"""Working cases in a real headless Chromium.

A support agent finds a held order by its parcel's tracking number from the header's search box,
clears the fraud hold with a reason and reads the timeline; escalates a level 1 case to level 2 and
sees it on the order's timeline. A level 1 agent escalates a case and sees it leave their queue. A
warehouse user sees their short picks, no fraud case, and nothing about refunds."""

import pytest

from fulfillment import services as fulfillment
from fulfillment.models import Shipment, ShortPick
from fulfillment.tests.fixtures import make_two_locations, prepared_order
from oms.cockpit import roles
from oms.core.actors import get_system_user
from orders import services
from orders.choices import CaseKind, CaseLevel, CaseStatus, HoldReason, OrderEventType
from orders.models import Case
from orders.tests.factories import make_user
from tests.browser import BROWSER_MARKS

pytestmark = BROWSER_MARKS


@pytest.fixture
def _quiet_settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.OMS_NOTIFICATION_GROUP_SECONDS = 0


def log_in(browser, live_server, username):
    page = browser.new_page()
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_selector("#oms-global-search")
    return page


def timeline(page) -> str:
    return page.locator("#oms-timeline").inner_text()


def queue_numbers(page) -> set[str]:
    return set(page.locator("#result_list tbody th a").all_inner_texts())


def held_for_address(order):
    hold = services.order_hold(
        order=order, actor=get_system_user(), reason=HoldReason.ADDRESS_CHECK, note="No street number"
    )
    return Case.objects.get(source_key=f"hold:{hold.pk}")


@pytest.mark.timeout(180)
@pytest.mark.django_db(transaction=True)
def test_support_agent_finds_an_order_by_tracking_number_clears_fraud_and_escalates_a_case(
    live_server, browser, _quiet_settings
):
    world = make_two_locations()
    system = get_system_user()
    order = prepared_order()
    parcel = Shipment.objects.filter(order=order, location=world.paris).get()
    fulfillment.shipment_start_picking(shipment=parcel, actor=world.warehouse)
    parcel = fulfillment.shipment_create_label(shipment=parcel, actor=world.warehouse)
    services.order_hold(order=order, actor=system, reason=HoldReason.FRAUD_REVIEW, note="Card country differs")
    fraud = Case.objects.get(order=order, kind=CaseKind.FRAUD_REVIEW)
    other = prepared_order()
    address = held_for_address(other)
    agent = make_user(roles.SUPPORT_L2, username="agent2")

    page = log_in(browser, live_server, "agent2")
    page.fill("#oms-global-search input[name=q]", parcel.tracking_number)
    page.press("#oms-global-search input[name=q]", "Enter")

    page.wait_for_selector(f"h1:has-text('{order.number}')")
    page.get_by_role("link", name="Clear fraud review").click()
    page.fill("textarea[name=reason]", "Customer confirmed the order by phone")
    page.get_by_role("button", name="Clear fraud review").click()

    page.wait_for_selector(f"h1:has-text('{order.number}')")
    assert page.get_by_text(f"Fraud review of order {order.number} cleared: false positive.").is_visible()
    events = timeline(page)
    for label in ("Hold released", "Fraud review cleared", "Case resolved"):
        assert label in events
    assert "Customer confirmed the order by phone" in events
    assert page.get_by_role("link", name="Clear fraud review").count() == 0
    fraud.refresh_from_db()
    assert (fraud.status, fraud.resolved_by) == (CaseStatus.RESOLVED, agent)
    cleared = order.events.get(type=OrderEventType.FRAUD_CLEARED)
    assert (cleared.actor, cleared.reason) == (agent, "Customer confirmed the order by phone")

    # The queue: the address-check case (level 1) is there; escalate it from its page.
    page.goto(f"{live_server.url}/admin/orders/case/")
    assert address.number in queue_numbers(page)
    assert fraud.number not in queue_numbers(page)  # resolved: not in the open queue
    page.get_by_role("link", name=address.number).click()
    page.get_by_role("link", name="Escalate").click()
    page.fill("textarea[name=reason]", "Customer insists the address is right")
    page.get_by_role("button", name="Escalate to level 2").click()

    page.wait_for_selector(f"h1:has-text('{address.number}')")
    assert page.get_by_text(f"Case {address.number} escalated to level 2.").is_visible()
    assert "Level 2" in page.locator(".oms-order__title").inner_text()
    page.locator("#oms-case-order").click()
    page.wait_for_selector(f"h1:has-text('{other.number}')")
    events = timeline(page)
    assert "Case escalated" in events and "Customer insists the address is right" in events
    address.refresh_from_db()
    assert (address.level, address.status, address.escalation_reason) == (
        CaseLevel.L2,
        CaseStatus.ESCALATED,
        "Customer insists the address is right",
    )


@pytest.mark.timeout(180)
@pytest.mark.django_db(transaction=True)
def test_level_1_agent_escalates_a_case_and_it_leaves_their_queue(live_server, browser, _quiet_settings):
    make_two_locations()
    first = held_for_address(prepared_order())
    second = held_for_address(prepared_order())
    make_user(roles.SUPPORT_L1, username="agent1")

    page = log_in(browser, live_server, "agent1")
    page.goto(f"{live_server.url}/admin/orders/case/")
    assert queue_numbers(page) == {first.number, second.number}
    page.locator(f"#result_list tr:has(a:text-is('{first.number}')) input.action-select").check()
    page.select_option("select[name=action]", "escalate_selected")
    page.click("button[name=index]")
    page.fill("textarea[name=reason]", "Needs a supervisor: customer threatens a chargeback")
    page.get_by_role("button", name="Escalate to level 2").click()

    page.wait_for_selector(f"text=Escalated to level 2: {first.number}.")
    assert queue_numbers(page) == {second.number}
    first.refresh_from_db()
    assert (first.level, first.escalation_reason) == (
        CaseLevel.L2,
        "Needs a supervisor: customer threatens a chargeback",
    )
    # Not theirs any more: its page is not found for them either (back to the home page).
    page.goto(f"{live_server.url}/admin/orders/case/{first.pk}/change/")
    assert page.url == f"{live_server.url}/admin/"
    assert page.get_by_role("heading", name=first.number).count() == 0


@pytest.mark.timeout(180)
@pytest.mark.django_db(transaction=True)
def test_warehouse_user_sees_short_picks_but_no_fraud_cases_and_nothing_about_refunds(
    live_server, browser, _quiet_settings
):
    world = make_two_locations()
    order = prepared_order()
    parcel = Shipment.objects.get(order=order, location=world.paris)
    fulfillment.shipment_start_picking(shipment=parcel, actor=world.warehouse)
    mug = parcel.lines.get(order_line__sku="MUG-1")
    book = parcel.lines.get(order_line__sku="BOOK-1")
    fulfillment.shipment_confirm_picks(
        shipment=parcel, actor=world.warehouse, picked={mug.pk: 1, book.pk: 1}, note="Bin A-10-1 empty"
    )
    short = ShortPick.objects.get(shipment=parcel)
    short_case = Case.objects.get(source_key=f"short_pick:{short.pk}")
    held = prepared_order()
    services.order_hold(order=held, actor=get_system_user(), reason=HoldReason.FRAUD_REVIEW, note="Stolen card?")
    fraud = Case.objects.get(order=held, kind=CaseKind.FRAUD_REVIEW)
    make_user(roles.WAREHOUSE, username="picker")

    page = log_in(browser, live_server, "picker")
    index = page.locator("#content-main").inner_text()
    assert "Refunds" not in index and "Credit notes" not in index

    refused = page.goto(f"{live_server.url}/admin/billing/refund/")
    assert refused.status == 403

    page.goto(f"{live_server.url}/admin/orders/order/{order.pk}/change/")
    page.wait_for_selector(f"h1:has-text('{order.number}')")
    actions = page.locator("nav.oms-actions").inner_text().lower()
    assert "refund" not in actions and "seller cancellation" not in actions
    assert page.locator("#oms-refunds").count() == 0

    page.goto(f"{live_server.url}/admin/orders/case/")
    numbers = queue_numbers(page)
    assert short_case.number in numbers
    assert fraud.number not in numbers
    assert page.locator("#changelist-filter").get_by_text("Fraud review").count() == 0
