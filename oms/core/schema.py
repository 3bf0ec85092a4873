"""What /api/schema/ says about every operation, declared once: the rules the API applies to every
request and answer, which drf-spectacular cannot read from the serializers by itself.

- An input serializer (oms.core.api.StrictInputSerializer) refuses fields it does not know: its
  object has `additionalProperties: false`.
- A text field that must not be blank is trimmed first (DRF's `trim_whitespace`): "   " is blank,
  so the schema asks for a character that is not white space.
- Every operation documents the errors every operation can answer (POSTPROCESSING_HOOKS): 401 and
  403 (authentication and permission come first), 404 when the path names an object, 400 when there
  is input to refuse, and for a body 413 (too large) and 415 (not JSON); with an Idempotency-Key,
  409 (still running) and 422 (reused).
- A path's integer id matches the URL's `<int:…>` (digits, so at least 0) and the column (64 bits).

Loaded by `OmsCoreConfig.ready()`: the extensions register themselves when this module is imported.
"""

from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_choice_field

# A character other than white space: what a trimmed, non-blank text has.
NOT_BLANK = r"\S"
BIGINT_MAX = 2**63 - 1

_ERROR_REF = {"$ref": "#/components/schemas/ApiError"}
# Status → (when it applies, the description the operation gets unless it says more itself).
_COMMON_ERRORS = {
    400: "The request is not valid: field errors in `extra.fields`.",
    401: "Not authenticated.",
    403: "The user lacks the permission for this action.",
    404: "No such object (`…_not_found`), or not one the client may see.",
    409: "The object's state does not allow this now, or a request with this Idempotency-Key is still running.",
    413: "The request body is too large (`request_too_large`).",
    415: "The body is not JSON.",
    422: "The Idempotency-Key was used with another request.",
}


class StrictInputSerializerExtension(OpenApiSerializerExtension):
    target_class = "oms.core.api.StrictInputSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        # `allow_empty=False` on a list or a map (drf-spectacular leaves it out).
        for name, field in self.target.fields.items():
            prop = schema.get("properties", {}).get(name)
            if prop is None or getattr(field, "allow_empty", True):
                continue
            if prop.get("type") == "array":
                prop["minItems"] = max(prop.get("minItems", 0), 1)
            elif prop.get("type") == "object":
                prop["minProperties"] = max(prop.get("minProperties", 0), 1)
        return schema


class TrimmedTextFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "rest_framework.fields.CharField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        schema = auto_schema._map_serializer_field(field, direction, bypass_extensions=True)
        # Also for query parameters, which drf-spectacular maps without the field's validators
        # (a slug's pattern, a maximum length).
        auto_schema._insert_field_validators(field, schema)
        free_text = not ({"pattern", "format", "enum", "$ref", "allOf", "oneOf", "anyOf"} & set(schema))
        if direction != "response" and free_text and field.trim_whitespace and not field.allow_blank:
            schema["pattern"] = NOT_BLANK
        return schema


class PlainChoiceFieldExtension(OpenApiSerializerFieldExtension):
    # An enum like any choice field: the statuses and kinds of shipments, tracking and refunds,
    # which share field names, are named in SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].
    target_class = "oms.core.api.PlainChoiceField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        return build_choice_field(self.target)


def _operations(result):
    for path, methods in result.get("paths", {}).items():
        for method, operation in methods.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation


def document_common_errors(result, generator, request, public):
    """POSTPROCESSING_HOOKS: the errors every operation can answer, and its path ids' bounds."""
    for _path, _method, operation in _operations(result):
        parameters = operation.get("parameters", [])
        in_path = [p for p in parameters if p.get("in") == "path"]
        for parameter in in_path:
            schema = parameter.get("schema", {})
            if schema.get("type") == "integer":
                schema.setdefault("minimum", 0)
                schema.setdefault("maximum", BIGINT_MAX)
        has_body = "requestBody" in operation
        has_input = has_body or any(p.get("in") in {"query", "header"} for p in parameters)
        idempotent = any(p.get("in") == "header" and p.get("name") == "Idempotency-Key" for p in parameters)
        wanted = [401, 403]
        if in_path:
            wanted.append(404)
        if has_input:
            wanted.append(400)
        if has_body:
            wanted += [413, 415]
        if idempotent:
            wanted += [409, 422]
        responses = operation.setdefault("responses", {})
        for status in wanted:
            responses.setdefault(
                str(status),
                {"content": {"application/json": {"schema": _ERROR_REF}}, "description": _COMMON_ERRORS[status]},
            )
        operation["responses"] = dict(sorted(responses.items()))
    return result


class AddressFieldExtension(OpenApiSerializerFieldExtension):
    # An address is a plain object for DRF (the services check it): its rules in requests, its
    # kept shape in answers.
    target_class = "oms.core.api.AddressField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        from oms.core.api import AddressInputSerializer, AddressSerializer  # noqa: PLC0415 (api imports this module's targets by name only; avoids a cycle at import)

        serializer = AddressInputSerializer if direction == "request" else AddressSerializer
        return auto_schema.resolve_serializer(serializer, direction).ref


class BoundedDecimalFieldExtension(OpenApiSerializerFieldExtension):
    # A decimal travels as a string: its bounds (min_value, max_value), which JSON Schema cannot put
    # on a string, become its pattern. At least one digit, no sign when it may not be negative.
    target_class = "rest_framework.fields.DecimalField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        schema = auto_schema._map_serializer_field(field, direction, bypass_extensions=True)
        if direction == "response" or schema.get("type") != "string" or field.max_digits is None:
            return schema
        places = field.decimal_places or 0
        digits = field.max_digits - places
        fraction = rf"(?:\.\d{{1,{places}}})?" if places else ""
        number = rf"\d{{1,{digits}}}{fraction}"
        maximum = field.max_value
        if maximum is not None and maximum >= 1 and maximum == 10 ** (len(str(int(maximum))) - 1):
            # Up to 10^k: any k digits, or 10^k itself.
            exponent = len(str(int(maximum))) - 1
            zeros = rf"(?:\.0{{1,{places}}})?" if places else ""
            below = rf"\d{{1,{exponent}}}{fraction}" if exponent else rf"0{fraction}"
            number = rf"(?:{below}|1{'0' * exponent}{zeros})"
        elif maximum is not None and maximum < 1:
            number = rf"0{fraction}"
        sign = "-?" if field.min_value is None or field.min_value < 0 else ""
        schema["pattern"] = rf"^{sign}{number}$"
        return schema
