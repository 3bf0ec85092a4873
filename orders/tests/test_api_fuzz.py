"""Property: whatever JSON value lands in whatever field of an order, a payment event or a carrier's
tracking batch, the answer is never a server error, and a refusal writes nothing.

Values include NUL and other control characters, unpaired surrogates, numbers far beyond any money
column, NaN and exponents, strings of thousands of characters and documents nested deeper than
Python's parser recurses. Each example replaces one field (or adds one) of a valid request, so
that most examples get past the shape checks and reach the services. Derandomized: CI runs the
same examples every time; run with `--hypothesis-seed` and without derandomize to explore.
"""

import json
import uuid

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import Payment, PaymentEvent
from fulfillment.models import TrackingUpdate
from oms.cockpit import roles
from oms.core.models import IdempotencyRecord
from orders.models import Customer, Order, OrderEvent, OrderHold, OrderLine, OrderNote
from orders.tests.api_fixtures import *  # noqa: F403 - its fixtures (__all__)
from orders.tests.api_fixtures import ORDERS_URL, token_client
from orders.tests.factories import make_user, order_payload

pytestmark = pytest.mark.django_db

EXAMPLES = 120
PAYMENTS_URL = "/api/v1/billing/payments/sandbox/events/"
TRACKING_URL = "/api/v1/fulfillment/carriers/sandbox/tracking/"


class Raw:
    """JSON text put into the body as is (too deep for json.dumps to write)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self):
        return f"Raw({self.text[:20]}…{len(self.text)} chars)"


NASTY = ["\x00", "\ud800", "\udfff", "\ud83d", "\x1f", "\x7f", "\u202e", "\ufeff", "\u2028", "'", '"', "\\"]
characters = st.one_of(st.characters(), st.sampled_from(NASTY))
texts = st.one_of(
    st.text(characters, max_size=30),
    st.builds(lambda c, n: c * n, characters, st.integers(200, 20_000)),  # long strings
    st.sampled_from(
        [
            "",
            " ",
            "%00",
            "a\x00b",
            "Par\ud800is",
            "EUR",
            "JPY",
            "XXX",
            "FR",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59+14:00",
        ]
    ),
)
numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1e15", "1e999999", "-1e15", "NaN", "Infinity", "0.0000000000001", "999999999.995", "-0"]),
)
leaves = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.one_of(
    st.recursive(
        leaves,
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(characters, max_size=8), children),
        max_leaves=8,
    ),
    st.builds(lambda depth: Raw("[" * depth + "]" * depth), st.integers(33, 100_000)),
    st.builds(lambda depth: Raw('{"a":' * depth + "1" + "}" * depth), st.integers(33, 5_000)),
)


def paths_of(value, prefix: str = "") -> list[str]:
    """Every dotted path of a JSON document (objects, lists and leaves), plus a new key per object."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        found.append(f"{prefix}.extra_field" if prefix else "extra_field")
        for key, child in value.items():
            found += paths_of(child, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths_of(child, f"{prefix}.{index}")
    return found


def body_with(payload: dict, path: str, value) -> str:
    """The request body: payload with `value` at `path`, as JSON text (lone surrogates escaped)."""
    placeholder = f"__raw_{uuid.uuid4().hex}__"
    document = json.loads(json.dumps(payload))
    *parents, last = path.split(".")
    target = document
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    (target.__setitem__(int(last), placeholder) if isinstance(target, list) else target.__setitem__(last, placeholder))
    text = json.dumps(document)
    replacement = value.text if isinstance(value, Raw) else json.dumps(value)
    return text.replace(json.dumps(placeholder), replacement)


def written() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            Order,
            OrderLine,
            Customer,
            OrderEvent,
            OrderHold,
            OrderNote,
            Payment,
            PaymentEvent,
            TrackingUpdate,
        )
    } | {"order_history": Order.history.count()}


