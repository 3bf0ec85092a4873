"""The fulfillment API: shipments for a 3PL / WMS, short picks for support tools, waves, carrier tracking.

One view per use case, each calling one service or selector. Views turn the numbers and codes of
the request (shipment, wave, location, SKU) into rows, refusing unknown ones (404 in the path, 400
per field in the body), and answer with the shipment, short pick or wave as it is after the change;
the services decide everything else (permissions, states, what may be picked, consent) and their
errors become responses in the one exception handler (oms.core.api). Every POST honours an
`Idempotency-Key` header (oms.core.idempotency); carrier events are also stored once per carrier
event id without one, since carriers retry without keys.
"""

import re

from django.db.models import Count, Prefetch
from django.http import FileResponse, HttpResponse
from django.urls import reverse
from django.utils import translation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from fulfillment import services
from fulfillment.api.serializers import (
    OrderShipmentsSerializer,
    ShipmentCancelInputSerializer,
    ShipmentDetailSerializer,
    ShipmentDispatchInputSerializer,
    ShipmentListQuerySerializer,
    ShipmentListSerializer,
    ShipmentPackInputSerializer,
    ShipmentPicksInputSerializer,
    ShipmentReasonInputSerializer,
    ShortPickCancelLineInputSerializer,
    ShortPickDelayInputSerializer,
    ShortPickSerializer,
    ShortPickSubstituteInputSerializer,
    TrackingWebhookResultSerializer,
    WaveCreateInputSerializer,
    WaveDetailSerializer,
    WaveListQuerySerializer,
    WaveListSerializer,
)
from fulfillment.carriers.registry import CARRIERS
from fulfillment.choices import WaveRender
from fulfillment.models import Shipment, ShipmentLine, ShortPick, TrackingUpdate, Wave
from fulfillment.selectors import (
    order_parcels,
    shipment_list,
    shipments_visible,
    short_picks_visible,
    waves_visible,
)
from inventory.models import Location, Product
from oms.core.api import (
    IDEMPOTENCY_KEY_PARAMETER,
    PDF_RESPONSE,
    ApiErrorSerializer,
    CanViewOrders,
    DottedFieldsWriteApi,
    FileDownloadApi,
    IdCursorPagination,
    PermissionRequired,
    api_errors,
    invalid_field,
    validated_input,
)
from oms.core.errors import ConflictError, NotFoundError, ValidationError
from orders.selectors import channel_scope, order_find, orders_visible

# --- shared pieces -------------------------------------------------------------------------------

_READ_ERRORS = api_errors(
    invalid="Unknown location or order, bad filter or cursor.",
    unauthenticated=True,
    forbidden="The user may not view shipments or waves.",
)
_ONE_ERRORS = api_errors(
    unauthenticated=True,
    forbidden="The user may not view it.",
    not_found="No such shipment, wave or order (`…_not_found`).",
)
_WRITE_ERRORS = api_errors(
    invalid=True,
    unauthenticated=True,
    forbidden=True,
    not_found="No such shipment, short pick or wave (`…_not_found`).",
    conflict="The state does not allow this now (`transition_not_allowed`, `transition_condition_failed`, "
    "`already_resolved`, …), or a request with this Idempotency-Key is still running.",
    not_json=True,
    key_reused=True,
)


class CanViewShipments(PermissionRequired):
    perm = "fulfillment.view_shipment"
    message = "You do not have permission to view shipments."


class CanViewWaves(PermissionRequired):
    perm = "fulfillment.view_wave"
    message = "You do not have permission to view waves."


class CanTrackShipments(PermissionRequired):
    perm = "fulfillment.track_shipment"
    message = "You do not have permission to record tracking updates."


# Every lookup goes through the selectors of what the user may reach: another API client's parcel,
# short pick or wave is not found, exactly like one that does not exist.


def _shipment_id(request, number: str) -> int:
    shipment_id = shipments_visible(request.user).filter(number=number).values_list("pk", flat=True).first()
    if shipment_id is None:
        raise NotFoundError(f"Shipment {number} not found.", code="shipment_not_found")
    return shipment_id


