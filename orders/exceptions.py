from oms.core.errors import ConflictError, PermissionDeniedError


class TransitionRefused(ConflictError):
    default_code = "transition_not_allowed"


class OrderPermissionDenied(PermissionDeniedError):
    pass
