"""Reads shared by the cockpit, the API and the commands."""

from django.db.models import Sum

from inventory.models import SourcingDecision, StockItem, StockMovement


def stock_ledger_drift() -> list[dict]:
    """Stock rows whose counters differ from the sum of their ledger. Empty when all is right."""
    sums = {
        row["stock_item_id"]: row
        for row in StockMovement.objects.values("stock_item_id").annotate(
            on_hand=Sum("on_hand_delta"), reserved=Sum("reserved_delta")
        )
    }
    drift = []
    for item in StockItem.objects.select_related("product", "location").order_by("product_id", "location_id"):
        ledger = sums.get(item.pk, {"on_hand": 0, "reserved": 0})
        if (item.on_hand, item.reserved) != (ledger["on_hand"] or 0, ledger["reserved"] or 0):
            drift.append(
                {
                    "stock_item": item.pk,
                    "sku": item.product.sku,
                    "location": item.location.code,
                    "on_hand": item.on_hand,
                    "ledger_on_hand": ledger["on_hand"] or 0,
                    "reserved": item.reserved,
                    "ledger_reserved": ledger["reserved"] or 0,
                }
            )
    return drift


def sourcing_decision_latest(*, order_id: int) -> SourcingDecision | None:
    return SourcingDecision.objects.filter(order_id=order_id).order_by("-created_at", "-id").first()
