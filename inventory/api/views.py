"""The inventory API: ATP, the stock feed that channels pull, and the documents a 3PL / WMS pushes.

One view per use case, each calling one service or selector. Views turn the codes of the request
(SKU, location, channel, supply reference) into rows, refusing unknown ones per field, and answer
with the outcome; the services decide everything else (permissions, stock never below what is
reserved, a receipt applied once) and their errors become responses in the one exception handler
(oms.core.api). Every POST honours an `Idempotency-Key` header (oms.core.idempotency); a receipt
is also applied once per (location, reference) without one, since 3PLs retry without keys.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory import selectors, services
from inventory.api.serializers import (
    AtpQuerySerializer,
    AtpSerializer,
    CycleCountApplyInputSerializer,
    CycleCountSerializer,
    CycleCountSubmitInputSerializer,
    StockAdjustInputSerializer,
    StockAdjustmentSerializer,
    StockFeedEntrySerializer,
    StockFeedQuerySerializer,
    StockReceiptInputSerializer,
    StockReceiptSerializer,
)
from inventory.atp import atp
from inventory.models import CycleCount, IncomingSupply, Location, Product
from oms.core.api import (
    IDEMPOTENCY_KEY_PARAMETER,
    ApiErrorSerializer,
    DottedFieldsWriteApi,
    IdCursorPagination,
    PermissionRequired,
    api_errors,
    invalid_field,
    validated_input,
)
from oms.core.errors import NotFoundError, ValidationError

# --- shared pieces -------------------------------------------------------------------------------

_READ_ERRORS = api_errors(
    invalid="Unknown channel or location, bad date or cursor.",
    unauthenticated=True,
    forbidden="The user may not view stock.",
)
_WRITE_ERRORS = api_errors(
    invalid=True,
    unauthenticated=True,
    forbidden=True,
    conflict="The stock's state does not allow this (`adjustment_below_reserved`, …), "
    "or a request with this Idempotency-Key is still running.",
    not_json=True,
    key_reused=True,
)


class CanViewStock(PermissionRequired):
    perm = "inventory.view_stockitem"
    message = "You do not have permission to view stock."


def _location(code: str, field: str = "location") -> Location:
    location = Location.objects.filter(code=code).first()
    if location is None:
        raise invalid_field(field, f"Unknown location {code}.")
    return location


def _channel(code: str):
    channel = selectors.channel_get(code=code)
    if channel is None:
        raise invalid_field("channel", f"Unknown or inactive channel {code}.")
    return channel


def _products(lines: list[dict]) -> dict[str, Product]:
    """The lines' products by SKU (one query); an unknown SKU is a field error of its line."""
    found = {p.sku: p for p in Product.objects.filter(sku__in={line["sku"] for line in lines})}
    errors = {
        f"lines.{index}.sku": [f"Unknown SKU {line['sku']}."]
        for index, line in enumerate(lines)
        if line["sku"] not in found
    }
    if errors:
        raise ValidationError("The request is not valid.", code="invalid", fields=errors)
    return found


def _supplies(lines: list[dict], products: dict[str, Product], location: Location) -> dict[int, IncomingSupply]:
    """The open incoming supply each line names, by line index (one query).

    A reference is a purchase order or a transfer: one supply row per product and date. A line
    fills the earliest open one of its product at the receiving location.
    """
    wanted = {line["supply"] for line in lines if line.get("supply")}
    if not wanted:
        return {}
    candidates = {}
    for supply in IncomingSupply.objects.filter(
        reference__in=wanted, location=location, status=IncomingSupply.Status.OPEN
    ).order_by("expected_at", "pk"):
        candidates.setdefault((supply.reference, supply.product_id), supply)
    found, errors = {}, {}
    for index, line in enumerate(lines):
        if not line.get("supply"):
            continue
        supply = candidates.get((line["supply"], products[line["sku"]].pk))
        if supply is None:
            errors[f"lines.{index}.supply"] = [
                f"No open incoming supply {line['supply']} of {line['sku']} at {location.code}."
            ]
        else:
            found[index] = supply
    if errors:
        raise ValidationError("The request is not valid.", code="invalid", fields=errors)
    return found


