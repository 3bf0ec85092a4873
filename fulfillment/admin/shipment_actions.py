"""The buttons of the shipment page: one small form per action, whose POST calls one service.

`shipment_available_actions` decides which buttons a user sees now; the service decides again.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.utils.translation import gettext_lazy as _

from fulfillment import services
from fulfillment.admin._common import CANCELABLE_STATUSES, S, _text_field
from fulfillment.carriers.registry import CARRIERS
from fulfillment.choices import ShipmentKind
from fulfillment.models import Shipment, ShipmentLine


class ShipmentForm(forms.Form):
    """A form for one shipment action. Service field errors land on the field of the same name."""

    def __init__(self, *args, shipment: Shipment, user, **kwargs):
        self.shipment = shipment
        self.user = user
        super().__init__(*args, **kwargs)

    def field_for_error(self, key: str) -> str | None:
        return key if key in self.fields else None


class NoInputForm(ShipmentForm):
    """A one-click action: the button is the form."""


class ReasonForm(ShipmentForm):
    reason = _text_field(required=False, label=_("Note"), help_text=_("Optional. Kept in the history."))


class CancelForm(ShipmentForm):
    reason = _text_field(required=True, label=_("Reason"), help_text=_("Required. Kept in the history."))


class PicksForm(ShipmentForm):
    """One picked-quantity input per line (totals picked so far), and whether the pick is final."""

    final = forms.BooleanField(
        label=_("Final"),
        required=False,
        initial=True,
        help_text=_("Ticked: a line left short becomes a short pick (its missing units leave the parcel)."),
    )
    note = _text_field(
        required=False, label=_("Note"), help_text=_("Why a line is short, e.g. “bin A-10-1 empty”."), rows=2
    )

    def __init__(self, *args, lines: list[ShipmentLine], **kwargs):
        super().__init__(*args, **kwargs)
        self.lines = lines
        for line in lines:
            self.fields[f"line_{line.pk}"] = forms.IntegerField(
                label=line.order_line.sku,
                min_value=0,
                max_value=line.quantity,
                # The usual case is "all found": the picker only lowers what is missing.
                initial=line.quantity_picked or line.quantity,
                widget=forms.NumberInput(attrs={"class": "oms-count-input", "min": 0, "max": line.quantity}),
            )
        self.order_fields([f"line_{line.pk}" for line in lines] + ["final", "note"])

    def picked(self) -> dict[int, int]:
        return {line.pk: self.cleaned_data[f"line_{line.pk}"] for line in self.lines}

    def field_for_error(self, key: str) -> str | None:
        if key.startswith("picked."):
            name = f"line_{key.removeprefix('picked.')}"
            return name if name in self.fields else None
        return super().field_for_error(key)


class PackForm(ShipmentForm):
    weight_grams = forms.IntegerField(
        label=_("Weight (g)"),
        required=False,
        min_value=1,
        max_value=1_000_000,
        help_text=_("As weighed. Empty: the catalogue weight of the lines."),
    )
    insured = forms.BooleanField(label=_("Insured"), required=False, help_text=_("Insure the declared value."))
    reason = _text_field(required=False, label=_("Note"), rows=2)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["insured"].initial = self.shipment.insured
        self.fields["weight_grams"].widget.attrs["placeholder"] = str(self.shipment.weight_grams)


class DispatchForm(ShipmentForm):
    carrier = forms.CharField(
        label=_("Carrier"),
        required=False,
        max_length=32,
        help_text=_("Only when the parcel was labelled elsewhere (e.g. by a 3PL), with its tracking number."),
        widget=forms.TextInput(attrs={"list": "oms-carriers"}),
    )
    tracking_number = forms.CharField(
        label=_("Tracking number"),
        required=False,
        max_length=64,
        help_text=_("Empty: the label printed here (made now if there is none)."),
    )
    service = forms.CharField(label=_("Service"), required=False, max_length=32)

    carriers = sorted(CARRIERS)


@dataclass(frozen=True)
class ShipmentAction:
    name: str
    label: str
    form_class: type[ShipmentForm]
    run: Callable[[Shipment, object, ShipmentForm], object]
    done: str
    tone: str = "default"
    intro: str = ""
    inline: bool = False  # a one-click button on the shipment page (a POST form with no input)


def _note(form) -> str:
    return form.cleaned_data.get("reason") or ""


ACTIONS: dict[str, ShipmentAction] = {
    action.name: action
    for action in [
        ShipmentAction(
            "start_picking",
            _("Start picking"),
            NoInputForm,
            lambda s, u, f: services.shipment_start_picking(shipment=s, actor=u),
            _("Picking of %(number)s started."),
            tone="primary",
            inline=True,
        ),
        ShipmentAction(
            "confirm_picks",
            _("Confirm picks"),
            PicksForm,
            lambda s, u, f: services.shipment_confirm_picks(
                shipment=s, actor=u, picked=f.picked(), final=f.cleaned_data["final"], note=f.cleaned_data["note"]
            ),
            _("Picks confirmed on %(number)s."),
            tone="primary",
            intro=_(
                "Enter the units found per line. Nothing ships that was not picked: with “Final” ticked, "
                "a line left short opens a short pick for support to substitute, delay or cancel."
            ),
        ),
        ShipmentAction(
            "pack",
            _("Pack"),
            PackForm,
            lambda s, u, f: services.shipment_pack(
                shipment=s,
                actor=u,
                weight_grams=f.cleaned_data.get("weight_grams"),
                insured=f.cleaned_data.get("insured", False),
                reason=_note(f),
            ),
            _("%(number)s packed."),
            tone="primary",
        ),
        ShipmentAction(
            "print_label",
            _("Print label"),
            NoInputForm,
            lambda s, u, f: services.shipment_create_label(shipment=s, actor=u),
            _("Label of %(number)s created: open “Label PDF” to print it."),
            inline=True,
        ),
        ShipmentAction(
            "dispatch",
            _("Dispatch"),
            DispatchForm,
            lambda s, u, f: services.shipment_dispatch(
                shipment=s,
                actor=u,
                carrier=f.cleaned_data.get("carrier") or "",
                service=f.cleaned_data.get("service") or "",
                tracking_number=f.cleaned_data.get("tracking_number") or "",
            ),
            _("%(number)s handed to the carrier."),
            tone="primary",
            intro=_("Stock leaves the location, the order counts the units shipped and the customer is told."),
        ),
        ShipmentAction(
            "ready_for_pickup",
            _("Ready for pickup"),
            NoInputForm,
            lambda s, u, f: services.shipment_ready_for_pickup(shipment=s, actor=u),
            _("%(number)s is on the pickup shelf: the customer is told."),
            tone="primary",
            inline=True,
        ),
        ShipmentAction(
            "hand_over",
            _("Hand over"),
            ReasonForm,
            lambda s, u, f: services.shipment_hand_over(shipment=s, actor=u, reason=_note(f)),
            _("%(number)s handed to the customer."),
            tone="primary",
            intro=_("The customer collected the parcel: it counts as shipped and delivered."),
        ),
        ShipmentAction(
            "cancel",
            _("Cancel shipment"),
            CancelForm,
            lambda s, u, f: services.shipment_cancel(shipment=s, actor=u, reason=f.cleaned_data["reason"]),
            _("%(number)s canceled."),
            tone="danger",
            intro=_("The units stay reserved for the order and are planned into a new parcel."),
        ),
    ]
}


def shipment_available_actions(shipment: Shipment, user, *, all_picked: bool) -> list[ShipmentAction]:
    """The buttons `user` may use on `shipment` now (the services decide again on POST)."""
    status, delivery = shipment.status, shipment.kind == ShipmentKind.DELIVERY

    def may(codename: str) -> bool:
        return user.has_perm(f"fulfillment.{codename}")

    names = set()
    if status == S.PENDING and may("pick_shipment"):
        names.add("start_picking")
    if status in (S.PENDING, S.PICKING) and may("pick_shipment") and not (status == S.PICKING and all_picked):
        names.add("confirm_picks")
    if status == S.PICKING and all_picked and delivery and may("pack_shipment"):
        names.add("pack")
    if delivery and status in (S.PICKING, S.PACKED) and not shipment.label and not shipment.is_test:
        if may("dispatch_shipment"):
            names.add("print_label")
    if delivery and status == S.PACKED and may("dispatch_shipment"):
        names.add("dispatch")
    if not delivery and (status == S.PACKED or (status == S.PICKING and all_picked)) and may("pack_shipment"):
        names.add("ready_for_pickup")
    if status == S.READY_FOR_PICKUP and may("hand_over_shipment"):
        names.add("hand_over")
    if status in CANCELABLE_STATUSES and may("cancel_shipment"):
        names.add("cancel")
    return [action for name, action in ACTIONS.items() if name in names]
