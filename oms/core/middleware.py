"""Refusals made before any view runs, for requests that no view could answer well."""

from urllib.parse import unquote_plus

from django.conf import settings
from django.http import HttpResponse, JsonResponse


def _refusal(request, status: int, code: str, message: str, extra: dict | None = None):
    if request.path.startswith("/api/"):
        return JsonResponse({"code": code, "message": message, "extra": extra or {}}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class RequestGuardMiddleware:
    """A NUL character in the URL, and an API body above the size limit, are refused at the door.

    PostgreSQL refuses NUL in any text, so the first query using such a path or filter would fail
    with a server error; a body over `DATA_UPLOAD_MAX_MEMORY_SIZE` is a 413 (Django would raise
    deep in the view, once the body is read). Bodies sent without a length are still caught there:
    the API's exception handler answers the same 413.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or "\x00" in unquote_plus(request.META.get("QUERY_STRING", "")):
            return _refusal(
                request, 400, "invalid", "The address contains a NUL character.", {"fields": {"url": ["NUL."]}}
            )
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                return _refusal(
                    request,
                    413,
                    "request_too_large",
                    f"The request body is larger than {limit} bytes.",
                    {"max_bytes": limit},
                )
        return self.get_response(request)
