"""The cockpit's invoices, credit notes and payments: read-only lists and pages.

Invoices and credit notes are immutable: nothing here adds, edits or deletes them. The invoice page
offers its PDF and an "Issue credit note" form whose POST calls
`billing.services.invoices.credit_note_issue` with `actor=request.user` (the service checks the
permission and what is left of the invoice). Lists never run an unfiltered COUNT(*).
"""

import datetime
import threading
from decimal import Decimal
from io import BytesIO

from babel.numbers import format_currency
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import get_language, to_locale
from django.utils.translation import gettext_lazy as _

from billing import documents
from billing.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine, InvoiceTax, Payment, PaymentEvent
from billing.services import invoices as services
from oms.core.admin import EstimatedCountPaginator, apply_service_error, form_page
from oms.core.errors import ApplicationError
from orders.models import Channel


def _money(amount, currency: str) -> str:
    if amount is None:
        return ""
    return format_currency(amount, currency, locale=to_locale(get_language() or "en"))


def _pdf_response(content: bytes, filename: str) -> FileResponse:
    response = FileResponse(BytesIO(content), content_type="application/pdf", filename=filename)
    response["Cache-Control"] = "private, no-store"
    return response


def _pk(object_id) -> int | None:
    try:
        return int(unquote(object_id))
    except (TypeError, ValueError):
        return None


