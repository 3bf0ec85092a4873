from django.db import models
from django.utils.translation import gettext_lazy as _


class ShipmentKind(models.TextChoices):
    DELIVERY = "delivery", _("Delivery")
    PICKUP = "pickup", _("Store pickup")


class ShipmentStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PICKING = "picking", _("Picking")
    SHORT_PICKED = "short_picked", _("Short-picked")
    PACKED = "packed", _("Packed")
    SHIPPED = "shipped", _("Shipped")
    IN_TRANSIT = "in_transit", _("In transit")
    DELIVERED = "delivered", _("Delivered")
    LOST = "lost", _("Lost")
    DAMAGED = "damaged", _("Damaged")
    RETURNED_TO_SENDER = "returned_to_sender", _("Returned to sender")
    CANCELED = "canceled", _("Canceled")
    READY_FOR_PICKUP = "ready_for_pickup", _("Ready for pickup")
    PICKED_UP = "picked_up", _("Picked up")
    PICKUP_EXPIRED = "pickup_expired", _("Pickup expired")


# Not yet handed over: the units are still in the building, reserved.
OPEN_STATUSES = (
    ShipmentStatus.PENDING,
    ShipmentStatus.PICKING,
    ShipmentStatus.SHORT_PICKED,
    ShipmentStatus.PACKED,
    ShipmentStatus.READY_FOR_PICKUP,
)
# Handed to a carrier (or the customer): counted as shipped on the order.
HANDED_OVER_STATUSES = (
    ShipmentStatus.SHIPPED,
    ShipmentStatus.IN_TRANSIT,
    ShipmentStatus.DELIVERED,
    ShipmentStatus.LOST,
    ShipmentStatus.DAMAGED,
    ShipmentStatus.RETURNED_TO_SENDER,
    ShipmentStatus.PICKED_UP,
)


class WaveRender(models.TextChoices):
    IDLE = "idle", _("Not printed")
    QUEUED = "queued", _("Queued")
    RENDERING = "rendering", _("Rendering")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")


class ShortPickResolution(models.TextChoices):
    SUBSTITUTE = "substitute", _("Substitute another SKU")
    DELAY = "delay", _("Delay with a new promise date")
    CANCEL_LINE = "cancel_line", _("Cancel the missing units")


class ConsentChannel(models.TextChoices):
    EMAIL = "email", _("Email")
    PHONE = "phone", _("Phone")
    CHAT = "chat", _("Chat")
    PORTAL = "portal", _("Customer portal")
    POLICY = "policy", _("Standing policy")


class TrackingSource(models.TextChoices):
    WEBHOOK = "webhook", _("Webhook")
    POLL = "poll", _("Polling")
    MANUAL = "manual", _("Manual")
