"""The customer-facing parcel tracking page (mounted under /track/)."""

from django.urls import path

from fulfillment import views

app_name = "tracking"

urlpatterns = [
    path("<str:token>/", views.order_tracking, name="order"),
]
