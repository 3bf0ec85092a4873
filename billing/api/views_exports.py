"""The exports API: request a background export and follow it, download its file, or stream a small
export at once. Each view calls one service (billing.services.exports); errors go through the one
exception handler (oms.core.api)."""

from django.http import FileResponse, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.models import Export, ExportKind
from billing.services import exports as services
from oms.core.api import (
    IDEMPOTENCY_KEY_PARAMETER,
    ApiErrorSerializer,
    FileDownloadApi,
    PermissionRequired,
    StrictInputSerializer,
    WriteApi,
    api_errors,
    validated_input,
)
from oms.core.errors import ConflictError, NotFoundError, ValidationError
from orders.selectors import channel_scope, channels_visible

_ERRORS = api_errors(invalid=True, unauthenticated=True, forbidden="The user may not export invoices.")
_ONE_ERRORS = api_errors(
    unauthenticated=True,
    forbidden="The user may not export invoices.",
    not_found="No such export (`export_not_found`).",
)


class CanExport(PermissionRequired):
    perm = services.PERMISSION
    message = "You do not have permission to export invoices."


class ExportInputSerializer(StrictInputSerializer):
    kind = serializers.ChoiceField(choices=ExportKind.choices)
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    channel = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="A channel code; empty: all. An API client names one of its channels (required).",
    )


class ExportSerializer(serializers.ModelSerializer):
    # Null: an export of every channel.
    channel = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    requested_by = serializers.CharField(source="requested_by.get_username", read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = [
            "id",
            "kind",
            "period_start",
            "period_end",
            "channel",
            "status",
            "progress",
            "rows",
            "error",
            "requested_by",
            "requested_at",
            "finished_at",
            "download_url",
        ]

    def get_download_url(self, export) -> str | None:
        if export.status != services.ExportStatus.DONE or not export.file:
            return None
        return self.context["request"].build_absolute_uri(reverse("billing-export-file", args=[export.pk]))


def _channel(request, code: str | None):
    # An API client's export covers its own channels' documents only: it names one of them (a channel
    # it does not serve reads as unknown). "All channels" is for staff.
    if not code:
        if channel_scope(request.user) is not None:
            raise ValidationError(
                "The request is not valid.",
                code="invalid",
                fields={"channel": ["Required: an API client exports one of its channels."]},
            )
        return None
    channel = channels_visible(request.user).filter(code=code).first()
    if channel is None:
        raise ValidationError("The request is not valid.", code="invalid", fields={"channel": ["Unknown channel."]})
    return channel


def _exports(user):
    # Staff see every export; an API client those of its channels (never an all-channels one).
    scope = channel_scope(user)
    return Export.objects.all() if scope is None else Export.objects.filter(channel_id__in=sorted(scope))


def _export(request, export_id: int) -> Export:
    export = _exports(request.user).select_related("channel", "requested_by").filter(pk=export_id).first()
    if export is None:
        raise NotFoundError(f"Export {export_id} not found.", code="export_not_found")
    return export


class ExportCreateApi(WriteApi):
    permission_classes = [IsAuthenticated]  # the service checks billing.export_invoice

    @extend_schema(
        tags=["billing: exports"],
        summary="Request a background export",
        description=(
            "Invoices and credit notes (CSV or XLSX), the FEC journal or the reconciliation report over a "
            "period (both dates included) and optionally one channel. Answers 202: poll the export until "
            "`status` is `done`, then fetch `download_url`."
        ),
        request=ExportInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={202: OpenApiResponse(ExportSerializer, description="Queued."), **_ERRORS},
    )
    def post(self, request):
        data = validated_input(ExportInputSerializer, request.data)
        export = services.export_request(
            kind=data["kind"],
            period_start=data["period_start"],
            period_end=data["period_end"],
            channel=_channel(request, data.get("channel")),
            actor=request.user,
        )
        return Response(ExportSerializer(_export(request, export.pk), context={"request": request}).data, status=202)


class ExportDetailApi(APIView):
    permission_classes = [IsAuthenticated, CanExport]

    @extend_schema(
        tags=["billing: exports"],
        summary="An export's progress",
        responses={200: ExportSerializer, **_ONE_ERRORS},
    )
    def get(self, request, export_id: int):
        return Response(ExportSerializer(_export(request, export_id), context={"request": request}).data)


class ExportFileApi(FileDownloadApi):
    permission_classes = [IsAuthenticated, CanExport]

    @extend_schema(
        tags=["billing: exports"],
        summary="An export's file",
        description="409 `export_not_ready` until the export is done.",
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            **_ONE_ERRORS,
            409: OpenApiResponse(ApiErrorSerializer, description="Not done yet, or failed."),
        },
    )
    def get(self, request, export_id: int):
        export = _export(request, export_id)
        if export.status != services.ExportStatus.DONE or not export.file:
            raise ConflictError(
                f"Export {export.pk} is not ready ({export.status}).",
                code="export_not_ready",
                extra={"status": export.status, "progress": export.progress},
            )
        name = export.file.name.rsplit("/", 1)[-1]
        response = FileResponse(
            export.file.open("rb"),
            as_attachment=True,
            filename=name,
            content_type=services.CONTENT_TYPES.get(export.kind),
        )
        response["Cache-Control"] = "private, no-store"
        return response


_QUERY = [
    OpenApiParameter("kind", OpenApiTypes.STR, enum=ExportKind.values, required=True),
    OpenApiParameter("period_start", OpenApiTypes.DATE, required=True),
    OpenApiParameter("period_end", OpenApiTypes.DATE, required=True),
    OpenApiParameter("channel", OpenApiTypes.STR, required=False),
]


class ExportDownloadApi(FileDownloadApi):
    permission_classes = [IsAuthenticated]  # the service checks billing.export_invoice

    @extend_schema(
        tags=["billing: exports"],
        summary="Download a small export at once (streamed)",
        description=(
            "The file is streamed as it is written. 409 `export_too_large` above OMS_EXPORT_STREAM_ROWS "
            "documents: request a background export instead."
        ),
        parameters=_QUERY,
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, **_ERRORS, 409: ApiErrorSerializer},
    )
    def get(self, request):
        data = validated_input(ExportInputSerializer, request.query_params.dict())
        stream = services.export_stream(
            kind=data["kind"],
            period_start=data["period_start"],
            period_end=data["period_end"],
            channel=_channel(request, data.get("channel")),
            actor=request.user,
        )
        response = StreamingHttpResponse(stream.chunks, content_type=stream.content_type)
        response["Content-Disposition"] = f'attachment; filename="{stream.filename}"'
        response["Cache-Control"] = "private, no-store"
        return response
