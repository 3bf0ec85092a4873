"""The order page's actions: each one form and one service call; which ones a user is offered on an order."""

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from oms.core.admin import (
    ORDER_PAGE_ACTIONS,
    ActionForm,
)
from oms.core.errors import ConflictError
from orders import cases, services
from orders.admin.cases import may_clear_fraud  # also registers the case, rule and SLA screens
from orders.admin.forms import (
    ESCALATION_SUBTYPES,
    BillingAddressForm,
    CancelForm,
    ClearFraudForm,
    DeliveryForm,
    EscalationForm,
    FlagForm,
    HoldForm,
    NoteForm,
    PaymentForm,
    ReasonForm,
    ReleaseHoldForm,
    ShipmentForm,
    ShippingAddressForm,
    TagForm,
    UntagForm,
)
from orders.choices import (
    CaseKind,
)
from orders.models import Order
from orders.selectors import order_allowed_actions


def _open_escalation(order, user, form):
    subtype = form.cleaned_data["subtype"]
    label = dict(ESCALATION_SUBTYPES)[subtype]
    case, created = cases.case_open(
        kind=CaseKind.ESCALATION,
        source_key=f"escalation:{subtype}:{order.pk}",
        title=f"{label}: {form.cleaned_data['reason']}"[:255],
        actor=user,
        order=order,
        level=form.cleaned_data["level"],
        facts={"subtype": subtype, "note": form.cleaned_data["reason"]},
        by_hand=True,
    )
    if not created:
        raise ConflictError(f"Case {case.number} is already open for this escalation.", code="case_already_open")
    return case


def may_open_escalation(user) -> bool:
    kinds, _levels = cases.user_case_scope(user)
    return user.has_perm("orders.open_case") and CaseKind.ESCALATION.value in kinds


@dataclass(frozen=True)
class OrderAction:
    name: str
    label: str
    form_class: type[ActionForm]
    run: Callable[[Order, object, ActionForm], object]
    done: str
    tone: str = "default"
    intro: str = ""


def _reason(form) -> str:
    return form.cleaned_data.get("reason") or ""


ACTIONS: dict[str, OrderAction] = {
    action.name: action
    for action in [
        OrderAction(
            "submit",
            _("Submit"),
            ReasonForm,
            lambda o, u, f: services.order_submit(order=o, actor=u, reason=_reason(f)),
            _("Order %(number)s submitted."),
            tone="primary",
        ),
        OrderAction(
            "approve",
            _("Approve"),
            ReasonForm,
            lambda o, u, f: services.order_approve(order=o, actor=u, reason=_reason(f)),
            _("Order %(number)s approved."),
            tone="primary",
        ),
        OrderAction(
            "record_payment",
            _("Record payment"),
            PaymentForm,
            lambda o, u, f: services.order_mark_paid(
                order=o,
                actor=u,
                amount=f.cleaned_data.get("amount"),
                captured=f.cleaned_data.get("captured", False),
                method=f.cleaned_data.get("method") or "",
                reference=f.cleaned_data.get("reference") or "",
                reason=_reason(f),
            ),
            _("Payment recorded on order %(number)s."),
            tone="primary",
        ),
        OrderAction(
            "accept_on_terms",
            _("Accept on payment terms"),
            ReasonForm,
            lambda o, u, f: services.order_accept_on_terms(order=o, actor=u, reason=_reason(f)),
            _("Order %(number)s accepted on payment terms."),
            tone="primary",
        ),
        OrderAction(
            "accept_review",
            _("Accept after review"),
            ReasonForm,
            lambda o, u, f: services.order_accept(order=o, actor=u, reason=_reason(f)),
            _("Review of order %(number)s accepted."),
            tone="primary",
        ),
        OrderAction(
            "start_preparation",
            _("Start preparation"),
            ReasonForm,
            lambda o, u, f: services.order_start_preparation(order=o, actor=u, reason=_reason(f)),
            _("Preparation of order %(number)s started."),
            tone="primary",
        ),
        OrderAction(
            "record_shipment",
            _("Record shipment"),
            ShipmentForm,
            lambda o, u, f: services.order_record_shipment(
                order=o,
                actor=u,
                quantities=f.quantities(),
                reason=_reason(f),
                reference=f.cleaned_data.get("reference") or "",
            ),
            _("Shipment recorded on order %(number)s."),
            tone="primary",
        ),
        OrderAction(
            "mark_delivered",
            _("Mark delivered"),
            DeliveryForm,
            lambda o, u, f: services.order_mark_delivered(
                order=o, actor=u, quantities=f.quantities(), reason=_reason(f)
            ),
            _("Delivery recorded on order %(number)s."),
            tone="primary",
        ),
        OrderAction(
            "complete",
            _("Close order"),
            ReasonForm,
            lambda o, u, f: services.order_complete(order=o, actor=u, reason=_reason(f)),
            _("Order %(number)s closed."),
            tone="primary",
        ),
        OrderAction(
            "hold",
            _("Place hold"),
            HoldForm,
            lambda o, u, f: services.order_hold(
                order=o, actor=u, reason=f.cleaned_data["reason"], note=f.cleaned_data.get("note") or ""
            ),
            _("Hold placed on order %(number)s."),
            intro=_("An order with an active hold cannot start preparation or ship."),
        ),
        OrderAction(
            "release_hold",
            _("Release hold"),
            ReleaseHoldForm,
            lambda o, u, f: services.order_release_hold(
                hold=f.cleaned_data["hold"], actor=u, note=f.cleaned_data["note"]
            ),
            _("Hold released on order %(number)s."),
        ),
        OrderAction(
            "add_note",
            _("Add note"),
            NoteForm,
            lambda o, u, f: services.order_add_note(order=o, actor=u, body=f.cleaned_data["body"]),
            _("Note added to order %(number)s."),
        ),
        OrderAction(
            "tag",
            _("Add tag"),
            TagForm,
            lambda o, u, f: services.order_tag(order=o, actor=u, tag=f.cleaned_data["tag"], reason=_reason(f)),
            _("Order %(number)s tagged."),
        ),
        OrderAction(
            "untag",
            _("Remove tag"),
            UntagForm,
            lambda o, u, f: services.order_untag(order=o, actor=u, tag=f.cleaned_data["tag"], reason=_reason(f)),
            _("Tag removed from order %(number)s."),
        ),
        OrderAction(
            "change_shipping_address",
            _("Change shipping address"),
            ShippingAddressForm,
            lambda o, u, f: services.order_change_address(
                order=o, actor=u, kind="shipping", address=f.address(), reason=_reason(f)
            ),
            _("Shipping address of order %(number)s changed."),
        ),
        OrderAction(
            "change_billing_address",
            _("Change billing address"),
            BillingAddressForm,
            lambda o, u, f: services.order_change_address(
                order=o, actor=u, kind="billing", address=f.address(), reason=_reason(f)
            ),
            _("Billing address of order %(number)s changed."),
        ),
        OrderAction(
            "flag_for_review",
            _("Flag for review"),
            FlagForm,
            lambda o, u, f: services.order_flag_for_review(
                order=o, actor=u, reason=f.cleaned_data["reason"], risk_score=f.cleaned_data.get("risk_score")
            ),
            _("Order %(number)s flagged for review."),
            tone="danger",
            intro=_("The order stops until someone accepts the review. The customer reads “being processed”."),
        ),
        OrderAction(
            "cancel",
            _("Cancel order"),
            CancelForm,
            lambda o, u, f: services.order_cancel(
                order=o, actor=u, reason_code=f.cleaned_data["reason_code"], reason=f.cleaned_data["reason"]
            ),
            _("Order %(number)s canceled."),
            tone="danger",
            intro=_("Open quantities are canceled and active holds released. This cannot be undone."),
        ),
    ]
}


