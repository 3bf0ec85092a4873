"""The API does what /api/schema/ says, for every operation and every API client role.

schemathesis reads the schema from a live server (gunicorn in a subprocess, as in production, on
the test database seeded here through the real services), generates a few schema-valid requests
per operation and checks each answer:

- not_a_server_error: no 5xx, whatever valid input is sent;
- status_code_conformance and content_type_conformance: every status and content type that comes
  back is documented for the operation;
- response_schema_conformance: every body matches its documented schema (nullable, required,
  formats, enums);
- positive_data_acceptance: data the schema calls valid is not refused as invalid (400). The
  statuses that remain legitimate answers to a valid request are EXPECTED_FOR_VALID_DATA below.

Bounded and stable: `MAX_EXAMPLES` examples per operation and role, derandomized (the same
requests on every run), no shrinking, no example database.
"""

import datetime
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import hypothesis
import pytest
import requests
import schemathesis
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from rest_framework.authtoken.models import Token
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.generation import GenerationMode

from billing.models import CreditNote, Dispute, Export, Invoice, Payment, Refund
from billing.services.disputes import dispute_open
from billing.services.exports import export_request
from billing.services.invoices import credit_note_issue, invoice_issue
from billing.services.refunds import refund_request
from fulfillment import services as fulfillment
from fulfillment.models import Shipment, ShortPick, Wave
from fulfillment.tests.fixtures import make_two_locations, prepared_order
from inventory.models import CycleCount, Location, Product
from inventory.services import count_submit
from oms.core.actors import get_system_user
from oms.core.money import minor_unit_exponent
from orders import services as orders
from orders.cases import case_open
from orders.models import Case, Channel, Order, OrderHold
from orders.tests.factories import order_payload
from returns.models import ReturnRequest
from returns.services import return_request
from returns.tests.fixtures import delivered_order

# django_db: pytest-django creates the test database only for a session with a test that asks for
# it. The test itself reads nothing: the module's fixture seeds and commits, the server answers.
# The whole run (seed, server, 82 operations x 5 roles) takes minutes on a shared 2-core machine.
pytestmark = [pytest.mark.slow, pytest.mark.django_db, pytest.mark.timeout(1200)]

MAX_EXAMPLES = 3
SERVER_START_SECONDS = 60

# What a request the schema calls valid may still get, and why:
# 401/403: the role lacks the permission (each role runs every operation);
# 404: the object named in the path does not exist, or is not the client's (a generated number);
# 409: the object's state does not allow the action now (the seeded orders are in every state);
# 422: the Idempotency-Key was already used with another request (generated keys repeat).
# Not 400: a schema-valid request refused as invalid means the schema does not say what the API
# accepts, which is what this test is for (RULES_IN_WORDS lists the rules the schema cannot state).
EXPECTED_FOR_VALID_DATA = ["2xx", "401", "403", "404", "409", "422"]

# Rules the schema can state only in words, because they depend on stored data, on another field
# or on the caller: a 400 whose every field error is one of these is a legitimate answer to a
# schema-valid request. (field path, message), both regular expressions.
RULES_IN_WORDS = [
    # Stored data: the lines, shipments and line numbers a generated request names.
    (r"quantities\.?.*", r"Unknown line"),
    (r"shipments\.\d+", r"Unknown shipment"),
    (r"lines\.\d+\.line", r"has no line"),
    (r"lines\.\d+\.quantity", r"At most \d+ for line"),
    (r"picked", r"Give the units picked per line"),
    # Another field: a line's or an order's total within the largest amount, an amount above 0.
    (r"lines\.\d+|total|non_field_errors", r"exceeds 1,000,000,000"),
    (r"amount", r"Must be greater than 0"),
    (r"lines\.\d+\.discount", r"exceeds the line amount"),
    (r"lines\.\d+\.sku", r"Already on line"),
    (r"period_end", r"ends before it starts"),
    (r"lines\.\d+\.supply", r"No open incoming supply"),
    # Still a gap of the schema: billing's refund amount does not state its bound yet.
    (r"amount", r"Must be at most 1,000,000,000"),
    # The caller: an API client exports only its own channels, so it must name one.
    (r"channel", r"an API client exports one of its channels"),
]

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
]


# --- the seeded world --------------------------------------------------------------------------


