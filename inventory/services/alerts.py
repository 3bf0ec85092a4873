"""Periodic checks on the catalog: products past their sell window are switched off, key SKUs whose
stock covers too few days are flagged.
"""

import datetime
import logging
import math
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from inventory.models import (
    MovementReason,
    Product,
    StockAlert,
    StockItem,
    StockMovement,
)
from oms.core.history import stamp

logger = logging.getLogger("inventory")


@transaction.atomic
def products_switch_off_expired(*, actor, now=None) -> list[str]:
    """Products past their sellable-until date stop being sellable; each switch is logged."""
    now = now or timezone.now()
    expired = list(Product.objects.select_for_update().filter(is_active=True, sellable_until__lte=now))
    for product in expired:
        product.is_active = False
        stamp(product, actor=actor, reason="Sell window ended")
        product.save(update_fields=["is_active"])
        StockAlert.objects.get_or_create(
            product=product,
            kind=StockAlert.Kind.SELL_WINDOW_ENDED,
            resolved_at=None,
            defaults={"message": f"{product.sku} stopped being sellable on {product.sellable_until:%Y-%m-%d}."},
        )
        logger.info("product switched off: %s (sellable until %s)", product.sku, product.sellable_until.isoformat())
    return [p.sku for p in expired]


@transaction.atomic
def coverage_alerts_refresh(*, window_days: int = 28, now=None) -> list[StockAlert]:
    """Flag key SKUs whose sellable stock covers fewer days than their threshold at recent sales pace."""
    now = now or timezone.now()
    since = now - datetime.timedelta(days=window_days)
    opened = []
    for product in Product.objects.filter(is_key=True, is_active=True):
        sold = -(
            StockMovement.objects.filter(
                stock_item__product=product, reason=MovementReason.SHIPMENT, created_at__gte=since
            ).aggregate(n=Sum("on_hand_delta"))["n"]
            or 0
        )
        stock = StockItem.objects.filter(product=product).aggregate(free=Sum(F("on_hand") - F("reserved")))["free"] or 0
        per_day = Decimal(sold) / window_days
        cover = Decimal(math.inf) if per_day == 0 else (Decimal(stock) / per_day).quantize(Decimal("0.1"))
        open_alert = StockAlert.objects.filter(
            product=product, kind=StockAlert.Kind.LOW_COVERAGE, resolved_at__isnull=True
        ).first()
        if per_day > 0 and cover < product.coverage_alert_days:
            if open_alert is None:
                opened.append(
                    StockAlert.objects.create(
                        product=product,
                        kind=StockAlert.Kind.LOW_COVERAGE,
                        days_of_cover=cover,
                        message=f"{product.sku}: {stock} unit(s) cover {cover} days at {per_day:.1f}/day "
                        f"(threshold {product.coverage_alert_days} days).",
                    )
                )
            else:
                open_alert.days_of_cover = cover
                open_alert.save(update_fields=["days_of_cover"])
        elif open_alert is not None:
            open_alert.resolved_at = now
            open_alert.save(update_fields=["resolved_at"])
    return opened
