import datetime

import pytest

from inventory.models import Location, Product, TransitTime
from inventory.services import stock_receive
from oms.celery import app
from oms.cockpit import roles
from oms.core.actors import get_system_user
from orders import services as order_services
from orders.models import Channel
from orders.tests.factories import make_user, order_payload


@pytest.fixture
def boss(db):
    return make_user(roles.ADMINISTRATOR, username="boss")


@pytest.fixture
def web(db):
    # The API client fixture may have made it already: the channel its role is scoped to.
    return Channel.objects.get_or_create(code="web", defaults={"name": "Web store", "kind": "web"})[0]


@pytest.fixture
def locations(db):
    """Paris (1 day, 4.90), Lyon store shipping from store (2 days, 6.50), London 3PL (3 days, 9.00)."""
    paris = Location.objects.create(
        code="paris",
        name="Paris warehouse",
        kind="warehouse",
        country="FR",
        city="Paris",
        handling_days=1,
        cost_per_parcel="4.90",
        priority=10,
    )
    lyon = Location.objects.create(
        code="lyon",
        name="Lyon store",
        kind="store",
        country="FR",
        city="Lyon",
        handling_days=2,
        cost_per_parcel="6.50",
        ships_from_store=True,
        store_pickup=True,
        priority=20,
    )
    london = Location.objects.create(
        code="london",
        name="London 3PL",
        kind="3pl",
        country="GB",
        city="London",
        handling_days=1,
        cost_per_parcel="9.00",
        priority=30,
    )
    for location in (paris, lyon, london):
        TransitTime.objects.create(location=location, country="FR", days=1 if location.country == "FR" else 2)
    return {"paris": paris, "lyon": lyon, "london": london}


@pytest.fixture
def product(db):
    def _make(sku: str, **fields) -> Product:
        return Product.objects.create(sku=sku, name=fields.pop("name", sku.title()), **fields)

    return _make


@pytest.fixture
def receive(db):
    def _receive(product, location, quantity):
        return stock_receive(product=product, location=location, quantity=quantity, actor=get_system_user())

    return _receive


@pytest.fixture
def place_order(boss):
    """place_order({sku: qty, ...}, channel="web", paid=True, **payload) → a confirmed (or awaiting) order."""

    def _place(skus: dict, channel="web", paid=True, **overrides):
        lines = [
            {"sku": sku, "name": sku.title(), "quantity": qty, "unit_price": "10.00", "tax_rate": "0.20"}
            for sku, qty in skus.items()
        ]
        payload = order_payload(channel=channel, lines=lines, shipping=None, **overrides)
        if not paid:
            payload["payment"] = {"status": "unpaid"}
        order, _ = order_services.order_create(actor=boss, **payload)
        return order

    return _place


TOMORROW = datetime.date.today() + datetime.timedelta(days=1)


@pytest.fixture
def celery_eager():
    """Run tasks in-process for this test (the broker path is tested in integrations)."""
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
