"""The refunds API: request a refund on an order, approve, reject or process it, list them.

One view per use case, each calling one service of billing.services.refunds with the request's
user as the actor: the services check the permissions, the ceiling and the second-approver rule,
so this API cannot skip them. Every POST honours an `Idempotency-Key` header.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api.serializers_refunds import (
    DisputeCloseInputSerializer,
    DisputeSerializer,
    RefundListQuerySerializer,
    RefundNoteInputSerializer,
    RefundRequestInputSerializer,
    RefundSerializer,
    SellerCancellationInputSerializer,
    SellerCancellationSerializer,
)
from billing.models import CreditNote, Dispute, Refund
from billing.services import disputes as dispute_services
from billing.services import refunds as services
from oms.core.api import (
    IDEMPOTENCY_KEY_PARAMETER,
    IdCursorPagination,
    PermissionRequired,
    WriteApi,
    api_errors,
    validated_input,
)
from oms.core.errors import NotFoundError, ValidationError
from orders.selectors import order_find, order_scope_q, orders_visible

_WRITE_ERRORS = api_errors(
    invalid="Invalid request (`refund_exceeds_captured`, …).",
    unauthenticated=True,
    forbidden="No permission, or the approval rule refuses (`approver_is_requester`, `second_approver_required`).",
    not_found="No such order or refund.",
    conflict="The refund's state does not allow this now.",
    key_reused=True,
)


class CanViewRefunds(PermissionRequired):
    perm = "billing.view_refund"
    message = "You do not have permission to view refunds."


def _refunds():
    return Refund.objects.select_related("order", "payment", "credit_note", "requested_by", "approved_by")


# Every lookup goes through what the user may reach (orders.selectors): another API client's order,
# refund or dispute is not found, exactly like one that does not exist.


def _refund_id(request, number: str) -> int:
    pk = Refund.objects.filter(order_scope_q(request.user, "order"), number=number).values_list("pk", flat=True).first()
    if pk is None:
        raise NotFoundError(f"Refund {number} not found.", code="refund_not_found")
    return pk


def _refund_response(pk: int, *, status: int = 200) -> Response:
    return Response(RefundSerializer(_refunds().get(pk=pk)).data, status=status)


def _action_schema(summary: str, description: str = "", request=RefundNoteInputSerializer):
    return extend_schema(
        tags=["billing: refunds"],
        summary=summary,
        description=description,
        request=request,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={200: RefundSerializer, **_WRITE_ERRORS},
    )


class RefundRequestApi(WriteApi):
    @extend_schema(
        tags=["billing: refunds"],
        summary="Request a refund on an order",
        description=(
            "Awaits approval. The order's refunds (open and processed) never exceed what was captured "
            "on its payments; two requests at the same moment are checked one after the other."
        ),
        request=RefundRequestInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: RefundSerializer, **_WRITE_ERRORS},
    )
    def post(self, request, number: str):
        order = order_find(user=request.user, number=number)
        data = validated_input(RefundRequestInputSerializer, request.data)
        credit_note = None
        if data.get("credit_note"):
            credit_note = CreditNote.objects.filter(number=data["credit_note"], order=order).first()
            if credit_note is None:
                raise ValidationError(
                    "The request is not valid.",
                    fields={"credit_note": [f"No credit note {data['credit_note']} on this order."]},
                )
        refund = services.refund_request(
            order=order,
            actor=request.user,
            amount=data["amount"],
            reason=data["reason"],
            method=data.get("method") or "original",
            credit_note=credit_note,
            note=data.get("note", ""),
        )
        return _refund_response(refund.pk, status=201)


class RefundApproveApi(WriteApi):
    @_action_schema(
        "Approve a refund",
        "Never by its requester; above the threshold only with `billing.approve_large_refund`.",
    )
    def post(self, request, number: str):
        pk = _refund_id(request, number)
        data = validated_input(RefundNoteInputSerializer, request.data)
        services.refund_approve(refund=pk, actor=request.user, note=data.get("note", ""))
        return _refund_response(pk)


class RefundRejectApi(WriteApi):
    @_action_schema("Reject a refund", "Its amount is free to request again.")
    def post(self, request, number: str):
        pk = _refund_id(request, number)
        data = validated_input(RefundNoteInputSerializer, request.data)
        services.refund_reject(refund=pk, actor=request.user, reason=data.get("note", ""))
        return _refund_response(pk)


class RefundProcessApi(WriteApi):
    @_action_schema(
        "Pay an approved refund out",
        "Once: processing a processed refund changes nothing. A provider failure answers 200 with status "
        "`failed` and its reason; process it again to retry.",
    )
    def post(self, request, number: str):
        pk = _refund_id(request, number)
        validated_input(RefundNoteInputSerializer, request.data)
        services.refund_process(refund=pk, actor=request.user)
        return _refund_response(pk)


@extend_schema(
    tags=["billing: refunds"],
    summary="List refunds",
    description="Newest first, cursor-paginated. `?status=requested` is the approval queue.",
    parameters=[RefundListQuerySerializer],
    responses={200: RefundSerializer(many=True)},
)
class RefundListApi(generics.ListAPIView):
    permission_classes = [IsAuthenticated, CanViewRefunds]
    serializer_class = RefundSerializer
    pagination_class = IdCursorPagination
    filter_backends: list = []

    def list(self, request, *args, **kwargs):
        query = validated_input(RefundListQuerySerializer, request.query_params)
        order = None
        if query.get("order"):
            order = orders_visible(request.user).filter(number=query["order"]).first()
            if order is None:
                raise ValidationError("The request is not valid.", fields={"order": ["Unknown order."]})
        refunds = services.refund_list(status=query.get("status"), order=order)
        page = self.paginate_queryset(refunds.filter(order_scope_q(request.user, "order")))
        return self.get_paginated_response(RefundSerializer(page, many=True).data)


class RefundDetailApi(APIView):
    permission_classes = [IsAuthenticated, CanViewRefunds]

    @extend_schema(tags=["billing: refunds"], summary="One refund", responses={200: RefundSerializer})
    def get(self, request, number: str):
        return _refund_response(_refund_id(request, number))


# --- seller cancellation -----------------------------------------------------------------------


class SellerCancellationApi(WriteApi):
    @extend_schema(
        tags=["billing: refunds"],
        summary="Cancel paid items out of stock and refund them",
        description=(
            "Cancels open units of the order's lines (by line number), requests their price back to the "
            "original payment (shipping too when nothing is left to ship) and, when given, a compensation "
            "voucher; the customer is told. The refunds await approval. Needs `billing.request_refund` "
            "and the permission to cancel a paid order."
        ),
        request=SellerCancellationInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: SellerCancellationSerializer, **_WRITE_ERRORS},
    )
    def post(self, request, number: str):
        order = order_find(user=request.user, number=number)
        data = validated_input(SellerCancellationInputSerializer, request.data)
        by_number = {str(n): pk for n, pk in order.lines.values_list("line_number", "pk")}
        unknown = [key for key in data["quantities"] if key.strip() not in by_number]
        if unknown:
            raise ValidationError(
                "The quantities are not valid.",
                code="invalid_quantities",
                fields={f"quantities.{key}": ["Unknown line."] for key in unknown},
            )
        result = services.seller_cancel_lines(
            order=order,
            actor=request.user,
            quantities={by_number[key.strip()]: qty for key, qty in data["quantities"].items()},
            compensation=data.get("compensation"),
            reason=data.get("reason", ""),
        )
        body = SellerCancellationSerializer(
            {
                "order": result.order,
                "refund": _refunds().get(pk=result.refund.pk) if result.refund else None,
                "compensation": _refunds().get(pk=result.compensation.pk) if result.compensation else None,
            }
        ).data
        return Response(body, status=201)


# --- dispute outcomes --------------------------------------------------------------------------


def _dispute_id(request, pk: int) -> int:
    if not Dispute.objects.filter(order_scope_q(request.user, "order"), pk=pk).exists():
        raise NotFoundError(f"Dispute {pk} not found.", code="dispute_not_found")
    return pk


def _dispute_response(pk: int) -> Response:
    return Response(DisputeSerializer(Dispute.objects.select_related("order", "payment").get(pk=pk)).data)


def _dispute_schema(summary: str, description: str, request):
    return extend_schema(
        tags=["billing: disputes"],
        summary=summary,
        description=description,
        request=request,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={200: DisputeSerializer, **_WRITE_ERRORS},
    )


class DisputeSubmitApi(WriteApi):
    @_dispute_schema(
        "Submit a dispute's evidence",
        "Open → evidence submitted; the evidence pack must have been generated first. Needs `billing.change_dispute`.",
        RefundNoteInputSerializer,
    )
    def post(self, request, pk: int):
        data = validated_input(RefundNoteInputSerializer, request.data)
        dispute = dispute_services.dispute_submit_evidence(
            dispute=_dispute_id(request, pk), actor=request.user, note=data.get("note", "")
        )
        return _dispute_response(dispute.pk)


class DisputeCloseApi(WriteApi):
    @_dispute_schema(
        "Close a dispute as won or lost",
        "Lost: the disputed amount counts as refunded on the payment and the order (never above what was "
        "captured). Won: no money moves. Needs `billing.change_dispute`.",
        DisputeCloseInputSerializer,
    )
    def post(self, request, pk: int):
        data = validated_input(DisputeCloseInputSerializer, request.data)
        dispute = dispute_services.dispute_close(
            dispute=_dispute_id(request, pk), actor=request.user, won=data["won"], note=data.get("note", "")
        )
        return _dispute_response(dispute.pk)
