"""What every app's API shares: the one exception handler (every error is `{code, message, extra}`),
the fields and base views, the error responses of the schema and the permission classes used by
more than one app. An app's API imports these from here, never from another app's API.
"""

import logging
from collections.abc import Mapping
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django_fsm import ConcurrentTransition, TransitionNotAllowed
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_field
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from oms.core.addresses import COUNTRY_CODES
from oms.core.addresses import MAX_LENGTH as ADDRESS_MAX_LENGTH
from oms.core.errors import ApplicationError, ValidationError
from oms.core.idempotency import HEADER as IDEMPOTENCY_HEADER
from oms.core.idempotency import IdempotentAPIMixin
from oms.core.money import CURRENCIES, quantize, validate_currency
from oms.core.parsers import JSONBodyParser

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
    if isinstance(exc, RequestDataTooBig):
        return request_too_large_response()
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


def request_too_large_response() -> Response:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return _error(
        status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        "request_too_large",
        f"The request body is larger than {limit} bytes.",
        {"max_bytes": limit},
    )


# --- pieces every app's API shares -------------------------------------------------------------

# errors ------------------------------------------------------------------------------------


def dotted_errors(errors, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested errors as {"lines.0.quantity": [...]}, the services' format.

    A nested object's own errors ("Expected a dictionary") go under the object's key.
    """
    result: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            if key == "non_field_errors":
                path = prefix or "non_field_errors"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            for field, messages in dotted_errors(value, path).items():
                result.setdefault(field, []).extend(messages)
    elif isinstance(errors, list) and all(not isinstance(item, (dict, list)) for item in errors):
        result[prefix or "non_field_errors"] = [str(item) for item in errors]
    elif isinstance(errors, list):
        # A list serializer's errors: one entry per item, empty for the valid ones.
        for index, item in enumerate(errors):
            if item:
                result.update(dotted_errors(item, f"{prefix}.{index}"))
    else:
        result[prefix or "non_field_errors"] = [str(errors)]
    return result


def validated_input(serializer_class, data) -> dict:
    """Validate request data, or raise the application's 400 with dotted field errors."""
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise ValidationError("The request is not valid.", code="invalid", fields=dotted_errors(serializer.errors))
    return _plain(serializer.validated_data)


def _plain(value):
    """validated_data (OrderedDicts, ReturnDicts) as plain dicts and lists for the services."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


# --- input ---------------------------------------------------------------------------------------


class StrictInputSerializer(serializers.Serializer):
    # Refuses fields it does not know: a misspelt `shiping_address` must not be silently dropped.
    # (A comment, not a docstring: the schema would show it on every input component.)

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, Mapping) else []
        unknown_errors = {str(name): ["Unknown field."] for name in unknown}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, dict):
                exc.detail.update(unknown_errors)
            raise
        if unknown_errors:
            raise serializers.ValidationError(unknown_errors)
        return value


class ApiErrorSerializer(serializers.Serializer):
    """Every error: a stable code, a message for people, and context (field errors in extra.fields)."""

    code = serializers.CharField()
    message = serializers.CharField()
    extra = serializers.DictField()


# The statuses `api_errors` documents, by name, and the usual description of those that have one.
_ERROR_STATUSES = {
    "invalid": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "not_json": 415,
    "key_reused": 422,
}
_USUAL_ERRORS = {
    400: "Invalid request: field errors in `extra.fields`.",
    401: "Not authenticated.",
    403: "The user lacks the permission for this action.",
    415: "The body is not JSON.",
    422: "The Idempotency-Key was used with another request.",
}


def api_errors(**descriptions: str | bool) -> dict[int, OpenApiResponse]:
    """An operation's error responses for `extend_schema`, each the one error body, in the order given.

    Names: invalid (400), unauthenticated (401), forbidden (403), not_found (404), conflict (409),
    not_json (415), key_reused (422); `True` takes the usual description, a string says more.
    """
    responses = {}
    for name, description in descriptions.items():
        status_code = _ERROR_STATUSES[name]
        text = _USUAL_ERRORS[status_code] if description is True else description
        responses[status_code] = OpenApiResponse(ApiErrorSerializer, description=text)
    return responses


PDF_RESPONSE = OpenApiResponse(OpenApiTypes.BINARY, description="The PDF.")


# idempotency -------------------------------------------------------------------------------

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name=IDEMPOTENCY_HEADER,
    # What a header carries intact: visible ASCII, spaces inside only (HTTP strips them at the ends).
    type={"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[!-~]([ -~]*[!-~])?$"},
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "1 to 255 characters, unique per API client and operation. Sending the same key with the same "
        "request again returns the first response byte for byte (header `Idempotent-Replayed: true`); "
        "with another request: 422 `idempotency_key_reused`; while the first request still runs: "
        "409 `idempotency_request_in_progress`. Keys are kept at least 72 hours."
    ),
)


class IdCursorPagination(CursorPagination):
    # The id is unique and the primary key: a strict keyset, so walking the pages never skips or
    # repeats a row, also while new rows arrive (they come before the first page) and when
    # many share one placed_at (marketplaces send whole seconds).
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request):
        invalid = ValidationError("Invalid cursor.", code="invalid_cursor", fields={"cursor": ["Invalid cursor."]})
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise invalid from None
        if cursor is not None and cursor.position is not None:
            # A tampered position would reach the database as an id: only bigint digits pass.
            if not (cursor.position.isascii() and cursor.position.isdigit() and int(cursor.position) < 2**63):
                raise invalid
        return cursor


def invalid_field(field: str, message: str) -> ValidationError:
    """The application's 400 for one field of the request (an unknown code, location, SKU …)."""
    return ValidationError("The request is not valid.", code="invalid", fields={field: [message]})


# --- fields --------------------------------------------------------------------------------------


def _address_text(*, required: bool = False, **kwargs) -> serializers.CharField:
    if required:
        return serializers.CharField(max_length=ADDRESS_MAX_LENGTH, help_text="Required.", **kwargs)
    return serializers.CharField(
        max_length=ADDRESS_MAX_LENGTH, required=False, allow_blank=True, allow_null=True, **kwargs
    )


class AddressSerializer(serializers.Serializer):
    """An address as the OMS keeps it (orders.addresses): every part, empty when not given."""

    name = serializers.CharField()
    company = serializers.CharField()
    line1 = serializers.CharField()
    line2 = serializers.CharField()
    postal_code = serializers.CharField()
    city = serializers.CharField()
    region = serializers.CharField()
    country = serializers.CharField(help_text="ISO 3166-1 alpha-2, e.g. FR.")
    phone = serializers.CharField()


class AddressInputSerializer(StrictInputSerializer):
    """An address as the services check it (orders.addresses.address_errors): name, line1, city and
    country required, every part at most 200 characters, no other field."""

    name = _address_text(required=True)
    company = _address_text()
    line1 = _address_text(required=True)
    line2 = _address_text()
    postal_code = _address_text()
    city = _address_text(required=True)
    region = _address_text()
    country = serializers.ChoiceField(
        choices=COUNTRY_CODES, help_text="ISO 3166-1 alpha-2, e.g. FR (lower case is accepted too)."
    )
    phone = _address_text()


class AddressField(serializers.DictField):
    """An address object passed as sent to the service, which reports its errors per field.

    Documented as AddressInput in requests and Address in answers (oms.core.schema).
    """


class PlainChoiceField(serializers.ChoiceField):
    """Validated like a choice, documented as a string with its values inline (oms.core.schema).

    (A named enum here would collide in the schema with the order's own `status` enum.)
    """


def one_of(choices, help_text: str = "", **kwargs) -> PlainChoiceField:
    # Documented as a string with its values: as enums, the statuses and kinds of shipments,
    # refunds, tracking and orders would collide in the schema under one name.
    values = ", ".join(value for value, _label in choices)
    return PlainChoiceField(choices=choices, help_text=f"{help_text} One of: {values}.".strip(), **kwargs)


@extend_schema_field({"type": "string", "format": "decimal", "example": "12.00"})
class MoneyField(serializers.Field):
    """An amount as a string with the currency's minor digits ("12.00", "1500" in JPY), more if stored."""

    def __init__(self, *, currency_source: str = "currency", **kwargs):
        self.currency_source = currency_source
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        currency = instance
        for part in self.currency_source.split("."):
            currency = getattr(currency, part)
        return super().get_attribute(instance), currency

    def to_representation(self, value):
        amount, currency = value
        rounded = quantize(amount, currency)
        return str(rounded if rounded == amount else Decimal(amount).normalize())


@extend_schema_field({"type": "string", "enum": sorted(CURRENCIES), "description": "ISO 4217, in use today."})
class CurrencyField(serializers.CharField):
    """An ISO 4217 code of a currency in use (oms.core.money.CURRENCIES), in any letter case; answered
    in upper case, refused here with the request's other field errors."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data).strip()
        try:
            return validate_currency(value)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.extra["fields"]["currency"]) from None


class UsernameField(serializers.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("allow_null", True)
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value):
        return value.get_username()


# --- permissions ---------------------------------------------------------------------------------


class PermissionRequired(BasePermission):
    # Base of the API's permission classes: the user holds `perm`, or gets a 403 with `message`.
    perm: str

    def has_permission(self, request, view):
        return request.user.has_perm(self.perm)


class CanViewOrders(PermissionRequired):
    # The order API's, and every other app's view of an order (its parcels, …).
    perm = "orders.view_order"
    message = "You do not have permission to view orders."


# --- base views ----------------------------------------------------------------------------------
# (Comments, not docstrings, on these bases: the schema would show a docstring as the description
# of every operation that inherits it.)


class WriteApi(IdempotentAPIMixin, APIView):
    # Base of the write views: POST with a JSON body (or none), idempotent on request.
    parser_classes = [JSONBodyParser]


class DottedFieldsWriteApi(WriteApi):
    # A write view whose services may nest field errors ({"address": {"country": [...]}}): the API
    # always names a field by its dotted path, as in the request body.

    def handle_exception(self, exc):
        if isinstance(exc, ApplicationError) and isinstance(exc.extra.get("fields"), dict):
            exc.extra["fields"] = self.dotted_fields(exc.extra["fields"])
        return super().handle_exception(exc)

    def dotted_fields(self, fields: dict) -> dict:
        return dotted_errors(fields)


class FileDownloadApi(APIView):
    # Answers a file (a plain Django response, past DRF's renderers); errors stay JSON, also for a
    # client that accepts only application/pdf.

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)


# --- routes --------------------------------------------------------------------------------------


def by_method(**views_by_method):
    """One URL, one view per HTTP method (GET lists, POST creates: one view per use case).

    HEAD and OPTIONS go to the GET view; any other method gets the API's 405 error shape.
    """
    allowed = ", ".join([*views_by_method, "HEAD", "OPTIONS"])

    @csrf_exempt  # each DRF view enforces CSRF itself for session-authenticated requests
    def route(request, *args, **kwargs):
        method = "GET" if request.method in {"HEAD", "OPTIONS"} else request.method
        view = views_by_method.get(method)
        if view is None:
            response = JsonResponse(
                {"code": "method_not_allowed", "message": f'Method "{request.method}" not allowed.', "extra": {}},
                status=405,
            )
            response["Allow"] = allowed
            return response
        return view(request, *args, **kwargs)

    return route
