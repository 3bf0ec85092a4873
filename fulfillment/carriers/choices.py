from django.db import models


class TrackingStatus(models.TextChoices):
    """Our tracking statuses; every carrier's own codes are mapped onto these by its adapter."""

    LABEL_CREATED = "label_created", "Label created"
    IN_TRANSIT = "in_transit", "In transit"
    OUT_FOR_DELIVERY = "out_for_delivery", "Out for delivery"
    DELIVERED = "delivered", "Delivered"
    EXCEPTION = "exception", "Exception"
    RETURNED_TO_SENDER = "returned_to_sender", "Returned to sender"
    LOST = "lost", "Lost"
    DAMAGED = "damaged", "Damaged"
