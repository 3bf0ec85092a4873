"""Routes of the fulfillment API (mounted under /api/v1/fulfillment/)."""

urlpatterns = []
