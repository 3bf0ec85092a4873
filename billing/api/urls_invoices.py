"""Routes of the invoices and payments API (under /api/v1/billing/)."""

from django.urls import path

from billing.api import views_invoices as views

urlpatterns = [
    path("invoices/", views.InvoiceListApi.as_view(), name="billing-invoice-list"),
    path("invoices/<str:number>/", views.InvoiceDetailApi.as_view(), name="billing-invoice-detail"),
    path("invoices/<str:number>/pdf/", views.InvoicePdfApi.as_view(), name="billing-invoice-pdf"),
    path(
        "invoices/<str:number>/credit-notes/",
        views.CreditNoteIssueApi.as_view(),
        name="billing-invoice-credit-notes",
    ),
    path("credit-notes/<str:number>/", views.CreditNoteDetailApi.as_view(), name="billing-credit-note-detail"),
    path("credit-notes/<str:number>/pdf/", views.CreditNotePdfApi.as_view(), name="billing-credit-note-pdf"),
    path("orders/<str:number>/invoices/", views.InvoiceIssueApi.as_view(), name="billing-order-invoice-issue"),
    path("payments/<str:provider>/events/", views.PaymentEventWebhookApi.as_view(), name="billing-payment-events"),
]
