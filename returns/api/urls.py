"""Routes of the returns API (mounted under /api/v1/returns/)."""

from django.urls import path

from returns.api import views

urlpatterns = [
    path("", views.ReturnCreateApi.as_view(), name="returns-create"),
    path("<str:number>/", views.ReturnDetailApi.as_view(), name="returns-detail"),
    path("<str:number>/label.pdf", views.ReturnLabelApi.as_view(), name="returns-label"),
    path("<str:number>/approve/", views.ReturnApproveApi.as_view(), name="returns-approve"),
    path("<str:number>/receive/", views.ReturnReceiveApi.as_view(), name="returns-receive"),
    path("<str:number>/inspect/", views.ReturnInspectApi.as_view(), name="returns-inspect"),
    path("<str:number>/close/", views.ReturnCloseApi.as_view(), name="returns-close"),
    path("<str:number>/refuse/", views.ReturnRefuseApi.as_view(), name="returns-refuse"),
    path("<str:number>/cancel/", views.ReturnCancelApi.as_view(), name="returns-cancel"),
]
