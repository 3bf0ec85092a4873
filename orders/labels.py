"""What the customer reads: one translated label per (status, payment, fulfillment) combination.

Internal states never leak: an order under fraud review reads "being processed".
"""

from django.utils.translation import gettext_lazy as _
from django.utils.translation import override

from orders.choices import FulfillmentStatus, OrderStatus, PaymentStatus

_REFUNDED = {PaymentStatus.REFUNDED}
_PART_REFUNDED = {PaymentStatus.PARTIALLY_REFUNDED}


def customer_label(*, status: str, payment_status: str, fulfillment_status: str, refund_pending: bool = False):
    if status == OrderStatus.CANCELED:
        if payment_status in _REFUNDED:
            return _("Canceled — refunded")
        if refund_pending or payment_status in {PaymentStatus.PAID, PaymentStatus.PARTIALLY_PAID, *_PART_REFUNDED}:
            return _("Canceled — refund in progress")
        return _("Canceled")
    if status == OrderStatus.DRAFT:
        return _("Order being created")
    if status == OrderStatus.PENDING_APPROVAL:
        return _("Awaiting approval")
    if status == OrderStatus.AWAITING_PAYMENT:
        if payment_status == PaymentStatus.PARTIALLY_PAID:
            return _("Partially paid — awaiting the balance")
        return _("Awaiting payment")
    if status == OrderStatus.UNDER_REVIEW:
        return _("Being processed")
    if status == OrderStatus.CONFIRMED:
        if payment_status == PaymentStatus.ON_TERMS:
            return _("Confirmed — invoice to follow")
        return _("Confirmed")
    if status == OrderStatus.IN_PREPARATION:
        return _("Being prepared")
    if status == OrderStatus.PARTIALLY_SHIPPED:
        return _("Partially shipped")
    if status == OrderStatus.SHIPPED:
        if fulfillment_status == FulfillmentStatus.PARTIALLY_DELIVERED:
            return _("Partially delivered")
        return _("Shipped")
    if status == OrderStatus.DELIVERED:
        if payment_status in _REFUNDED:
            return _("Delivered — refunded")
        if payment_status in _PART_REFUNDED:
            return _("Delivered — partially refunded")
        return _("Delivered")
    if status == OrderStatus.COMPLETED:
        if payment_status in _REFUNDED:
            return _("Completed — refunded")
        if payment_status in _PART_REFUNDED:
            return _("Completed — partially refunded")
        return _("Completed")
    raise ValueError(f"No customer label for status {status!r}")


def _under_fraud_review(order) -> bool:
    if order.status not in {OrderStatus.AWAITING_PAYMENT, OrderStatus.CONFIRMED}:
        return False
    annotated = getattr(order, "under_fraud_review", None)  # orders.selectors.order_list annotates it
    if annotated is not None:
        return annotated
    if "holds" in getattr(order, "_prefetched_objects_cache", {}):
        return any(hold.reason == "fraud_review" and hold.released_at is None for hold in order.holds.all())
    return order.holds.filter(reason="fraud_review", released_at__isnull=True).exists()


def order_customer_label(order, language: str | None = None) -> str:
    # An order held for a fraud review reads like one under review: honest, neutral, no accusation.
    status = OrderStatus.UNDER_REVIEW if _under_fraud_review(order) else order.status
    label = customer_label(
        status=status,
        payment_status=order.payment_status,
        fulfillment_status=order.fulfillment_status,
        refund_pending=order.amount_paid > order.amount_refunded,
    )
    with override(language or order.locale):
        return str(label)
