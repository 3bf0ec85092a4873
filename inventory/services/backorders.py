"""What no location has for an order: units taken from lower-priority channels' soft reservations
(last-unit preemption), then promised against incoming supply.

Preemption takes the losing reservations with SKIP LOCKED (it never waits on them) and then their
stock row, after the rows the allocation already holds; promises lock supply by (expected date, id).
"""

from django.db.models import F, Sum
from django.utils import timezone

from inventory.models import (
    AllocationConflict,
    ChannelStockSettings,
    IncomingSupply,
    MovementReason,
    Product,
    Reservation,
    ReservationMode,
    ReservationState,
)
from inventory.services._common import _channel_settings
from inventory.sourcing import (
    LineNeed,
)
from inventory.stock import ledger_write, locked_item


def _promise_from_supply(*, order, backorders, actor, mode: str, products: dict[int, Product]):
    """Back-ordered units promised against incoming supply (pre-orders within their limit).

    Returns (promises [(need, supply, qty)], shortages [(need, qty)]).
    """
    promises, shortages = [], []
    for need, quantity in backorders:
        product = products[need.product_id]
        left = quantity
        if product.preorder_enabled and product.preorder_limit:
            promised_total = (
                Reservation.objects.filter(
                    product_id=product.pk, supply__isnull=False, state=ReservationState.ACTIVE
                ).aggregate(n=Sum(F("quantity") - F("quantity_consumed") - F("quantity_released")))["n"]
                or 0
            )
            left = min(left, max(0, product.preorder_limit - promised_total))
        for supply in (
            IncomingSupply.objects.select_for_update()
            .filter(product_id=need.product_id, status=IncomingSupply.Status.OPEN)
            .order_by("expected_at", "pk")
        ):
            if left <= 0:
                break
            take = min(left, supply.quantity_unpromised)
            if take <= 0:
                continue
            supply.quantity_promised += take
            supply.save(update_fields=["quantity_promised"])
            Reservation.objects.create(
                order_id=order.pk,
                order_line_id=need.line_id,
                channel_id=order.channel_id,
                product_id=need.product_id,
                location_id=supply.location_id,
                supply=supply,
                quantity=take,
                mode=mode,
            )
            promises.append((need, supply, take))
            left -= take
        short = quantity - sum(q for n, _, q in promises if n is need)
        if short > 0:
            shortages.append((need, short))
    return promises, shortages


def preempt_for(
    *, order, need: LineNeed, quantity: int, actor, preemptible_orders=None
) -> list[tuple[Reservation, int]]:
    """Take units soft-reserved by lower-priority channels' orders that may still give them up.

    Which orders may is the caller's rule, not inventory's: `preemptible_orders` are their ids (a
    list or a subquery, such as the orders confirmed and not yet in preparation), read when the
    preemption runs; None: no order may. Rows another transaction is working on are skipped (SKIP
    LOCKED), so this never waits on, or deadlocks with, the losing order's own services. Returns
    [(losing reservation, units)]; each conflict is recorded. The losing orders must then be
    re-sourced by the caller after commit.
    """
    if preemptible_orders is None:
        return []
    my_priority = _channel_settings(order.channel_id).priority
    lower = ChannelStockSettings.objects.filter(priority__gt=my_priority).values_list("channel_id", flat=True)
    candidates = list(
        Reservation.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(
            product_id=need.product_id,
            state=ReservationState.ACTIVE,
            mode=ReservationMode.SOFT,
            stock_item__isnull=False,
            channel_id__in=list(lower),
            order_id__in=preemptible_orders,
        )
        .exclude(order_id=order.pk)
        .order_by("-created_at", "-pk")  # the newest promise gives way first
    )
    taken = []
    left = quantity
    for loser in candidates:
        if left <= 0:
            break
        units = min(left, loser.quantity_open)
        item = locked_item(product_id=loser.product_id, location_id=loser.location_id)
        loser.quantity_released += units
        if loser.quantity_open == 0:
            loser.state = ReservationState.RELEASED
            loser.closed_at = timezone.now()
        loser.save(update_fields=["quantity_released", "state", "closed_at"])
        # The units change hands: reserved stays the same on the row, two ledger rows say who.
        ledger_write(
            item=item,
            reserved_delta=-units,
            reason=MovementReason.RELEASE,
            actor=actor,
            order_id=loser.order_id,
            order_line_id=loser.order_line_id,
            reference=order.number,
            note="Last-unit conflict: lost to a higher-priority channel",
        )
        ledger_write(
            item=item,
            reserved_delta=units,
            reason=MovementReason.RESERVATION,
            actor=actor,
            order_id=order.pk,
            order_line_id=need.line_id,
            reference=order.number,
            note="Last-unit conflict: won on channel priority",
        )
        Reservation.objects.create(
            order_id=order.pk,
            order_line_id=need.line_id,
            channel_id=order.channel_id,
            product_id=need.product_id,
            location_id=loser.location_id,
            stock_item=item,
            quantity=units,
            mode=ReservationMode.SOFT,
        )
        AllocationConflict.objects.create(
            stock_item=item,
            winner_order=order,
            loser_order_id=loser.order_id,
            quantity=units,
            reason=f"Channel priority {my_priority} beats the losing order's channel; newest promise gives way.",
        )
        taken.append((loser, units))
        left -= units
    return taken
