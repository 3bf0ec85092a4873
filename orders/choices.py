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
    SLA_BREACHED = "sla_breached", _("Service level breached")
    CASE_OPENED = "case_opened", _("Case opened")
    CASE_ASSIGNED = "case_assigned", _("Case assigned")
    CASE_ESCALATED = "case_escalated", _("Case escalated")
    CASE_RESOLVED = "case_resolved", _("Case resolved")
    RULE_FIRED = "rule_fired", _("Automation rule fired")
    CUSTOMER_MERGED = "customer_merged", _("Customer records merged")
    FRAUD_CLEARED = "fraud_cleared", _("Fraud review cleared")


class CaseKind(models.TextChoices):
    """Every problem that needs a person. Each kind belongs to one team (see CASE_TEAMS)."""

    FRAUD_REVIEW = "fraud_review", _("Fraud review")
    ADDRESS_CHECK = "address_check", _("Address to check")
    STOCK_SHORTAGE = "stock_shortage", _("Stock shortage")
    SHORT_PICK = "short_pick", _("Short pick")
    SLA_BREACH = "sla_breach", _("SLA breach")
    LOST_PARCEL = "lost_parcel", _("Lost parcel")
    DAMAGED_PARCEL = "damaged_parcel", _("Damaged parcel")
    CREDIT_HOLD = "credit_hold", _("Credit hold")
    PAYMENT_OVERDUE = "payment_overdue", _("Payment overdue")
    DISPUTE = "dispute", _("Dispute")
    INTEGRATION_FAILURE = "integration_failure", _("Integration failure")
    ESCALATION = "escalation", _("Customer escalation")
    OTHER = "other", _("Other")


class CaseLevel(models.TextChoices):
    L1 = "l1", _("Level 1")
    L2 = "l2", _("Level 2")


class CaseStatus(models.TextChoices):
    OPEN = "open", _("Open")
    IN_PROGRESS = "in_progress", _("In progress")
    ESCALATED = "escalated", _("Escalated")
    RESOLVED = "resolved", _("Resolved")


class CaseDecision(models.TextChoices):
    """What was decided, kept as evidence (a force-majeure delay, a false positive…)."""

    FALSE_POSITIVE = "false_positive", _("False positive: released")
    CONFIRMED_FRAUD = "confirmed_fraud", _("Fraud confirmed: canceled")
    FIXED = "fixed", _("Fixed")
    CUSTOMER_CONTACTED = "customer_contacted", _("Customer contacted")
    RESHIPPED = "reshipped", _("Reshipped")
    REFUNDED = "refunded", _("Refunded")
    CLAIM_FILED = "claim_filed", _("Carrier claim filed")
    FORCE_MAJEURE = "force_majeure", _("Force majeure")
    GOODWILL = "goodwill", _("Goodwill gesture")
    NO_ACTION = "no_action", _("No action needed")
    RESOLVED_UPSTREAM = "resolved_upstream", _("Resolved where it was detected")


class CaseTeam(models.TextChoices):
    SUPPORT = "support", _("Support")
    FRAUD = "fraud", _("Fraud")
    WAREHOUSE = "warehouse", _("Warehouse")
    FINANCE = "finance", _("Finance")
    INTEGRATION = "integration", _("Integrations")


CASE_TEAMS = {
    CaseKind.FRAUD_REVIEW: CaseTeam.FRAUD,
    CaseKind.ADDRESS_CHECK: CaseTeam.SUPPORT,
    CaseKind.STOCK_SHORTAGE: CaseTeam.WAREHOUSE,
    CaseKind.SHORT_PICK: CaseTeam.WAREHOUSE,
    CaseKind.SLA_BREACH: CaseTeam.SUPPORT,
    CaseKind.LOST_PARCEL: CaseTeam.SUPPORT,
    CaseKind.DAMAGED_PARCEL: CaseTeam.SUPPORT,
    CaseKind.CREDIT_HOLD: CaseTeam.FINANCE,
    CaseKind.PAYMENT_OVERDUE: CaseTeam.FINANCE,
    CaseKind.DISPUTE: CaseTeam.FINANCE,
    CaseKind.INTEGRATION_FAILURE: CaseTeam.INTEGRATION,
    CaseKind.ESCALATION: CaseTeam.SUPPORT,
    CaseKind.OTHER: CaseTeam.SUPPORT,
}


class RuleTrigger(models.TextChoices):
    """The events an automation rule can start from. Each maps to order event types (automation.py)."""

    ORDER_PLACED = "order_placed", _("Order placed")
    ORDER_PAID = "order_paid", _("Order paid")
    ORDER_CONFIRMED = "order_confirmed", _("Order confirmed")
    HOLD_PLACED = "hold_placed", _("Hold placed")
    ORDER_SHIPPED = "order_shipped", _("Order shipped")
    SHIPMENT_LATE = "shipment_late", _("Shipment late (SLA breached)")
    PARCEL_EXCEPTION = "parcel_exception", _("Parcel lost or damaged")
    ORDER_DELIVERED = "order_delivered", _("Order delivered")
    ORDER_CANCELED = "order_canceled", _("Order canceled")
    RETURN_REQUESTED = "return_requested", _("Return requested")
    RETURN_RECEIVED = "return_received", _("Return received")
    REFUND_REQUESTED = "refund_requested", _("Refund requested")
    DISPUTE_OPENED = "dispute_opened", _("Dispute opened")


class ApiClientRole(models.TextChoices):
    """An API client's job. Each is a role group (API_CLIENT_GROUPS) whose permissions
    oms/cockpit/roles.py defines: the job's actions and nothing else."""

    STORE_FRONT = "store_front", _("Store front / marketplace connector")
    THREE_PL = "3pl", _("3PL / WMS")
    PAYMENT_PROVIDER = "payment_provider", _("Payment provider")
    ERP = "erp", _("ERP / finance export")
    READ_ONLY = "read_only", _("Read-only")


# The role group of each API client role. A user in one of these groups is an API client: channels
# limit what it reaches (orders.selectors.channel_scope), none at all without its ApiClient record.
API_CLIENT_GROUPS = {
    ApiClientRole.STORE_FRONT: "API: store front",
    ApiClientRole.THREE_PL: "API: 3PL",
    ApiClientRole.PAYMENT_PROVIDER: "API: payment provider",
    ApiClientRole.ERP: "API: ERP / finance",
    ApiClientRole.READ_ONLY: "API: read-only",
}
