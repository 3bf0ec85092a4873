"""Small pieces the stock services share: quantity checks, a channel's stock settings, what order lines
hold reserved.
"""

from django.db.models import F, Sum

from inventory.models import (
    ChannelStockSettings,
    Reservation,
    ReservationState,
)
from oms.core.errors import ValidationError


def _positive(quantity, field: str = "quantity") -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise ValidationError("A whole number of at least 1 is required.", fields={field: ["At least 1."]})
    return quantity


def _channel_settings(channel_id: int) -> ChannelStockSettings:
    found = ChannelStockSettings.objects.filter(channel_id=channel_id).first()
    return found or ChannelStockSettings(channel_id=channel_id)


def _open_reserved_by_line(order_id: int, line_ids) -> dict[int, int]:
    rows = (
        Reservation.objects.filter(order_id=order_id, order_line_id__in=list(line_ids), state=ReservationState.ACTIVE)
        .values("order_line_id")
        .annotate(open=Sum(F("quantity") - F("quantity_consumed") - F("quantity_released")))
    )
    return {row["order_line_id"]: row["open"] or 0 for row in rows}
