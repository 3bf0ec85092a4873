# The order fixtures (real orders through the services) are shared with the orders tests.
from orders.tests.conftest import admin_user_role, api_user, channel, make_order  # noqa: F401
