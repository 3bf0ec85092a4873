from rest_framework import serializers

from oms.core.api import StrictInputSerializer
from returns.choices import ReturnMethod, ReturnReason
from returns.models import ReturnLine, ReturnRequest


class ReturnLineInputSerializer(StrictInputSerializer):
    line = serializers.IntegerField(min_value=1, help_text="The order line's number.")
    quantity = serializers.IntegerField(min_value=1)
    reason_code = serializers.ChoiceField(choices=ReturnReason.choices, required=False)
    exchange_for = serializers.CharField(max_length=64, required=False, help_text="SKU (exchanges only).")


class ReturnRequestInputSerializer(StrictInputSerializer):
    order = serializers.CharField(max_length=32, help_text="The order number.")
    reason = serializers.ChoiceField(choices=ReturnReason.choices)
    method = serializers.ChoiceField(choices=ReturnMethod.choices, default=ReturnMethod.REFUND)
    customer_comment = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    restock_location = serializers.CharField(max_length=40, required=False, help_text="A location code.")
    lines = ReturnLineInputSerializer(many=True, allow_empty=False, max_length=200)


class ReturnApproveInputSerializer(StrictInputSerializer):
    carrier = serializers.CharField(max_length=32, required=False, default="")
    service = serializers.CharField(max_length=32, required=False, default="")


class ReturnNoteInputSerializer(StrictInputSerializer):
    note = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class ReturnReasonInputSerializer(StrictInputSerializer):
    reason = serializers.CharField(max_length=5000)


class InspectionCountsSerializer(StrictInputSerializer):
    resellable = serializers.IntegerField(min_value=0, default=0)
    damaged = serializers.IntegerField(min_value=0, default=0)
    missing = serializers.IntegerField(min_value=0, default=0)


class ReturnInspectInputSerializer(StrictInputSerializer):
    results = serializers.DictField(
        child=InspectionCountsSerializer(), allow_empty=False, help_text="Keyed by return line id."
    )
    location = serializers.CharField(max_length=40, required=False, help_text="Restock location code.")
    note = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class ReturnLineSerializer(serializers.ModelSerializer):
    line = serializers.IntegerField(source="order_line.line_number")
    sku = serializers.CharField(source="order_line.sku")
    name = serializers.CharField(source="order_line.name")
    # Exchanges only: null on a plain return.
    exchange_for = serializers.CharField(source="exchange_for.sku", default=None, allow_null=True)
    exchange_line = serializers.IntegerField(source="exchange_line.line_number", default=None, allow_null=True)

    class Meta:
        model = ReturnLine
        fields = [
            "id",
            "line",
            "sku",
            "name",
            "quantity",
            "reason_code",
            "exchange_for",
            "exchange_line",
            "quantity_resellable",
            "quantity_damaged",
            "quantity_missing",
            "quantity_restocked",
            "inspected_at",
        ]


class ReturnDetailSerializer(serializers.ModelSerializer):
    order = serializers.CharField(source="order.number")
    customer = serializers.EmailField(source="customer.email")
    restock_location = serializers.CharField(source="restock_location.code")
    lines = ReturnLineSerializer(many=True)
    has_label = serializers.SerializerMethodField()

    class Meta:
        model = ReturnRequest
        fields = [
            "number",
            "order",
            "customer",
            "status",
            "reason",
            "method",
            "customer_comment",
            "restock_location",
            "carrier",
            "tracking_number",
            "tracking_url",
            "has_label",
            "refusal_reason",
            "settlement",
            "requested_at",
            "approved_at",
            "received_at",
            "inspected_at",
            "closed_at",
            "refused_at",
            "canceled_at",
            "lines",
        ]

    def get_has_label(self, obj) -> bool:
        return bool(obj.label)
