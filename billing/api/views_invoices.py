"""The invoices API: list and read invoices, their PDFs, issue an order's invoice, issue a credit
note, and the payment providers' webhook.

One view per use case, each calling one service or selector; the services decide permissions,
states and amounts, and their errors become responses in the one exception handler (oms.core.api).
Every POST honours an `Idempotency-Key` header; provider events are also stored once per provider
event id without one, since providers retry without keys.
"""

from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import documents
from billing.api.serializers_invoices import (
    CreditNoteIssueInputSerializer,
    CreditNoteSerializer,
    InvoiceDetailSerializer,
    InvoiceIssueInputSerializer,
    InvoiceListQuerySerializer,
    InvoiceListSerializer,
    PaymentEventResultSerializer,
)
from billing.models import CreditNote, Invoice
from billing.services import invoices as services
from billing.services import payments
from fulfillment.selectors import shipments_visible
from oms.core.api import (
    IDEMPOTENCY_KEY_PARAMETER,
    PDF_RESPONSE,
    ApiErrorSerializer,
    FileDownloadApi,
    IdCursorPagination,
    PermissionRequired,
    WriteApi,
    api_errors,
    validated_input,
)
from oms.core.errors import NotFoundError, ValidationError
from orders.selectors import channels_visible, order_find, order_scope_q, orders_visible

_READ_ERRORS = api_errors(
    invalid="Bad filter or cursor.", unauthenticated=True, forbidden="The user may not view invoices."
)
_ONE_ERRORS = api_errors(
    unauthenticated=True,
    forbidden="The user may not view it.",
    not_found="No such invoice or credit note (`…_not_found`).",
)
_WRITE_ERRORS = api_errors(
    invalid=True,
    unauthenticated=True,
    forbidden=True,
    not_found="No such order, shipment or invoice.",
    conflict="The state does not allow it (`nothing_to_invoice`, `already_invoiced`, "
    "`invoice_fully_credited`, …), or a request with this Idempotency-Key is still running.",
    key_reused=True,
)


class CanViewInvoices(PermissionRequired):
    perm = "billing.view_invoice"
    message = "You do not have permission to view invoices."


# Every lookup goes through what the user may reach (orders.selectors): another API client's order,
# invoice or credit note is not found, exactly like one that does not exist.


def _invoice(request, number: str) -> Invoice:
    invoice = services.invoice_list().filter(order_scope_q(request.user, "order"), number=number).first()
    if invoice is None:
        raise NotFoundError(f"Invoice {number} not found.", code="invoice_not_found")
    return invoice


def _credit_note(request, number: str) -> CreditNote:
    note = services.credit_note_list().filter(order_scope_q(request.user, "order"), number=number).first()
    if note is None:
        raise NotFoundError(f"Credit note {number} not found.", code="credit_note_not_found")
    return note


def _with_rows(document, rows):
    for row in rows:
        row.currency_code = document.currency
    return rows


def _invoice_response(request, number: str, *, status: int = 200) -> Response:
    invoice = _invoice(request, number)
    invoice.line_rows = _with_rows(invoice, list(invoice.lines.all()))
    invoice.tax_rows = list(invoice.taxes.select_related("invoice"))
    invoice.remaining = invoice.total_gross - invoice.credited
    invoice.overdue = services.invoice_is_overdue(invoice)
    invoice.credit_note_numbers = list(invoice.credit_notes.order_by("pk").values_list("number", flat=True))
    invoice.pdf_url = request.build_absolute_uri(reverse("billing-invoice-pdf", kwargs={"number": number}))
    return Response(InvoiceDetailSerializer(invoice).data, status=status)


def _credit_note_response(request, credit_note: CreditNote, *, status: int = 200) -> Response:
    credit_note.line_rows = _with_rows(credit_note, list(credit_note.lines.all()))
    credit_note.pdf_url = request.build_absolute_uri(
        reverse("billing-credit-note-pdf", kwargs={"number": credit_note.number})
    )
    return Response(CreditNoteSerializer(credit_note).data, status=status)


