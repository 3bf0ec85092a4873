"""The returns API: request a return (RMA), read it, and the warehouse's receipt and inspection.

One view per use case, each calling one service; the views turn numbers (order, order line, RMA)
into rows and the services decide the rest. Errors are the one handler's `{code, message, extra}`,
with field errors by dotted path (`lines.0.quantity`, `results.12.resellable`).
"""

from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from oms.core.api import (
    IDEMPOTENCY_KEY_PARAMETER,
    PDF_RESPONSE,
    FileDownloadApi,
    PermissionRequired,
    WriteApi,
    api_errors,
    validated_input,
)
from oms.core.errors import NotFoundError, ValidationError
from orders.models import OrderLine
from orders.selectors import orders_visible
from returns import selectors, services
from returns.api.serializers import (
    ReturnApproveInputSerializer,
    ReturnDetailSerializer,
    ReturnInspectInputSerializer,
    ReturnNoteInputSerializer,
    ReturnReasonInputSerializer,
    ReturnRequestInputSerializer,
)
from returns.models import ReturnRequest

_WRITE_ERRORS = api_errors(
    invalid=True,
    unauthenticated=True,
    forbidden=True,
    not_found="No such return (`return_not_found`).",
    conflict="The return's state does not allow this now.",
    key_reused=True,
)


class CanViewReturns(PermissionRequired):
    perm = "returns.view_returnrequest"
    message = "You do not have permission to view returns."


# Every lookup goes through what the user may reach: another API client's order or return is not
# found, exactly like one that does not exist.


def _detail(request, number: str) -> Response:
    return Response(ReturnDetailSerializer(selectors.return_get(user=request.user, number=number)).data)


def _request_id(request, number: str) -> int:
    found = selectors.returns_visible(request.user).filter(number=number).values_list("pk", flat=True).first()
    if found is None:
        raise NotFoundError(f"Return {number} not found.", code="return_not_found")
    return found


class ReturnCreateApi(WriteApi):
    @extend_schema(
        tags=["returns"],
        summary="Request a return (RMA)",
        description=(
            "Lines by the order's line numbers. Refused per line (400, `extra.fields.lines.<i>.…`) "
            "after the withdrawal window, for products that cannot be returned (with the reason), or "
            "above what was shipped and not returned yet."
        ),
        request=ReturnRequestInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: ReturnDetailSerializer, **_WRITE_ERRORS},
    )
    def post(self, request):
        data = validated_input(ReturnRequestInputSerializer, request.data)
        order = orders_visible(request.user).filter(number=data["order"]).first()
        if order is None:
            raise ValidationError("The request is not valid.", fields={"order": ["Unknown order."]})
        by_number = dict(OrderLine.objects.filter(order=order).values_list("line_number", "pk"))
        errors = {}
        lines = []
        for index, line in enumerate(data["lines"]):
            if line["line"] not in by_number:
                errors[f"lines.{index}.line"] = [f"Order {order.number} has no line {line['line']}."]
                continue
            lines.append({**line, "line": by_number[line["line"]]})
        if errors:
            raise ValidationError("The request is not valid.", fields=errors)
        created = services.return_request(
            order=order,
            actor=request.user,
            lines=lines,
            reason=data["reason"],
            method=data["method"],
            customer_comment=data["customer_comment"],
            restock_location=data.get("restock_location"),
        )
        response = _detail(request, created.number)
        response.status_code = 201
        return response


class ReturnDetailApi(APIView):
    permission_classes = [IsAuthenticated, CanViewReturns]

    @extend_schema(tags=["returns"], summary="A return with its lines", responses={200: ReturnDetailSerializer})
    def get(self, request, number: str):
        return _detail(request, number)


def _action(service, input_serializer, summary: str, description: str = ""):
    class ReturnActionApi(WriteApi):
        @extend_schema(
            tags=["returns"],
            summary=summary,
            description=description,
            request=input_serializer,
            parameters=[IDEMPOTENCY_KEY_PARAMETER],
            responses={200: ReturnDetailSerializer, **_WRITE_ERRORS},
        )
        def post(self, request, number: str):
            pk = _request_id(request, number)
            data = validated_input(input_serializer, request.data)
            service(request=pk, actor=request.user, **data)
            return _detail(request, number)

    ReturnActionApi.__name__ = ReturnActionApi.__qualname__ = f"Return{service.__name__.split('_')[1].title()}Api"
    return ReturnActionApi


ReturnApproveApi = _action(
    services.return_approve, ReturnApproveInputSerializer, "Approve a return and issue its label"
)
ReturnReceiveApi = _action(
    services.return_receive, ReturnNoteInputSerializer, "Record the receipt of a returned parcel"
)
ReturnInspectApi = _action(
    services.return_inspect,
    ReturnInspectInputSerializer,
    "Inspect a received return",
    "Per return line, resellable + damaged + missing = the units returned. Only resellable units are "
    "restocked (to `location`, by default the return's), credited and refunded.",
)
ReturnCloseApi = _action(services.return_close, ReturnNoteInputSerializer, "Close an inspected return")
ReturnRefuseApi = _action(services.return_refuse, ReturnReasonInputSerializer, "Refuse a return")
ReturnCancelApi = _action(services.return_cancel, ReturnReasonInputSerializer, "Cancel a return")


class ReturnLabelApi(FileDownloadApi):
    permission_classes = [IsAuthenticated, CanViewReturns]

    @extend_schema(
        tags=["returns"],
        summary="The return label PDF",
        responses={(200, "application/pdf"): PDF_RESPONSE},
    )
    def get(self, request, number: str):
        found = ReturnRequest.objects.get(pk=_request_id(request, number))
        if not found.label:
            raise NotFoundError(f"Return {number} has no label.", code="label_not_found")
        return FileResponse(found.label.open("rb"), content_type="application/pdf", filename=f"{number}-label.pdf")
