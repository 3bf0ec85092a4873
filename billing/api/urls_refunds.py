"""Routes of the refunds API (under /api/v1/billing/)."""

from django.urls import path

from billing.api import views_refunds as views

urlpatterns = [
    path("orders/<str:number>/refunds/", views.RefundRequestApi.as_view(), name="billing-order-refund-request"),
    path("refunds/", views.RefundListApi.as_view(), name="billing-refund-list"),
    path("refunds/<str:number>/", views.RefundDetailApi.as_view(), name="billing-refund-detail"),
    path("refunds/<str:number>/approve/", views.RefundApproveApi.as_view(), name="billing-refund-approve"),
    path("refunds/<str:number>/reject/", views.RefundRejectApi.as_view(), name="billing-refund-reject"),
    path("refunds/<str:number>/process/", views.RefundProcessApi.as_view(), name="billing-refund-process"),
    path(
        "orders/<str:number>/seller-cancellation/",
        views.SellerCancellationApi.as_view(),
        name="billing-order-seller-cancellation",
    ),
    path("disputes/<int:pk>/submit/", views.DisputeSubmitApi.as_view(), name="billing-dispute-submit"),
    path("disputes/<int:pk>/close/", views.DisputeCloseApi.as_view(), name="billing-dispute-close"),
]