class ReadOnlyMixin:
    """Rows written only by services: shown, never added, edited or deleted here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class BigList(ReadOnlyMixin, admin.ModelAdmin):
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50


# --- filters -----------------------------------------------------------------------------------------


class SeriesFilter(admin.SimpleListFilter):
    title = _("series")
    parameter_name = "series"

    def lookups(self, request, model_admin):
        return [("INV", _("Invoices (INV)"))]

    def queryset(self, request, queryset):
        return queryset.filter(series=self.value()) if self.value() else queryset


class PeriodFilter(admin.SimpleListFilter):
    """Issued this or last month, this or last year (a date range filter on an indexed column)."""

    title = _("period")
    parameter_name = "period"

    def lookups(self, request, model_admin):
        return [
            ("this_month", _("This month")),
            ("last_month", _("Last month")),
            ("this_year", _("This year")),
            ("last_year", _("Last year")),
        ]

    @staticmethod
    def bounds(value: str, today: datetime.date) -> tuple[datetime.date, datetime.date] | None:
        first = today.replace(day=1)
        if value == "this_month":
            return first, today
        if value == "last_month":
            end = first - datetime.timedelta(days=1)
            return end.replace(day=1), end
        if value == "this_year":
            return today.replace(month=1, day=1), today
        if value == "last_year":
            return datetime.date(today.year - 1, 1, 1), datetime.date(today.year - 1, 12, 31)
        return None

    def queryset(self, request, queryset):
        bounds = self.bounds(self.value() or "", timezone.localdate())
        if bounds is None:
            return queryset
        return queryset.filter(issued_at__date__gte=bounds[0], issued_at__date__lte=bounds[1])


class ChannelFilter(admin.SimpleListFilter):
    title = _("channel")
    parameter_name = "channel"

    def lookups(self, request, model_admin):
        return list(Channel.objects.order_by("name").values_list("code", "name"))

    def queryset(self, request, queryset):
        return queryset.filter(order__channel__code=self.value()) if self.value() else queryset


class OverdueFilter(admin.SimpleListFilter):
    title = _("overdue")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", _("Overdue: due date passed, not paid")), ("no", _("Not overdue"))]

    def queryset(self, request, queryset):
        if self.value() not in {"yes", "no"}:
            return queryset
        ids = services.invoice_list(overdue=True).values("pk")
        return queryset.filter(pk__in=ids) if self.value() == "yes" else queryset.exclude(pk__in=ids)


# --- invoices ------------------------------------------------------------------------------------------


class InvoiceLineInline(ReadOnlyMixin, admin.TabularInline):
    model = InvoiceLine
    fields = ("position", "sku", "description", "quantity", "unit_price", "discount", "tax_rate", "net", "tax", "gross")
    readonly_fields = fields
    extra = 0
    can_delete = False


class InvoiceTaxInline(ReadOnlyMixin, admin.TabularInline):
    model = InvoiceTax
    fields = ("rate", "base", "tax")
    readonly_fields = fields
    extra = 0
    can_delete = False


class CreditNoteInline(ReadOnlyMixin, admin.TabularInline):
    model = CreditNote
    fields = ("number", "issued_at", "reason", "total_gross", "issued_by")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Invoice)
class InvoiceAdmin(BigList):
    list_display = ("number", "order_link", "channel", "shipment", "issued_at", "due_at", "gross", "overdue_badge")
    list_filter = (SeriesFilter, PeriodFilter, ChannelFilter, OverdueFilter)
    list_select_related = ("order", "order__channel", "shipment")
    search_fields = ("=number", "=order__number")
    ordering = ("-issued_at", "-id")
    fields = (
        "number",
        "order",
        "shipment",
        "issued_at",
        "issued_by",
        "due_at",
        "payment_terms",
        "currency",
        "total_net",
        "total_tax",
        "total_gross",
        "remaining",
        "seller",
        "buyer",
        "locale",
    )
    readonly_fields = (*fields,)
    inlines = [InvoiceLineInline, InvoiceTaxInline, CreditNoteInline]
    change_form_template = "billing/invoices/admin/invoice_change_form.html"
    _page_state = threading.local()

    @admin.display(description=_("order"), ordering="order__number")
    def order_link(self, invoice):
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:orders_order_change", args=[invoice.order_id]), invoice.order.number
        )

    @admin.display(description=_("channel"))
    def channel(self, invoice):
        return invoice.order.channel.code

    @admin.display(description=_("total"), ordering="total_gross")
    def gross(self, invoice):
        return _money(invoice.total_gross, invoice.currency)

    @admin.display(description=_("left to credit"))
    def remaining(self, invoice):
        return _money(services.invoice_remaining(invoice), invoice.currency)

    @admin.display(description=_("overdue"))
    def overdue_badge(self, invoice):
        if invoice.due_at >= timezone.localdate() or invoice.pk not in self._overdue_ids():
            return ""
        return format_html('<span class="oms-badge oms-badge--alert">{}</span>', _("Overdue"))

    def _overdue_ids(self) -> set[int]:
        # One query per list page (set in changelist_view), not one per row.
        ids = getattr(self._page_state, "overdue", None)
        if ids is None:
            ids = self._page_state.overdue = set(services.invoice_list(overdue=True).values_list("pk", flat=True))
        return ids

    def changelist_view(self, request, extra_context=None):
        self._page_state.overdue = None
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/invoice.pdf", view(self.pdf_view), name="billing_invoice_pdf"),
            path("<path:object_id>/credit-note/", view(self.credit_note_view), name="billing_invoice_credit_note"),
            *super().get_urls(),
        ]

    def _invoice(self, request, object_id) -> Invoice:
        pk = _pk(object_id)
        invoice = Invoice.objects.select_related("order").filter(pk=pk).first() if pk else None
        if invoice is None:
            raise Http404("No invoice.")
        if not self.has_view_permission(request, invoice):
            raise PermissionDenied
        return invoice

    def pdf_view(self, request, object_id):
        invoice = self._invoice(request, object_id)
        return _pdf_response(documents.invoice_pdf(invoice), f"{invoice.number}.pdf")

    def credit_note_view(self, request, object_id):
        invoice = self._invoice(request, object_id)
        request.current_app = self.admin_site.name
        lines = list(invoice.lines.all())
        change_url = reverse("admin:billing_invoice_change", args=[invoice.pk])
        form = CreditNoteForm(request.POST or None, lines=lines)
        if request.method == "POST" and form.is_valid():
            try:
                note = services.credit_note_issue(invoice=invoice, actor=request.user, **form.service_kwargs())
            except ApplicationError as exc:
                apply_service_error(form, exc)
                messages.error(request, exc.message)
            else:
                messages.success(request, _("Credit note %(number)s issued.") % {"number": note.number})
                return HttpResponseRedirect(reverse("admin:billing_creditnote_change", args=[note.pk]))
        return form_page(
            request,
            self,
            template="admin/fulfillment/form_page.html",
            form=form,
            title=_("Issue a credit note against %(number)s") % {"number": invoice.number},
            submit=_("Issue credit note"),
            intro=_(
                "Left to credit: %(left)s. Enter quantities to credit lines, or an amount (spread over the "
                "invoice's VAT rates), or tick “All that is left”. A credit note cannot be changed once issued."
            )
            % {"left": _money(services.invoice_remaining(invoice), invoice.currency)},
            back_url=change_url,
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        pk = _pk(object_id)
        extra = dict(extra_context or {})
        if pk:
            extra["pdf_url"] = reverse("admin:billing_invoice_pdf", args=[pk])
            if request.user.has_perm("billing.issue_creditnote"):
                extra["credit_note_url"] = reverse("admin:billing_invoice_credit_note", args=[pk])
        return super().change_view(request, object_id, form_url, extra)


class CreditNoteForm(forms.Form):
    reason = forms.ChoiceField(
        label=_("Reason"), choices=[(r, r.replace("_", " ")) for r in services.CREDIT_NOTE_REASONS]
    )
    amount = forms.DecimalField(
        label=_("Amount"), required=False, min_value=Decimal("0.01"), decimal_places=2, help_text=_("Gross amount.")
    )
    everything = forms.BooleanField(label=_("All that is left"), required=False)
    note = forms.CharField(label=_("Note"), required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, lines: list[InvoiceLine], **kwargs):
        super().__init__(*args, **kwargs)
        self.lines = lines
        for line in lines:
            self.fields[f"line_{line.pk}"] = forms.DecimalField(
                label=f"{line.position}. {line.description}"[:80],
                required=False,
                min_value=Decimal("0.001"),
                max_value=line.quantity,
                decimal_places=3,
                help_text=_("Invoiced: %(quantity)s") % {"quantity": line.quantity.normalize()},
            )
        self.order_fields(["reason", *[f"line_{line.pk}" for line in lines], "amount", "everything", "note"])

    def clean(self):
        data = super().clean()
        chosen = sum([bool(self.quantities()), data.get("amount") is not None, bool(data.get("everything"))])
        if chosen != 1:
            raise forms.ValidationError(_("Give quantities, or an amount, or tick “All that is left” (one of them)."))
        return data

    def quantities(self) -> dict[int, Decimal]:
        data = getattr(self, "cleaned_data", {})
        return {line.pk: data[f"line_{line.pk}"] for line in self.lines if data.get(f"line_{line.pk}")}

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        kwargs = {"reason": data["reason"], "note": data.get("note") or ""}
        if self.quantities():
            kwargs["lines"] = self.quantities()
        elif data.get("amount") is not None:
            kwargs["amount"] = data["amount"]
        return kwargs

    def field_for_error(self, key: str) -> str | None:
        if key.startswith("lines."):
            name = f"line_{key.removeprefix('lines.')}"
            return name if name in self.fields else None
        return key if key in self.fields else None


# --- credit notes -----------------------------------------------------------------------------------------


class CreditNoteLineInline(ReadOnlyMixin, admin.TabularInline):
    model = CreditNoteLine
    fields = ("position", "sku", "description", "quantity", "unit_price", "tax_rate", "net", "tax", "gross")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(CreditNote)
class CreditNoteAdmin(BigList):
    list_display = ("number", "invoice", "order", "issued_at", "reason", "gross", "issued_by")
    list_filter = (PeriodFilter, ChannelFilter, "reason")
    list_select_related = ("invoice", "order", "issued_by")
    search_fields = ("=number", "=invoice__number", "=order__number")
    ordering = ("-issued_at", "-id")
    fields = (
        "number",
        "invoice",
        "order",
        "issued_at",
        "issued_by",
        "reason",
        "note",
        "currency",
        "total_net",
        "total_tax",
        "total_gross",
        "seller",
        "buyer",
        "locale",
    )
    readonly_fields = fields
    inlines = [CreditNoteLineInline]
    change_form_template = "billing/invoices/admin/invoice_change_form.html"

    @admin.display(description=_("total"), ordering="total_gross")
    def gross(self, note):
        return _money(note.total_gross, note.currency)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/credit-note.pdf",
                self.admin_site.admin_view(self.pdf_view),
                name="billing_creditnote_pdf",
            ),
            *super().get_urls(),
        ]

    def pdf_view(self, request, object_id):
        pk = _pk(object_id)
        note = CreditNote.objects.select_related("invoice", "order").filter(pk=pk).first() if pk else None
        if note is None:
            raise Http404("No credit note.")
        if not self.has_view_permission(request, note):
            raise PermissionDenied
        return _pdf_response(documents.credit_note_pdf(note), f"{note.number}.pdf")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        pk = _pk(object_id)
        extra = dict(extra_context or {})
        if pk:
            extra["pdf_url"] = reverse("admin:billing_creditnote_pdf", args=[pk])
        return super().change_view(request, object_id, form_url, extra)


# --- payments ---------------------------------------------------------------------------------------------


class PaymentEventInline(ReadOnlyMixin, admin.TabularInline):
    model = PaymentEvent
    fields = ("event_id", "kind", "amount", "received_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Payment)
class PaymentAdmin(BigList):
    list_display = ("__str__", "order", "method", "status", "authorized", "captured", "refunded", "created_at")
    list_filter = ("status", "provider")
    list_select_related = ("order",)
    search_fields = ("=provider_reference", "=order__number")
    ordering = ("-created_at", "-id")
    readonly_fields = (
        "order",
        "method",
        "provider",
        "provider_reference",
        "currency",
        "amount_authorized",
        "amount_captured",
        "amount_refunded",
        "status",
        "failure_reason",
        "created_at",
        "captured_at",
    )
    fields = readonly_fields
    inlines = [PaymentEventInline]

    @admin.display(description=_("authorized"))
    def authorized(self, payment):
        return _money(payment.amount_authorized, payment.currency)

    @admin.display(description=_("captured"))
    def captured(self, payment):
        return _money(payment.amount_captured, payment.currency)

    @admin.display(description=_("refunded"))
    def refunded(self, payment):
        return _money(payment.amount_refunded, payment.currency)