def assert_handled(client, url: str, body: str, with_key: bool):
    headers = {"HTTP_IDEMPOTENCY_KEY": uuid.uuid4().hex} if with_key else {}
    before = written()

    response = client.post(url, data=body, content_type="application/json", **headers)

    assert response.status_code < 500, (response.status_code, response.content[:500])
    if response.status_code >= 400:
        error = response.json()
        assert set(error) == {"code", "message", "extra"}, error
        assert written() == before, "a refused request wrote rows"
        if with_key and response.status_code != 413:
            # The one row a refusal keeps: its answer, so that a retry with the key gets the same one.
            record = IdempotencyRecord.objects.get(key=headers["HTTP_IDEMPOTENCY_KEY"])
            assert record.response_status == response.status_code
    return response


ORDER_BASE = order_payload(
    external_id="fuzz-base",
    shipping_address={"name": "Bo", "line1": "2 rue Neuve", "city": "Lyon", "country": "FR", "postal_code": "69001"},
    risk={"score": 10, "facts": ["new customer"]},
    tags=["fuzz"],
    note="hello",
    placed_at="2026-01-02T03:04:05Z",
)
ORDER_BASE["lines"][0]["attributes"] = {"colour": "red"}
PAYMENT_BASE = {
    "id": "evt-fuzz",
    "type": "captured",
    "payment_reference": "pi-fuzz",
    "amount": "10.00",
    "currency": "EUR",
    "order": "ORD-2026-000001",
    "method": "card",
    "reason": "ok",
}
TRACKING_BASE = {
    "events": [
        {
            "id": "trk-fuzz",
            "tracking_number": "SBX0000000001",
            "status": "IN_TRANSIT",
            "occurred_at": "2026-01-02T03:04:05+00:00",
            "description": "At the hub",
            "location": "Lyon",
        }
    ]
}


@pytest.fixture
def finance_client(db):
    return token_client(make_user(roles.FINANCE_MANAGER, username="fuzz-finance"))


@pytest.fixture
def warehouse_client(db):
    return token_client(make_user(roles.WAREHOUSE, username="fuzz-warehouse"))


fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@fuzz
@given(path=st.sampled_from(paths_of(ORDER_BASE)), value=json_values, with_key=st.booleans())
def test_order_intake_never_fails_and_a_refusal_writes_nothing(api_client, channel, path, value, with_key):
    payload = dict(ORDER_BASE, external_id=f"fuzz-{uuid.uuid4().hex}")
    assert_handled(api_client, ORDERS_URL, body_with(payload, path, value), with_key)


@fuzz
@given(path=st.sampled_from(paths_of(PAYMENT_BASE)), value=json_values, with_key=st.booleans())
def test_payment_events_never_fail_and_a_refusal_writes_nothing(channel, finance_client, path, value, with_key):
    payload = dict(PAYMENT_BASE, id=f"evt-{uuid.uuid4().hex}")
    assert_handled(finance_client, PAYMENTS_URL, body_with(payload, path, value), with_key)


@fuzz
@given(path=st.sampled_from(paths_of(TRACKING_BASE)), value=json_values, with_key=st.booleans())
def test_carrier_tracking_never_fails_and_a_refusal_writes_nothing(channel, warehouse_client, path, value, with_key):
    payload = json.loads(json.dumps(TRACKING_BASE))
    payload["events"][0]["id"] = f"trk-{uuid.uuid4().hex}"
    payload["events"][0]["occurred_at"] = timezone.now().isoformat()
    assert_handled(warehouse_client, TRACKING_URL, body_with(payload, path, value), with_key)


def test_the_fuzzed_requests_start_from_requests_that_are_accepted(
    api_client, channel, finance_client, warehouse_client
):
    """The base requests are valid: the fuzz changes one field of a request that would succeed."""
    order = assert_handled(api_client, ORDERS_URL, json.dumps(ORDER_BASE), False)
    unpaid = assert_handled(api_client, ORDERS_URL, json.dumps(dict(ORDER_BASE, external_id="x", payment={})), False)
    assert order.status_code == 201, order.content
    event = dict(PAYMENT_BASE, order=unpaid.json()["number"])
    assert assert_handled(finance_client, PAYMENTS_URL, json.dumps(event), False).status_code == 200
    tracking = json.loads(json.dumps(TRACKING_BASE))
    tracking["events"][0]["occurred_at"] = timezone.now().isoformat()
    assert assert_handled(warehouse_client, TRACKING_URL, json.dumps(tracking), False).status_code in {200, 404}
