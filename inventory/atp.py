"""Available to promise, per channel.

physical = on_hand − reserved − safety_stock (never below 0)
for a channel at a location:
  0 when a rule excludes the location for the channel (e.g. store stock kept from the web);
  minus the units other channels' ring fences still hold there (fence − what they reserved);
  capped by the channel's share: ⌊share × (on_hand − safety)⌋ − what the channel reserved there.
ATP by a date adds incoming supply due by that date and not yet promised.
"""

import datetime
import math
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import F, Q, Sum
from django.utils import timezone

from inventory.models import (
    ChannelStockRule,
    IncomingSupply,
    Location,
    Product,
    Reservation,
    ReservationState,
    StockItem,
)


@dataclass
class ChannelRules:
    """The rules that bear on one channel's view of some products' stock."""

    channel_id: int | None
    excluded_locations: set[int] = field(default_factory=set)
    excluded_kinds: set[str] = field(default_factory=set)
    excluded_by_product: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    # (product_id or None, location_id or None) → share
    shares: dict[tuple[int | None, int | None], Decimal] = field(default_factory=dict)
    # (product_id or None, location_id) → [(channel_id, quantity)] fences of OTHER channels
    foreign_fences: dict[tuple[int | None, int], list[tuple[int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def excludes(self, *, product_id: int, location: Location) -> bool:
        return (
            location.pk in self.excluded_locations
            or location.kind in self.excluded_kinds
            or location.pk in self.excluded_by_product.get(product_id, ())
        )

    def share_for(self, *, product_id: int, location_id: int) -> Decimal | None:
        for key in ((product_id, location_id), (product_id, None), (None, location_id), (None, None)):
            if key in self.shares:
                return self.shares[key]
        return None

    def fences_at(self, *, product_id: int, location_id: int) -> list[tuple[int, int]]:
        return self.foreign_fences.get((product_id, location_id), []) + self.foreign_fences.get((None, location_id), [])

    def is_simple(self, *, product_id: int, location_id: int) -> bool:
        """No share or fence applies: a plain conditional UPDATE is exact."""
        return self.share_for(product_id=product_id, location_id=location_id) is None and not self.fences_at(
            product_id=product_id, location_id=location_id
        )


def channel_rules(*, channel_id: int | None, product_ids) -> ChannelRules:
    rules = ChannelRules(channel_id=channel_id)
    if channel_id is None:
        return rules
    product_ids = list(product_ids)
    qs = ChannelStockRule.objects.filter(is_active=True).filter(Q(product_id__in=product_ids) | Q(product__isnull=True))
    for rule in qs:
        if rule.kind == ChannelStockRule.Kind.RING_FENCE:
            if rule.channel_id != channel_id:
                rules.foreign_fences[(rule.product_id, rule.location_id)].append((rule.channel_id, rule.quantity))
            continue
        if rule.channel_id != channel_id:
            continue
        if rule.kind == ChannelStockRule.Kind.EXCLUDE:
            if rule.product_id is not None and rule.location_id is not None:
                rules.excluded_by_product[rule.product_id].add(rule.location_id)
            elif rule.location_id is not None:
                rules.excluded_locations.add(rule.location_id)
            elif rule.location_kind:
                rules.excluded_kinds.add(rule.location_kind)
        elif rule.kind == ChannelStockRule.Kind.SHARE:
            rules.shares[(rule.product_id, rule.location_id)] = rule.share
    return rules


def reserved_by_channel(*, stock_item_ids, channel_ids=None) -> dict[tuple[int, int], int]:
    """Open reserved units per (stock item, channel)."""
    qs = Reservation.objects.filter(stock_item_id__in=list(stock_item_ids), state=ReservationState.ACTIVE)
    if channel_ids is not None:
        qs = qs.filter(channel_id__in=list(channel_ids))
    rows = qs.values("stock_item_id", "channel_id").annotate(
        open=Sum(F("quantity") - F("quantity_consumed") - F("quantity_released"))
    )
    return {(row["stock_item_id"], row["channel_id"]): row["open"] or 0 for row in rows}


def available_for_channel(
    *, item: StockItem, location: Location, rules: ChannelRules, reserved: dict[tuple[int, int], int]
) -> int:
    """What this channel may still take from this stock row (see module doc)."""
    if rules.excludes(product_id=item.product_id, location=location):
        return 0
    free = item.on_hand - item.reserved - item.safety_stock
    for other_channel, fence in rules.fences_at(product_id=item.product_id, location_id=item.location_id):
        free -= max(0, fence - reserved.get((item.pk, other_channel), 0))
    share = rules.share_for(product_id=item.product_id, location_id=item.location_id)
    if share is not None:
        cap = math.floor(share * max(0, item.on_hand - item.safety_stock)) - reserved.get(
            (item.pk, rules.channel_id), 0
        )
        free = min(free, cap)
    return max(0, free)


def atp(*, product_id: int, channel_id: int | None = None, location_id: int | None = None, by_date=None) -> dict:
    """ATP of one product: total and per location, for a channel, optionally counting supply due by a date."""
    items = list(
        StockItem.objects.filter(product_id=product_id, location__is_active=True)
        .select_related("location")
        .order_by("location__priority", "location_id")
    )
    if location_id is not None:
        items = [item for item in items if item.location_id == location_id]
    rules = channel_rules(channel_id=channel_id, product_ids=[product_id])
    reserved = reserved_by_channel(stock_item_ids=[item.pk for item in items])
    per_location = {}
    for item in items:
        per_location[item.location.code] = {
            "on_hand": item.on_hand,
            "reserved": item.reserved,
            "safety_stock": item.safety_stock,
            "available": available_for_channel(item=item, location=item.location, rules=rules, reserved=reserved),
            "incoming": 0,
        }
    if by_date is not None:
        supply = IncomingSupply.objects.filter(
            product_id=product_id, status=IncomingSupply.Status.OPEN, expected_at__lte=by_date
        ).select_related("location")
        if location_id is not None:
            supply = supply.filter(location_id=location_id)
        for row in supply:
            if rules.excludes(product_id=product_id, location=row.location):
                continue
            entry = per_location.setdefault(
                row.location.code, {"on_hand": 0, "reserved": 0, "safety_stock": 0, "available": 0, "incoming": 0}
            )
            entry["incoming"] += row.quantity_unpromised
    total = sum(entry["available"] + entry["incoming"] for entry in per_location.values())
    product = Product.objects.only("is_active", "sellable_from", "sellable_until").get(pk=product_id)
    when = (
        timezone.now()
        if by_date is None
        else timezone.make_aware(datetime.datetime.combine(by_date, datetime.time(12)))
    )
    sellable = product.is_sellable_at(max(when, timezone.now()))
    # A product that cannot be sold (switched off, outside its sell window) promises nothing.
    return {"product_id": product_id, "atp": total if sellable else 0, "sellable": sellable, "locations": per_location}