class StockFeedPagination(IdCursorPagination):
    # By product id, ascending: a strict keyset, so a walk never skips or repeats a product.
    ordering = "id"
    page_size = 100
    max_page_size = 500


# --- reads ---------------------------------------------------------------------------------------


class ProductAtpApi(APIView):
    permission_classes = [IsAuthenticated, CanViewStock]

    @extend_schema(
        tags=["inventory"],
        summary="Available to promise for one SKU",
        description=(
            "Per active location: on hand, reserved, safety stock, what the channel may take "
            "(its shares, ring fences and excluded locations applied) and, with a date, incoming "
            "supply due by then and not yet promised. `atp` is the sum of available and incoming."
        ),
        parameters=[AtpQuerySerializer],
        responses={
            200: AtpSerializer,
            **_READ_ERRORS,
            404: OpenApiResponse(ApiErrorSerializer, description="No such SKU (`product_not_found`)."),
        },
    )
    def get(self, request, sku: str):
        query = validated_input(AtpQuerySerializer, request.query_params)
        product = Product.objects.filter(sku=sku).first()
        if product is None:
            raise NotFoundError(f"Product {sku} not found.", code="product_not_found")
        channel = _channel(query["channel"]) if "channel" in query else None
        location = _location(query["location"]) if "location" in query else None
        result = atp(
            product_id=product.pk,
            channel_id=channel.pk if channel else None,
            location_id=location.pk if location else None,
            by_date=query.get("date"),
        )
        payload = {
            "sku": product.sku,
            "channel": channel.code if channel else None,
            "date": query.get("date"),
            "atp": result["atp"],
            "locations": [{"location": code, **figures} for code, figures in result["locations"].items()],
        }
        return Response(AtpSerializer(payload).data)


@extend_schema(
    tags=["inventory"],
    summary="Stock feed of a channel",
    description=(
        "What the channel may sell of each product, by product id, 100 per page (`page_size` up to "
        "500), cursor-paginated: follow `next`. Without `updated_since`: every active product "
        "(those outside their sell window with `sellable: false`). With it: the products whose "
        "figure may have changed since (stock movements, stock settings, product, sell window, "
        "channel rules, locations), switched-off products included with `sellable: false`. Stock "
        "at hand only: incoming supply is not counted (see the ATP endpoint)."
    ),
    parameters=[StockFeedQuerySerializer],
    responses={200: StockFeedEntrySerializer(many=True), **_READ_ERRORS},
)
class StockFeedApi(generics.ListAPIView):
    permission_classes = [IsAuthenticated, CanViewStock]
    serializer_class = StockFeedEntrySerializer
    pagination_class = StockFeedPagination
    filter_backends: list = []

    def list(self, request, *args, **kwargs):
        query = validated_input(StockFeedQuerySerializer, request.query_params)
        channel = _channel(query["channel"])
        products = selectors.stock_feed_products(channel_id=channel.pk, updated_since=query.get("updated_since"))
        page = self.paginate_queryset(products)
        feed = selectors.channel_stock_feed(channel_id=channel.pk, products=page)
        return self.get_paginated_response(StockFeedEntrySerializer(feed, many=True).data)


# --- writes from a 3PL / WMS ---------------------------------------------------------------------


class StockReceiveApi(DottedFieldsWriteApi):
    @extend_schema(
        tags=["inventory"],
        summary="Receive goods (a receipt or ASN)",
        description=(
            "Every line or none. A line naming incoming supply fills it (and turns the pre-orders "
            "promised against it into reservations). A receipt is applied once per location and "
            "`reference`: sending it again, with or without an Idempotency-Key, changes nothing "
            "and answers 200 with the first answer; sending that reference again with other lines "
            "is refused (409 `receipt_reference_reused`)."
        ),
        request=StockReceiptInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            201: OpenApiResponse(StockReceiptSerializer, description="Received."),
            200: OpenApiResponse(StockReceiptSerializer, description="Already received: nothing changed."),
            **_WRITE_ERRORS,
        },
    )
    def post(self, request):
        data = validated_input(StockReceiptInputSerializer, request.data)
        location = _location(data["location"])
        products = _products(data["lines"])
        supplies = _supplies(data["lines"], products, location)
        applied = services.stock_receipt_apply(
            location=location,
            reference=data["reference"],
            lines=[
                {"product": products[line["sku"]], "quantity": line["quantity"], "supply": supplies.get(index)}
                for index, line in enumerate(data["lines"])
            ],
            actor=request.user,
        )
        body = {
            "location": location.code,
            "reference": data["reference"],
            "lines": selectors.stock_receipt_lines(location_id=location.pk, reference=data["reference"]),
        }
        return Response(StockReceiptSerializer(body).data, status=201 if applied else 200)


