"""Shapes of the fulfillment API: input serializers check shape and types only, output ones only represent.

Business rules (what may be picked, states, permissions, consent) are the services'. Errors use the
dotted field keys of the order API (`picked.12`, `shipments.0`).
"""

from rest_framework import serializers

from fulfillment.carriers.choices import TrackingStatus
from fulfillment.choices import ConsentChannel, ShipmentKind, ShipmentStatus, ShortPickResolution, WaveRender
from oms.core.api import AddressField, MoneyField, StrictInputSerializer, UsernameField, one_of

# Per line: more than this is a typing error, and the counters are 32-bit.
MAX_UNITS = 1_000_000
MAX_GRAMS = 2**31 - 1  # Shipment.weight_grams is a 32-bit column
REASON = {"required": False, "allow_blank": True, "help_text": "Why; kept on the history."}


# --- reads ---------------------------------------------------------------------------------------


class ShipmentListQuerySerializer(serializers.Serializer):
    location = serializers.SlugField(required=False, help_text="Location code: only its shipments.")
    status = serializers.ListField(
        child=one_of(ShipmentStatus.choices),
        required=False,
        help_text="Repeat for several: ?status=pending&status=picking.",
    )
    carrier = serializers.CharField(required=False, max_length=32, help_text="Carrier code, e.g. `sandbox`.")
    late = serializers.BooleanField(
        required=False,
        allow_null=True,
        help_text="true: not yet handed over and past their ship-by time; false: the others.",
    )
    order = serializers.CharField(
        required=False, max_length=32, help_text="Order number: its shipments, consolidated ones included."
    )


class WaveListQuerySerializer(serializers.Serializer):
    location = serializers.SlugField(required=False, help_text="Location code: only its waves.")


class ShipmentListSerializer(serializers.Serializer):
    number = serializers.CharField()
    order = serializers.CharField(source="order.number", help_text="The order it was planned for.")
    location = serializers.CharField(source="location.code")
    wave = serializers.CharField(source="wave.number", allow_null=True, default=None)
    kind = one_of(ShipmentKind.choices)
    status = one_of(ShipmentStatus.choices)
    priority = serializers.IntegerField(help_text="Lower is picked first.")
    ship_by = serializers.DateTimeField(allow_null=True, help_text="Leaves by then to keep the promise.")
    is_late = serializers.BooleanField(help_text="Not yet handed over and past its ship-by time.")
    carrier = serializers.CharField()
    service = serializers.CharField()
    tracking_number = serializers.CharField()
    created_at = serializers.DateTimeField()
    shipped_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)


class ShipmentLineSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Use it as a key of `picked` when confirming picks.")
    order = serializers.CharField(source="order_line.order.number")
    order_line = serializers.IntegerField(source="order_line_id", help_text="`line:<this id>` in `picked`.")
    line_number = serializers.IntegerField(source="order_line.line_number")
    sku = serializers.CharField(source="order_line.sku")
    name = serializers.CharField(source="order_line.name")
    quantity = serializers.IntegerField(help_text="Units to ship in this parcel.")
    quantity_picked = serializers.IntegerField()
    hs_code = serializers.CharField(help_text="Customs: harmonized system code.")
    origin_country = serializers.CharField(help_text="Customs: ISO 3166-1 alpha-2 country of origin.")
    customs_value = MoneyField(currency_source="shipment.currency", help_text="Customs: value per unit.")
    gift_wrap = serializers.BooleanField()
    gift_message = serializers.CharField()


class TrackingUpdateSerializer(serializers.Serializer):
    carrier_event_id = serializers.CharField()
    carrier_status_code = serializers.CharField(help_text="As the carrier sent it.")
    status = one_of(TrackingStatus.choices, "Ours, mapped from the carrier's.")
    occurred_at = serializers.DateTimeField()
    description = serializers.CharField()
    location = serializers.CharField()
    source = serializers.CharField(help_text="webhook, poll or manual.")
    received_at = serializers.DateTimeField()
    applied = serializers.BooleanField(help_text="Whether it moved the shipment (older events never move it back).")


class ShortPickSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    shipment = serializers.CharField(source="shipment.number")
    shipment_status = one_of(ShipmentStatus.choices, source="shipment.status")
    order = serializers.CharField(source="order.number")
    order_line = serializers.IntegerField(source="order_line_id")
    line_number = serializers.IntegerField(source="order_line.line_number")
    sku = serializers.CharField(source="order_line.sku")
    name = serializers.CharField(source="order_line.name")
    quantity = serializers.IntegerField(help_text="Units missing.")
    note = serializers.CharField()
    reported_by = UsernameField()
    reported_at = serializers.DateTimeField()
    is_open = serializers.BooleanField()
    resolution = serializers.ChoiceField(
        choices=[("", "Open"), *ShortPickResolution.choices], help_text="Empty while open."
    )
    resolved_by = UsernameField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    substitute_sku = serializers.CharField(source="substitute_product.sku", allow_null=True, default=None)
    promised_at = serializers.DateTimeField(allow_null=True, help_text="The new promise date of a delay.")
    consent_channel = serializers.CharField()
    consent_note = serializers.CharField()
    consent_at = serializers.DateTimeField(allow_null=True)


class ShipmentDetailSerializer(ShipmentListSerializer):
    orders = serializers.SerializerMethodField(help_text="Every order with units in it (consolidation: several).")
    ship_to = AddressField(read_only=True)
    tracking_url = serializers.CharField()
    tracking_status = serializers.CharField(help_text="The latest carrier status, mapped to ours; empty before.")
    tracking_updated_at = serializers.DateTimeField(allow_null=True)
    weight_grams = serializers.IntegerField()
    currency = serializers.CharField()
    declared_value = MoneyField()
    insured = serializers.BooleanField()
    insurance_amount = MoneyField()
    is_gift = serializers.BooleanField(help_text="A gift: the packing slip shows no prices.")
    gift_message = serializers.CharField()
    exception_note = serializers.CharField()
    picking_started_at = serializers.DateTimeField(allow_null=True)
    packed_at = serializers.DateTimeField(allow_null=True)
    ready_at = serializers.DateTimeField(allow_null=True)
    pickup_expires_at = serializers.DateTimeField(allow_null=True)
    canceled_at = serializers.DateTimeField(allow_null=True)
    label_url = serializers.SerializerMethodField(help_text="The carrier label PDF; null until labelled here.")
    packing_slip_url = serializers.SerializerMethodField()
    lines = ShipmentLineSerializer(many=True)
    tracking_updates = TrackingUpdateSerializer(many=True)
    open_short_picks = ShortPickSerializer(many=True, help_text="Resolve them under short-picks/{id}/.")

    def get_orders(self, shipment) -> list[str]:
        return list(dict.fromkeys(line.order_line.order.number for line in shipment.lines.all())) or [
            shipment.order.number
        ]

    def get_label_url(self, shipment) -> str | None:
        return self.context["urls"]["label"] if shipment.label else None

    def get_packing_slip_url(self, shipment) -> str:
        return self.context["urls"]["packing_slip"]


class WaveShipmentSerializer(serializers.Serializer):
    number = serializers.CharField()
    order = serializers.CharField(source="order.number")
    status = one_of(ShipmentStatus.choices)
    priority = serializers.IntegerField()
    ship_by = serializers.DateTimeField(allow_null=True)


class WaveListSerializer(serializers.Serializer):
    number = serializers.CharField()
    location = serializers.CharField(source="location.code")
    created_by = UsernameField()
    created_at = serializers.DateTimeField()
    render_status = serializers.ChoiceField(choices=WaveRender.choices)
    render_progress = serializers.IntegerField(help_text="Percent of the pick list rendered.")
    shipment_count = serializers.IntegerField()


class WaveDetailSerializer(WaveListSerializer):
    criteria = serializers.DictField(help_text="The selection that built the wave.")
    render_error = serializers.CharField()
    rendered_at = serializers.DateTimeField(allow_null=True)
    pick_list_url = serializers.SerializerMethodField(help_text="The pick list PDF once rendered, else null.")
    shipments = WaveShipmentSerializer(many=True)

    def get_pick_list_url(self, wave) -> str | None:
        return self.context["pick_list_url"] if wave.render_status == WaveRender.READY and wave.pick_list else None


class ParcelItemSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    quantity = serializers.IntegerField()


class ParcelEventSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    status = one_of(TrackingStatus.choices)
    description = serializers.CharField()
    location = serializers.CharField()


class ParcelSerializer(serializers.Serializer):
    number = serializers.CharField(help_text="The shipment number.")
    status = one_of(ShipmentStatus.choices, "Internal: never shown to customers.")
    label = serializers.CharField(help_text="What the customer reads, in the order's language.")
    kind = one_of(ShipmentKind.choices)
    carrier = serializers.CharField()
    tracking_number = serializers.CharField(help_text="Empty until the parcel is handed over.")
    tracking_url = serializers.CharField()
    location = serializers.CharField(help_text="The store to collect a pickup from; empty for deliveries.")
    shipped_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    pickup_expires_at = serializers.DateTimeField(allow_null=True)
    items = ParcelItemSerializer(many=True, help_text="This order's units in the parcel.")
    events = ParcelEventSerializer(many=True, help_text="The carrier's tracking events, oldest first.")


