"""Two requests for the same shipped units at the same moment: exactly one gets them."""

import pytest

from inventory.models import Product
from oms.core.errors import ValidationError
from oms.core.testing import run_together
from returns import services
from returns.models import ReturnLine
from returns.tests.fixtures import delivered_order, lines_by_sku


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_for_the_same_units_one_wins(world, manager):
    order = delivered_order(world)
    mug = lines_by_sku(order)["MUG-1"]

    def work(_i):
        return services.return_request(
            order=order.pk, actor=manager, reason="changed_mind", lines=[{"line": mug.pk, "quantity": 2}]
        )

    results = run_together(2, work)
    won = [result for result in results if not isinstance(result, Exception)]
    lost = [result for result in results if isinstance(result, Exception)]
    assert len(won) == 1 and len(lost) == 1
    assert isinstance(lost[0], ValidationError) and "lines.0.quantity" in lost[0].extra["fields"]
    assert list(ReturnLine.objects.values_list("quantity", flat=True)) == [2]


@pytest.mark.django_db
def test_returnable_lines_explain_what_cannot_be_returned(world, manager):
    Product.objects.filter(pk=world.book.pk).update(is_hygiene_sealed=True)
    order = delivered_order(world)
    mug = lines_by_sku(order)["MUG-1"]
    services.return_request(order=order, actor=manager, reason="other", lines=[{"line": mug.pk, "quantity": 2}])
    rows = {row.line.sku: row for row in services.returnable_lines(order)}
    assert (rows["MUG-1"].returnable, rows["MUG-1"].refusal) == (0, "Every shipped unit is already being returned.")
    assert "hygiene" in rows["BOOK-1"].refusal
    assert (rows["TEE-1"].returnable, rows["TEE-1"].refusal) == (1, "")
    assert rows["TEE-1"].window_closes_at is not None