# The selector's action names → the cockpit's actions (one selector decides for cockpit and API).
SELECTOR_ACTIONS = {
    "submit": ["submit"],
    "approve": ["approve"],
    "mark_paid": ["record_payment"],
    "accept_on_terms": ["accept_on_terms"],
    "flag_for_review": ["flag_for_review"],
    "accept": ["accept_review"],
    "start_preparation": ["start_preparation"],
    "record_shipment": ["record_shipment"],
    "mark_delivered": ["mark_delivered"],
    "complete": ["complete"],
    "cancel": ["cancel"],
    "hold": ["hold"],
    "release_hold": ["release_hold"],
    "add_note": ["add_note"],
    "tag": ["tag"],
    "untag": ["untag"],
    "change_address": ["change_shipping_address", "change_billing_address"],
}


ACTIONS["clear_fraud"] = OrderAction(
    "clear_fraud",
    _("Clear fraud review"),
    ClearFraudForm,
    lambda o, u, f: services.order_clear_fraud(order=o, actor=u, reason=f.cleaned_data["reason"]),
    _("Fraud review of order %(number)s cleared: false positive."),
    tone="primary",
    intro=_(
        "The false-positive protocol: the fraud-review hold is released, the review accepted and the "
        "fraud case closed as a false positive, with your reason as its evidence."
    ),
)


ACTIONS["open_escalation"] = OrderAction(
    "open_escalation",
    _("Open escalation case"),
    EscalationForm,
    _open_escalation,
    _("Escalation case opened on order %(number)s."),
    intro=_("For a VIP customer or a medical or social emergency: a case in the support queue, due soon."),
)


def order_available_actions(order: Order, user) -> list[OrderAction]:
    """The cockpit actions `user` may perform on `order` now, in display order: the order's own, then
    those other apps contribute (oms.core.admin.order_action, e.g. billing's seller cancellation)."""
    names = {name for key in order_allowed_actions(order=order, user=user) for name in SELECTOR_ACTIONS[key]}
    if may_clear_fraud(order, user):
        names.add("clear_fraud")
    if may_open_escalation(user):
        names.add("open_escalation")
    if not order.tags.all():
        names.discard("untag")  # nothing to remove: no button
    own = [action for name, action in ACTIONS.items() if name in names]
    return own + [action for action in ORDER_PAGE_ACTIONS.values() if action.allowed(order, user)]
