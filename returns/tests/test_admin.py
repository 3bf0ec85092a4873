"""The cockpit: the queue of returns to receive and inspect, the return page and its forms."""

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from inventory.models import StockMovement
from orders.tests.factories import make_user
from returns import services
from returns.choices import ReturnStatus
from returns.tests.fixtures import delivered_order, lines_by_sku

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved(world, manager):
    order = delivered_order(world)
    lines = lines_by_sku(order)
    request = services.return_request(
        order=order,
        actor=manager,
        reason="changed_mind",
        lines=[{"line": lines["MUG-1"].pk, "quantity": 2}, {"line": lines["BOOK-1"].pk, "quantity": 1}],
    )
    return services.return_approve(request=request, actor=manager)


def test_queue_lists_returns_to_receive_and_inspect_without_n_plus_1(client, manager, approved):
    client.force_login(manager)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/admin/returns/returnrequest/queue/")
    assert response.status_code == 200
    assert approved.number in response.content.decode()
    few = len(queries)
    order = approved.order
    other = services.return_request(
        order=order,
        actor=manager,
        reason="changed_mind",
        lines=[{"line": lines_by_sku(order)["TEE-1"].pk, "quantity": 1}],
    )
    services.return_approve(request=other, actor=manager)
    with CaptureQueriesContext(connection) as queries:
        client.get("/admin/returns/returnrequest/queue/")
    assert len(queries) == few
    assert client.get("/admin/returns/returnrequest/?queue=todo").status_code == 200


def test_receive_then_inspect_from_the_return_page(client, manager, approved):
    client.force_login(manager)
    page = client.get(f"/admin/returns/returnrequest/{approved.pk}/change/")
    body = page.content.decode()
    assert page.status_code == 200 and 'data-action="receive"' in body and 'data-action="label_pdf"' in body
    label = client.get(f"/admin/returns/returnrequest/{approved.pk}/label/")
    assert label.status_code == 200 and b"".join(label.streaming_content).startswith(b"%PDF-")

    response = client.post(f"/admin/returns/returnrequest/{approved.pk}/do/receive/")
    assert response.status_code == 302
    approved.refresh_from_db()
    assert approved.status == ReturnStatus.RECEIVED

    mug, book = approved.lines.order_by("order_line__line_number")
    form = client.get(f"/admin/returns/returnrequest/{approved.pk}/inspect/")
    assert form.status_code == 200
    # Wrong sums: the service's message is shown and nothing changes.
    bad = {
        f"resellable_{mug.pk}": 1,
        f"damaged_{mug.pk}": 0,
        f"missing_{mug.pk}": 0,
        f"resellable_{book.pk}": 1,
        f"damaged_{book.pk}": 0,
        f"missing_{book.pk}": 0,
        "location": approved.restock_location_id,
    }
    response = client.post(f"/admin/returns/returnrequest/{approved.pk}/inspect/", bad)
    assert response.status_code == 200 and "not valid" in response.content.decode()
    approved.refresh_from_db()
    assert approved.status == ReturnStatus.RECEIVED
    good = {**bad, f"resellable_{mug.pk}": 2}
    response = client.post(f"/admin/returns/returnrequest/{approved.pk}/inspect/", good)
    assert response.status_code == 302
    approved.refresh_from_db()
    assert approved.status == ReturnStatus.INSPECTED
    assert StockMovement.objects.filter(reference=approved.number).count() == 2


def test_a_user_without_the_permission_sees_a_message_not_a_500(client, world, approved):
    viewer = make_user()  # may look at returns, not receive them
    viewer.user_permissions.add(Permission.objects.get(codename="view_returnrequest"))
    client.force_login(viewer)
    page = client.get(f"/admin/returns/returnrequest/{approved.pk}/change/")
    assert page.status_code == 200 and 'data-action="receive"' not in page.content.decode()
    response = client.post(f"/admin/returns/returnrequest/{approved.pk}/do/receive/", follow=True)
    assert "permission" in response.content.decode()
    approved.refresh_from_db()
    assert approved.status == ReturnStatus.APPROVED
