"""Reads shared by the cockpit, the API and (later) the portal.

What a user may reach is decided here, once, for every app's API: an API client reaches the orders
of its channels and what hangs off them (parcels, invoices, refunds, returns, cases), and another
client's order is looked up as if it did not exist (404). The apps above filter their rows with
`order_scope_q` and look orders up with `order_find`; none filters by channel on its own.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.db.models.functions import Lower
from django.db.models.lookups import Exact
from django.utils import timezone

from oms.core.errors import NotFoundError
from oms.core.numbering import format_number
from orders.choices import API_CLIENT_GROUPS, HoldReason, OrderStatus
from orders.models import Channel, Order, OrderEvent, OrderHold, OrderLine
from orders.services import TERMINAL_OR_SHIPPED

# --- what a user may reach -------------------------------------------------------------------------

_SCOPE_ATTRIBUTE = "_oms_channel_scope"


def channel_scope(user) -> frozenset[int] | None:
    """The ids of the channels whose orders `user` reaches, or None when channels do not limit it.

    An API client (a user with an ApiClient record) reaches its channels only; with no channel it
    reaches no order, and so does a user in an API role group without a record (fail closed). Other
    users (cockpit staff, also when they call the API, and the system user) are not limited by
    channel: their permissions alone govern. Cached on the user object, as Django caches a user's
    permissions: one request sees one scope.
    """
    if user is None or not user.is_authenticated:
        return frozenset()
    if hasattr(user, _SCOPE_ATTRIBUTE):
        return getattr(user, _SCOPE_ATTRIBUTE)
    # One query, portable (SQLite runs the demo): a row per channel of the client (one row with no
    # client or no channel), each saying whether an API role group holds the user.
    rows = list(
        get_user_model()
        .objects.filter(pk=user.pk)
        .annotate(in_api_role=Exists(Group.objects.filter(user=OuterRef("pk"), name__in=API_CLIENT_GROUPS.values())))
        .values_list("in_api_role", "api_client__pk", "api_client__channels")
    )
    in_api_role = not rows or rows[0][0]
    is_client = bool(rows) and rows[0][1] is not None
    channel_ids = [channel for _role, _client, channel in rows if channel is not None]
    scope = frozenset(channel_ids) if is_client or in_api_role else None
    setattr(user, _SCOPE_ATTRIBUTE, scope)
    return scope


def order_scope_q(user, path: str = "") -> Q:
    """The rows of a model `user` may reach through the order at `path` ("" for orders themselves,
    "order" for an invoice, "order_line__order" for a shipment line…): all of them, or those of its
    channels' orders."""
    scope = channel_scope(user)
    if scope is None:
        return Q()
    if not scope:
        return Q(pk__in=[])
    return Q(**{f"{path}__channel_id__in" if path else "channel_id__in": sorted(scope)})


def orders_visible(user) -> QuerySet[Order]:
    """The orders `user` may read or act on."""
    return Order.objects.filter(order_scope_q(user))


def channels_visible(user) -> QuerySet[Channel]:
    """The channels whose orders `user` may create or read."""
    scope = channel_scope(user)
    return Channel.objects.all() if scope is None else Channel.objects.filter(pk__in=sorted(scope))


def order_find(*, user, number: str) -> Order:
    """The order `number` if `user` may reach it; 404 `order_not_found` otherwise, exactly as for an
    order that does not exist."""
    order = orders_visible(user).filter(number=number).first()
    if order is None:
        raise NotFoundError(f"Order {number} not found.", code="order_not_found")
    return order


# --- orders ----------------------------------------------------------------------------------------


def order_list(*, user, filters: dict | None = None) -> QuerySet[Order]:
    """The orders `user` may reach, with what a list shows, newest first. Filters: see orders.api.filters."""
    qs = (
        orders_visible(user)
        .select_related("channel", "customer")
        .prefetch_related("tags")
        .annotate(
            under_fraud_review=Exists(
                OrderHold.objects.filter(order=OuterRef("pk"), reason="fraud_review", released_at__isnull=True)
            )
        )
    )
    filters = filters or {}
    if search := (filters.get("q") or "").strip():
        qs = qs.filter(order_search_q(search))
    return qs.order_by("-placed_at", "-id")


