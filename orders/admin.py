"""The cockpit's order screens.

Nothing here writes a model: every button opens a small form whose POST calls the service in
`orders.services` with `actor=request.user`. The service checks the permission, runs the
transition, writes the event and the history row; the admin only turns its `ApplicationError`
into a message on the page. Lists never run an unfiltered COUNT(*) (see oms.core.admin).
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Prefetch
from django.db.models.functions import Lower
from django.db.models.lookups import Exact
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django_countries import countries
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from inventory.admin import order_sourcing_panel
from oms.core.admin import (
    ORDER_PAGE_ACTIONS,
    AuditedAdmin,
    EstimatedCountPaginator,
    QueueStateFilter,
    ReadOnlyAdminMixin,  # noqa: F401 (shared cockpit helpers)
    apply_service_error,
    badge,
    money,
    order_page_panels,
    order_panel,
    short_datetime,
)
from oms.core.errors import ApplicationError, ConflictError
from orders import cases, identity, services
from orders.addresses import ADDRESS_FIELDS, format_address
from orders.admin_base import OrderRowsAdmin
from orders.admin_cases import may_clear_fraud, order_cases_panel  # also registers the case, rule and SLA screens
from orders.choices import (
    CancelReason,
    CaseKind,
    CaseLevel,
    FulfillmentStatus,
    HoldReason,
    OrderEventType,
    OrderStatus,
    PaymentStatus,
)
from orders.labels import order_customer_label
from orders.models import Channel, Customer, Order, OrderEvent, OrderHold, OrderLine, OrderNote, Tag
from orders.selectors import order_allowed_actions, order_search_q

# --- presentation helpers ------------------------------------------------------------------------

STATUS_TONES = {
    OrderStatus.DRAFT: "muted",
    OrderStatus.PENDING_APPROVAL: "warn",
    OrderStatus.AWAITING_PAYMENT: "warn",
    OrderStatus.UNDER_REVIEW: "alert",
    OrderStatus.CONFIRMED: "info",
    OrderStatus.IN_PREPARATION: "info",
    OrderStatus.PARTIALLY_SHIPPED: "teal",
    OrderStatus.SHIPPED: "teal",
    OrderStatus.DELIVERED: "ok",
    OrderStatus.COMPLETED: "done",
    OrderStatus.CANCELED: "void",
}
PAYMENT_TONES = {
    PaymentStatus.UNPAID: "warn",
    PaymentStatus.AUTHORIZED: "info",
    PaymentStatus.ON_TERMS: "info",
    PaymentStatus.PARTIALLY_PAID: "warn",
    PaymentStatus.PAID: "ok",
    PaymentStatus.PARTIALLY_REFUNDED: "purple",
    PaymentStatus.REFUNDED: "purple",
}
FULFILLMENT_TONES = {
    FulfillmentStatus.UNFULFILLED: "muted",
    FulfillmentStatus.PARTIALLY_SHIPPED: "teal",
    FulfillmentStatus.SHIPPED: "teal",
    FulfillmentStatus.PARTIALLY_DELIVERED: "ok",
    FulfillmentStatus.DELIVERED: "ok",
    FulfillmentStatus.CANCELED: "void",
}
EVENT_TONES = {
    OrderEventType.CANCELED: "void",
    OrderEventType.FLAGGED_FOR_REVIEW: "alert",
    OrderEventType.HOLD_PLACED: "alert",
    OrderEventType.HOLD_RELEASED: "ok",
    OrderEventType.PAYMENT_RECORDED: "ok",
    OrderEventType.CONFIRMED: "info",
    OrderEventType.SHIPPED: "teal",
    OrderEventType.SHIPMENT_RECORDED: "teal",
    OrderEventType.DELIVERED: "ok",
    OrderEventType.COMPLETED: "done",
    OrderEventType.NOTE_ADDED: "muted",
}


def _label(choices, value) -> str:
    try:
        return str(choices(value).label)
    except ValueError:
        return str(value)


MONEY_KEYS = {"amount", "refund_due", "total_gross"}


def _payload_money(value, event: OrderEvent) -> str:
    try:
        return money(Decimal(str(value)), event.order.currency)
    except (ArithmeticError, ValueError, TypeError):
        return str(value)


def payload_summary(event: OrderEvent, *, limit: int = 220) -> str:
    """One line that says what an event's payload holds, in words support reads."""
    payload = dict(event.payload or {})
    parts = []
    before, after = payload.pop("from", None), payload.pop("to", None)
    if before and after:
        parts.append(f"{_label(OrderStatus, before)} → {_label(OrderStatus, after)}")
    elif before:
        parts.append(_("from %(status)s") % {"status": _label(OrderStatus, before)})
    for key in ("hold", "note"):  # row ids: the holds and notes are shown on the page
        if isinstance(payload.get(key), int):
            payload.pop(key)
    if event.type == OrderEventType.ADDRESS_CHANGED and isinstance(payload.get("after"), dict):
        payload.pop("before", None)
        after_address = payload.pop("after")
        parts.append(f"{payload.pop('kind', '')}: {format_address(after_address).replace(chr(10), ', ')}")
    for key, value in payload.items():
        if value in (None, "", [], {}, False):
            continue
        if value is True:
            parts.append(key.replace("_", " "))
            continue
        if key == "lines" and isinstance(value, list):
            value = ", ".join(
                f"{line.get('sku', '?')} × {line.get('quantity', '?')}" if isinstance(line, dict) else str(line)
                for line in value
            )
        elif key == "lines" and isinstance(value, dict):
            key, value = "items", sum(q for q in value.values() if isinstance(q, int))
        elif key == "holds_released" and isinstance(value, list):
            value = len(value)
        elif key in MONEY_KEYS:
            value = _payload_money(value, event)
        elif key == "currency":
            continue  # shown with the amounts
        elif key == "reason_code":
            value = _label(CancelReason, value)
        elif key == "reason" and event.type in {OrderEventType.HOLD_PLACED, OrderEventType.HOLD_RELEASED}:
            value = _label(HoldReason, value)
        elif key in {"status", "fulfillment_status"}:
            value = _label(OrderStatus if key == "status" else FulfillmentStatus, value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        parts.append(f"{key.replace('_', ' ')}: {value}")
    text = " · ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- action forms --------------------------------------------------------------------------------


# The order page shows this many of the newest events; the rest are one click away.
TIMELINE_EVENTS = 100


class ActionForm(forms.Form):
    """A form for one order action. Service field errors land on the field of the same name."""

    def __init__(self, *args, order: Order, user, **kwargs):
        self.order = order
        self.user = user
        super().__init__(*args, **kwargs)

    def field_for_error(self, key: str) -> str | None:
        return key if key in self.fields else None


def _reason_field(*, required: bool, label=None, help_text=""):
    return forms.CharField(
        label=label or _("Reason"),
        required=required,
        max_length=services.MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=help_text,
    )


class ReasonForm(ActionForm):
    reason = _reason_field(required=False, help_text=_("Optional. Kept in the timeline and the history."))


class FlagForm(ActionForm):
    reason = _reason_field(required=True, help_text=_("Required. Staff only: the customer never sees it."))
    risk_score = forms.IntegerField(label=_("Risk score"), required=False, min_value=0, max_value=100)


class CancelForm(ActionForm):
    reason_code = forms.ChoiceField(label=_("Cancellation reason"), choices=CancelReason.choices)
    reason = _reason_field(required=True, label=_("Explanation"), help_text=_("Required. Kept in the timeline."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.order.has_received_money:
            self.fields["reason"].help_text = _(
                "Required. %(amount)s was received: a refund will be due once the order is canceled."
            ) % {"amount": money(self.order.amount_paid - self.order.amount_refunded, self.order.currency)}


class PaymentForm(ActionForm):
    amount = forms.DecimalField(
        label=_("Amount"), required=False, min_value=Decimal("0.01"), decimal_places=4, max_digits=14
    )
    captured = forms.BooleanField(
        label=_("Captured"), required=False, initial=True, help_text=_("Untick for an authorization only.")
    )
    method = forms.CharField(label=_("Method"), required=False, max_length=40)
    reference = forms.CharField(label=_("Payment reference"), required=False, max_length=128)
    reason = _reason_field(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        due = self.order.total_gross - self.order.amount_paid
        self.fields["amount"].help_text = _("Empty: the balance due, %(due)s.") % {
            "due": money(due, self.order.currency)
        }
        self.fields["method"].initial = self.order.payment_method


class LineQuantitiesForm(ActionForm):
    """One quantity field per line that still has something to record."""

    quantity_label = _("open")

    def available(self, line: OrderLine) -> int:
        raise NotImplementedError

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.line_fields = []
        for line in self.order.lines.order_by("line_number"):
            available = self.available(line)
            if available <= 0:
                continue
            name = f"line_{line.pk}"
            self.fields[name] = forms.IntegerField(
                label=f"{line.line_number}. {line.sku} — {line.name}",
                min_value=0,
                max_value=available,
                initial=available,
                help_text=f"{self.quantity_label}: {available}",
            )
            self.line_fields.append(name)
        self.fields["reference"] = forms.CharField(label=_("Reference"), required=False, max_length=128)
        self.fields["reason"] = _reason_field(required=False)

    def quantities(self) -> dict[int, int]:
        return {
            int(name.removeprefix("line_")): self.cleaned_data[name]
            for name in self.line_fields
            if self.cleaned_data.get(name)
        }

    def field_for_error(self, key: str) -> str | None:
        if key.startswith("quantities."):
            name = f"line_{key.removeprefix('quantities.')}"
            return name if name in self.fields else None
        return super().field_for_error(key)


class ShipmentForm(LineQuantitiesForm):
    quantity_label = _("still to ship")

    def available(self, line):
        return line.quantity_open


class DeliveryForm(LineQuantitiesForm):
    quantity_label = _("shipped, not yet delivered")

    def available(self, line):
        return line.quantity_shipped - line.quantity_delivered


class HoldForm(ActionForm):
    reason = forms.ChoiceField(label=_("Hold reason"), choices=HoldReason.choices)
    note = _reason_field(required=False, label=_("Note"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        active = {hold.reason for hold in self.order.holds.all() if hold.released_at is None}
        self.fields["reason"].choices = [(v, label) for v, label in HoldReason.choices if v not in active]


class ClearFraudForm(ActionForm):
    reason = _reason_field(
        required=True,
        label=_("Why it is a false positive"),
        help_text=_("Required. What you checked (customer called back, 3-D Secure passed…): kept as evidence."),
    )


ESCALATION_SUBTYPES = [
    ("vip", _("VIP customer")),
    ("medical", _("Medical emergency")),
    ("social", _("Social emergency")),
]


class EscalationForm(ActionForm):
    subtype = forms.ChoiceField(label=_("Escalation"), choices=ESCALATION_SUBTYPES)
    level = forms.ChoiceField(label=_("Level"), choices=CaseLevel.choices, initial=CaseLevel.L1)
    reason = _reason_field(required=True, label=_("What is needed"), help_text=_("Required. Staff only."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _kinds, levels = cases.user_case_scope(self.user)
        self.fields["level"].choices = [(v, label) for v, label in CaseLevel.choices if v in levels]


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


class ReleaseHoldForm(ActionForm):
    hold = forms.TypedChoiceField(label=_("Hold"), coerce=int)
    note = _reason_field(required=True, label=_("Why it can be released"), help_text=_("Required."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["hold"].choices = [
            (hold.pk, f"{hold.get_reason_display()} — {timezone.localtime(hold.placed_at):%Y-%m-%d %H:%M}")
            for hold in self.order.holds.all()
            if hold.released_at is None
        ]


class NoteForm(ActionForm):
    body = forms.CharField(
        label=_("Internal note"),
        max_length=services.MAX_TEXT,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 60}),
        help_text=_("Staff only: never shown to the customer."),
    )


class TagForm(ActionForm):
    tag = forms.CharField(label=_("Tag"), max_length=40)
    reason = _reason_field(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tag"].widget.attrs["list"] = "oms-known-tags"
        self.known_tags = list(Tag.objects.values_list("name", flat=True))


class UntagForm(ActionForm):
    tag = forms.ChoiceField(label=_("Tag"))
    reason = _reason_field(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tag"].choices = [(t.name, t.name) for t in self.order.tags.all()]


class AddressForm(ActionForm):
    kind = "shipping"
    name = forms.CharField(label=_("Name"), max_length=200)
    company = forms.CharField(label=_("Company"), max_length=200, required=False)
    line1 = forms.CharField(label=_("Address line 1"), max_length=200)
    line2 = forms.CharField(label=_("Address line 2"), max_length=200, required=False)
    postal_code = forms.CharField(label=_("Postal code"), max_length=200, required=False)
    city = forms.CharField(label=_("City"), max_length=200)
    region = forms.CharField(label=_("Region"), max_length=200, required=False)
    country = forms.ChoiceField(label=_("Country"), choices=list(countries))
    phone = forms.CharField(label=_("Phone"), max_length=200, required=False)
    reason = _reason_field(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = getattr(self.order, f"{self.kind}_address") or {}
        for field in ADDRESS_FIELDS:
            self.fields[field].initial = current.get(field, "")

    def address(self) -> dict:
        return {field: self.cleaned_data.get(field) or "" for field in ADDRESS_FIELDS}

    def field_for_error(self, key: str) -> str | None:
        return super().field_for_error(key.removeprefix("address."))


class ShippingAddressForm(AddressForm):
    kind = "shipping"


class BillingAddressForm(AddressForm):
    kind = "billing"


# --- the actions ---------------------------------------------------------------------------------


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


# The order page's panels (oms.core.admin.order_panel): the apps above orders register theirs from
# their own admin modules (fulfillment's Shipments, position 10).
order_panel("sourcing", template="admin/inventory/sourcing_panel.html", position=20)(order_sourcing_panel)
order_panel("cases_panel", template="admin/orders/case/order_panel.html", position=30)(order_cases_panel)


# --- filters -------------------------------------------------------------------------------------


class ActiveHoldFilter(admin.SimpleListFilter):
    title = _("hold")
    parameter_name = "on_hold"

    def lookups(self, request, model_admin):
        return [("yes", _("On hold")), ("no", _("Not on hold"))]

    def queryset(self, request, queryset):
        active = Exists(OrderHold.objects.filter(order=OuterRef("pk"), released_at__isnull=True))
        if self.value() == "yes":
            return queryset.filter(active)
        if self.value() == "no":
            return queryset.exclude(active)
        return queryset


class HoldStateFilter(QueueStateFilter):
    """Active holds by default: the list is the exception queue."""

    closed_field = "released_at"
    open_choice = ("active", _("Active"))
    closed_choice = ("released", _("Released"))


# --- orders --------------------------------------------------------------------------------------


@admin.register(Order)
class OrderAdmin(ReadOnlyAdminMixin, AuditedAdmin):
    list_display = (
        "number",
        "placed_column",
        "customer_column",
        "status_badge",
        "progress_column",
        "total_column",
        "flags_column",
    )
    list_display_links = ("number",)
    list_filter = (
        "status",
        "payment_status",
        "fulfillment_status",
        ActiveHoldFilter,
        "channel",
        "is_test",
        "tags",
        "placed_at",
    )
    list_select_related = ("channel", "customer")
    list_per_page = 50
    search_fields = ("number",)  # shows the search box; get_search_results does the matching
    search_help_text = _("Order number (or its sequence digits), external id or the customer's exact e-mail address.")
    sortable_by = ("number", "placed_at")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    actions = None

    # --- the list --------------------------------------------------------------------------------
    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if getattr(request, "_oms_order_list", False):
            queryset = queryset.prefetch_related(
                "tags",
                Prefetch(
                    "holds",
                    queryset=OrderHold.objects.filter(released_at__isnull=True).order_by("placed_at"),
                    to_attr="active_holds",
                ),
            )
        return queryset

    def changelist_view(self, request, extra_context=None):
        request._oms_order_list = True  # the tags and holds columns are prefetched for the page only
        return super().changelist_view(request, extra_context)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(order_search_q(term)), False

    @admin.display(description=_("placed / channel"), ordering="placed_at")
    def placed_column(self, order):
        return format_html('{}<br><span class="oms-quiet">{}</span>', short_datetime(order.placed_at), order.channel)

    @admin.display(description=_("customer"))
    def customer_column(self, order):
        name = order.customer.full_name or order.customer.company_name
        if name:
            return format_html('{}<br><span class="oms-quiet">{}</span>', name, order.email)
        return order.email

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, order):
        return badge(order.get_status_display(), STATUS_TONES.get(order.status, "muted"))

    @admin.display(description=_("payment"))
    def payment_badge(self, order):
        return badge(order.get_payment_status_display(), PAYMENT_TONES.get(order.payment_status, "muted"))

    @admin.display(description=_("fulfillment"))
    def fulfillment_badge(self, order):
        return badge(order.get_fulfillment_status_display(), FULFILLMENT_TONES.get(order.fulfillment_status, "muted"))

    @admin.display(description=_("total"))
    def total_column(self, order):
        return format_html('<span class="oms-money">{}</span>', money(order.total_gross, order.currency))

    @admin.display(description=_("payment / fulfillment"))
    def progress_column(self, order):
        return format_html("{}<br>{}", self.payment_badge(order), self.fulfillment_badge(order))

    @admin.display(description=_("test, holds, tags"))
    def flags_column(self, order):
        holds = getattr(order, "active_holds", None)
        if holds is None:
            holds = [h for h in order.holds.all() if h.released_at is None]
        flags = [badge(_("test"), "test")] if order.is_test else []
        flags += [
            badge(_("hold: %(reason)s") % {"reason": h.get_reason_display()}, "alert", title=h.note) for h in holds
        ]
        flags += [
            format_html('<span class="oms-tag" style="--tag-color: {}">{}</span>', tag.color, tag.name)
            for tag in order.tags.all()
        ]
        return format_html_join(" ", "{}", ((flag,) for flag in flags))

    # --- the order page --------------------------------------------------------------------------
    def get_urls(self):
        return [
            path(
                "<path:object_id>/action/<slug:action>/",
                self.admin_site.admin_view(self.action_view),
                name="orders_order_action",
            ),
            *super().get_urls(),
        ]

    def _page_order(self, request, object_id) -> Order | None:
        try:
            pk = int(unquote(object_id))
        except (TypeError, ValueError):
            return None
        return (
            self.get_queryset(request)
            .prefetch_related(
                Prefetch("lines", queryset=OrderLine.objects.order_by("line_number")),
                Prefetch("holds", queryset=OrderHold.objects.select_related("placed_by", "released_by")),
                # The newest events only: an order with a long life links to its full event list.
                Prefetch(
                    "events",
                    queryset=OrderEvent.objects.select_related("actor").order_by("-created_at", "-id")[
                        :TIMELINE_EVENTS
                    ],
                    to_attr="timeline_events",  # a sliced prefetch needs its own attribute
                ),
                Prefetch("notes", queryset=OrderNote.objects.select_related("author")),
                "tags",
            )
            .filter(pk=pk)
            .first()
        )

    def _base_context(self, request, order, title):
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": title,
            "subtitle": None,
            "order": order,
            "original": order,
            "status_badge": self.status_badge(order),
            "payment_badge": self.payment_badge(order),
            "fulfillment_badge": self.fulfillment_badge(order),
            "customer_label": order_customer_label(order, language=get_language()),
            "customer_label_own": order_customer_label(order),
            "change_url": reverse("admin:orders_order_change", args=[order.pk], current_app=self.admin_site.name),
            "changelist_url": reverse("admin:orders_order_changelist", current_app=self.admin_site.name),
            "money": {
                "total": money(order.total_gross, order.currency),
                "net": money(order.total_net, order.currency),
                "tax": money(order.total_tax, order.currency),
                "shipping": money(order.shipping_price, order.currency),
                "discount": money(order.discount_total, order.currency),
                "paid": money(order.amount_paid, order.currency),
                "authorized": money(order.amount_authorized, order.currency),
                "refunded": money(order.amount_refunded, order.currency),
                "due": money(max(order.total_gross - order.amount_paid, Decimal("0")), order.currency),
            },
        }

    def change_view(self, request, object_id, form_url="", extra_context=None):
        order = self._page_order(request, object_id)
        if order is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, order):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        holds = sorted(order.holds.all(), key=lambda h: (h.released_at is not None, -h.placed_at.timestamp()))
        lines = list(order.lines.all())
        events = order.timeline_events
        events_total = order.events.count() if len(events) >= TIMELINE_EVENTS else len(events)
        # Translated once per page, not once per event (get_type_display rebuilds the choices).
        event_labels = {value: str(label) for value, label in OrderEventType.choices}
        panels = order_page_panels(order=order, user=request.user)
        context = {
            **self._base_context(request, order, title=_("Order %(number)s") % {"number": order.number}),
            "lines": [
                {
                    "line": line,
                    "unit_price": money(line.unit_price, order.currency),
                    "discount": money(line.discount_amount, order.currency) if line.discount_amount else "",
                    "total": money(line.total_gross, order.currency),
                    "tax_rate": f"{line.tax_rate * 100:.2f}".rstrip("0").rstrip(".") + " %",
                }
                for line in lines
            ],
            "quantities": {
                "ordered": sum(line.quantity for line in lines),
                "canceled": sum(line.quantity_canceled for line in lines),
                "shipped": sum(line.quantity_shipped for line in lines),
                "delivered": sum(line.quantity_delivered for line in lines),
                "open": sum(line.quantity_open for line in lines),
            },
            "holds": holds,
            "active_hold_count": sum(1 for h in holds if h.released_at is None),
            "events": [
                {
                    "event": e,
                    "label": event_labels.get(e.type, e.type),
                    "summary": payload_summary(e),
                    "tone": EVENT_TONES.get(e.type, "info"),
                }
                for e in events
            ],
            "events_total": events_total,
            "events_url": reverse("admin:orders_orderevent_changelist", current_app=self.admin_site.name)
            + f"?q={order.number}",
            "notes": list(order.notes.all()),
            "tags": list(order.tags.all()),
            "billing_address": format_address(order.billing_address or {}),
            "shipping_address": format_address(order.shipping_address or {}),
            "actions": [
                {
                    "action": action,
                    "url": reverse(
                        "admin:orders_order_action", args=[order.pk, action.name], current_app=self.admin_site.name
                    ),
                }
                for action in order_available_actions(order, request.user)
            ],
            "history_url": reverse("admin:orders_order_history", args=[order.pk], current_app=self.admin_site.name),
            # Each panel's data under its key, and the panels' templates in page order.
            **{panel.key: data for panel, data in panels},
            "panel_templates": [panel.template for panel, _data in panels],
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/orders/order/detail.html", context)

    def action_view(self, request, object_id, action):
        spec = ACTIONS.get(action) or ORDER_PAGE_ACTIONS.get(action)
        if spec is None:
            raise Http404(f"Unknown action {action!r}.")
        order = self._page_order(request, object_id)
        if order is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, order):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        change_url = reverse("admin:orders_order_change", args=[order.pk], current_app=self.admin_site.name)
        if request.method == "POST":
            # The service decides (permission, state, input); the form only collects the input.
            form = spec.form_class(request.POST, order=order, user=request.user)
            if form.is_valid():
                try:
                    spec.run(order, request.user, form)
                except ApplicationError as exc:
                    apply_service_error(form, exc)
                    messages.error(request, exc.message)
                except (TransitionNotAllowed, ConcurrentTransition) as exc:
                    form.add_error(None, str(exc))
                    messages.error(request, str(exc))
                else:
                    messages.success(request, spec.done % {"number": order.number})
                    return HttpResponseRedirect(change_url)
        else:
            if spec.name not in {a.name for a in order_available_actions(order, request.user)}:
                messages.warning(
                    request,
                    _("“%(action)s” is not available on order %(number)s now.")
                    % {"action": spec.label, "number": order.number},
                )
                return HttpResponseRedirect(change_url)
            initial = {"hold": request.GET.get("hold")} if action == "release_hold" else None
            form = spec.form_class(order=order, user=request.user, initial=initial)
        context = {
            **self._base_context(request, order, title=f"{spec.label} — {order.number}"),
            "action": spec,
            "form": form,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/orders/order/action_form.html", context)


# --- the other order screens ---------------------------------------------------------------------


@admin.register(Channel)
class ChannelAdmin(AuditedAdmin):
    list_display = ("name", "code", "kind", "commission", "default_currency", "prices_include_tax", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("code", "name")
    prepopulated_fields = {"code": ("name",)}
    readonly_fields = ("created_at",)

    @admin.display(description=_("commission"), ordering="commission_rate")
    def commission(self, channel):
        return f"{channel.commission_rate * 100:.2f} %"

    def get_readonly_fields(self, request, obj=None):
        # The code is what imports and the API reference: fixed once the channel exists.
        return ("code", "created_at") if obj else ("created_at",)

    def has_delete_permission(self, request, obj=None):
        return False  # orders reference channels (PROTECT): deactivate instead


class MergeForm(forms.Form):
    """One group of possible duplicates: the record to keep, the ones merged into it, and why."""

    keep = forms.TypedChoiceField(label=_("Keep"), coerce=int, widget=forms.RadioSelect)
    merge = forms.TypedMultipleChoiceField(label=_("Merge into it"), coerce=int, widget=forms.CheckboxSelectMultiple)
    reason = _reason_field(required=True, label=_("Why they are one customer"), help_text=_("Required. Audited."))

    def __init__(self, *args, customers, **kwargs):
        super().__init__(*args, **kwargs)
        self.customers = customers
        choices = [(c.pk, f"{c.email} — {c.full_name or c.company_name or '–'} {c.phone}".strip()) for c in customers]
        self.fields["keep"].choices = choices
        self.fields["merge"].choices = choices
        if not self.is_bound and customers:
            self.initial.setdefault("keep", customers[0].pk)
            self.initial.setdefault("merge", [c.pk for c in customers[1:]])

    def field_for_error(self, key: str) -> str | None:
        return key if key in self.fields else None


@admin.register(Customer)
class CustomerAdmin(AuditedAdmin):
    list_display = ("email", "full_name", "company_name", "locale", "payment_terms_days", "is_test", "created_at")
    list_filter = ("locale", "is_test", ("payment_terms_days", admin.EmptyFieldListFilter))
    search_fields = ("email",)
    search_help_text = _("The customer's exact e-mail address.")
    fields = (
        "email",
        ("first_name", "last_name"),
        "company_name",
        "phone",
        "locale",
        "payment_terms_days",
        "is_test",
        "created_at",
        "recent_orders",
    )
    # Credit terms and the test flag decide how orders are handled: not for the contact form.
    readonly_fields = ("email", "payment_terms_days", "is_test", "created_at", "recent_orders")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    sortable_by = ("email", "created_at")

    change_list_template = "admin/orders/case/customer_change_list.html"

    def has_add_permission(self, request):
        return False  # customers come with their first order (order_create)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "may_merge": request.user.has_perm(identity.MERGE_PERMISSION)}
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        return [
            path("duplicates/", self.admin_site.admin_view(self.duplicates_view), name="orders_customer_duplicates"),
            *super().get_urls(),
        ]

    def duplicates_view(self, request):
        """Possible duplicates (same phone or address key), each group with a merge form."""
        if not request.user.has_perm(identity.MERGE_PERMISSION):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        posted = None
        if request.method == "POST":
            ids = [int(pk) for pk in request.POST.get("group", "").split(",") if pk.strip().isdigit()]
            customers = list(Customer.objects.filter(pk__in=ids, merged_into__isnull=True).order_by("pk"))
            posted = MergeForm(request.POST, customers=customers)
            if posted.is_valid():
                by_id = {c.pk: c for c in customers}
                try:
                    kept = identity.customer_merge(
                        keep=by_id[posted.cleaned_data["keep"]],
                        merge=[by_id[pk] for pk in posted.cleaned_data["merge"]],
                        actor=request.user,
                        reason=posted.cleaned_data["reason"],
                    )
                except ApplicationError as exc:
                    apply_service_error(posted, exc)
                    messages.error(request, exc.message)
                else:
                    messages.success(
                        request,
                        _("%(count)s record(s) merged into %(email)s.")
                        % {"count": len(posted.cleaned_data["merge"]), "email": kept.email},
                    )
                    return HttpResponseRedirect(reverse("admin:orders_customer_change", args=[kept.pk]))
        groups = []
        for index, group in enumerate(identity.customer_duplicate_groups(limit=50)):
            ids = ",".join(str(c.pk) for c in group["customers"])
            form = posted if posted is not None and request.POST.get("group") == ids else None
            groups.append(
                {
                    "reason": group["reason"],
                    "key": group["key"],
                    "ids": ids,
                    "customers": group["customers"],
                    "form": form or MergeForm(customers=group["customers"], auto_id=f"id_group{index}_%s"),
                }
            )
        if posted is not None and not any(g["form"] is posted for g in groups):
            groups.insert(0, {"reason": "", "key": "", "ids": request.POST.get("group", ""), "form": posted})
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Possible duplicate customers"),
            "groups": groups,
            "changelist_url": reverse("admin:orders_customer_changelist", current_app=self.admin_site.name),
        }
        return TemplateResponse(request, "admin/orders/case/customer_duplicates.html", context)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Exact(Lower("email"), term.lower())), False  # the unique Lower(email) index

    @admin.display(description=_("recent orders"))
    def recent_orders(self, customer):
        orders = Order.objects.filter(customer=customer).order_by("-placed_at", "-id")[:20]
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td class="oms-money">{}</td></tr>',
            (
                (
                    reverse("admin:orders_order_change", args=[o.pk]),
                    o.number,
                    timezone.localtime(o.placed_at).strftime("%Y-%m-%d"),
                    badge(o.get_status_display(), STATUS_TONES.get(o.status, "muted")),
                    money(o.total_gross, o.currency),
                )
                for o in orders
            ),
        )
        if not rows:
            return _("No orders yet.")
        return format_html('<table class="oms-table oms-table--compact">{}</table>', rows)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "swatch")
    search_fields = ("name",)

    @admin.display(description=_("color"))
    def swatch(self, tag):
        return format_html('<span class="oms-tag" style="--tag-color: {}">{}</span>', tag.color, tag.color)


@admin.register(OrderHold)
class OrderHoldAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The exception queue: active holds, oldest first, with a way to the order and its release."""

    list_display = (
        "order_link",
        "reason_badge",
        "placed_column",
        "placed_by",
        "age",
        "order_status",
        "note_column",
        "released_column",
        "released_by",
        "release_link",
    )
    list_filter = (HoldStateFilter, "reason", "order__channel")
    list_select_related = ("order", "placed_by", "released_by")
    ordering = ("pk",)
    sortable_by = ()
    search_fields = ("order__number",)
    search_help_text = _("Order number, external id or the customer's exact e-mail address.")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    actions = None
    list_per_page = 50

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(order__in=Order.objects.filter(order_search_q(term)).values("pk")), False

    @admin.display(description=_("order"), ordering="order")
    def order_link(self, hold):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:orders_order_change", args=[hold.order_id]), hold.order.number
        )

    @admin.display(description=_("reason"))
    def reason_badge(self, hold):
        return badge(hold.get_reason_display(), "alert" if hold.released_at is None else "muted")

    @admin.display(description=_("placed"))
    def placed_column(self, hold):
        return short_datetime(hold.placed_at)

    @admin.display(description=_("note"))
    def note_column(self, hold):
        return Truncator(hold.note).chars(90)

    @admin.display(description=_("released"))
    def released_column(self, hold):
        return short_datetime(hold.released_at)

    @admin.display(description=_("age"))
    def age(self, hold):
        end = hold.released_at or timezone.now()
        hours = int((end - hold.placed_at).total_seconds() // 3600)
        return f"{hours // 24} d {hours % 24} h" if hours >= 24 else f"{hours} h"

    @admin.display(description=_("order status"))
    def order_status(self, hold):
        return badge(hold.order.get_status_display(), STATUS_TONES.get(hold.order.status, "muted"))

    @admin.display(description="")
    def release_link(self, hold):
        if hold.released_at is not None:
            return ""
        url = reverse("admin:orders_order_action", args=[hold.order_id, "release_hold"])
        return format_html(
            '<a class="oms-button oms-button--small" href="{}?hold={}">{}</a>', url, hold.pk, _("Release")
        )

    def get_list_display(self, request):
        hidden = set()
        if request.GET.get(HoldStateFilter.parameter_name, "active") == "active":
            hidden |= {"released_column", "released_by"}  # the queue: nothing released in it
        if not request.user.has_perm("orders.release_hold"):
            hidden.add("release_link")
        return tuple(name for name in self.list_display if name not in hidden)


@admin.register(OrderEvent)
class OrderEventAdmin(OrderRowsAdmin):
    list_display = ("created_column", "order_link", "type_badge", "actor", "reason", "summary")
    list_filter = ("type", "created_at")
    list_select_related = ("order", "actor")
    fields = ("order", "type", "actor", "reason", "payload", "created_at")

    @admin.display(description=_("time"))
    def created_column(self, event):
        return short_datetime(event.created_at)

    @admin.display(description=_("type"))
    def type_badge(self, event):
        return badge(event.get_type_display(), EVENT_TONES.get(event.type, "info"))

    @admin.display(description=_("details"))
    def summary(self, event):
        return payload_summary(event, limit=120)