@dataclass
class World:
    """Numbers and ids of real objects, by kind, for the path and body of the generated requests."""

    values: dict[str, list] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


def _api_roles() -> list[str]:
    """The API client roles: one per job once the single "API client" role is split."""
    try:
        from orders.choices import ApiClientRole  # noqa: PLC0415 (the split roles may not exist yet)
    except ImportError:
        return ["API client"]
    return list(ApiClientRole.values)


def _api_client_token(role: str) -> str:
    try:
        from orders.tests.factories import make_api_client  # noqa: PLC0415 (the split roles may not exist yet)
    except ImportError:
        from orders.tests.factories import make_user  # noqa: PLC0415

        user = make_user(role, username=f"schema-{role}".replace(" ", "-").lower())
    else:
        user = make_api_client(role, "web", username=f"schema-{role}")
    return Token.objects.create(user=user).key


def _seed() -> World:
    """Orders in several states with their parcels, a wave, a short pick, an invoice, a credit note, a
    refund, a return, a dispute, an export (of every channel: its channel is null), a case, a count."""
    system = get_system_user()
    locations = make_two_locations()
    warehouse = locations.warehouse

    delivered = delivered_order(locations)
    prepared = prepared_order()
    confirmed, _ = orders.order_create(actor=system, **order_payload())
    orders.order_create(actor=system, **order_payload(payment={"status": "unpaid"}))
    orders.order_hold(order=confirmed, actor=system, reason="manual", note="Asked to wait.")

    # The prepared order's Paris parcel is picked short (an open short pick), its Lyon parcel waves.
    paris = Shipment.objects.get(order=prepared, location=locations.paris)
    lyon = Shipment.objects.get(order=prepared, location=locations.lyon)
    fulfillment.shipment_confirm_picks(
        shipment=paris, actor=warehouse, picked={line.pk: 0 for line in paris.lines.all()}, note="Bin empty."
    )
    fulfillment.wave_create(location=locations.lyon, actor=system, shipment_ids=[lyon.pk])

    invoice = invoice_issue(order=delivered, actor=system)
    credit_note_issue(invoice=invoice, actor=system, reason="goodwill", amount=Decimal("1.00"))
    refund_request(order=delivered, actor=system, amount=Decimal("2.00"), reason="goodwill")
    first_line = delivered.lines.order_by("line_number").first()
    return_request(order=delivered, actor=system, lines=[{"line": first_line, "quantity": 1}], reason="changed_mind")
    dispute_open(
        payment=Payment.objects.filter(order=delivered).first(),
        provider_reference="dp_schema",
        reason="fraudulent",
        amount=Decimal("5.00"),
        respond_by=timezone.now() + datetime.timedelta(days=7),
        actor=system,
    )
    export_request(
        kind="invoices_csv", period_start=datetime.date(2026, 1, 1), period_end=timezone.localdate(), actor=system
    )
    case_open(kind="other", source_key="schema:1", title="A question", actor=system, order=confirmed, by_hand=True)
    count_submit(location=locations.paris, lines=[(locations.mug, 5)], actor=system, reference="cc-1")

    def numbers(model):
        return list(model.objects.order_by("pk").values_list("number", flat=True))

    def ids(model):
        return list(model.objects.order_by("pk").values_list("pk", flat=True))

    world = World()
    world.values = {
        "order": numbers(Order),
        "shipment": numbers(Shipment),
        "wave": numbers(Wave),
        "invoice": numbers(Invoice),
        "credit_note": numbers(CreditNote),
        "refund": numbers(Refund),
        "return": numbers(ReturnRequest),
        "case": numbers(Case),
        "hold": list(OrderHold.objects.order_by("pk").values_list("order__number", "pk")),
        "short_pick": ids(ShortPick),
        "count": ids(CycleCount),
        "export": ids(Export),
        "dispute": ids(Dispute),
        "sku": list(Product.objects.order_by("pk").values_list("sku", flat=True)),
        "location": list(Location.objects.order_by("pk").values_list("code", flat=True)),
        "channel": list(Channel.objects.order_by("pk").values_list("code", flat=True)),
    }
    world.tokens = {role: _api_client_token(role) for role in _api_roles()}
    return world


