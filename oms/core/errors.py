"""The one application error type and its families.

Domain code raises these; the API exception handler and the cockpit turn them into responses and
messages. `code` is stable (clients and tests match on it), `message` is for people, `extra`
carries field errors or context.
"""


class ApplicationError(Exception):
    status_code = 400
    default_code = "error"

    def __init__(self, message: str, *, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.extra = extra or {}

    def __str__(self) -> str:
        return self.message


class ValidationError(ApplicationError):
    """Bad input: the request can be fixed by the caller (400, with field errors in extra)."""

    status_code = 400
    default_code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, fields: dict | None = None, extra=None):
        extra = dict(extra or {})
        if fields:
            extra["fields"] = fields
        super().__init__(message, code=code, extra=extra)


class UnprocessableError(ApplicationError):
    """Well-formed but refused by a business rule or a replay check (422)."""

    status_code = 422
    default_code = "unprocessable"


class PermissionDeniedError(ApplicationError):
    status_code = 403
    default_code = "permission_denied"


class NotFoundError(ApplicationError):
    status_code = 404
    default_code = "not_found"


class ConflictError(ApplicationError):
    """The target's state does not allow this now (illegal transition, in-flight duplicate)."""

    status_code = 409
    default_code = "conflict"
