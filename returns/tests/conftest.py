import pytest
from django.core.management import call_command

from fulfillment.tests.fixtures import make_two_locations
from oms.cockpit.roles import ADMINISTRATOR
from orders.tests.factories import make_user


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.OMS_NOTIFICATION_GROUP_SECONDS = 0


@pytest.fixture
def world(db):
    return make_two_locations()


@pytest.fixture
def manager(db):
    """Returns' every permission (the Administrator role has returns.*)."""
    # The roles migration ran before this app's permissions existed: sync the groups again.
    call_command("sync_roles", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return make_user(ADMINISTRATOR)
