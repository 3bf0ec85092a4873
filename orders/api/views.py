"""The order API: one view per use case, each calling one service or selector.

Views resolve the order number, check the request's shape and answer with the order as it is
after the change; the services decide everything else (permissions, states, amounts) and their
errors become responses in the one exception handler (oms.core.api). Every POST honours an
`Idempotency-Key` header (oms.core.idempotency).
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from oms.core.api import (
    IDEMPOTENCY_KEY_PARAMETER,
    CanViewOrders,
    DottedFieldsWriteApi,
    IdCursorPagination,
    api_errors,
    validated_input,
)
from oms.core.errors import NotFoundError, ValidationError
from orders import services
from orders.api.filters import OrderFilter
from orders.api.serializers import (
    ClearFraudInputSerializer,
    OrderCancelInputSerializer,
    OrderChangeAddressInputSerializer,
    OrderCreateInputSerializer,
    OrderDetailSerializer,
    OrderFlagForReviewInputSerializer,
    OrderHoldInputSerializer,
    OrderHoldReleaseInputSerializer,
    OrderListSerializer,
    OrderMarkDeliveredInputSerializer,
    OrderMarkPaidInputSerializer,
    OrderNoteInputSerializer,
    OrderRecordShipmentInputSerializer,
    OrderTagInputSerializer,
    ReasonInputSerializer,
)
from orders.models import OrderHold
from orders.selectors import channels_visible, order_find, order_get, order_list

_LIST_ERRORS = api_errors(
    invalid="Invalid filter or cursor: field errors in `extra.fields`.",
    unauthenticated=True,
    forbidden="The user may not view orders.",
)
_ERRORS = api_errors(invalid=True, unauthenticated=True, forbidden=True, not_found="No such order (`order_not_found`).")
_WRITE_ERRORS = {
    **_ERRORS,
    **api_errors(
        not_json=True,
        conflict="The order's state does not allow this now (`transition_not_allowed`, …), "
        "or a request with this Idempotency-Key is still running.",
        key_reused=True,
    ),
}


def _action_schema(*, summary: str, request, status: int = 200, description: str = ""):
    return extend_schema(
        tags=["order actions"],
        summary=summary,
        description=description,
        request=request,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={status: OrderDetailSerializer, **_WRITE_ERRORS},
    )


def _order_id(request, number: str) -> int:
    # Another API client's order is not found, exactly like one that does not exist.
    return order_find(user=request.user, number=number).pk


def _order_response(request, number: str, *, status: int = 200) -> Response:
    """The order as it is now, as the requesting user sees it (with the actions left to them)."""
    order = order_get(user=request.user, number=number)
    return Response(OrderDetailSerializer(order, context={"request": request}).data, status=status)


# --- reads -----------------------------------------------------------------------------------------


@extend_schema(
    tags=["orders"],
    summary="List orders",
    description="Newest received first, 50 per page (`page_size` up to 200), cursor-paginated: follow `next`.",
    responses={200: OrderListSerializer(many=True), **_LIST_ERRORS},
)
class OrderListApi(generics.ListAPIView):
    permission_classes = [IsAuthenticated, CanViewOrders]
    serializer_class = OrderListSerializer
    filterset_class = OrderFilter
    pagination_class = IdCursorPagination

    def get_queryset(self):
        return order_list(user=self.request.user)


class OrderDetailApi(APIView):
    permission_classes = [IsAuthenticated, CanViewOrders]

    @extend_schema(
        tags=["orders"],
        summary="One order with its lines, holds, timeline and the actions open to you",
        responses={200: OrderDetailSerializer, **_ERRORS},
    )
    def get(self, request, number: str):
        return _order_response(request, number)


# --- intake ----------------------------------------------------------------------------------------


class OrderCreateApi(DottedFieldsWriteApi):
    @extend_schema(
        tags=["orders"],
        summary="Create or import an order",
        description=(
            "Creates the order, submits it and, when the payment covers it, confirms it. "
            "Sending the same (channel, external_id) again changes nothing and returns the existing "
            "order with 200, also when both deliveries arrive at the same moment."
        ),
        request=OrderCreateInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            201: OpenApiResponse(OrderDetailSerializer, description="Created."),
            200: OpenApiResponse(OrderDetailSerializer, description="Already imported: the existing order."),
            **_WRITE_ERRORS,
        },
    )
    def post(self, request):
        data = validated_input(OrderCreateInputSerializer, request.data)
        if not channels_visible(request.user).filter(code=data["channel"]).exists():
            # A channel the API client does not serve reads as one that does not exist.
            raise ValidationError(
                "Unknown or inactive channel.",
                code="unknown_channel",
                fields={"channel": ["Unknown or inactive channel."]},
            )
        order, created = services.order_create(actor=request.user, **data)
        return _order_response(request, order.number, status=201 if created else 200)


# --- lifecycle actions -------------------------------------------------------------------------------


class OrderActionApi(DottedFieldsWriteApi):
    # An action on one order, answered with the order as it is after it.
    pass


class OrderSubmitApi(OrderActionApi):
    @_action_schema(summary="Submit a draft order", request=ReasonInputSerializer)
    def post(self, request, number: str):
        order_id = _order_id(request, number)
        data = validated_input(ReasonInputSerializer, request.data)
        services.order_submit(order=order_id, actor=request.user, **data)
        return _order_response(request, number)


class OrderApproveApi(OrderActionApi):
    @_action_schema(summary="Approve an order pending approval", request=ReasonInputSerializer)
    def post(self, request, number: str):
        order_id = _order_id(request, number)
        data = validated_input(ReasonInputSerializer, request.data)
        services.order_approve(order=order_id, actor=request.user, **data)
        return _order_response(request, number)


class OrderMarkPaidApi(OrderActionApi):
    @_action_schema(
        summary="Record a payment or an authorization",
        description="Confirms an order awaiting payment once it is paid or authorized in full.",
        request=OrderMarkPaidInputSerializer,
    )
    def post(self, request, number: str):
        order_id = _order_id(request, number)
        data = validated_input(OrderMarkPaidInputSerializer, request.data)
        services.order_mark_paid(order=order_id, actor=request.user, **data)
        return _order_response(request, number)


class OrderAcceptOnTermsApi(OrderActionApi):
    @_action_schema(summary="Confirm an order on the customer's payment terms", request=ReasonInputSerializer)
    def post(self, request, number: str):
        order_id = _order_id(request, number)
        data = validated_input(ReasonInputSerializer, request.data)
        services.order_accept_on_terms(order=order_id, actor=request.user, **data)
        return _order_response(request, number)


class OrderFlagForReviewApi(OrderActionApi):
    @_action_schema(summary="Put an order under review", request=OrderFlagForReviewInputSerializer)
    def post(self, request, number: str):
        order_id = _order_id(request, number)
        data = validated_input(OrderFlagForReviewInputSerializer, request.data)
        services.order_flag_for_review(order=order_id, actor=request.user, **data)
        return _order_response(request, number)


class OrderAcceptApi(OrderActionApi):
    @_action_schema(
        summary="Accept an order under review",
        description="Confirmed when paid or authorized, otherwise back to awaiting payment.",
        request=ReasonInputSerializer,
    )
    def post(self, request, number: str):
        order_id = _order_id(request, number)
        data = validated_input(ReasonInputSerializer, request.data)
        services.order_accept(order=order_id, actor=request.user, **data)
        return _order_response(request, number)


class OrderClearFraudApi(OrderActionApi):
    @_action_schema(
        summary="Clear a fraud review (false positive)",
        description="Releases the fraud-review hold and accepts the review; its own permission "
        "(`orders.release_fraud_hold`) and a reason are required. The fraud case closes as a false positive.",
        request=ClearFraudInputSerializer,
    )
    def post(self, request, number: str):
        order_id = _order_id(request, number)
        data = validated_input(ClearFraudInputSerializer, request.data)
        services.order_clear_fraud(order=order_id, actor=request.user, reason=data["reason"])
        return _order_response(request, number)


class OrderStartPreparationApi(OrderActionApi):
    @_action_schema(summary="Start preparing a confirmed order", request=ReasonInputSerializer)
    def post(self, request, number: str):
        order_id = _order_id(request, number)
        data = validated_input(ReasonInputSerializer, request.data)
        services.order_start_preparation(order=order_id, actor=request.user, **data)
        return _order_response(request, number)


class OrderRecordShipmentApi(OrderActionApi):
    @_action_schema(
        summary="Record shipped quantities",
        description="Everything still open by default; the order becomes partially shipped or shipped.",
        request=OrderRecordShipmentInputSerializer,
    )
    def post(self, request, number: str):
        order_id = _order_id(request, number)
        data = validated_input(OrderRecordShipmentInputSerializer, request.data)
        services.order_record_shipment(order=order_id, actor=request.user, **data)
        return _order_response(request, number)


class OrderMarkDeliveredApi(OrderActionApi):
    @_action_schema(
        summary="Record delivered quantities",
        description="Everything shipped by default; the order is delivered once everything is.",
        request=OrderMarkDeliveredInputSerializer,
    )
    def post(self, request, number: str):
        order_id = _order_id(request, number)
        data = validated_input(OrderMarkDeliveredInputSerializer, request.data)
        services.order_mark_delivered(order=order_id, actor=request.user, **data)
        return _order_response(request, number)


class OrderCompleteApi(OrderActionApi):
    @_action_schema(summary="Close a delivered order after the return window", request=ReasonInputSerializer)
    def post(self, request, number: str):
        order_id = _order_id(request, number)
        data = validated_input(ReasonInputSerializer, request.data)
        services.order_complete(order=order_id, actor=request.user, **data)
        return _order_response(request, number)


class OrderCancelApi(OrderActionApi):
    @_action_schema(
        summary="Cancel an order before anything shipped",
        description="Canceling an order that has received money needs its own permission.",
        request=OrderCancelInputSerializer,
    )
    def post(self, request, number: str):
        order_id = _order_id(request, number)
        data = validated_input(OrderCancelInputSerializer, request.data)
        services.order_cancel(order=order_id, actor=request.user, **data)
        return _order_response(request, number)


class OrderHoldApi(OrderActionApi):
    @_action_schema(
        summary="Place a hold",
        description="An order with an active hold cannot start preparation or ship.",
        request=OrderHoldInputSerializer,
        status=201,
    )
    def post(self, request, number: str):
        order_id = _order_id(request, number)
        data = validated_input(OrderHoldInputSerializer, request.data)
        services.order_hold(order=order_id, actor=request.user, **data)
        return _order_response(request, number, status=201)


class OrderHoldReleaseApi(OrderActionApi):
    @_action_schema(summary="Release a hold", request=OrderHoldReleaseInputSerializer)
    def post(self, request, number: str, hold_id: int):
        order_id = _order_id(request, number)
        if not OrderHold.objects.filter(pk=hold_id, order_id=order_id).exists():
            raise NotFoundError(f"Order {number} has no hold {hold_id}.", code="hold_not_found")
        data = validated_input(OrderHoldReleaseInputSerializer, request.data)
        services.order_release_hold(hold=hold_id, actor=request.user, note=data.get("note", ""))
        return _order_response(request, number)


class OrderNoteAddApi(OrderActionApi):
    @_action_schema(summary="Add an internal note", request=OrderNoteInputSerializer)
    def post(self, request, number: str):
        order_id = _order_id(request, number)
        data = validated_input(OrderNoteInputSerializer, request.data)
        services.order_add_note(order=order_id, actor=request.user, **data)
        return _order_response(request, number)


class OrderTagAddApi(OrderActionApi):
    @_action_schema(
        summary="Tag an order",
        description="Adding a tag it already has changes nothing.",
        request=OrderTagInputSerializer,
    )
    def post(self, request, number: str):
        order_id = _order_id(request, number)
        data = validated_input(OrderTagInputSerializer, request.data)
        services.order_tag(order=order_id, actor=request.user, **data)
        return _order_response(request, number)


class OrderTagRemoveApi(OrderActionApi):
    @_action_schema(
        summary="Untag an order",
        description="Removing a tag it does not have changes nothing.",
        request=OrderTagInputSerializer,
    )
    def post(self, request, number: str):
        order_id = _order_id(request, number)
        data = validated_input(OrderTagInputSerializer, request.data)
        services.order_untag(order=order_id, actor=request.user, **data)
        return _order_response(request, number)


class OrderChangeAddressApi(OrderActionApi):
    @_action_schema(
        summary="Change the shipping or billing address",
        description="Only while nothing has shipped.",
        request=OrderChangeAddressInputSerializer,
    )
    def post(self, request, number: str):
        order_id = _order_id(request, number)
        data = validated_input(OrderChangeAddressInputSerializer, request.data)
        services.order_change_address(order=order_id, actor=request.user, **data)
        return _order_response(request, number)
