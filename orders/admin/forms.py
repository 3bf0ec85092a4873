"""The forms of the order page's own actions (other apps' actions bring theirs: oms.core.admin)."""

from decimal import Decimal

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_countries import countries

from oms.core.admin import (
    ActionForm,
    LineQuantitiesForm,
    money,
    reason_field,
)
from orders import cases, services
from orders.addresses import ADDRESS_FIELDS
from orders.choices import (
    CancelReason,
    CaseLevel,
    HoldReason,
)
from orders.models import Tag


class ReasonForm(ActionForm):
    reason = reason_field(required=False, help_text=_("Optional. Kept in the timeline and the history."))


class FlagForm(ActionForm):
    reason = reason_field(required=True, help_text=_("Required. Staff only: the customer never sees it."))
    risk_score = forms.IntegerField(label=_("Risk score"), required=False, min_value=0, max_value=100)


class CancelForm(ActionForm):
    reason_code = forms.ChoiceField(label=_("Cancellation reason"), choices=CancelReason.choices)
    reason = reason_field(required=True, label=_("Explanation"), help_text=_("Required. Kept in the timeline."))

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
    reason = reason_field(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        due = self.order.total_gross - self.order.amount_paid
        self.fields["amount"].help_text = _("Empty: the balance due, %(due)s.") % {
            "due": money(due, self.order.currency)
        }
        self.fields["method"].initial = self.order.payment_method


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
    note = reason_field(required=False, label=_("Note"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        active = {hold.reason for hold in self.order.holds.all() if hold.released_at is None}
        self.fields["reason"].choices = [(v, label) for v, label in HoldReason.choices if v not in active]


class ClearFraudForm(ActionForm):
    reason = reason_field(
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
    reason = reason_field(required=True, label=_("What is needed"), help_text=_("Required. Staff only."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _kinds, levels = cases.user_case_scope(self.user)
        self.fields["level"].choices = [(v, label) for v, label in CaseLevel.choices if v in levels]


class ReleaseHoldForm(ActionForm):
    hold = forms.TypedChoiceField(label=_("Hold"), coerce=int)
    note = reason_field(required=True, label=_("Why it can be released"), help_text=_("Required."))

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
    reason = reason_field(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tag"].widget.attrs["list"] = "oms-known-tags"
        self.known_tags = list(Tag.objects.values_list("name", flat=True))


class UntagForm(ActionForm):
    tag = forms.ChoiceField(label=_("Tag"))
    reason = reason_field(required=False)

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
    reason = reason_field(required=False)

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
