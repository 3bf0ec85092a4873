"""Running a django-fsm-2 transition the way every service does: permission, state, conditions."""

from oms.core.errors import ConflictError, PermissionDeniedError


class TransitionRefused(ConflictError):
    default_code = "transition_not_allowed"


def run_transition(
    instance,
    name: str,
    *,
    actor,
    noun: str,
    messages: dict[str, str],
    check_permission: bool = True,
    refused: type[ConflictError] = TransitionRefused,
    **kwargs,
) -> str:
    """Permission first (so a caller without the right learns nothing about the state), then the
    source state, then the conditions (explained by `messages`), then the transition. The model's
    state field is `status` and its human number `number`. Returns the new status."""
    method = getattr(instance, name)
    meta = method._django_fsm
    label = name.replace("_", " ")
    if check_permission:
        any_transition = next(iter(meta.transitions.values()))
        if actor is None or not any_transition.has_perm(instance, actor):
            raise PermissionDeniedError(
                f"You do not have permission to {label} this {noun}.",
                code="permission_denied",
                extra={"transition": name},
            )
    state = instance.status
    if not meta.has_transition(state):
        raise refused(
            f"Cannot {label} {noun} {instance.number}: it is {instance.get_status_display().lower()}.",
            extra={"transition": name, "status": state},
        )
    failed = [condition.__name__ for condition in meta.get_transition(state).conditions if not condition(instance)]
    if failed:
        raise refused(
            " ".join(messages.get(c, c) for c in failed),
            code="transition_condition_failed",
            extra={"transition": name, "status": state, "conditions": failed},
        )
    method(**kwargs)
    return instance.status
