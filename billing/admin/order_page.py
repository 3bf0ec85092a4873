"""Billing's button on the order page (oms.core.admin.order_action): the seller cancellation, which
cancels paid items out of stock and requests their refund."""

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from billing.services.refunds import seller_cancel_lines
from oms.core.admin import LineQuantitiesForm, OrderPageAction, order_action
from orders.choices import OrderStatus
from orders.models import Order


class SellerCancelForm(LineQuantitiesForm):
    quantity_label = _("open")

    def available(self, line):
        return line.quantity_open

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.line_fields:
            self.fields[name].initial = 0  # nothing canceled unless asked
        del self.fields["reference"]
        reason = self.fields.pop("reason")
        self.fields["compensation"] = forms.DecimalField(
            label=_("Compensation voucher"),
            required=False,
            min_value=Decimal("0"),
            decimal_places=4,
            max_digits=14,
            help_text=_("Optional. A voucher on top of the refund, in the order's currency."),
        )
        self.fields["reason"] = reason


def _seller_cancel(order, user, form):
    return seller_cancel_lines(
        order=order,
        actor=user,
        quantities=form.quantities(),
        compensation=form.cleaned_data.get("compensation"),
        reason=form.cleaned_data.get("reason") or "",
    )


def seller_cancel_allowed(order: Order, user) -> bool:
    """Paid, still something open to cancel, and the user may both cancel paid items and request refunds."""
    return (
        user.has_perm("billing.request_refund")
        and user.has_perm("orders.cancel_order")
        and user.has_perm("orders.cancel_paid_order")
        and order.amount_paid > 0
        and order.status
        not in {OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.COMPLETED, OrderStatus.CANCELED}
        and any(line.quantity_open > 0 for line in order.lines.all())
    )


order_action(
    OrderPageAction(
        name="seller_cancel",
        label=_("Seller cancellation (stock-out)"),
        form_class=SellerCancelForm,
        run=_seller_cancel,
        done=_("Items of order %(number)s canceled; the refund awaits approval."),
        allowed=seller_cancel_allowed,
        tone="danger",
        intro=_(
            "The units are canceled and their stock released, their price is requested back to the original "
            "payment (the refund awaits approval) and the customer is told. This cannot be undone."
        ),
    )
)
