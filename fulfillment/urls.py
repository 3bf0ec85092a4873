"""The customer-facing parcel tracking page (mounted under /track/)."""

urlpatterns = []
