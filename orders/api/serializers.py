"""API shapes: input serializers check shape and types only, output serializers only represent.

Business rules (ranges, addresses, currencies, state) are the services' job; their field errors
use the same dotted keys (`lines.0.quantity`) that `validated_input` gives DRF's own errors, so a
client reads one error format whichever layer refused the request.
"""

from rest_framework import serializers

from oms.core.api import (
    AddressField,
    AddressInputSerializer,  # noqa: F401 (the address rules the order API documents; its test reads them here)
    CurrencyField,
    MoneyField,
    PlainChoiceField,
    StrictInputSerializer,
    UsernameField,
)
from oms.core.money import AMOUNT_MAX
from orders.choices import CancelReason, FulfillmentStatus, HoldReason, OrderStatus, PaymentStatus
from orders.fraud_details import order_data_for
from orders.labels import order_customer_label
from orders.models import MONEY, RATE  # the columns' sizes: wider input could not be stored as sent
from orders.selectors import order_allowed_actions
from orders.services._common import MAX_LINES, MAX_QUANTITY, MAX_TEXT

# The bounds the services hold amounts, rates and scores to (the schema states them).
AMOUNT = {**MONEY, "min_value": 0, "max_value": AMOUNT_MAX}
TAX_RATE = {**RATE, "min_value": 0, "max_value": 1}


class CustomerInputSerializer(StrictInputSerializer):
    email = serializers.EmailField(max_length=254)
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=100)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=32)
    locale = serializers.ChoiceField(choices=["en", "fr"], required=False)


class ShippingInputSerializer(StrictInputSerializer):
    method = serializers.CharField(required=False, allow_blank=True, max_length=80)
    price = serializers.DecimalField(
        **AMOUNT, required=False, help_text="As the channel states it (with or without tax)."
    )
    tax_rate = serializers.DecimalField(**TAX_RATE, required=False, help_text="0.20 for 20 %.")
    pickup_location = serializers.CharField(
        required=False, allow_blank=True, max_length=40, help_text="Code of the store where the customer collects."
    )


class LineInputSerializer(StrictInputSerializer):
    sku = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=255)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_QUANTITY)
    unit_price = serializers.DecimalField(**AMOUNT)
    discount = serializers.DecimalField(
        **AMOUNT, required=False, help_text="Amount off the line, not per unit: at most the line's amount."
    )
    tax_rate = serializers.DecimalField(**TAX_RATE, required=False, help_text="0.20 for 20 %.")
    attributes = serializers.DictField(required=False, help_text="Snapshot of the variant: size, color…")
    promotion = serializers.DictField(required=False, help_text="Snapshot of the promotion's terms.")


class PaymentInputSerializer(StrictInputSerializer):
    status = PlainChoiceField(
        choices=["unpaid", "authorized", "paid"], required=False, help_text="unpaid (default), authorized or paid."
    )
    amount = serializers.DecimalField(
        **AMOUNT, required=False, allow_null=True, help_text="Defaults to the order total."
    )
    method = serializers.CharField(required=False, allow_blank=True, max_length=40)
    reference = serializers.CharField(required=False, allow_blank=True, max_length=128)


class RiskInputSerializer(StrictInputSerializer):
    score = serializers.IntegerField(
        min_value=0,
        max_value=100,
        help_text="0 to 100, from the channel's fraud tool. At OMS_FRAUD_REVIEW_SCORE or above, "
        "the order is held for a fraud review.",
    )
    facts = serializers.ListField(
        child=serializers.CharField(max_length=255),
        required=False,
        max_length=50,
        help_text="Why: shown to the fraud reviewer.",
    )


class OrderCreateInputSerializer(StrictInputSerializer):
    channel = serializers.CharField(max_length=40, help_text="The channel's code, e.g. `web`.")
    external_id = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=128,
        help_text="The channel's own id: importing it again returns the existing order (200).",
    )
    currency = CurrencyField(
        required=False, allow_null=True, max_length=3, help_text="ISO 4217; the channel's currency by default."
    )
    prices_include_tax = serializers.BooleanField(required=False, allow_null=True)
    placed_at = serializers.DateTimeField(required=False, allow_null=True)
    promised_at = serializers.DateTimeField(required=False, allow_null=True)
    is_test = serializers.BooleanField(required=False)
    locale = serializers.ChoiceField(choices=["en", "fr"], required=False, allow_null=True)
    customer = CustomerInputSerializer()
    billing_address = AddressField()
    shipping_address = AddressField(required=False, allow_null=True, help_text="The billing address by default.")
    shipping = ShippingInputSerializer(required=False)
    lines = LineInputSerializer(many=True, allow_empty=False, max_length=MAX_LINES)
    payment = PaymentInputSerializer(required=False)
    risk = RiskInputSerializer(required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False)
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_TEXT,
        help_text="An internal note, never shown to the customer.",
    )
    requires_approval = serializers.BooleanField(required=False)
    purchase_order_number = serializers.CharField(required=False, allow_blank=True, max_length=64)
    reason = serializers.CharField(required=False, allow_blank=True)


class ReasonInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=MAX_TEXT, help_text="Why; kept on the event and the history."
    )


class OrderMarkPaidInputSerializer(ReasonInputSerializer):
    amount = serializers.DecimalField(**AMOUNT, required=False, allow_null=True, help_text="What is due by default.")
    captured = serializers.BooleanField(
        required=False, default=True, help_text="False records an authorization, not a capture."
    )
    method = serializers.CharField(required=False, allow_blank=True, max_length=40)
    reference = serializers.CharField(required=False, allow_blank=True, max_length=128)


class OrderFlagForReviewInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(max_length=MAX_TEXT, help_text="Why the order needs a review.")
    risk_score = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=100)


class ClearFraudInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(
        max_length=MAX_TEXT, help_text="Why this is a false positive: kept as the case's evidence."
    )


class QuantitiesInputSerializer(ReasonInputSerializer):
    quantities = serializers.DictField(
        child=serializers.IntegerField(min_value=0, max_value=MAX_QUANTITY),
        required=False,
        allow_null=True,
        help_text="{line id: quantity}; everything that is still open when left out.",
    )


class OrderRecordShipmentInputSerializer(QuantitiesInputSerializer):
    reference = serializers.CharField(required=False, allow_blank=True, max_length=128)


class OrderMarkDeliveredInputSerializer(QuantitiesInputSerializer):
    pass


class OrderCancelInputSerializer(ReasonInputSerializer):
    reason_code = serializers.ChoiceField(choices=CancelReason.choices)


