"""Must show: a partial return of 2 of 3 lines restocks exactly those 2; damaged units are not
restocked; the states go requested → approved → received → inspected → closed."""

import io
from decimal import Decimal

import pytest
from pypdf import PdfReader

from billing.models import CreditNote, Refund
from inventory.models import StockItem, StockMovement
from oms.core.errors import PermissionDeniedError
from orders.identity import customer_merge
from orders.models import Customer
from returns import services
from returns.choices import ReturnStatus
from returns.models import ReturnRequest
from returns.tests.fixtures import delivered_order, lines_by_sku

pytestmark = pytest.mark.django_db


def _stock(product, location):
    item = StockItem.objects.get(product=product, location=location)
    return item.on_hand


def test_partial_return_of_two_of_three_lines_restocks_exactly_those_two(world, manager):
    order = delivered_order(world)
    lines = lines_by_sku(order)
    mug_before, book_before, tee_before = (
        _stock(world.mug, world.paris),
        _stock(world.book, world.paris),
        _stock(world.tee, world.lyon),
    )

    request = services.return_request(
        order=order,
        actor=manager,
        reason="changed_mind",
        lines=[{"line": lines["MUG-1"].pk, "quantity": 2}, {"line": lines["BOOK-1"].pk, "quantity": 1}],
    )
    assert request.number.startswith("RMA-") and len(request.number) == len("RMA-2026-000001")
    assert request.status == ReturnStatus.REQUESTED and request.restock_location == world.paris
    services.return_approve(request=request, actor=manager)
    services.return_receive(request=request, actor=manager)
    return_lines = {line.order_line.sku: line for line in request.lines.all()}
    request = services.return_inspect(
        request=request,
        actor=manager,
        results={
            return_lines["MUG-1"].pk: {"resellable": 2, "damaged": 0, "missing": 0},
            return_lines["BOOK-1"].pk: {"resellable": 1, "damaged": 0, "missing": 0},
        },
    )
    assert request.status == ReturnStatus.INSPECTED

    assert _stock(world.mug, world.paris) == mug_before + 2
    assert _stock(world.book, world.paris) == book_before + 1
    assert _stock(world.tee, world.lyon) == tee_before
    ledger = StockMovement.objects.filter(reason="return", reference=request.number)
    assert sorted((row.order_line.sku, row.on_hand_delta) for row in ledger) == [("BOOK-1", 1), ("MUG-1", 2)]
    assert {row.actor_id for row in ledger} == {manager.pk}
    assert [line.quantity_restocked for line in request.lines.order_by("order_line__line_number")] == [2, 1]
    _assert_credited_and_refunded(order, request, {"MUG-1": 2, "BOOK-1": 1})

    services.return_close(request=request, actor=manager)
    request.refresh_from_db()
    assert request.status == ReturnStatus.CLOSED
    history = list(request.history.order_by("history_id").values_list("status", "history_user_id"))
    assert [status for status, _user in history] == [
        "requested",
        "approved",
        "received",
        "inspected",
        "closed",
    ]
    assert {user for _status, user in history} == {manager.pk}


def test_damaged_and_missing_units_are_not_restocked(world, manager):
    order = delivered_order(world)
    lines = lines_by_sku(order)
    before = _stock(world.mug, world.paris)
    request = services.return_request(
        order=order, actor=manager, reason="defective", lines=[{"line": lines["MUG-1"].pk, "quantity": 2}]
    )
    services.return_approve(request=request, actor=manager)
    services.return_receive(request=request, actor=manager)
    line = request.lines.get()
    services.return_inspect(
        request=request, actor=manager, results={str(line.pk): {"resellable": 0, "damaged": 1, "missing": 1}}
    )
    line.refresh_from_db()
    assert (line.quantity_resellable, line.quantity_damaged, line.quantity_missing, line.quantity_restocked) == (
        0,
        1,
        1,
        0,
    )
    assert _stock(world.mug, world.paris) == before
    assert not StockMovement.objects.filter(reason="return").exists()


