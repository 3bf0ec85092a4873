"""A warehouse lead's morning, in a real headless Chromium: make a wave, print its pick list (rendered
in the background by a Celery worker while the page shows a progress bar), then pick, pack and
dispatch a parcel and read its tracking number."""

import io

import pytest
from celery import Celery
from celery import current_app as current_celery_app
from celery.contrib.testing.worker import start_worker
from pypdf import PdfReader

from fulfillment.choices import ShipmentStatus, WaveRender
from fulfillment.models import Shipment, Wave
from fulfillment.tests.fixtures import make_two_locations, prepared_order
from oms.cockpit import roles
from orders.tests.factories import make_user
from tests.browser import BROWSER_MARKS

pytestmark = BROWSER_MARKS


@pytest.fixture
def worker_app(monkeypatch, settings, tmp_path):
    """The project's Celery configuration on an in-process broker of its own, made the current app
    (the live server's thread sends the render task through it); no task runs until a worker starts."""
    monkeypatch.setenv("CELERY_SKIP_CHECKS", "1")  # the worker would re-run Django's system checks
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.OMS_PICKLIST_SYNC_ROWS = 0  # every pick list renders in the background
    settings.OMS_NOTIFICATION_GROUP_SECONDS = 0
    previous = current_celery_app._get_current_object()
    app = Celery("oms-picklist-test", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(
        broker_url="memory://",
        task_always_eager=False,
        result_backend=None,
        beat_schedule={},
        worker_hijack_root_logger=False,
    )
    app.set_current()
    app.set_default()
    app.control.purge()  # the in-memory broker is per process: nothing left by another test
    try:
        yield app
    finally:
        app.control.purge()
        app.close()
        previous.set_current()
        previous.set_default()


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.django_db(transaction=True)
def test_warehouse_lead_prints_a_wave_in_the_background_then_picks_packs_and_dispatches(
    live_server, browser, worker_app
):
    world = make_two_locations()
    orders = [prepared_order(), prepared_order()]
    make_user(roles.WAREHOUSE, username="lead")

    page = browser.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "lead")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")

    # The shipment list, then "New wave…": Paris, every pending parcel.
    page.goto(f"{live_server.url}/admin/fulfillment/shipment/")
    assert page.locator("#result_list tbody tr").count() == 4
    page.get_by_role("link", name="New wave…").click()
    assert "paris warehouse\n2" in page.locator("#oms-pending-by-location").inner_text().lower()
    page.select_option("select[name=location]", str(world.paris.pk))
    page.get_by_role("button", name="Create the wave").click()

    wave = Wave.objects.get()
    assert page.locator("h1").inner_text() == wave.number
    assert page.get_by_text(f"Wave {wave.number} created with 2 shipments").is_visible()
    assert set(wave.shipments.values_list("status", flat=True)) == {ShipmentStatus.PICKING}

    # Print: the render is queued for a worker, and the page shows the progress bar.
    page.get_by_role("button", name="Print pick list").click()
    assert page.locator("#oms-picklist").get_attribute("data-status") == "queued"
    assert page.locator("#oms-picklist-progress").is_visible()
    assert not page.locator("#oms-picklist-download").is_visible()
    assert Wave.objects.get().render_status == WaveRender.QUEUED

    # A worker takes the task; the page, polling, ends with the download link without a reload.
    with start_worker(worker_app, perform_ping_check=False, pool="solo", shutdown_timeout=20):
        download = page.locator("#oms-picklist-download")
        download.wait_for(state="visible", timeout=60_000)
    assert not page.locator("#oms-picklist-progress").is_visible()
    assert page.locator("#oms-picklist").get_attribute("data-status") == "ready"
    wave.refresh_from_db()
    assert (wave.render_status, wave.render_progress) == (WaveRender.READY, 100)

    pdf = page.request.get(live_server.url + download.get_attribute("href"))
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf" and pdf.body().startswith(b"%PDF-")
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.body())).pages)
    assert wave.number in text and all(order.number in text for order in orders)

    # The first parcel of the wave: confirm the picks, pack, dispatch.
    shipment = Shipment.objects.filter(wave=wave).order_by("priority", "ship_by", "pk").first()
    page.locator("#oms-wave-shipments").get_by_role("link", name=shipment.number).click()
    page.get_by_role("link", name="Confirm picks").click()
    for line in shipment.lines.all():
        assert page.input_value(f"input[name=line_{line.pk}]") == str(line.quantity)
    page.get_by_role("button", name="Confirm picks").click()
    assert page.get_by_text(f"Picks confirmed on {shipment.number}.").is_visible()

    page.get_by_role("link", name="Pack", exact=True).click()
    page.fill("input[name=weight_grams]", "1250")
    page.get_by_role("button", name="Pack", exact=True).click()
    assert page.get_by_text(f"{shipment.number} packed.").is_visible()

    page.get_by_role("link", name="Dispatch").click()
    page.get_by_role("button", name="Dispatch").click()
    assert page.get_by_text(f"{shipment.number} handed to the carrier.").is_visible()

    shipment.refresh_from_db()
    assert (shipment.status, shipment.weight_grams) == (ShipmentStatus.SHIPPED, 1250)
    assert shipment.tracking_number.startswith("SBX")
    assert page.locator("#oms-tracking-number").inner_text() == shipment.tracking_number
    assert page.locator("h1").inner_text() == shipment.number
