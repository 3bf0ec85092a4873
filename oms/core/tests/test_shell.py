"""oms.core.shell: the shell's operating-system users mapped to staff accounts."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from oms.core.shell import shell_operators


def test_the_operators_are_read_from_a_list_of_os_user_equals_account(settings):
    settings.OMS_SHELL_OPERATORS = " alice = finance-manager, bob=finance ,"

    assert shell_operators() == {"alice": "finance-manager", "bob": "finance"}


def test_a_malformed_operator_entry_stops_the_command_instead_of_being_skipped(settings):
    for malformed in ("alice", "alice=", "=finance", "alice=finance,bob"):
        settings.OMS_SHELL_OPERATORS = malformed
        with pytest.raises(ImproperlyConfigured, match="OMS_SHELL_OPERATORS"):
            shell_operators()


def test_no_operators_by_default(settings):
    settings.OMS_SHELL_OPERATORS = ""

    assert shell_operators() == {}