def order_search_q(term: str) -> Q:
    """Exact matches on indexed columns: order number, external id, customer email.

    Every branch must be able to use an index, or PostgreSQL scans the whole table for the OR:
    `number` as stored (numbers are upper case; the unique index), the e-mail through the
    `Lower(email)` index (`iexact` compiles to UPPER() and misses it), and the sequence digits alone
    ("123") as this year's and last year's full numbers rather than a `LIKE '%123'` scan.
    """
    term = term.strip()
    query = Q(number=term.upper()) | Q(external_id=term) | Q(Exact(Lower("email"), term.lower()))
    if term.isdigit() and len(term) <= 9:
        year = timezone.localdate().year
        query |= Q(number__in=[format_number("ORD", y, int(term)) for y in (year, year - 1)])
    return query


def order_get(*, user, number: str) -> Order:
    """One order `user` may reach, with lines, holds (with their users), events (with actors) and tags."""
    try:
        return (
            orders_visible(user)
            .select_related("channel", "customer", "pickup_location")
            .prefetch_related(
                Prefetch("lines", queryset=OrderLine.objects.order_by("line_number")),
                Prefetch("holds", queryset=OrderHold.objects.select_related("placed_by", "released_by")),
                Prefetch("events", queryset=OrderEvent.objects.select_related("actor").order_by("created_at", "id")),
                "tags",
            )
            .get(number=number)
        )
    except Order.DoesNotExist:
        raise NotFoundError(f"Order {number} not found.", code="order_not_found") from None


# FSM transitions that are actions of their own. pay, ship and deliver happen inside the
# mark_paid, record_shipment and mark_delivered services, whose rules are below.
_TRANSITION_ACTIONS = {
    "submit": "submit",
    "approve": "approve",
    "accept_on_terms": "accept_on_terms",
    "flag_for_review": "flag_for_review",
    "accept": "accept",
    "start_preparation": "start_preparation",
    "complete": "complete",
    "cancel": "cancel",
}


def order_allowed_actions(*, order: Order, user) -> set[str]:
    """What `user` may do to `order` now: the cockpit's buttons and the API's `allowed_actions`.

    Lifecycle transitions come from django-fsm (source state, conditions, permission); the other
    actions from the permission and the state rules their services apply (the services check
    again). Expects lines and holds prefetched, as `order_get` returns the order.
    """
    allowed = {
        _TRANSITION_ACTIONS[t.name]
        for t in order.get_available_user_status_transitions(user)
        if t.name in _TRANSITION_ACTIONS
    }
    lines = list(order.lines.all())
    active_holds = [hold for hold in order.holds.all() if hold.released_at is None]
    open_status = order.status not in TERMINAL_OR_SHIPPED
    if (
        user.has_perm("orders.record_payment_order")
        and order.status not in {OrderStatus.DRAFT, OrderStatus.CANCELED, OrderStatus.COMPLETED}
        and order.amount_paid < order.total_gross
    ):
        allowed.add("mark_paid")
    if (
        user.has_perm("orders.ship_order")
        and order.status in {OrderStatus.IN_PREPARATION, OrderStatus.PARTIALLY_SHIPPED}
        and not active_holds
        and any(line.quantity_open > 0 for line in lines)
    ):
        allowed.add("record_shipment")
    if (
        user.has_perm("orders.deliver_order")
        and order.status in {OrderStatus.PARTIALLY_SHIPPED, OrderStatus.SHIPPED}
        and any(line.quantity_shipped > line.quantity_delivered for line in lines)
    ):
        allowed.add("mark_delivered")
    if user.has_perm("orders.place_hold") and open_status and len(active_holds) < len(HoldReason.values):
        allowed.add("hold")
    if user.has_perm("orders.release_hold") and active_holds:
        allowed.add("release_hold")
    if user.has_perm("orders.add_note"):
        allowed.add("add_note")
    if user.has_perm("orders.tag_order"):
        allowed |= {"tag", "untag"}  # removing a tag the order lacks is a harmless no-op
    if (
        user.has_perm("orders.change_address_order")
        and open_status
        and not any(line.quantity_shipped for line in lines)
    ):
        allowed.add("change_address")
    return allowed
