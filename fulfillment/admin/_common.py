"""What every fulfillment screen shares: status tones and badges, admin URLs, the service runner that
turns a domain error into a message on the page, the big-list mixin and PDF responses."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.http import FileResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from django_fsm import ConcurrentTransition, TransitionNotAllowed

from fulfillment.carriers.choices import TrackingStatus
from fulfillment.choices import ShipmentStatus, ShortPickResolution, WaveRender
from fulfillment.models import Shipment
from oms.core.admin import (
    EstimatedCountPaginator,
    apply_service_error,
    badge,
    form_page,
)
from oms.core.errors import ApplicationError

S = ShipmentStatus

SHIPMENT_TONES = {
    S.PENDING: "muted",
    S.PICKING: "info",
    S.SHORT_PICKED: "alert",
    S.PACKED: "warn",
    S.SHIPPED: "teal",
    S.IN_TRANSIT: "teal",
    S.DELIVERED: "ok",
    S.LOST: "alert",
    S.DAMAGED: "alert",
    S.RETURNED_TO_SENDER: "purple",
    S.CANCELED: "void",
    S.READY_FOR_PICKUP: "warn",
    S.PICKED_UP: "ok",
    S.PICKUP_EXPIRED: "void",
}
RENDER_TONES = {
    WaveRender.IDLE: "muted",
    WaveRender.QUEUED: "info",
    WaveRender.RENDERING: "info",
    WaveRender.READY: "ok",
    WaveRender.FAILED: "alert",
}
TRACKING_TONES = {
    TrackingStatus.LABEL_CREATED: "muted",
    TrackingStatus.IN_TRANSIT: "teal",
    TrackingStatus.OUT_FOR_DELIVERY: "teal",
    TrackingStatus.DELIVERED: "ok",
    TrackingStatus.EXCEPTION: "warn",
    TrackingStatus.RETURNED_TO_SENDER: "purple",
    TrackingStatus.LOST: "alert",
    TrackingStatus.DAMAGED: "alert",
}
RESOLUTION_TONES = {
    ShortPickResolution.SUBSTITUTE: "info",
    ShortPickResolution.DELAY: "warn",
    ShortPickResolution.CANCEL_LINE: "void",
}
# Still in the building: a ship-by date in the past makes these late (Shipment.is_late).
LATE_STATUSES = (S.PENDING, S.PICKING, S.SHORT_PICKED, S.PACKED)
CANCELABLE_STATUSES = (S.PENDING, S.PICKING, S.SHORT_PICKED, S.PACKED)
RENDERING = (WaveRender.QUEUED, WaveRender.RENDERING)


def shipment_badge(shipment: Shipment):
    return badge(shipment.get_status_display(), SHIPMENT_TONES.get(shipment.status, "muted"))


def _url(name: str, *args, query: dict | None = None) -> str:
    url = reverse(f"admin:{name}", args=args)
    return f"{url}?{urlencode(query)}" if query else url


def _pk(object_id) -> int | None:
    try:
        return int(unquote(object_id))
    except (TypeError, ValueError):
        return None


def _late_q() -> Q:
    return Q(status__in=LATE_STATUSES, ship_by__lt=timezone.now())


def _tracking_link(shipment):
    if not shipment.tracking_number:
        return ""
    if shipment.tracking_url:
        return format_html(
            '<a href="{}" target="_blank" rel="noopener noreferrer"><code>{}</code></a>',
            shipment.tracking_url,
            shipment.tracking_number,
        )
    return format_html("<code>{}</code>", shipment.tracking_number)


def _error_message(exc) -> str:
    return exc.message if isinstance(exc, ApplicationError) else str(exc)


SERVICE_ERRORS = (ApplicationError, TransitionNotAllowed, ConcurrentTransition, DjangoValidationError)


def _run_service(request, form, call):
    """Run `call()`; a domain error goes on the page and on the form, and None is returned."""
    try:
        return call()
    except ApplicationError as exc:
        apply_service_error(form, exc)
        messages.error(request, exc.message)
    except (TransitionNotAllowed, ConcurrentTransition) as exc:
        form.add_error(None, str(exc))
        messages.error(request, str(exc))
    except DjangoValidationError as exc:  # a model's full_clean() inside a service
        for message in exc.messages:
            form.add_error(None, message)
        messages.error(request, " ".join(exc.messages))
    return None


class BigListMixin:
    """Lists of tables that grow without bound: no exact count, no facet counts, newest first."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    list_title = None

    def changelist_view(self, request, extra_context=None):
        if self.list_title:
            extra_context = {"title": self.list_title, **(extra_context or {})}
        return super().changelist_view(request, extra_context)


def _form_page(request, model_admin, **kwargs):
    return form_page(request, model_admin, template="admin/fulfillment/form_page.html", **kwargs)


def _pdf_response(content, filename: str, *, attachment: bool = False):
    response = FileResponse(content, content_type="application/pdf", as_attachment=attachment, filename=filename)
    response["Cache-Control"] = "private, no-store"
    return response


def _text_field(*, required: bool, label, help_text="", rows: int = 3):
    return forms.CharField(
        label=label,
        required=required,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": rows, "cols": 60}),
        help_text=help_text,
    )