def _wave(request, number: str) -> Wave:
    wave = waves_visible(request.user).filter(number=number).first()
    if wave is None:
        raise NotFoundError(f"Wave {number} not found.", code="wave_not_found")
    return wave


def _short_pick_id(request, short_pick_id: int) -> int:
    if not short_picks_visible(request.user).filter(pk=short_pick_id).exists():
        raise NotFoundError(f"Short pick {short_pick_id} not found.", code="short_pick_not_found")
    return short_pick_id


def _location(code: str) -> Location:
    location = Location.objects.filter(code=code).first()
    if location is None:
        raise invalid_field("location", f"Unknown location {code}.")
    return location


def _shipment_response(request, number: str, *, status: int = 200) -> Response:
    """The shipment as it is now: lines, tracking and the short picks still open."""
    short_picks = ShortPick.objects.filter(resolved_at__isnull=True).select_related(
        "order", "order_line", "reported_by", "resolved_by", "substitute_product"
    )
    shipment = (
        shipment_list(user=request.user)
        .filter(number=number)
        .prefetch_related(
            Prefetch("lines", queryset=ShipmentLine.objects.select_related("order_line__order")),
            Prefetch("tracking_updates", queryset=TrackingUpdate.objects.order_by("occurred_at", "pk")),
            Prefetch("short_picks", queryset=short_picks.order_by("reported_at", "pk"), to_attr="open_short_picks"),
        )
        .get()
    )
    urls = {
        "label": request.build_absolute_uri(reverse("fulfillment-shipment-label", kwargs={"number": number})),
        "packing_slip": request.build_absolute_uri(
            reverse("fulfillment-shipment-packing-slip", kwargs={"number": number})
        ),
    }
    return Response(ShipmentDetailSerializer(shipment, context={"urls": urls}).data, status=status)


def _short_pick_response(short_pick_id: int) -> Response:
    short = ShortPick.objects.select_related(
        "shipment", "order", "order_line", "reported_by", "resolved_by", "substitute_product"
    ).get(pk=short_pick_id)
    return Response(ShortPickSerializer(short).data)


def _waves(user):
    return waves_visible(user).select_related("location", "created_by").annotate(shipment_count=Count("shipments"))


def _wave_response(request, number: str, *, status: int = 200) -> Response:
    wave = (
        _waves(request.user)
        .prefetch_related(
            Prefetch(
                "shipments",
                queryset=Shipment.objects.select_related("order").order_by("priority", "ship_by", "pk"),
            )
        )
        .get(number=number)
    )
    pick_list_url = request.build_absolute_uri(reverse("fulfillment-wave-pick-list", kwargs={"number": number}))
    return Response(WaveDetailSerializer(wave, context={"pick_list_url": pick_list_url}).data, status=status)


def _pdf_file_response(file, filename: str) -> FileResponse:
    return FileResponse(file.open("rb"), content_type="application/pdf", filename=filename)


class FulfillmentWriteApi(DottedFieldsWriteApi):
    def dotted_fields(self, fields: dict) -> dict:
        # Carrier adapters name payload fields `events[0].id`; the API says `events.0.id` everywhere.
        return {re.sub(r"\[(\d+)\]", r".\1", key): value for key, value in super().dotted_fields(fields).items()}


def _shipment_action_schema(*, summary: str, request, description: str = ""):
    return extend_schema(
        tags=["fulfillment: shipment actions"],
        summary=summary,
        description=description,
        request=request,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={200: ShipmentDetailSerializer, **_WRITE_ERRORS},
    )


def _short_pick_schema(*, summary: str, request, description: str = ""):
    return extend_schema(
        tags=["fulfillment: short picks"],
        summary=summary,
        description=description,
        request=request,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={200: ShortPickSerializer, **_WRITE_ERRORS},
    )


# --- shipments: reads ----------------------------------------------------------------------------