class OrderHoldInputSerializer(StrictInputSerializer):
    reason = serializers.ChoiceField(choices=HoldReason.choices, help_text="What the hold waits for.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=MAX_TEXT)


class OrderHoldReleaseInputSerializer(StrictInputSerializer):
    note = serializers.CharField(max_length=MAX_TEXT, help_text="Why the hold can go.")


class OrderNoteInputSerializer(StrictInputSerializer):
    body = serializers.CharField(max_length=MAX_TEXT)


class OrderTagInputSerializer(ReasonInputSerializer):
    tag = serializers.CharField(max_length=40, help_text="Stored lower case.")


class OrderChangeAddressInputSerializer(ReasonInputSerializer):
    kind = serializers.ChoiceField(choices=["shipping", "billing"])
    address = AddressField()


# --- output --------------------------------------------------------------------------------------


class OrderTotalsSerializer(serializers.Serializer):
    net = MoneyField(source="total_net")
    tax = MoneyField(source="total_tax")
    gross = MoneyField(source="total_gross")
    discount = MoneyField(source="discount_total")
    shipping = MoneyField(source="shipping_price", help_text="As charged (gross when prices include tax).")
    shipping_net = MoneyField()
    shipping_tax = MoneyField()
    amount_paid = MoneyField()
    amount_authorized = MoneyField()
    amount_refunded = MoneyField()


class OrderCustomerSerializer(serializers.Serializer):
    email = serializers.EmailField(help_text="As given for this order.")
    name = serializers.SerializerMethodField()

    def get_name(self, order) -> str:
        return order.customer.full_name


class OrderLineSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Use it in record-shipment and mark-delivered quantities.")
    line_number = serializers.IntegerField()
    sku = serializers.CharField()
    name = serializers.CharField()
    attributes = serializers.DictField()
    quantity = serializers.IntegerField()
    quantity_canceled = serializers.IntegerField()
    quantity_shipped = serializers.IntegerField()
    quantity_delivered = serializers.IntegerField()
    quantity_open = serializers.IntegerField(help_text="Still to ship.")
    unit_price = MoneyField(currency_source="order.currency")
    discount = MoneyField(source="discount_amount", currency_source="order.currency")
    tax_rate = serializers.DecimalField(**RATE)
    total_net = MoneyField(currency_source="order.currency")
    tax_amount = MoneyField(currency_source="order.currency")
    total_gross = MoneyField(currency_source="order.currency")
    promotion = serializers.DictField()
    promised_at = serializers.DateTimeField(allow_null=True)


class OrderHoldSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reason = serializers.CharField()
    reason_display = serializers.CharField(source="get_reason_display")
    note = serializers.CharField()
    is_active = serializers.BooleanField()
    placed_by = UsernameField()
    placed_at = serializers.DateTimeField()
    released_by = UsernameField()
    released_at = serializers.DateTimeField(allow_null=True)
    release_note = serializers.CharField()


class OrderEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField()
    actor = UsernameField()
    reason = serializers.CharField()
    payload = serializers.DictField()
    created_at = serializers.DateTimeField()


class _OrderBaseSerializer(serializers.Serializer):
    number = serializers.CharField()
    channel = serializers.CharField(source="channel.code")
    external_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    payment_status = serializers.ChoiceField(choices=PaymentStatus.choices)
    fulfillment_status = serializers.ChoiceField(choices=FulfillmentStatus.choices)
    customer_label = serializers.SerializerMethodField(help_text="What the customer reads, in the order's language.")
    currency = serializers.CharField()
    is_test = serializers.BooleanField()
    placed_at = serializers.DateTimeField()
    tags = serializers.SerializerMethodField()

    def get_customer_label(self, order) -> str:
        return order_customer_label(order)

    def get_tags(self, order) -> list[str]:
        return sorted(tag.name for tag in order.tags.all())


class OrderListSerializer(_OrderBaseSerializer):
    email = serializers.EmailField()
    customer_name = serializers.CharField(source="customer.full_name")
    total_gross = MoneyField()
    updated_at = serializers.DateTimeField()


class OrderDetailSerializer(_OrderBaseSerializer):
    customer_label_en = serializers.SerializerMethodField()
    customer_label_fr = serializers.SerializerMethodField()
    locale = serializers.CharField()
    prices_include_tax = serializers.BooleanField()
    requires_approval = serializers.BooleanField()
    on_payment_terms = serializers.BooleanField()
    risk_score = serializers.IntegerField(allow_null=True)
    risk_facts = serializers.ListField(child=serializers.DictField(), help_text="[{source, fact}]")
    purchase_order_number = serializers.CharField()
    totals = OrderTotalsSerializer(source="*")
    payment_method = serializers.CharField()
    payment_reference = serializers.CharField()
    customer = OrderCustomerSerializer(source="*")
    billing_address = AddressField(read_only=True)
    shipping_address = AddressField(read_only=True)
    shipping_method = serializers.CharField()
    pickup_location = serializers.CharField(
        source="pickup_location.code", default=None, allow_null=True, help_text="Store code for click and collect."
    )
    cancel_reason = serializers.CharField()
    promised_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)
    confirmed_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    canceled_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    lines = OrderLineSerializer(many=True)
    holds = OrderHoldSerializer(many=True)
    events = OrderEventSerializer(many=True)
    allowed_actions = serializers.SerializerMethodField(
        help_text=(
            "What the requesting user may do to the order now. Each name is the action's path under the "
            "order (`cancel` → POST …/cancel/), except add-note (notes/), add-tag and remove-tag (tags/add/, "
            "tags/remove/) and release-hold (holds/{hold_id}/release/)."
        )
    )

    def get_customer_label_en(self, order) -> str:
        return order_customer_label(order, "en")

    def get_customer_label_fr(self, order) -> str:
        return order_customer_label(order, "fr")

    def get_allowed_actions(self, order) -> list[str]:
        return order_allowed_action_slugs(order=order, user=self.context["request"].user)

    def to_representation(self, order):
        # The risk score, the fraud notes and reasons only for those who work fraud.
        return order_data_for(self.context["request"].user, super().to_representation(order))


# --- what the requesting user may do ------------------------------------------------------------

# FSM transitions offered as an action of their own (pay, ship and deliver happen inside
# mark-paid, record-shipment and mark-delivered, which are listed from the services' guards).
# The selector's action names, as the API spells them (its action URLs), in display order.
ACTION_SLUGS = {
    "submit": "submit",
    "approve": "approve",
    "accept_on_terms": "accept-on-terms",
    "flag_for_review": "flag-for-review",
    "accept": "accept",
    "start_preparation": "start-preparation",
    "complete": "complete",
    "cancel": "cancel",
    "mark_paid": "mark-paid",
    "record_shipment": "record-shipment",
    "mark_delivered": "mark-delivered",
    "hold": "hold",
    "release_hold": "release-hold",
    "add_note": "add-note",
    "tag": "add-tag",
    "untag": "remove-tag",
    "change_address": "change-address",
}
ACTIONS = list(ACTION_SLUGS.values())


def order_allowed_action_slugs(*, order, user) -> list[str]:
    allowed = order_allowed_actions(order=order, user=user)
    return [slug for name, slug in ACTION_SLUGS.items() if name in allowed]
