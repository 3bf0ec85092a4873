"""Permission checks, one way for every service.

A service checks its permission explicitly, before it reads or changes anything that would tell a
caller without the right about the state (django-fsm's `permission=` is not checked by calling a
transition: `oms.core.fsm.run_transition` checks it).
"""

from oms.core.errors import PermissionDeniedError


def require_perm(actor, perm: str, action: str, *, message: str | None = None) -> None:
    """Refuse (403, `permission_denied`) unless `actor` holds `perm`. `action` completes
    "You do not have permission to …"; `message` replaces that sentence where an app translates it."""
    if actor is None or not actor.has_perm(perm):
        raise PermissionDeniedError(
            message or f"You do not have permission to {action}.", code="permission_denied", extra={"permission": perm}
        )