def test_inspection_must_count_every_unit_and_changes_nothing_when_wrong(world, manager):
    order = delivered_order(world)
    lines = lines_by_sku(order)
    request = services.return_request(
        order=order, actor=manager, reason="defective", lines=[{"line": lines["MUG-1"].pk, "quantity": 2}]
    )
    services.return_approve(request=request, actor=manager)
    services.return_receive(request=request, actor=manager)
    line = request.lines.get()
    with pytest.raises(services.ValidationError) as caught:
        services.return_inspect(request=request, actor=manager, results={line.pk: {"resellable": 1}})
    assert list(caught.value.extra["fields"]) == [f"results.{line.pk}"]
    request.refresh_from_db()
    assert request.status == ReturnStatus.RECEIVED
    assert not StockMovement.objects.filter(reason="return").exists()


def test_return_label_is_a_pdf_from_the_customer_to_the_restock_location(world, manager):
    order = delivered_order(world)
    lines = lines_by_sku(order)
    request = services.return_request(
        order=order, actor=manager, reason="wrong_size", lines=[{"line": lines["TEE-1"].pk, "quantity": 1}]
    )
    assert request.restock_location == world.lyon  # where it left from
    request = services.return_approve(request=request, actor=manager)
    assert request.status == ReturnStatus.APPROVED and request.tracking_number.startswith("SBX")
    with request.label.open("rb") as handle:
        content = handle.read()
    assert content.startswith(b"%PDF-")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    assert request.number in text and request.tracking_number in text
    assert "Ann Lee" in text and "Lyon warehouse" in text


def test_permission_is_checked_first(world, manager):
    order = delivered_order(world)
    lines = lines_by_sku(order)
    with pytest.raises(PermissionDeniedError):
        services.return_request(
            order=order, actor=world.warehouse, reason="other", lines=[{"line": lines["MUG-1"].pk, "quantity": 1}]
        )
    assert not ReturnRequest.objects.exists()


def _assert_credited_and_refunded(order, request, quantities: dict[str, int]) -> None:
    """Exactly the accepted units are credited, and the credit is refunded (awaiting approval)."""
    credit_note = CreditNote.objects.get(order=order)
    assert {line.sku: int(line.quantity) for line in credit_note.lines.all()} == quantities
    refund = Refund.objects.get(order=order)
    assert (refund.credit_note_id, refund.amount, refund.reason, refund.method) == (
        credit_note.pk,
        credit_note.total_gross,
        "return",
        "original",
    )
    expected = sum(
        (line.total_gross * quantities[line.sku] / line.quantity for line in order.lines.filter(sku__in=quantities)),
        start=Decimal("0"),
    )
    assert credit_note.total_gross == expected.quantize(Decimal("0.01"))
    assert request.settlement == {"credit_notes": [credit_note.number], "refunds": [refund.number]}


def test_store_credit_return_is_refunded_to_store_credit(world, manager):
    order = delivered_order(world)
    tee = lines_by_sku(order)["TEE-1"]
    request = services.return_request(
        order=order, actor=manager, reason="wrong_size", method="store_credit", lines=[{"line": tee.pk, "quantity": 1}]
    )
    services.return_approve(request=request, actor=manager)
    services.return_receive(request=request, actor=manager)
    line = request.lines.get()
    services.return_inspect(request=request, actor=manager, results={line.pk: {"resellable": 1}})
    refund = Refund.objects.get(order=order)
    assert (refund.method, refund.amount, refund.status) == ("store_credit", tee.total_gross, "requested")


def test_a_return_follows_its_customer_into_a_merged_record(world, manager):
    order = delivered_order(world)
    request = services.return_request(
        order=order,
        actor=manager,
        reason="changed_mind",
        lines=[{"line": lines_by_sku(order)["MUG-1"].pk, "quantity": 1}],
    )
    keep = Customer.objects.create(email="same.person@example.com")

    customer_merge(keep=keep, merge=[order.customer], actor=manager, reason="Same person, two e-mails")

    request.refresh_from_db()
    assert request.customer == keep
    assert request.history.latest().history_change_reason == "Customer merged: Same person, two e-mails"
