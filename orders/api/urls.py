"""Routes of the order API (mounted under /api/v1/).

Other apps answer under an order too (its parcels, invoices, refunds): their routes are in their own
urls, which the roof (oms.urls) mounts beside these.
"""

from django.urls import path

from oms.core.api import by_method
from orders.api import cases, views

order_list = views.OrderListApi.as_view()
order_create = views.OrderCreateApi.as_view()

urlpatterns = [
    path("orders/", by_method(GET=order_list, POST=order_create), name="order-list"),
    path("orders/<str:number>/", views.OrderDetailApi.as_view(), name="order-detail"),
    path("orders/<str:number>/submit/", views.OrderSubmitApi.as_view(), name="order-submit"),
    path("orders/<str:number>/approve/", views.OrderApproveApi.as_view(), name="order-approve"),
    path("orders/<str:number>/mark-paid/", views.OrderMarkPaidApi.as_view(), name="order-mark-paid"),
    path("orders/<str:number>/accept-on-terms/", views.OrderAcceptOnTermsApi.as_view(), name="order-accept-on-terms"),
    path("orders/<str:number>/flag-for-review/", views.OrderFlagForReviewApi.as_view(), name="order-flag-for-review"),
    path("orders/<str:number>/accept/", views.OrderAcceptApi.as_view(), name="order-accept"),
    path(
        "orders/<str:number>/start-preparation/",
        views.OrderStartPreparationApi.as_view(),
        name="order-start-preparation",
    ),
    path("orders/<str:number>/record-shipment/", views.OrderRecordShipmentApi.as_view(), name="order-record-shipment"),
    path("orders/<str:number>/mark-delivered/", views.OrderMarkDeliveredApi.as_view(), name="order-mark-delivered"),
    path("orders/<str:number>/complete/", views.OrderCompleteApi.as_view(), name="order-complete"),
    path("orders/<str:number>/cancel/", views.OrderCancelApi.as_view(), name="order-cancel"),
    path("orders/<str:number>/hold/", views.OrderHoldApi.as_view(), name="order-hold"),
    path(
        "orders/<str:number>/holds/<int:hold_id>/release/",
        views.OrderHoldReleaseApi.as_view(),
        name="order-hold-release",
    ),
    path("orders/<str:number>/notes/", views.OrderNoteAddApi.as_view(), name="order-note-add"),
    path("orders/<str:number>/tags/add/", views.OrderTagAddApi.as_view(), name="order-tag-add"),
    path("orders/<str:number>/tags/remove/", views.OrderTagRemoveApi.as_view(), name="order-tag-remove"),
    path("orders/<str:number>/change-address/", views.OrderChangeAddressApi.as_view(), name="order-change-address"),
    path("orders/<str:number>/clear-fraud/", views.OrderClearFraudApi.as_view(), name="order-clear-fraud"),
    path("cases/", cases.CaseListApi.as_view(), name="case-list"),
    path("cases/<str:number>/", cases.CaseDetailApi.as_view(), name="case-detail"),
    path("cases/<str:number>/assign/", cases.CaseAssignApi.as_view(), name="case-assign"),
    path("cases/<str:number>/escalate/", cases.CaseEscalateApi.as_view(), name="case-escalate"),
    path("cases/<str:number>/resolve/", cases.CaseResolveApi.as_view(), name="case-resolve"),
    # Never reached (the route above answers first): they let the schema generator document the
    # list and the create view, each under its own method of /api/v1/orders/.
    path("orders/", order_list),
    path("orders/", order_create),
]