@extend_schema(
    tags=["fulfillment: shipments"],
    summary="List shipments",
    description="Newest first, 50 per page (`page_size` up to 200), cursor-paginated: follow `next`.",
    parameters=[ShipmentListQuerySerializer],
    responses={200: ShipmentListSerializer(many=True), **_READ_ERRORS},
)
class ShipmentListApi(generics.ListAPIView):
    permission_classes = [IsAuthenticated, CanViewShipments]
    serializer_class = ShipmentListSerializer
    pagination_class = IdCursorPagination
    filter_backends: list = []

    def list(self, request, *args, **kwargs):
        query = validated_input(ShipmentListQuerySerializer, request.query_params)
        order = None
        if query.get("order"):
            order = orders_visible(request.user).filter(number=query["order"]).first()
            if order is None:
                raise invalid_field("order", f"Unknown order {query['order']}.")
        shipments = shipment_list(
            user=request.user,
            location=_location(query["location"]) if "location" in query else None,
            status=query.get("status"),
            carrier=query.get("carrier"),
            late=query.get("late"),
            order=order,
        )
        page = self.paginate_queryset(shipments)
        return self.get_paginated_response(ShipmentListSerializer(page, many=True).data)


class ShipmentDetailApi(APIView):
    permission_classes = [IsAuthenticated, CanViewShipments]

    @extend_schema(
        tags=["fulfillment: shipments"],
        summary="One shipment with its lines, customs data, tracking and open short picks",
        responses={200: ShipmentDetailSerializer, **_ONE_ERRORS},
    )
    def get(self, request, number: str):
        _shipment_id(request, number)
        return _shipment_response(request, number)


class ShipmentLabelApi(FileDownloadApi):
    permission_classes = [IsAuthenticated, CanViewShipments]

    @extend_schema(
        tags=["fulfillment: shipments"],
        summary="The carrier label PDF",
        operation_id="v1_fulfillment_shipments_label_retrieve",
        description="404 `label_not_found` while not labelled, or when the 3PL labelled the parcel itself.",
        responses={(200, "application/pdf"): PDF_RESPONSE, **_ONE_ERRORS},
    )
    def get(self, request, number: str):
        shipment = Shipment.objects.get(pk=_shipment_id(request, number))
        if not shipment.label:
            raise NotFoundError(f"Shipment {number} has no label.", code="label_not_found")
        return _pdf_file_response(shipment.label, f"{shipment.number}-label.pdf")


