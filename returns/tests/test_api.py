"""The returns API over HTTP with token auth: field errors by path, the life of a return."""

import datetime
import io

import pytest
import time_machine
from pypdf import PdfReader

from inventory.models import Product, StockMovement
from orders.tests.api_fixtures import token_client
from orders.tests.factories import make_user
from returns import services
from returns.tests.fixtures import delivered_order, lines_by_sku

pytestmark = pytest.mark.django_db

API = "/api/v1/returns/"


def _body(order, *lines, **extra):
    return {
        "order": order.number,
        "reason": "changed_mind",
        "lines": [{"line": line.line_number, "quantity": quantity} for line, quantity in lines],
        **extra,
    }


def test_request_receive_inspect_through_the_api(world, manager):
    client = token_client(manager)
    order = delivered_order(world)
    lines = lines_by_sku(order)
    response = client.post(API, _body(order, (lines["MUG-1"], 2), (lines["BOOK-1"], 1)), format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    number = data["number"]
    assert (data["status"], data["order"], [line["sku"] for line in data["lines"]]) == (
        "requested",
        order.number,
        ["MUG-1", "BOOK-1"],
    )

    assert client.post(f"{API}{number}/approve/", {}, format="json").json()["status"] == "approved"
    label = client.get(f"{API}{number}/label.pdf")
    assert label.status_code == 200
    content = b"".join(label.streaming_content)
    assert number in "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)

    assert client.post(f"{API}{number}/receive/", {}, format="json").json()["status"] == "received"
    results = {str(line["id"]): {"resellable": line["quantity"]} for line in data["lines"]}
    results[str(data["lines"][1]["id"])] = {"damaged": 1}
    response = client.post(f"{API}{number}/inspect/", {"results": results}, format="json")
    assert response.status_code == 200, response.json()
    detail = client.get(f"{API}{number}/").json()
    assert detail["status"] == "inspected"
    assert [(line["sku"], line["quantity_restocked"]) for line in detail["lines"]] == [("MUG-1", 2), ("BOOK-1", 0)]
    assert list(StockMovement.objects.filter(reference=number).values_list("on_hand_delta", flat=True)) == [2]


def test_window_and_eligibility_errors_are_400_with_field_paths(world, manager):
    client = token_client(manager)
    Product.objects.filter(pk=world.book.pk).update(is_perishable=True)
    order = delivered_order(world)
    lines = lines_by_sku(order)

    response = client.post(API, _body(order, (lines["MUG-1"], 1), (lines["BOOK-1"], 1)), format="json")
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == "invalid_return"
    assert list(error["extra"]["fields"]) == ["lines.1.line"]
    assert "Perishable" in error["extra"]["fields"]["lines.1.line"][0]

    mug = lines["MUG-1"]
    delivered_at = services.line_delivered_at(mug, order)
    with time_machine.travel(delivered_at + datetime.timedelta(days=15), tick=False):
        response = client.post(API, _body(order, (mug, 1)), format="json")
    assert response.status_code == 400
    assert "withdrawal window closed on" in response.json()["extra"]["fields"]["lines.0.line"][0]

    response = client.post(
        API, {**_body(order, (mug, 0)), "lines": [{"line": 99, "quantity": 0, "extra": 1}]}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()["extra"]["fields"]) == {"lines.0.quantity", "lines.0.extra"}
    response = client.post(API, _body(order, (mug, 1), reason="bored"), format="json")
    assert set(response.json()["extra"]["fields"]) == {"reason"}
    response = client.post(API, {**_body(order, (mug, 1)), "order": "ORD-NOPE"}, format="json")
    assert (response.status_code, set(response.json()["extra"]["fields"])) == (400, {"order"})
    response = client.post(API, {**_body(order), "lines": [{"line": 99, "quantity": 1}]}, format="json")
    assert (response.status_code, set(response.json()["extra"]["fields"])) == (400, {"lines.0.line"})


def test_inspection_errors_name_the_line_and_state_errors_are_409(world, manager):
    client = token_client(manager)
    order = delivered_order(world)
    mug = lines_by_sku(order)["MUG-1"]
    number = client.post(API, _body(order, (mug, 2)), format="json").json()["number"]
    response = client.post(f"{API}{number}/inspect/", {"results": {"1": {"resellable": 1}}}, format="json")
    assert response.status_code == 409  # not received yet
    client.post(f"{API}{number}/approve/", {}, format="json")
    client.post(f"{API}{number}/receive/", {}, format="json")
    line_id = client.get(f"{API}{number}/").json()["lines"][0]["id"]
    response = client.post(f"{API}{number}/inspect/", {"results": {str(line_id): {"resellable": 1}}}, format="json")
    assert response.status_code == 400
    assert list(response.json()["extra"]["fields"]) == [f"results.{line_id}"]
    response = client.post(f"{API}{number}/inspect/", {"results": {str(line_id): {"resellable": -1}}}, format="json")
    assert list(response.json()["extra"]["fields"]) == [f"results.{line_id}.resellable"]
    assert client.get(f"{API}NOPE/").status_code == 404


def test_without_permission_403(world, manager):
    order = delivered_order(world)
    mug = lines_by_sku(order)["MUG-1"]
    client = token_client(make_user())
    assert client.post(API, _body(order, (mug, 1)), format="json").status_code == 403
    assert client.get(f"{API}RMA-2026-000001/").status_code == 403
