"""Reads shared by the cockpit, the API and the commands."""

from collections import defaultdict

from django.db.models import Exists, F, OuterRef, Prefetch, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from inventory import atp
from inventory.models import (
    ChannelStockRule,
    ChannelStockSettings,
    CycleCount,
    CycleCountLine,
    Location,
    MovementReason,
    Product,
    SourcingDecision,
    StockItem,
    StockMovement,
)


def location_choices() -> list[tuple[int, str]]:
    """(id, name) of every location, in priority order: the cockpit's location filters."""
    return list(Location.objects.order_by("priority", "code").values_list("pk", "name"))


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


# --- orders and channels, reached through inventory's own relations ---------------------------------
# Orders and sales channels belong to the orders app, above inventory in the chain, which inventory
# does not import. A screen or an endpoint given an order number or a channel code finds the row
# through the relation inventory's own tables hold to it.


def order_id_get(*, number: str) -> int | None:
    """The id of the order numbered `number` (as typed, or upper-cased), or None."""
    orders = StockMovement._meta.get_field("order").related_model._default_manager
    return orders.filter(number__in={number, number.upper()}).values_list("pk", flat=True).first()


def channel_get(*, code: str):
    """The active sales channel with this code, or None."""
    channels = ChannelStockSettings._meta.get_field("channel").related_model._default_manager
    return channels.filter(code=code, is_active=True).first()


def sourcing_decision_latest(*, order_id: int) -> SourcingDecision | None:
    return SourcingDecision.objects.filter(order_id=order_id).order_by("-created_at", "-id").first()


# --- the stock feed of a channel ----------------------------------------------------------------


def stock_feed_products(*, channel_id: int, updated_since=None, now=None):
    """The products of a channel's stock feed, in id order (the feed's cursor).

    Without `updated_since`: every active product (those outside their sell window too: the feed
    reports them unsellable so that a channel takes them down).

    With it: every product, active or not, whose figure for this channel may have changed since.
    `StockItem.updated_at` alone would miss nearly everything: the stock primitives change the
    counters with `UPDATE … SET on_hand = on_hand + n` (inventory.stock), which does not touch an
    auto_now field, so the time of the latest ledger movement is what says that stock moved. A
    product also changes when its stock row is saved (safety stock), when it is edited (switched
    off, new sell window: its history), when its sell window opens or closes, when a channel rule
    that bears on it changes (this channel's rules, any channel's ring fence) or when a location
    holding it is edited (switched off).
    """
    products = Product.objects.order_by("id")
    if updated_since is None:
        return products.filter(is_active=True)
    now = now or timezone.now()
    since = updated_since
    moved = StockMovement.objects.filter(created_at__gt=since).values("stock_item__product_id")
    saved = StockItem.objects.filter(updated_at__gt=since).values("product_id")
    edited = Product.history.filter(history_date__gt=since).values("id")
    rules = ChannelStockRule.history.filter(history_date__gt=since).filter(
        Q(channel_id=channel_id) | Q(kind=ChannelStockRule.Kind.RING_FENCE)
    )
    relocated = StockItem.objects.filter(
        location_id__in=Location.history.filter(history_date__gt=since).values("id")
    ).values("product_id")
    changed = (
        Q(pk__in=moved)
        | Q(pk__in=saved)
        | Q(pk__in=edited)
        | Q(pk__in=rules.filter(product__isnull=False).values("product_id"))
        | Q(pk__in=relocated)
        | Q(sellable_from__gt=since, sellable_from__lte=now)
        | Q(sellable_until__gt=since, sellable_until__lte=now)
        # A rule for every product changed: every active product's figure may have changed.
        | Q(Exists(rules.filter(product__isnull=True)), is_active=True)
    )
    return products.filter(changed)


def channel_stock_feed(*, channel_id: int, products, now=None) -> list[dict]:
    """What a channel may sell of each product: [{"sku", "available", "sellable"}], in the given order.

    Three queries whatever the number of products, with the rules of `inventory.atp` (stock at
    hand only, no incoming supply): the figure of a sellable product is `atp.atp(...)["atp"]`
    without a date. A product outside its sell window, or switched off, is reported with
    `sellable: false` and 0 available: orders for it are refused at intake.
    """
    products = list(products)
    if not products:
        return []
    now = now or timezone.now()
    product_ids = [product.pk for product in products]
    items = list(
        StockItem.objects.filter(product_id__in=product_ids, location__is_active=True).select_related("location")
    )
    rules = atp.channel_rules(channel_id=channel_id, product_ids=product_ids)
    reserved = atp.reserved_by_channel(stock_item_ids=[item.pk for item in items])
    available: dict[int, int] = defaultdict(int)
    for item in items:
        available[item.product_id] += atp.available_for_channel(
            item=item, location=item.location, rules=rules, reserved=reserved
        )
    feed = []
    for product in products:
        sellable = product.is_sellable_at(now)
        feed.append({"sku": product.sku, "available": available[product.pk] if sellable else 0, "sellable": sellable})
    return feed


# --- receipts and counts -----------------------------------------------------------------------


def stock_receipt_lines(*, location_id: int, reference: str) -> list[dict]:
    """The lines of a receipt applied at a location, from its ledger rows, in document order.

    Each line: the SKU, the units received and the location's on hand of that SKU right after the
    line, computed as today's on hand minus every later movement of that stock row, so that the
    answer to a retried receipt is the first answer, whatever moved since. (Per stock row, ledger
    ids follow the commit order: each movement is written under the row's lock.) One query.
    """
    later = (
        StockMovement.objects.filter(stock_item_id=OuterRef("stock_item_id"), pk__gt=OuterRef("pk"))
        .order_by()
        .values("stock_item_id")
        .annotate(units=Sum("on_hand_delta"))
        .values("units")
    )
    rows = (
        StockMovement.objects.filter(
            reason=MovementReason.RECEIPT, reference=reference, stock_item__location_id=location_id
        )
        .annotate(on_hand_after=F("stock_item__on_hand") - Coalesce(Subquery(later), 0))
        .order_by("pk")
        .values_list("stock_item__product__sku", "on_hand_delta", "on_hand_after")
    )
    return [{"sku": sku, "quantity": quantity, "on_hand": on_hand} for sku, quantity, on_hand in rows]


def cycle_count_get(*, count_id: int) -> CycleCount | None:
    """A count with its location and its lines' products (three queries)."""
    return (
        CycleCount.objects.select_related("location", "approved_by")
        .prefetch_related(Prefetch("lines", queryset=CycleCountLine.objects.select_related("product")))
        .filter(pk=count_id)
        .first()
    )