class StockAdjustApi(DottedFieldsWriteApi):
    @extend_schema(
        tags=["inventory"],
        summary="Adjust stock on hand",
        description="Needs the stock adjustment permission and a reason; never below what is reserved (409).",
        request=StockAdjustInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: OpenApiResponse(StockAdjustmentSerializer, description="Adjusted."), **_WRITE_ERRORS},
    )
    def post(self, request):
        data = validated_input(StockAdjustInputSerializer, request.data)
        location = _location(data["location"])
        product = Product.objects.filter(sku=data["sku"]).first()
        if product is None:
            raise invalid_field("sku", f"Unknown SKU {data['sku']}.")
        item = services.stock_adjust(
            product=product,
            location=location,
            delta=data["delta"],
            note=data["note"],
            reference=data["reference"],
            actor=request.user,
        )
        body = {
            "location": location.code,
            "sku": product.sku,
            "delta": data["delta"],
            "reference": data["reference"],
            "note": data["note"],
            "on_hand": item.on_hand,
            "reserved": item.reserved,
            "safety_stock": item.safety_stock,
            "available": item.available,
        }
        return Response(StockAdjustmentSerializer(body).data, status=201)


def _count_response(count_id: int, *, status: int = 200) -> Response:
    return Response(CycleCountSerializer(selectors.cycle_count_get(count_id=count_id)).data, status=status)


class CycleCountSubmitApi(DottedFieldsWriteApi):
    @extend_schema(
        tags=["inventory"],
        summary="Submit a count done at a location",
        description=(
            "Opens a cycle count of the listed SKUs and records the counted units; it then waits "
            "for approval (`counts/{id}/apply/`) and changes no stock until applied. The variance "
            "shown is against on hand at submission; applying sets on hand to the counted figure."
        ),
        request=CycleCountSubmitInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: OpenApiResponse(CycleCountSerializer, description="Counted."), **_WRITE_ERRORS},
    )
    def post(self, request):
        data = validated_input(CycleCountSubmitInputSerializer, request.data)
        location = _location(data["location"])
        products = _products(data["lines"])
        count = services.count_submit(
            location=location,
            lines=[(products[line["sku"]], line["counted"]) for line in data["lines"]],
            reference=data["reference"],
            actor=request.user,
        )
        return _count_response(count.pk, status=201)


class CycleCountApplyApi(DottedFieldsWriteApi):
    @extend_schema(
        tags=["inventory"],
        summary="Approve and apply a counted cycle count",
        description=(
            "Needs the count approval permission. Each line's difference with on hand now becomes "
            "a `count` movement; 409 when the count is not waiting for approval or a line would "
            "fall below what is reserved."
        ),
        request=CycleCountApplyInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            200: OpenApiResponse(CycleCountSerializer, description="Applied."),
            **_WRITE_ERRORS,
            404: OpenApiResponse(ApiErrorSerializer, description="No such count (`count_not_found`)."),
        },
    )
    def post(self, request, count_id: int):
        count = CycleCount.objects.filter(pk=count_id).first()
        if count is None:
            raise NotFoundError(f"Count {count_id} not found.", code="count_not_found")
        data = validated_input(CycleCountApplyInputSerializer, request.data)
        services.count_apply(count=count, actor=request.user, note=data.get("note", ""))
        return _count_response(count.pk)
