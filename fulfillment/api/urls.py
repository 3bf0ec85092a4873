"""Routes of the fulfillment API (mounted under /api/v1/fulfillment/), and of an order's parcels
(`order_urlpatterns`, mounted under /api/v1/ beside the order API's routes)."""

from django.urls import path

from fulfillment.api import views
from oms.core.api import by_method

wave_list = views.WaveListApi.as_view()
wave_create = views.WaveCreateApi.as_view()

urlpatterns = [
    path("shipments/", views.ShipmentListApi.as_view(), name="fulfillment-shipment-list"),
    path("shipments/<str:number>/", views.ShipmentDetailApi.as_view(), name="fulfillment-shipment-detail"),
    path("shipments/<str:number>/label.pdf", views.ShipmentLabelApi.as_view(), name="fulfillment-shipment-label"),
    path(
        "shipments/<str:number>/packing-slip.pdf",
        views.ShipmentPackingSlipApi.as_view(),
        name="fulfillment-shipment-packing-slip",
    ),
    path("shipments/<str:number>/picks/", views.ShipmentConfirmPicksApi.as_view(), name="fulfillment-shipment-picks"),
    path("shipments/<str:number>/pack/", views.ShipmentPackApi.as_view(), name="fulfillment-shipment-pack"),
    path("shipments/<str:number>/dispatch/", views.ShipmentDispatchApi.as_view(), name="fulfillment-shipment-dispatch"),
    path(
        "shipments/<str:number>/ready-for-pickup/",
        views.ShipmentReadyForPickupApi.as_view(),
        name="fulfillment-shipment-ready-for-pickup",
    ),
    path(
        "shipments/<str:number>/hand-over/", views.ShipmentHandOverApi.as_view(), name="fulfillment-shipment-hand-over"
    ),
    path("shipments/<str:number>/cancel/", views.ShipmentCancelApi.as_view(), name="fulfillment-shipment-cancel"),
    path(
        "short-picks/<int:short_pick_id>/substitute/",
        views.ShortPickSubstituteApi.as_view(),
        name="fulfillment-short-pick-substitute",
    ),
    path(
        "short-picks/<int:short_pick_id>/delay/", views.ShortPickDelayApi.as_view(), name="fulfillment-short-pick-delay"
    ),
    path(
        "short-picks/<int:short_pick_id>/cancel-line/",
        views.ShortPickCancelLineApi.as_view(),
        name="fulfillment-short-pick-cancel-line",
    ),
    path("waves/", by_method(GET=wave_list, POST=wave_create), name="fulfillment-wave-list"),
    path("waves/<str:number>/", views.WaveDetailApi.as_view(), name="fulfillment-wave-detail"),
    path("waves/<str:number>/print/", views.WavePrintApi.as_view(), name="fulfillment-wave-print"),
    path("waves/<str:number>/pick-list.pdf", views.WavePickListApi.as_view(), name="fulfillment-wave-pick-list"),
    path(
        "carriers/<str:code>/tracking/",
        views.CarrierTrackingWebhookApi.as_view(),
        name="fulfillment-carrier-tracking",
    ),
    # Never reached (the route above answers first): they let the schema generator document the
    # list and the create view, each under its own method of /api/v1/fulfillment/waves/.
    path("waves/", wave_list),
    path("waves/", wave_create),
]

order_urlpatterns = [
    path("orders/<str:number>/shipments/", views.OrderShipmentsApi.as_view(), name="order-shipments"),
]
