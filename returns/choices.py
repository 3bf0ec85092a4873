from django.db import models
from django.utils.translation import gettext_lazy as _


class ReturnStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    APPROVED = "approved", _("Approved (label issued)")
    RECEIVED = "received", _("Received")
    INSPECTED = "inspected", _("Inspected")
    CLOSED = "closed", _("Closed")
    REFUSED = "refused", _("Refused")
    CANCELED = "canceled", _("Canceled")


class ReturnMethod(models.TextChoices):
    REFUND = "refund", _("Refund to the original payment method")
    EXCHANGE = "exchange", _("Exchange")
    STORE_CREDIT = "store_credit", _("Store credit")


class ReturnReason(models.TextChoices):
    CHANGED_MIND = "changed_mind", _("Changed my mind")
    WRONG_SIZE = "wrong_size", _("Wrong size or fit")
    DEFECTIVE = "defective", _("Defective")
    DAMAGED_IN_TRANSIT = "damaged_in_transit", _("Damaged in transit")
    WRONG_ITEM = "wrong_item", _("Wrong item received")
    NOT_AS_DESCRIBED = "not_as_described", _("Not as described")
    OTHER = "other", _("Other")


# Statuses in which a request still counts against what may be returned of a line.
OPEN_OR_DONE = [
    ReturnStatus.REQUESTED,
    ReturnStatus.APPROVED,
    ReturnStatus.RECEIVED,
    ReturnStatus.INSPECTED,
    ReturnStatus.CLOSED,
]
# The cockpit's work queue: parcels on their way back, parcels on the bench.
TO_RECEIVE_OR_INSPECT = [ReturnStatus.APPROVED, ReturnStatus.RECEIVED]
