"""Shapes of the refunds API: input serializers check shape and types only, output ones only represent.

Amounts, ceilings, approvals and states are the services' (billing.services.refunds)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.models import MONEY, DisputeStatus, RefundMethod, RefundReason, RefundStatus
from billing.services.refunds import approval_limit, approval_limits
from oms.core.api import MoneyField, StrictInputSerializer, UsernameField, one_of


class RefundRequestInputSerializer(StrictInputSerializer):
    amount = serializers.DecimalField(**MONEY, help_text="In the order's currency; more than 0.")
    reason = one_of(RefundReason.choices, "Why the money goes back.")
    method = one_of(RefundMethod.choices, "Where it goes (default: the original payment).", required=False)
    credit_note = serializers.CharField(
        required=False, max_length=32, help_text="Number of a credit note of the order this refund pays out."
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class RefundNoteInputSerializer(StrictInputSerializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, help_text="Kept on the history.")


class RefundListQuerySerializer(serializers.Serializer):
    status = serializers.ListField(
        child=one_of(RefundStatus.choices),
        required=False,
        help_text="Repeat for several: ?status=requested&status=approved.",
    )
    order = serializers.CharField(required=False, max_length=32, help_text="Order number: only its refunds.")


class RefundListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        # The page's second-approver sums in two queries, not two per refund.
        refunds = list(data.all() if hasattr(data, "all") else data)
        limits = approval_limits(refunds)
        for refund in refunds:
            refund.approval_limit = limits[refund.pk]
        return super().to_representation(refunds)


class RefundSerializer(serializers.Serializer):
    number = serializers.CharField()
    order = serializers.CharField(source="order.number")
    amount = MoneyField()
    currency = serializers.CharField()
    method = one_of(RefundMethod.choices)
    reason = one_of(RefundReason.choices)
    status = one_of(RefundStatus.choices)
    note = serializers.CharField()
    needs_second_approver = serializers.SerializerMethodField(
        help_text=(
            "A finance manager (approve_large_refund) must approve it: with the order's refunds requested "
            "within the window, or the customer's refunds that day, it is above the threshold."
        )
    )
    payment = serializers.CharField(source="payment.provider_reference", allow_null=True, default=None)
    credit_note = serializers.CharField(source="credit_note.number", allow_null=True, default=None)
    requested_by = UsernameField()
    requested_at = serializers.DateTimeField()
    approved_by = UsernameField()
    approved_at = serializers.DateTimeField(allow_null=True)
    processed_at = serializers.DateTimeField(allow_null=True)
    provider_reference = serializers.CharField(help_text="The provider's refund id, or the voucher code.")
    failure_reason = serializers.CharField()

    class Meta:
        list_serializer_class = RefundListSerializer

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_needs_second_approver(self, refund) -> bool:
        limit = getattr(refund, "approval_limit", None) or approval_limit(refund)
        return limit.needs_second_approver


class SellerCancellationInputSerializer(StrictInputSerializer):
    quantities = serializers.DictField(
        child=serializers.IntegerField(min_value=1),
        allow_empty=False,
        help_text='Units to cancel per line: {"<line number>": quantity}. Only open (unshipped) units.',
    )
    compensation = serializers.DecimalField(
        **MONEY, required=False, allow_null=True, help_text="Optional: a compensation voucher, on top of the refund."
    )
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class SellerCancellationSerializer(serializers.Serializer):
    order = serializers.CharField(source="order.number")
    order_status = serializers.CharField(source="order.status")
    refund = RefundSerializer(allow_null=True, help_text="The refund requested (awaits approval), if any.")
    compensation = RefundSerializer(allow_null=True, help_text="The compensation voucher requested, if any.")


class DisputeCloseInputSerializer(StrictInputSerializer):
    won = serializers.BooleanField(help_text="true: the dispute was won; false: lost (the chargeback stands).")
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class DisputeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    provider_reference = serializers.CharField()
    order = serializers.CharField(source="order.number")
    payment = serializers.CharField(source="payment.provider_reference")
    reason = serializers.CharField()
    amount = MoneyField()
    currency = serializers.CharField()
    status = one_of(DisputeStatus.choices)
    respond_by = serializers.DateTimeField()
    opened_at = serializers.DateTimeField()
    has_evidence = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_has_evidence(self, dispute) -> bool:
        return bool(dispute.evidence)
