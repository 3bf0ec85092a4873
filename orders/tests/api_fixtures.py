"""Fixtures and helpers of the API tests; the shared ones are in orders/tests/conftest.py.

Test modules take the fixtures with `from orders.tests.api_fixtures import *` (only `__all__`, the
fixtures) and import the helpers by name.
"""

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders.models import Customer, Order, OrderEvent, OrderHold, OrderLine, OrderNote
from orders.tests.factories import make_user

__all__ = ["api_client", "client_for", "user_with_role"]

ORDERS_URL = "/api/v1/orders/"


def order_url(number: str, action: str = "") -> str:
    return f"{ORDERS_URL}{number}/{action + '/' if action else ''}"


def token_client(user: User) -> APIClient:
    """A client that authenticates as an integration does: with the user's API token."""
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def row_counts() -> dict[str, int]:
    """Rows an order write may touch: equal before and after a refused request."""
    return {
        "orders": Order.objects.count(),
        "lines": OrderLine.objects.count(),
        "customers": Customer.objects.count(),
        "events": OrderEvent.objects.count(),
        "holds": OrderHold.objects.count(),
        "notes": OrderNote.objects.count(),
        "order_history": Order.history.count(),
    }


def order_state(order: Order) -> dict:
    """What a refused action must leave as it was."""
    order = Order.objects.get(pk=order.pk)
    return {
        "status": order.status,
        "payment_status": order.payment_status,
        "fulfillment_status": order.fulfillment_status,
        "amount_paid": order.amount_paid,
        "events": order.events.count(),
        "history": order.history.count(),
        "holds": list(order.holds.values_list("pk", "released_at")),
        "tags": sorted(order.tags.values_list("name", flat=True)),
        "shipping_address": order.shipping_address,
        "lines": list(order.lines.values_list("quantity_shipped", "quantity_delivered", "quantity_canceled")),
    }


def error_of(response) -> dict:
    """The error body, checked to have the API's one shape."""
    body = response.json()
    assert set(body) == {"code", "message", "extra"}, body
    assert isinstance(body["message"], str) and body["message"]
    return body


@pytest.fixture
def api_client(api_user) -> APIClient:
    return token_client(api_user)


@pytest.fixture
def user_with_role(db):
    """user_with_role(*role names) → a user in those groups (no group at all: a bare staff user)."""

    def _make(*roles: str, username: str | None = None) -> User:
        return make_user(*roles, username=username)

    return _make


@pytest.fixture
def client_for():
    """client_for(user) → an APIClient authenticated with that user's token."""
    return token_client


def post_action(client: APIClient, order, action: str, body=None, **extra):
    """POST an action on an order (an Order or a number) with a JSON body."""
    number = order if isinstance(order, str) else order.number
    return client.post(order_url(number, action), {} if body is None else body, format="json", **extra)
