"""The API's one body parser (settings.REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]).

Its own module: DRF reads the parser setting while defining APIView, so the module named there must
not import rest_framework.views itself.
"""

from rest_framework.parsers import JSONParser

from oms.core.errors import ValidationError
from oms.core.inputs import DEPTH_MESSAGE, json_clean


class JSONBodyParser(JSONParser):
    """JSON that can be stored: no NUL, no unpaired surrogate, no nesting beyond MAX_JSON_DEPTH.

    The API's only parser (settings.REST_FRAMEWORK): what it refuses is a 400 naming each field by
    its dotted path, before any view or service sees the body.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type=media_type, parser_context=parser_context)
        except RecursionError:
            raise ValidationError(
                "The request is not valid.", code="invalid", fields={"non_field_errors": [DEPTH_MESSAGE]}
            ) from None
        return json_clean(data)
