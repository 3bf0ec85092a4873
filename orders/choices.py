from django.db import models
from django.utils.translation import gettext_lazy as _


class ChannelKind(models.TextChoices):
    WEB = "web", _("Web store")
    APP = "app", _("Mobile app")
    MARKETPLACE = "marketplace", _("Marketplace")
    EDI = "edi", _("EDI reseller")
    STORE = "store", _("Store")
    PHONE = "phone", _("Phone")
    SOCIAL = "social", _("Social / live selling")


class OrderStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PENDING_APPROVAL = "pending_approval", _("Pending approval")
    AWAITING_PAYMENT = "awaiting_payment", _("Awaiting payment")
    UNDER_REVIEW = "under_review", _("Under review")
    CONFIRMED = "confirmed", _("Confirmed")
    IN_PREPARATION = "in_preparation", _("In preparation")
    PARTIALLY_SHIPPED = "partially_shipped", _("Partially shipped")
    SHIPPED = "shipped", _("Shipped")
    DELIVERED = "delivered", _("Delivered")
    COMPLETED = "completed", _("Completed")
    CANCELED = "canceled", _("Canceled")


class PaymentStatus(models.TextChoices):
    """Derived from amounts paid and refunded against the order total."""

    UNPAID = "unpaid", _("Unpaid")
    AUTHORIZED = "authorized", _("Authorized")
    ON_TERMS = "on_terms", _("On payment terms")
    PARTIALLY_PAID = "partially_paid", _("Partially paid")
    PAID = "paid", _("Paid")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
    REFUNDED = "refunded", _("Refunded")


class FulfillmentStatus(models.TextChoices):
    """Derived from line quantities (ordered, canceled, shipped, delivered)."""

    UNFULFILLED = "unfulfilled", _("Unfulfilled")
    PARTIALLY_SHIPPED = "partially_shipped", _("Partially shipped")
    SHIPPED = "shipped", _("Shipped")
    PARTIALLY_DELIVERED = "partially_delivered", _("Partially delivered")
    DELIVERED = "delivered", _("Delivered")
    CANCELED = "canceled", _("Canceled")


class HoldReason(models.TextChoices):
    FRAUD_REVIEW = "fraud_review", _("Fraud review")
    CREDIT_LIMIT = "credit_limit", _("Credit limit")
    ADDRESS_CHECK = "address_check", _("Address to check")
    PAYMENT_OVERDUE = "payment_overdue", _("Payment overdue")
    SUPPLIER_DELAY = "supplier_delay", _("Supplier delay")
    STOCK_SHORTAGE = "stock_shortage", _("Stock shortage")
    UNKNOWN_PRODUCT = "unknown_product", _("Unknown product")
    MANUAL = "manual", _("Manual")


class CancelReason(models.TextChoices):
    CUSTOMER_REQUEST = "customer_request", _("Customer request")
    PAYMENT_FAILED = "payment_failed", _("Payment failed")
    FRAUD = "fraud", _("Fraud")
    OUT_OF_STOCK = "out_of_stock", _("Out of stock")
    DUPLICATE = "duplicate", _("Duplicate order")
    TEST = "test", _("Test order")
    PICKUP_EXPIRED = "pickup_expired", _("Not collected in time")
    OTHER = "other", _("Other")


class OrderEventType(models.TextChoices):
    """Past tense, stable: integrations subscribe to these (as `order.<value>`)."""

    CREATED = "created", _("Order created")
    IMPORTED = "imported", _("Order imported")
    SUBMITTED = "submitted", _("Order submitted")
    APPROVED = "approved", _("Order approved")
    PAYMENT_RECORDED = "payment_recorded", _("Payment recorded")
    CONFIRMED = "confirmed", _("Order confirmed")
    ACCEPTED_ON_TERMS = "accepted_on_terms", _("Accepted on payment terms")
    FLAGGED_FOR_REVIEW = "flagged_for_review", _("Flagged for review")
    REVIEW_ACCEPTED = "review_accepted", _("Review accepted")
    STOCK_ALLOCATED = "stock_allocated", _("Stock allocated")
    BACKORDERED = "backordered", _("Backordered")
    STOCK_RELEASED = "stock_released", _("Stock released")
    PREPARATION_STARTED = "preparation_started", _("Preparation started")
    SHIPMENT_RECORDED = "shipment_recorded", _("Shipment recorded")
    SHIPPED = "shipped", _("Order shipped")
    DELIVERED = "delivered", _("Order delivered")
    COMPLETED = "completed", _("Order completed")
    CANCELED = "canceled", _("Order canceled")
    HOLD_PLACED = "hold_placed", _("Hold placed")
    HOLD_RELEASED = "hold_released", _("Hold released")
    NOTE_ADDED = "note_added", _("Note added")
    TAG_ADDED = "tag_added", _("Tag added")
    TAG_REMOVED = "tag_removed", _("Tag removed")
    ADDRESS_CHANGED = "address_changed", _("Address changed")
    SHIPMENT_PLANNED = "shipment_planned", _("Shipment planned")
    CONSOLIDATED = "consolidated", _("Shipped together with another order")
    SHORT_PICKED = "short_picked", _("Short pick reported")
    LINE_SUBSTITUTED = "line_substituted", _("Item substituted")
    DELIVERY_DELAYED = "delivery_delayed", _("Delivery delayed")
    LINES_CANCELED = "lines_canceled", _("Items canceled")
    PARCEL_UPDATED = "parcel_updated", _("Parcel tracking updated")
    PARCEL_EXCEPTION = "parcel_exception", _("Parcel exception")
    READY_FOR_PICKUP = "ready_for_pickup", _("Ready for pickup")
    PICKUP_REMINDED = "pickup_reminded", _("Pickup reminder sent")
    PICKUP_EXPIRED = "pickup_expired", _("Pickup expired")
    PAYMENT_FAILED = "payment_failed", _("Payment failed")
    PAYMENT_REFUNDED = "payment_refunded", _("Payment refunded")
    INVOICE_ISSUED = "invoice_issued", _("Invoice issued")
    CREDIT_NOTE_ISSUED = "credit_note_issued", _("Credit note issued")
    REFUND_REQUESTED = "refund_requested", _("Refund requested")
    REFUND_APPROVED = "refund_approved", _("Refund approved")
    REFUND_REJECTED = "refund_rejected", _("Refund rejected")
    REFUND_PROCESSED = "refund_processed", _("Refund processed")
    REFUND_FAILED = "refund_failed", _("Refund failed")
    DISPUTE_OPENED = "dispute_opened", _("Dispute opened")
    DISPUTE_EVIDENCE_GENERATED = "dispute_evidence_generated", _("Dispute evidence generated")
    DISPUTE_EVIDENCE_SUBMITTED = "dispute_evidence_submitted", _("Dispute evidence submitted")
    DISPUTE_WON = "dispute_won", _("Dispute won")
    DISPUTE_LOST = "dispute_lost", _("Dispute lost")
    RETURN_REQUESTED = "return_requested", _("Return requested")
    RETURN_APPROVED = "return_approved", _("Return approved")
    RETURN_RECEIVED = "return_received", _("Return received")
    RETURN_INSPECTED = "return_inspected", _("Return inspected")
    RETURN_REFUSED = "return_refused", _("Return refused")
    RETURN_CANCELED = "return_canceled", _("Return canceled")
    RETURN_CLOSED = "return_closed", _("Return closed")
    EXCHANGE_LINE_ADDED = "exchange_line_added", _("Exchange item added")
