"""A new user's first minutes, in a real headless Chromium: log in to the cockpit, see the orders,
open one and use a button."""

import pytest

from oms.cockpit import roles
from orders.choices import OrderStatus
from orders.models import Order
from orders.tests.factories import ChannelFactory, make_user
from orders.tests.states import order_in_state
from tests.browser import BROWSER_MARKS

pytestmark = BROWSER_MARKS


@pytest.mark.django_db(transaction=True)
def test_support_agent_logs_in_sees_orders_and_cancels_one(live_server, browser):
    ChannelFactory()
    boss = make_user(roles.ADMINISTRATOR)
    confirmed = order_in_state(OrderStatus.CONFIRMED, actor=boss)
    unpaid = order_in_state(OrderStatus.AWAITING_PAYMENT, actor=boss)
    make_user(roles.SUPPORT_L1, username="agent")

    page = browser.new_page()
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "agent")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/orders/order/")

    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    assert page.get_by_text(confirmed.number).is_visible()
    assert page.get_by_text(unpaid.number).is_visible()

    page.get_by_text(unpaid.number).click()
    assert page.locator("h1, h2").filter(has_text=unpaid.number).count() >= 1
    page.get_by_role("link", name="Cancel order").click()
    page.select_option("select[name=reason_code]", "customer_request")
    page.fill("textarea[name=reason], input[name=reason]", "Customer called to cancel")
    page.get_by_role("button", name="Cancel order").click()

    assert page.get_by_text("canceled").first.is_visible()
    unpaid = Order.objects.get(pk=unpaid.pk)
    assert unpaid.status == OrderStatus.CANCELED
    event = unpaid.events.get(type="canceled")
    assert (event.actor.username, event.reason) == ("agent", "Customer called to cancel")
    # A support L1 agent may not cancel a paid order: no such button on the confirmed one.
    page.goto(f"{live_server.url}/admin/orders/order/{confirmed.pk}/change/")
    assert page.get_by_role("link", name="Cancel order").count() == 0