class ShipmentPackingSlipApi(FileDownloadApi):
    permission_classes = [IsAuthenticated, CanViewShipments]

    @extend_schema(
        tags=["fulfillment: shipments"],
        summary="The packing slip PDF",
        operation_id="v1_fulfillment_shipments_packing_slip_retrieve",
        description="Rendered on request; a gift's slip shows no prices.",
        responses={(200, "application/pdf"): PDF_RESPONSE, **_ONE_ERRORS},
    )
    def get(self, request, number: str):
        shipment = Shipment.objects.select_related("order").get(pk=_shipment_id(request, number))
        response = HttpResponse(services.shipment_packing_slip_pdf(shipment), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{shipment.number}-packing-slip.pdf"'
        return response


# --- shipments: a 3PL / WMS reports its work -----------------------------------------------------


class ShipmentConfirmPicksApi(FulfillmentWriteApi):
    @_shipment_action_schema(
        summary="Confirm units picked",
        description=(
            "Units picked per line, as totals. A pending shipment starts picking. With `final` (the "
            "default) a line left short opens a short pick: the missing units leave the parcel and "
            "the shipment waits (`short_picked`) until support substitutes, delays or cancels them."
        ),
        request=ShipmentPicksInputSerializer,
    )
    def post(self, request, number: str):
        shipment_id = _shipment_id(request, number)
        data = validated_input(ShipmentPicksInputSerializer, request.data)
        services.shipment_confirm_picks(shipment=shipment_id, actor=request.user, **data)
        return _shipment_response(request, number)


class ShipmentPackApi(FulfillmentWriteApi):
    @_shipment_action_schema(
        summary="Pack a shipment",
        description="Everything picked and no short pick open, or 409: nothing ships that was not picked.",
        request=ShipmentPackInputSerializer,
    )
    def post(self, request, number: str):
        shipment_id = _shipment_id(request, number)
        data = validated_input(ShipmentPackInputSerializer, request.data)
        services.shipment_pack(shipment=shipment_id, actor=request.user, **data)
        return _shipment_response(request, number)


class ShipmentDispatchApi(FulfillmentWriteApi):
    @_shipment_action_schema(
        summary="Hand a packed parcel to its carrier",
        description=(
            "With a `tracking_number` (and a carrier) the 3PL's own label is recorded; without it a "
            "label is made here by the carrier (the default one when none is named). Stock leaves, "
            "the order counts the units shipped and the customer is told."
        ),
        request=ShipmentDispatchInputSerializer,
    )
    def post(self, request, number: str):
        shipment_id = _shipment_id(request, number)
        data = validated_input(ShipmentDispatchInputSerializer, request.data)
        services.shipment_dispatch(shipment=shipment_id, actor=request.user, **data)
        return _shipment_response(request, number)


class ShipmentReadyForPickupApi(FulfillmentWriteApi):
    @_shipment_action_schema(
        summary="Put a store pickup on the pickup shelf",
        description="Packs it when still picking; the customer is told and the holding period starts.",
        request=ShipmentReasonInputSerializer,
    )
    def post(self, request, number: str):
        shipment_id = _shipment_id(request, number)
        data = validated_input(ShipmentReasonInputSerializer, request.data)
        services.shipment_ready_for_pickup(shipment=shipment_id, actor=request.user, **data)
        return _shipment_response(request, number)


class ShipmentHandOverApi(FulfillmentWriteApi):
    @_shipment_action_schema(
        summary="Hand a store pickup to the customer",
        description="Shipped and delivered at once.",
        request=ShipmentReasonInputSerializer,
    )
    def post(self, request, number: str):
        shipment_id = _shipment_id(request, number)
        data = validated_input(ShipmentReasonInputSerializer, request.data)
        services.shipment_hand_over(shipment=shipment_id, actor=request.user, **data)
        return _shipment_response(request, number)


class ShipmentCancelApi(FulfillmentWriteApi):
    @_shipment_action_schema(
        summary="Cancel a shipment not yet handed over",
        description="Its units stay reserved for the order, which plans them again.",
        request=ShipmentCancelInputSerializer,
    )
    def post(self, request, number: str):
        shipment_id = _shipment_id(request, number)
        data = validated_input(ShipmentCancelInputSerializer, request.data)
        services.shipment_cancel(shipment=shipment_id, actor=request.user, reason=data.get("reason", ""))
        return _shipment_response(request, number)


# --- short picks: support resolves them ----------------------------------------------------------


class ShortPickSubstituteApi(FulfillmentWriteApi):
    @_short_pick_schema(
        summary="Ship another SKU instead, with the customer's consent",
        description="From the parcel's location's free stock (409 `substitute_not_in_stock` otherwise).",
        request=ShortPickSubstituteInputSerializer,
    )
    def post(self, request, short_pick_id: int):
        _short_pick_id(request, short_pick_id)
        data = validated_input(ShortPickSubstituteInputSerializer, request.data)
        product = Product.objects.filter(sku=data["sku"]).first()
        if product is None:
            raise invalid_field("sku", f"Unknown SKU {data['sku']}.")
        services.short_pick_substitute(
            short_pick=short_pick_id,
            actor=request.user,
            product=product,
            consent_channel=data["consent_channel"],
            consent_note=data["consent_note"],
        )
        return _short_pick_response(short_pick_id)


class ShortPickDelayApi(FulfillmentWriteApi):
    @_short_pick_schema(
        summary="Keep the missing units with a new promise date",
        description="The customer is told; the units are sourced again at once or wait for stock.",
        request=ShortPickDelayInputSerializer,
    )
    def post(self, request, short_pick_id: int):
        _short_pick_id(request, short_pick_id)
        data = validated_input(ShortPickDelayInputSerializer, request.data)
        services.short_pick_delay(short_pick=short_pick_id, actor=request.user, **data)
        return _short_pick_response(short_pick_id)


class ShortPickCancelLineApi(FulfillmentWriteApi):
    @_short_pick_schema(
        summary="Cancel the missing units, with the customer's consent",
        description="Their stock is released; billing refunds them.",
        request=ShortPickCancelLineInputSerializer,
    )
    def post(self, request, short_pick_id: int):
        _short_pick_id(request, short_pick_id)
        data = validated_input(ShortPickCancelLineInputSerializer, request.data)
        services.short_pick_cancel_line(short_pick=short_pick_id, actor=request.user, **data)
        return _short_pick_response(short_pick_id)


# --- waves ---------------------------------------------------------------------------------------


@extend_schema(
    tags=["fulfillment: waves"],
    summary="List waves",
    description="Newest first, 50 per page (`page_size` up to 200), cursor-paginated: follow `next`.",
    parameters=[WaveListQuerySerializer],
    responses={200: WaveListSerializer(many=True), **_READ_ERRORS},
)
class WaveListApi(generics.ListAPIView):
    permission_classes = [IsAuthenticated, CanViewWaves]
    serializer_class = WaveListSerializer
    pagination_class = IdCursorPagination
    filter_backends: list = []

    def list(self, request, *args, **kwargs):
        query = validated_input(WaveListQuerySerializer, request.query_params)
        waves = _waves(request.user)
        if "location" in query:
            waves = waves.filter(location=_location(query["location"]))
        page = self.paginate_queryset(waves)
        return self.get_paginated_response(WaveListSerializer(page, many=True).data)


class WaveCreateApi(FulfillmentWriteApi):
    @extend_schema(
        tags=["fulfillment: waves"],
        summary="Start a wave",
        description=(
            "Pending shipments of one location, by cut-off, priority and carrier or the ones named, "
            "start picking together (orders on hold are left out). 400 `empty_wave` when none matches."
        ),
        request=WaveCreateInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: OpenApiResponse(WaveDetailSerializer, description="Created."), **_WRITE_ERRORS},
    )
    def post(self, request):
        data = validated_input(WaveCreateInputSerializer, request.data)
        location = _location(data["location"])
        shipment_ids = None
        if "shipments" in data:
            found = dict(
                shipments_visible(request.user).filter(number__in=data["shipments"]).values_list("number", "pk")
            )
            errors = {
                f"shipments.{index}": [f"Unknown shipment {number}."]
                for index, number in enumerate(data["shipments"])
                if number not in found
            }
            if errors:
                raise ValidationError("The request is not valid.", code="invalid", fields=errors)
            shipment_ids = list(found.values())
        elif channel_scope(request.user) is not None:
            # Chosen by criteria, a wave would take other channels' parcels: an API client names its own.
            shipment_ids = list(shipments_visible(request.user).filter(location=location).values_list("pk", flat=True))
        wave = services.wave_create(
            location=location,
            actor=request.user,
            ship_by_before=data.get("ship_by_before"),
            carrier=data.get("carrier") or "",
            max_priority=data.get("max_priority"),
            shipment_ids=shipment_ids,
            limit=data.get("limit", 200),
        )
        return _wave_response(request, wave.number, status=201)


