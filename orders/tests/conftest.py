import pytest

from oms.cockpit import roles
from orders import services
from orders.tests.factories import ChannelFactory, make_catalog, make_user, order_payload


@pytest.fixture
def channel(db):
    make_catalog()
    return ChannelFactory()


@pytest.fixture
def api_user(db):
    return make_user(roles.API_STORE_FRONT, username="api")


@pytest.fixture
def admin_user_role(db):
    return make_user(roles.ADMINISTRATOR, username="administrator")


@pytest.fixture
def make_order(channel, api_user):
    """make_order(**payload overrides) → a real order created through order_create."""

    def _make(actor=None, **overrides):
        order, created = services.order_create(actor=actor or api_user, **order_payload(**overrides))
        assert created
        return order

    return _make