class RemainingItemSerializer(serializers.Serializer):
    sku = serializers.CharField()
    name = serializers.CharField()
    quantity = serializers.IntegerField(help_text="Units in no parcel yet.")
    promised_at = serializers.DateTimeField(allow_null=True)


class OrderShipmentsSerializer(serializers.Serializer):
    order = serializers.CharField(source="order.number")
    fulfillment_status = serializers.CharField(source="order.fulfillment_status")
    parcel_count = serializers.IntegerField(help_text="Parcels not canceled.")
    parcels = ParcelSerializer(many=True)
    remaining = RemainingItemSerializer(many=True, help_text="What is still to come, with its promise date.")


class TrackingWebhookResultSerializer(serializers.Serializer):
    stored = serializers.IntegerField(help_text="Events new to us; 0 for a replay.")


# --- 3PL / WMS writes ----------------------------------------------------------------------------


class ShipmentPicksInputSerializer(StrictInputSerializer):
    picked = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=MAX_UNITS),
        help_text=(
            "Units picked so far per line, as totals (resending them changes nothing). Keys: the "
            "shipment line id, `line:<order line id>`, or the SKU when one line has it."
        ),
    )
    final = serializers.BooleanField(
        required=False,
        default=True,
        help_text="True (default): picking is over, a line left short opens a short pick.",
    )
    note = serializers.CharField(required=False, allow_blank=True, help_text="Kept on a short pick, e.g. the bin.")


class ShipmentPackInputSerializer(StrictInputSerializer):
    weight_grams = serializers.IntegerField(
        required=False,
        allow_null=True,
        max_value=MAX_GRAMS,
        help_text="Weighed; the lines' catalogue weight by default.",
    )
    insured = serializers.BooleanField(required=False, allow_null=True, help_text="Insure the declared value.")
    reason = serializers.CharField(**REASON)


class ShipmentDispatchInputSerializer(StrictInputSerializer):
    carrier = serializers.CharField(
        required=False, allow_blank=True, max_length=32, help_text="Carrier code; the default carrier otherwise."
    )
    service = serializers.CharField(required=False, allow_blank=True, max_length=32)
    tracking_number = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="When the 3PL labelled the parcel itself; without it a label is made here.",
    )
    tracking_url = serializers.URLField(
        required=False, allow_blank=True, max_length=500, help_text="The carrier's own by default."
    )


class ShipmentReasonInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(**REASON)


class ShipmentCancelInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(help_text="Why.")


# --- short picks ---------------------------------------------------------------------------------


class ShortPickSubstituteInputSerializer(StrictInputSerializer):
    sku = serializers.CharField(max_length=64, help_text="The SKU shipped instead, from the parcel's location.")
    consent_channel = serializers.ChoiceField(choices=ConsentChannel.choices)
    consent_note = serializers.CharField(help_text="What the customer agreed to.")


class ShortPickDelayInputSerializer(StrictInputSerializer):
    promised_at = serializers.DateTimeField(help_text="The new promise date the customer is told.")
    consent_channel = serializers.ChoiceField(choices=ConsentChannel.choices, required=False, allow_blank=True)
    consent_note = serializers.CharField(required=False, allow_blank=True)


class ShortPickCancelLineInputSerializer(StrictInputSerializer):
    consent_channel = serializers.ChoiceField(choices=ConsentChannel.choices)
    consent_note = serializers.CharField(help_text="What the customer agreed to.")


# --- waves ---------------------------------------------------------------------------------------


class WaveCreateInputSerializer(StrictInputSerializer):
    location = serializers.SlugField(help_text="Location code.")
    ship_by_before = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Only shipments due to leave by then."
    )
    carrier = serializers.CharField(
        required=False, allow_blank=True, max_length=32, help_text="Only this carrier's (and unassigned) shipments."
    )
    max_priority = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        max_value=32767,
        help_text="Only priorities up to this (lower is first).",
    )
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=2000, help_text="Shipments at most; 200 by default."
    )
    shipments = serializers.ListField(
        child=serializers.CharField(max_length=32),
        required=False,
        allow_empty=False,
        help_text="Shipment numbers: only these (still pending at the location).",
    )
