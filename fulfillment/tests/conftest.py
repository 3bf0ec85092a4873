import pytest

from fulfillment.tests.fixtures import make_two_locations


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.OMS_NOTIFICATION_GROUP_SECONDS = 0


@pytest.fixture
def two_locations(db):
    return make_two_locations()
