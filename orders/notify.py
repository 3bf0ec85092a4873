"""Customer notifications from order events (filled in by the notifications work)."""


def notifications_on_events(*, order, events, actor) -> None:
    return None
