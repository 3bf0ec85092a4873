"""One exception handler for the whole API: every error is `{code, message, extra}`."""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from oms.core.errors import ApplicationError

logger = logging.getLogger(__name__)


def _error(status_code: int, code: str, message: str, extra: dict | None = None, headers=None) -> Response:
    return Response({"code": code, "message": message, "extra": extra or {}}, status=status_code, headers=headers)


def _flatten_detail(detail):
    if isinstance(detail, dict):
        return {key: _flatten_detail(value) for key, value in detail.items()}
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [str(item) for item in detail]
        return [_flatten_detail(item) for item in detail]
    return [str(detail)]


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return _error(exc.status_code, exc.code, exc.message, exc.extra)
    if isinstance(exc, (TransitionNotAllowed, ConcurrentTransition)):
        return _error(status.HTTP_409_CONFLICT, "transition_not_allowed", str(exc))
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return _error(400, "invalid", "The request is not valid.", {"fields": fields})
    if isinstance(exc, Http404):
        return _error(404, "not_found", "Not found.")
    if isinstance(exc, DjangoPermissionDenied):
        return _error(403, "permission_denied", "You do not have permission to perform this action.")
    if isinstance(exc, drf_exceptions.ValidationError):
        return _error(400, "invalid", "The request is not valid.", {"fields": _flatten_detail(exc.detail)})
    if isinstance(exc, drf_exceptions.ParseError):
        return _error(400, "parse_error", str(exc.detail))
    response = drf_exception_handler(exc, context)
    if response is not None:
        detail = getattr(exc, "detail", "")
        code = getattr(exc, "default_code", "error")
        if hasattr(exc, "get_codes"):
            codes = exc.get_codes()
            code = codes if isinstance(codes, str) else code
        response.data = {"code": code, "message": str(detail), "extra": {}}
        return response
    logger.exception("Unhandled API error")
    return _error(500, "server_error", "An unexpected error occurred; it has been logged.")
