"""Shared set-up of the billing tests: media in a temporary folder, and people with billing rights."""

import pytest
from django.contrib.auth.models import Permission

from fulfillment.tests.fixtures import make_two_locations
from oms.cockpit import roles
from orders.tests.factories import make_user

BILLING_PERMISSIONS = (
    "issue_invoice",
    "issue_creditnote",
    "view_invoice",
    "view_creditnote",
    "view_payment",
    "add_paymentevent",
)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.OMS_NOTIFICATION_GROUP_SECONDS = 0


def make_finance_user(**extra):
    """A finance user who may issue invoices and credit notes and record payments (the role's
    billing permissions are granted here until oms.cockpit.roles lists them)."""
    user = make_user(roles.FINANCE, **extra)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="billing", codename__in=BILLING_PERMISSIONS)
    )
    return user


@pytest.fixture
def world(db):
    return make_two_locations()


@pytest.fixture
def finance(db):
    return make_finance_user()
