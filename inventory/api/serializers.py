"""Shapes of the inventory API: input serializers check shape and types only, output ones only represent.

Business rules (permissions, stock never below what is reserved, a receipt applied once) are the
services'. Errors use the dotted field keys of the order API (`lines.1.sku`).
"""

from rest_framework import serializers

from oms.core.api import StrictInputSerializer

# Per line or per document: more than this is a typing error, and the counters are 32-bit.
MAX_UNITS = 1_000_000
# What the ledger keeps of a reference (StockMovement.reference).
REFERENCE = {"max_length": 128, "help_text": "The sender's document id (ASN, adjustment, count number)."}

# --- reads ---------------------------------------------------------------------------------------


class AtpQuerySerializer(StrictInputSerializer):
    channel = serializers.SlugField(
        required=False, help_text="Channel code: its rules (shares, fences, excluded locations) apply."
    )
    location = serializers.SlugField(required=False, help_text="Location code: only this location.")
    date = serializers.DateField(
        required=False, help_text="Promise date: incoming supply due by then and not yet promised counts."
    )


class AtpLocationSerializer(serializers.Serializer):
    location = serializers.CharField(help_text="Location code.")
    on_hand = serializers.IntegerField()
    reserved = serializers.IntegerField()
    safety_stock = serializers.IntegerField()
    available = serializers.IntegerField(help_text="What the channel may take from stock at hand here.")
    incoming = serializers.IntegerField(help_text="Incoming supply due by the date and not yet promised.")


class AtpSerializer(serializers.Serializer):
    sku = serializers.CharField()
    channel = serializers.CharField(allow_null=True, help_text="The channel code, null without one.")
    date = serializers.DateField(allow_null=True, help_text="The promise date, null without one.")
    atp = serializers.IntegerField(help_text="Available to promise: Σ available + incoming.")
    locations = AtpLocationSerializer(many=True)


class StockFeedQuerySerializer(serializers.Serializer):
    channel = serializers.SlugField(help_text="Channel code. Required.")
    updated_since = serializers.DateTimeField(
        required=False,
        help_text=(
            "ISO 8601 with its offset (URL-encode `+`). Only products whose figure may have changed since. "
            "Use the time of your previous pull minus a margin of a few minutes: figures are absolute, "
            "an overlap is harmless, and a movement committed late is not missed."
        ),
    )


class StockFeedEntrySerializer(serializers.Serializer):
    sku = serializers.CharField()
    available = serializers.IntegerField(help_text="Units the channel may sell now (0 when not sellable).")
    sellable = serializers.BooleanField(help_text="False outside the product's sell window or once switched off.")


# --- receipts ------------------------------------------------------------------------------------


class StockReceiptLineInputSerializer(StrictInputSerializer):
    sku = serializers.CharField(max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_UNITS)
    supply = serializers.CharField(
        max_length=64,
        required=False,
        allow_null=True,
        help_text="Reference of the incoming supply (purchase order, transfer) this line fills, if any.",
    )


class StockReceiptInputSerializer(StrictInputSerializer):
    location = serializers.SlugField(help_text="Location code.")
    reference = serializers.CharField(**REFERENCE)
    lines = StockReceiptLineInputSerializer(many=True, allow_empty=False)


class StockReceiptLineSerializer(serializers.Serializer):
    sku = serializers.CharField()
    quantity = serializers.IntegerField(help_text="Units received.")
    on_hand = serializers.IntegerField(help_text="On hand of the SKU at the location right after this line.")


class StockReceiptSerializer(serializers.Serializer):
    location = serializers.CharField()
    reference = serializers.CharField()
    lines = StockReceiptLineSerializer(many=True)


# --- adjustments ---------------------------------------------------------------------------------


class StockAdjustInputSerializer(StrictInputSerializer):
    location = serializers.SlugField(help_text="Location code.")
    sku = serializers.CharField(max_length=64)
    delta = serializers.IntegerField(
        min_value=-MAX_UNITS, max_value=MAX_UNITS, help_text="Units added (positive) or removed (negative), not 0."
    )
    note = serializers.CharField(allow_blank=True, help_text="Why: required, kept on the ledger row.")
    reference = serializers.CharField(**REFERENCE)


class StockAdjustmentSerializer(serializers.Serializer):
    location = serializers.CharField()
    sku = serializers.CharField()
    delta = serializers.IntegerField()
    reference = serializers.CharField()
    note = serializers.CharField()
    on_hand = serializers.IntegerField(help_text="After the adjustment.")
    reserved = serializers.IntegerField()
    safety_stock = serializers.IntegerField()
    available = serializers.IntegerField(help_text="On hand − reserved − safety stock.")


# --- cycle counts --------------------------------------------------------------------------------


class CycleCountLineInputSerializer(StrictInputSerializer):
    sku = serializers.CharField(max_length=64)
    counted = serializers.IntegerField(min_value=0, max_value=MAX_UNITS)


class CycleCountSubmitInputSerializer(StrictInputSerializer):
    location = serializers.SlugField(help_text="Location code.")
    reference = serializers.CharField(**REFERENCE)
    lines = CycleCountLineInputSerializer(many=True, allow_empty=False)


class CycleCountApplyInputSerializer(StrictInputSerializer):
    note = serializers.CharField(required=False, allow_blank=True, help_text="Kept on the count's ledger rows.")


class CycleCountLineSerializer(serializers.Serializer):
    sku = serializers.CharField(source="product.sku")
    expected = serializers.IntegerField(help_text="On hand when the count was opened.")
    counted = serializers.IntegerField()
    variance = serializers.SerializerMethodField(help_text="counted − expected.")

    def get_variance(self, line) -> int:
        return line.counted - line.expected


class CycleCountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    location = serializers.CharField(source="location.code")
    status = serializers.CharField(help_text="counted (waiting for approval) or applied.")
    note = serializers.CharField()
    created_at = serializers.DateTimeField()
    applied_at = serializers.DateTimeField(allow_null=True)
    lines = CycleCountLineSerializer(many=True)
