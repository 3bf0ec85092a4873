"""A customer opens the link from the email in a real headless Chromium, on a phone-sized screen:
one parcel on its way with its tracking number, one being prepared."""

import pytest

from fulfillment import services
from fulfillment.links import tracking_path_for_number
from fulfillment.models import Shipment
from fulfillment.tests.fixtures import make_two_locations, prepared_order
from tests.browser import BROWSER_MARKS

pytestmark = BROWSER_MARKS


@pytest.mark.django_db(transaction=True)
def test_customer_follows_one_parcel_shipped_and_one_being_prepared(live_server, browser, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    world = make_two_locations()
    order = prepared_order()
    paris = Shipment.objects.get(order=order, location=world.paris)
    services.shipment_confirm_picks(
        shipment=paris, actor=world.warehouse, picked={line.pk: line.quantity for line in paris.lines.all()}
    )
    services.shipment_pack(shipment=paris, actor=world.warehouse)
    paris = services.shipment_dispatch(shipment=paris, actor=world.warehouse)

    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    page.goto(f"{live_server.url}{tracking_path_for_number(order.number)}")

    assert page.get_by_role("heading", name=f"Order {order.number}").is_visible()
    assert page.get_by_test_id("order-label").inner_text() == "Partially shipped"
    shipped, preparing = page.get_by_test_id("parcel").all()
    assert shipped.get_by_role("heading", name="Parcel 1 of 2").is_visible()
    assert shipped.get_by_text("Shipped", exact=True).is_visible()
    assert shipped.get_by_text("2 × Mug").is_visible() and shipped.get_by_text("1 × Book").is_visible()
    link = shipped.get_by_role("link", name=paris.tracking_number)
    assert link.is_visible() and link.get_attribute("href") == paris.tracking_url
    assert preparing.get_by_role("heading", name="Parcel 2 of 2").is_visible()
    assert preparing.get_by_text("Being prepared").is_visible()
    assert preparing.get_by_text("1 × T-shirt").is_visible()
    assert preparing.get_by_role("link").count() == 0  # no tracking before it leaves
    # Readable on a phone: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    page.get_by_role("link", name="français").click()
    assert page.get_by_test_id("order-label").inner_text() == "Partiellement expédiée"
    assert page.get_by_test_id("parcel").nth(1).get_by_text("En cours de préparation").is_visible()