def _pdf(content: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


# --- reads -------------------------------------------------------------------------------------------


@extend_schema(
    tags=["billing: invoices"],
    summary="List invoices",
    description="Newest first, 50 per page (`page_size` up to 200), cursor-paginated: follow `next`.",
    parameters=[InvoiceListQuerySerializer],
    responses={200: InvoiceListSerializer(many=True), **_READ_ERRORS},
)
class InvoiceListApi(generics.ListAPIView):
    permission_classes = [IsAuthenticated, CanViewInvoices]
    serializer_class = InvoiceListSerializer
    pagination_class = IdCursorPagination
    filter_backends: list = []

    def list(self, request, *args, **kwargs):
        query = validated_input(InvoiceListQuerySerializer, request.query_params)
        channel = order = None
        if query.get("channel"):
            channel = channels_visible(request.user).filter(code=query["channel"]).first()
            if channel is None:
                raise ValidationError("Unknown channel.", fields={"channel": [f"Unknown channel {query['channel']}."]})
        if query.get("order"):
            order = orders_visible(request.user).filter(number=query["order"]).first()
            if order is None:
                raise ValidationError("Unknown order.", fields={"order": [f"Unknown order {query['order']}."]})
        invoices = services.invoice_list(
            series=query.get("series"),
            period_start=query.get("period_start"),
            period_end=query.get("period_end"),
            channel=channel,
            order=order,
            overdue=query.get("overdue"),
        ).filter(order_scope_q(request.user, "order"))
        page = self.paginate_queryset(invoices)
        return self.get_paginated_response(InvoiceListSerializer(page, many=True).data)


class InvoiceDetailApi(APIView):
    permission_classes = [IsAuthenticated, CanViewInvoices]

    @extend_schema(
        tags=["billing: invoices"],
        summary="One invoice: parties, lines, tax breakdown, what is left to credit, overdue",
        responses={200: InvoiceDetailSerializer, **_ONE_ERRORS},
    )
    def get(self, request, number: str):
        return _invoice_response(request, number)


class InvoicePdfApi(FileDownloadApi):
    permission_classes = [IsAuthenticated, CanViewInvoices]

    @extend_schema(
        tags=["billing: invoices"],
        summary="The invoice PDF",
        operation_id="v1_billing_invoices_pdf_retrieve",
        description="In the order's language.",
        responses={(200, "application/pdf"): PDF_RESPONSE, **_ONE_ERRORS},
    )
    def get(self, request, number: str):
        invoice = _invoice(request, number)
        return _pdf(documents.invoice_pdf(invoice), f"{invoice.number}.pdf")


class CreditNoteDetailApi(APIView):
    permission_classes = [IsAuthenticated, CanViewInvoices]

    @extend_schema(
        tags=["billing: invoices"],
        summary="One credit note with its lines",
        responses={200: CreditNoteSerializer, **_ONE_ERRORS},
    )
    def get(self, request, number: str):
        return _credit_note_response(request, _credit_note(request, number))


class CreditNotePdfApi(FileDownloadApi):
    permission_classes = [IsAuthenticated, CanViewInvoices]

    @extend_schema(
        tags=["billing: invoices"],
        summary="The credit note PDF",
        operation_id="v1_billing_credit_notes_pdf_retrieve",
        responses={(200, "application/pdf"): PDF_RESPONSE, **_ONE_ERRORS},
    )
    def get(self, request, number: str):
        note = _credit_note(request, number)
        return _pdf(documents.credit_note_pdf(note), f"{note.number}.pdf")


# --- writes --------------------------------------------------------------------------------------------


class InvoiceIssueApi(WriteApi):
    @extend_schema(
        tags=["billing: invoices"],
        summary="Issue an order's invoice",
        description=(
            "What is left to invoice on the order (per its billing policy), or one shipped parcel's "
            "units with `shipment`. The shipping fee goes on the first invoice. 409 "
            "`nothing_to_invoice` when every unit is invoiced."
        ),
        request=InvoiceIssueInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: OpenApiResponse(InvoiceDetailSerializer, description="Issued."), **_WRITE_ERRORS},
    )
    def post(self, request, number: str):
        order_id = order_find(user=request.user, number=number).pk
        data = validated_input(InvoiceIssueInputSerializer, request.data)
        shipment = None
        if data.get("shipment"):
            shipment = shipments_visible(request.user).filter(number=data["shipment"]).first()
            if shipment is None:
                raise ValidationError(
                    "Unknown shipment.", fields={"shipment": [f"Unknown shipment {data['shipment']}."]}
                )
        invoice = services.invoice_issue(order=order_id, actor=request.user, shipment=shipment)
        return _invoice_response(request, invoice.number, status=201)


class CreditNoteIssueApi(WriteApi):
    @extend_schema(
        tags=["billing: invoices"],
        summary="Issue a credit note against an invoice",
        description=(
            "All that is left (no `lines`, no `amount`), some units (`lines`: {invoice line id: "
            "quantity}), or a gross `amount` spread over the invoice's tax rates. Never above what "
            "is left of the invoice (400 `credit_exceeds_invoice`)."
        ),
        request=CreditNoteIssueInputSerializer,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={201: OpenApiResponse(CreditNoteSerializer, description="Issued."), **_WRITE_ERRORS},
    )
    def post(self, request, number: str):
        invoice_id = (
            Invoice.objects.filter(order_scope_q(request.user, "order"), number=number)
            .values_list("pk", flat=True)
            .first()
        )
        if invoice_id is None:
            raise NotFoundError(f"Invoice {number} not found.", code="invoice_not_found")
        data = validated_input(CreditNoteIssueInputSerializer, request.data)
        note = services.credit_note_issue(
            invoice=invoice_id,
            actor=request.user,
            reason=data["reason"],
            lines=data.get("lines"),
            amount=data.get("amount"),
            note=data.get("note", ""),
        )
        return _credit_note_response(request, _credit_note(request, note.number), status=201)


class PaymentEventWebhookApi(WriteApi):
    @extend_schema(
        tags=["billing: payments"],
        summary="Receive a payment provider's event",
        description=(
            'The provider\'s own payload (sandbox: `{"id", "type": authorized|captured|failed|refunded|'
            'dispute_opened, "payment_reference", "amount", "currency"?, "order"?, …}`). Stored once per '
            "provider event id and applied to the payment and the order; a replay answers 200 with "
            "`applied: false` and changes nothing."
        ),
        request=OpenApiTypes.OBJECT,
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        responses={
            200: PaymentEventResultSerializer,
            **_WRITE_ERRORS,
            404: OpenApiResponse(ApiErrorSerializer, description="No such provider (`provider_not_found`)."),
        },
    )
    def post(self, request, provider: str):
        event, applied = payments.payment_event_receive(provider=provider, payload=request.data, actor=request.user)
        result = {
            "event": event.event_id,
            "kind": event.kind,
            "payment": str(event.payment) if event.payment_id else None,
            "applied": applied,
        }
        return Response(PaymentEventResultSerializer(result).data)
