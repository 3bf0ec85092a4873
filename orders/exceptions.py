from oms.core.errors import PermissionDeniedError
from oms.core.fsm import TransitionRefused

__all__ = ["OrderPermissionDenied", "TransitionRefused"]


class OrderPermissionDenied(PermissionDeniedError):
    pass