class WaveDetailApi(APIView):
    permission_classes = [IsAuthenticated, CanViewWaves]

    @extend_schema(
        tags=["fulfillment: waves"],
        summary="One wave: its shipments and its pick list's rendering",
        description="Poll it while `render_status` is queued or rendering; `pick_list_url` once ready.",
        responses={200: WaveDetailSerializer, **_ONE_ERRORS},
    )
    def get(self, request, number: str):
        _wave(request, number)
        return _wave_response(request, number)


class WavePrintApi(FulfillmentWriteApi):
    @extend_schema(
        tags=["fulfillment: waves"],
        summary="Print the wave's pick list",
        description=(
            "A small wave renders now (200, ready); a large one in the background (202: poll the "
            "wave). Printing again renders the list again."
        ),
        request=None,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            200: OpenApiResponse(WaveDetailSerializer, description="Rendered."),
            202: OpenApiResponse(WaveDetailSerializer, description="Rendering in the background."),
            **_WRITE_ERRORS,
        },
    )
    def post(self, request, number: str):
        wave = services.wave_print(wave=_wave(request, number), actor=request.user)
        return _wave_response(request, number, status=200 if wave.render_status == WaveRender.READY else 202)


class WavePickListApi(FileDownloadApi):
    permission_classes = [IsAuthenticated, CanViewWaves]

    @extend_schema(
        tags=["fulfillment: waves"],
        summary="The wave's pick list PDF",
        operation_id="v1_fulfillment_waves_pick_list_retrieve",
        description="Sorted by bin. 409 `pick_list_not_ready` until printed and rendered.",
        responses={
            (200, "application/pdf"): PDF_RESPONSE,
            **_ONE_ERRORS,
            409: OpenApiResponse(ApiErrorSerializer, description="Not printed yet, or still rendering."),
        },
    )
    def get(self, request, number: str):
        wave = _wave(request, number)
        if wave.render_status != WaveRender.READY or not wave.pick_list:
            raise ConflictError(
                f"The pick list of wave {number} is not ready ({wave.get_render_status_display().lower()}).",
                code="pick_list_not_ready",
                extra={"render_status": wave.render_status, "render_progress": wave.render_progress},
            )
        return _pdf_file_response(wave.pick_list, f"{wave.number}-pick-list.pdf")


