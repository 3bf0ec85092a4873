"""Returns in each state, through `returns.services`: requested, approved (label), inspected (2 of 3
lines resellable: credited, refund requested) and refused."""

from collections.abc import Callable

from oms.cockpit.demo.context import Demo
from orders.models import Order
from returns import services as returns


def returns_showcase(demo: Demo, take: Callable[..., Order], to_inspect: Order) -> dict:
    """`take` hands out the billing showcase's delivered orders, each once; `to_inspect` has three
    shipped lines or more. Returns the return requests by state."""
    u = demo.users

    def request(order: Order, reason: str, comment: str, count: int | None = None):
        lines = list(order.lines.filter(quantity_shipped__gt=0).order_by("line_number"))[:count]
        return returns.return_request(
            order=order,
            actor=demo.api,  # the web store's returns page
            lines=[{"line": line, "quantity": 1} for line in lines],
            reason=reason,
            customer_comment=comment,
        )

    requested = request(take(), "wrong_size", "Too small, I will order the L instead.", 1)
    approved = request(take(), "changed_mind", "Not the colour I expected.", 1)
    returns.return_approve(request=approved, actor=u["support2"])
    inspected = request(
        to_inspect,
        "defective",
        "Two items are fine but I no longer need them; one arrived broken.",
        3,
    )
    returns.return_approve(request=inspected, actor=u["support2"])
    returns.return_receive(request=inspected, actor=u["warehouse"], note="Parcel received at the dock.")
    lines = list(inspected.lines.order_by("pk"))
    results = {line.pk: {"resellable": line.quantity} for line in lines[:2]}
    results[lines[2].pk] = {"damaged": lines[2].quantity}
    returns.return_inspect(
        request=inspected, actor=u["warehouse"], results=results, note="One unit broken in the parcel."
    )
    refused = request(take(), "changed_mind", "Used it once, not for me.", 1)
    returns.return_refuse(request=refused, actor=u["support2"], reason="The item was used: it cannot be resold as new.")
    return {"return_requested": requested, "return_approved": approved, "return_inspected": inspected}