# --- the live server ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] or ""
    if db["PASSWORD"]:
        auth += f":{db['PASSWORD']}"
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    """The test database seeded and committed for the server (and its files: labels, pick lists);
    emptied afterwards, as a transactional test leaves it."""
    var = tmp_path_factory.mktemp("schemathesis-server")
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=var / "media"):
        seeded = _seed()
        database_url = _database_url()
    yield seeded, database_url, var
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture(scope="module")
def live_api(world):
    """gunicorn serving the seeded test database: its base URL, /api/schema/ as it serves it, its log."""
    seeded, database_url, var = world
    port = _free_port()
    log = var / "server.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "oms.settings.test"),
        "DATABASE_URL": database_url,
        "OMS_VAR_DIR": str(var),
        "MEDIA_ROOT": str(var / "media"),
        # Tasks (exports, notifications) run in the request: nothing is left queued for other tests.
        "CELERY_BROKER_URL": "memory://",
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "DEBUG": "false",
    }
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    command = [gunicorn, "oms.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4"]
    with open(log, "wb") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_SECONDS
    while True:
        try:
            requests.get(f"{base_url}/admin/login/", timeout=SERVER_START_SECONDS)
            break
        except requests.ConnectionError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"gunicorn did not start:\n{log.read_text()[-5000:]}")
            time.sleep(0.2)
    # The schema, once (generating it takes seconds): every role reads the same.
    token = next(iter(seeded.tokens.values()))
    response = requests.get(
        f"{base_url}/api/schema/?format=json", headers={"Authorization": f"Token {token}"}, timeout=120
    )
    assert response.status_code == 200, response.text[:2000]
    yield base_url, response.json(), log
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)


@pytest.fixture(scope="module", params=_api_roles())
def api_schema(request, world, live_api):
    """/api/schema/ as the server gives it, with the role's token on every request."""
    seeded, _database_url, _var = world
    base_url, raw_schema, _log = live_api
    token = seeded.tokens[request.param]
    config = SchemathesisConfig.from_dict(
        {
            "base-url": base_url,
            "headers": {"Authorization": f"Token {token}"},
            "generation": {
                "mode": "positive",
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "no-shrink": True,
                # The API refuses NUL in any text (PostgreSQL cannot store it): documented in the
                # schema's description, and fuzzed by the intake's property test, not here.
                "allow-x00": False,
            },
            "phases": {
                "examples": {"enabled": True},
                "coverage": {"enabled": False},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "checks": {
                "enabled": False,
                **{name: {"enabled": True} for name in CHECKS},
                "positive_data_acceptance": {"enabled": True, "expected-statuses": EXPECTED_FOR_VALID_DATA},
            },
        }
    )
    schema = schemathesis.openapi.from_dict(raw_schema, config=config)
    schema.world = seeded
    return schema


# --- steering generated requests to real objects -----------------------------------------------

# Path parameters name objects by number or id: a generated one is (almost) never a real object, so
# most requests would stop at 404. Each is mapped to a real one, and now and then left as generated.
PATH_OBJECTS = [
    (r"^/api/v1/(billing/)?orders/\{number\}", "number", "order"),
    (r"^/api/v1/fulfillment/shipments/\{number\}", "number", "shipment"),
    (r"^/api/v1/fulfillment/waves/\{number\}", "number", "wave"),
    (r"^/api/v1/billing/invoices/\{number\}", "number", "invoice"),
    (r"^/api/v1/billing/credit-notes/\{number\}", "number", "credit_note"),
    (r"^/api/v1/billing/refunds/\{number\}", "number", "refund"),
    (r"^/api/v1/billing/disputes/\{id\}", "id", "dispute"),
    (r"^/api/v1/billing/exports/\{export_id\}", "export_id", "export"),
    (r"^/api/v1/returns/\{number\}", "number", "return"),
    (r"^/api/v1/cases/\{number\}", "number", "case"),
    (r"^/api/v1/fulfillment/short-picks/\{short_pick_id\}", "short_pick_id", "short_pick"),
    (r"^/api/v1/inventory/counts/\{count_id\}", "count_id", "count"),
    (r"^/api/v1/inventory/products/\{sku\}", "sku", "sku"),
]
# Fields of bodies and queries that name other objects by code or number (data, not shape).
REFERENCE_FIELDS = {
    "channel": "channel",
    "location": "location",
    "restock_location": "location",
    "sku": "sku",
    "exchange_for": "sku",
    "order": "order",
    "shipment": "shipment",
    "credit_note": "credit_note",
}


def _pick(values: list, generated) -> object:
    """One of the real values, chosen by the generated one (stable across runs); the generated
    value itself one time in len(values) + 1."""
    index = zlib.crc32(repr(generated).encode()) % (len(values) + 1)
    return generated if index == len(values) or not values else values[index]


def _steer(case, world: World) -> None:
    values = world.values
    for pattern, name, kind in PATH_OBJECTS:
        if re.match(pattern, case.path) and name in (case.path_parameters or {}):
            case.path_parameters[name] = _pick(values[kind], case.path_parameters[name])
    if "{hold_id}" in case.path:
        number, hold_id = values["hold"][0]
        case.path_parameters.update(number=number, hold_id=hold_id)
    if case.query:
        # An opaque token the API issued (its `next` link): a client sends back only one it was given.
        case.query.pop("cursor", None)
    for container in (case.query, case.body):
        _steer_references(container, values)
    if isinstance(case.body, dict):
        currency = case.body.get("currency")
        _fit_amounts(case.body, minor_unit_exponent(currency if isinstance(currency, str) else "EUR"))


def _steer_references(data, values) -> None:
    # Always a real one: an unknown code in a body or a query is a 400 by design (field error).
    if isinstance(data, dict):
        for key, value in list(data.items()):
            kind = REFERENCE_FIELDS.get(key)
            if kind and isinstance(value, str) and value:
                real = values[kind]
                data[key] = real[zlib.crc32(value.encode("utf-8", "surrogatepass")) % len(real)]
            else:
                _steer_references(value, values)
    elif isinstance(data, list):
        for item in data:
            _steer_references(item, values)


# Amounts must also fit their currency's minor unit (3 × 19.50 JPY is refused): a rule across two
# fields that the schema states in words. Amounts are cut to the unit of the body's currency, else
# of the seeded orders' (EUR).
AMOUNT_FIELDS = {"unit_price", "discount", "price", "amount", "compensation"}


def _fit_amounts(data, exponent: Decimal) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            if key in AMOUNT_FIELDS and isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value):
                data[key] = str(Decimal(value).quantize(exponent, rounding=ROUND_DOWN))
            else:
                _fit_amounts(value, exponent)
    elif isinstance(data, list):
        for item in data:
            _fit_amounts(item, exponent)