# --- carriers ------------------------------------------------------------------------------------


class CarrierTrackingWebhookApi(FulfillmentWriteApi):
    permission_classes = [IsAuthenticated, CanTrackShipments]

    @extend_schema(
        tags=["fulfillment: carriers"],
        summary="Receive a carrier's tracking events",
        description=(
            'The carrier\'s own payload (sandbox: `{"events": [{"id", "tracking_number", "status", '
            '"occurred_at", "description"?, "location"?}]}`). Each event is stored once per carrier '
            "event id, mapped to our statuses and applied in time order; a replay stores nothing and "
            "answers 200 with `stored: 0`."
        ),
        request=OpenApiTypes.OBJECT,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            200: TrackingWebhookResultSerializer,
            **_WRITE_ERRORS,
            404: OpenApiResponse(ApiErrorSerializer, description="No such carrier (`carrier_not_found`)."),
        },
    )
    def post(self, request, code: str):
        if code not in CARRIERS:
            raise NotFoundError(f"Carrier {code} not found.", code="carrier_not_found")
        stored = services.carrier_webhook_receive(carrier=code, payload=request.data, actor=request.user)
        return Response(TrackingWebhookResultSerializer({"stored": len(stored)}).data)


# --- an order's parcels (under /api/v1/orders/) -------------------------------------------------


class OrderShipmentsApi(APIView):
    permission_classes = [IsAuthenticated, CanViewOrders, CanViewShipments]

    @extend_schema(
        tags=["orders"],
        summary="An order's parcels and what is still to come",
        description=(
            "What the customer sees (each parcel with its label in the order's language, tracking "
            "and contents; the units in no parcel yet with their promise date), plus each parcel's "
            "internal status."
        ),
        responses={
            200: OrderShipmentsSerializer,
            **_ONE_ERRORS,
        },
    )
    def get(self, request, number: str):
        order = order_find(user=request.user, number=number)
        with translation.override(order.locale):
            parcels = order_parcels(order)
        return Response(OrderShipmentsSerializer(parcels).data)
