"""The cockpit's exports: a form for a period (and a channel) and a kind; a small export downloads at
once (streamed), a large one runs in the background and its page shows a progress bar, then the
file. Nothing here writes a model: the form calls `billing.services.exports`, which checks the
permission (billing.export_invoice) and the input."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import AdminDateWidget
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from billing.models import Export, ExportKind
from billing.services import exports as services
from oms.core.admin import EstimatedCountPaginator, apply_service_error
from oms.core.errors import ApplicationError
from orders.models import Channel

S = services.ExportStatus
STATUS_TONES = {S.QUEUED: "info", S.RUNNING: "info", S.DONE: "ok", S.FAILED: "alert"}
STATUS_LABELS = {S.QUEUED: _("Queued"), S.RUNNING: _("Running"), S.DONE: _("Ready"), S.FAILED: _("Failed")}
IN_PROGRESS = (S.QUEUED, S.RUNNING)


def _url(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


def _badge(export: Export):
    return format_html(
        '<span class="oms-badge oms-badge--{}">{}</span>',
        STATUS_TONES.get(export.status, "muted"),
        STATUS_LABELS.get(export.status, export.status),
    )


def _state(export: Export) -> dict:
    ready = export.status == S.DONE and bool(export.file)
    return {
        "status": export.status,
        "label": str(STATUS_LABELS.get(export.status, export.status)),
        "progress": export.progress,
        "rows": export.rows,
        "error": export.error,
        "url": _url("billing_export_file", export.pk) if ready else None,
    }


class ExportForm(forms.Form):
    kind = forms.ChoiceField(label=_("Export"), choices=ExportKind.choices)
    period_start = forms.DateField(label=_("From"), widget=AdminDateWidget)
    period_end = forms.DateField(label=_("To"), widget=AdminDateWidget, help_text=_("Both days included."))
    channel = forms.ModelChoiceField(
        label=_("Channel"), queryset=Channel.objects.order_by("name"), required=False, empty_label=_("All channels")
    )
    background = forms.BooleanField(
        label=_("Prepare in the background"),
        required=False,
        help_text=_("Large exports always are: this page then shows the progress and the file when done."),
    )

    def field_for_error(self, key: str) -> str | None:
        return key if key in self.fields else None


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = ("kind_column", "period_column", "channel", "status_column", "rows", "requested_by", "requested")
    list_filter = ("kind", "status")
    list_select_related = ("channel", "requested_by")
    ordering = ("-pk",)
    sortable_by = ()
    actions = None
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    # Exporting is its own permission: whoever may export sees the exports.
    def has_module_permission(self, request):
        return request.user.has_perm(services.PERMISSION) or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(services.PERMISSION)

    def has_add_permission(self, request):
        return request.user.has_perm(services.PERMISSION)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("export"))
    def kind_column(self, export):
        return format_html('<a href="{}">{}</a>', _url("billing_export_change", export.pk), export.get_kind_display())

    @admin.display(description=_("period"))
    def period_column(self, export):
        return f"{export.period_start:%Y-%m-%d} – {export.period_end:%Y-%m-%d}"

    @admin.display(description=_("status"))
    def status_column(self, export):
        if export.status in IN_PROGRESS:
            return format_html(
                '{} <progress max="100" value="{}">{} %</progress>', _badge(export), export.progress, export.progress
            )
        if export.status == S.DONE and export.file:
            return format_html(
                '{} <a href="{}">{}</a>', _badge(export), _url("billing_export_file", export.pk), _("file")
            )
        return _badge(export)

    @admin.display(description=_("requested"))
    def requested(self, export):
        return timezone.localtime(export.requested_at).strftime("%Y-%m-%d %H:%M")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/status/", view(self.status_view), name="billing_export_status"),
            path("<path:object_id>/file/", view(self.file_view), name="billing_export_file"),
            *super().get_urls(),
        ]

    def _export(self, object_id) -> Export | None:
        try:
            pk = int(unquote(object_id))
        except (TypeError, ValueError):
            return None
        return Export.objects.select_related("channel", "requested_by").filter(pk=pk).first()

    def add_view(self, request, form_url="", extra_context=None):
        """New export: streamed at once when small, else in the background (`export_request`)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        form = ExportForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            args = {
                "kind": data["kind"],
                "period_start": data["period_start"],
                "period_end": data["period_end"],
                "channel": data["channel"],
            }
            try:
                small = services.export_size(**args) <= settings.OMS_EXPORT_STREAM_ROWS
                if small and not data["background"]:
                    stream = services.export_stream(**args, actor=request.user)
                    response = StreamingHttpResponse(stream.chunks, content_type=stream.content_type)
                    response["Content-Disposition"] = f'attachment; filename="{stream.filename}"'
                    response["Cache-Control"] = "private, no-store"
                    return response
                export = services.export_request(**args, actor=request.user)
            except ApplicationError as exc:
                apply_service_error(form, exc)
                messages.error(request, exc.message)
            else:
                messages.info(
                    request, _("The export is prepared in the background: this page shows its progress, then the file.")
                )
                return HttpResponseRedirect(_url("billing_export_change", export.pk))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": _("New export"),
            "subtitle": None,
            "form": form,
            "stream_limit": settings.OMS_EXPORT_STREAM_ROWS,
            "changelist_url": _url("billing_export_changelist"),
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/billing/exports/form.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        export = self._export(object_id)
        if export is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, export):
            raise PermissionDenied
        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": str(export),
            "subtitle": None,
            "export": export,
            "original": export,
            "state": _state(export),
            "badge": _badge(export),
            "in_progress": export.status in IN_PROGRESS,
            "status_url": _url("billing_export_status", export.pk),
            "changelist_url": _url("billing_export_changelist"),
            "new_url": _url("billing_export_add"),
        }
        return TemplateResponse(request, "admin/billing/exports/detail.html", context)

    def status_view(self, request, object_id):
        """Polled by the export page's progress bar: a few columns of one row."""
        export = self._export(object_id)
        if export is None:
            raise Http404("No export.")
        if not self.has_view_permission(request, export):
            raise PermissionDenied
        response = JsonResponse(_state(export))
        response["Cache-Control"] = "no-store"
        return response

    def file_view(self, request, object_id):
        export = self._export(object_id)
        if export is None or export.status != S.DONE or not export.file:
            raise Http404("No file.")
        if not self.has_view_permission(request, export):
            raise PermissionDenied
        response = FileResponse(
            export.file.open("rb"),
            as_attachment=True,
            filename=export.file.name.rsplit("/", 1)[-1],
            content_type=services.CONTENT_TYPES.get(export.kind),
        )
        response["Cache-Control"] = "private, no-store"
        return response