def _rule_in_words(response) -> bool:
    """A 400 naming only rules of RULES_IN_WORDS."""
    if response.status_code != 400:
        return False
    fields = (response.json().get("extra") or {}).get("fields") or {}
    return bool(fields) and all(
        any(re.fullmatch(path, name) and re.search(message, text) for path, message in RULES_IN_WORDS)
        for name, messages in fields.items()
        for text in messages
    )


def _failures_of(operation, world: World) -> list[str]:
    """What went wrong on the operation's examples: one line per distinct failure, with the request."""
    found: dict[str, str] = {}

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(GenerationMode.POSITIVE))
    def run(case):
        _steer(case, world)
        response = case.call()
        try:
            case.validate_response(response)
        except (Failure, FailureGroup) as exc:
            answer = f"{response.status_code} {response.text[:600]}"
            for failure in exc.exceptions if isinstance(exc, FailureGroup) else [exc]:
                if failure.title == "Schema-valid request rejected" and _rule_in_words(response):
                    continue
                found.setdefault(
                    f"{failure.title}: {failure.message}".splitlines()[0],
                    f"{failure.title}\n{failure.message}\n{case.as_curl_command()}\n→ {answer}",
                )

    run()
    return list(found.values())


def test_every_operation_answers_as_its_schema_says(api_schema, subtests, live_api):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 82
    failed = []
    for operation in operations:
        with subtests.test(operation.label):
            failures = _failures_of(operation, api_schema.world)
            if failures:
                failed.append(operation.label)
            assert not failures, "\n\n".join(failures)
    _base_url, _raw_schema, log = live_api
    errors = log.read_text(errors="replace").split("Traceback")[1:]
    assert not failed, f"{len(failed)} of {len(operations)} operations: {failed}" + "".join(
        f"\n\nServer log: Traceback{error[-3000:]}" for error in errors[:5]
    )
