"""`refund_approve` and `refund_process` from a shell act as a person only when the shell proves who.

The operating-system user running the command is mapped to a staff account by
OMS_SHELL_OPERATORS and acts as that account; anyone else names the account with --as and gives
its password (read from stdin here, as when it is not a terminal). How the identity was
established is kept on the refund's event and history; every refusal is logged with the OS user.
"""

import io
import logging
import os
import pwd
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from billing.models import Refund
from billing.services.refunds import refund_approve, refund_request
from billing.tests.refund_support import APPROVER, MANAGER, REQUESTER, finance_user, paid_order
from orders.models import OrderEvent

pytestmark = pytest.mark.django_db

# The real user running the tests (not $USER: the commands do not trust the environment).
OS_USER = pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.OMS_REFUND_SECOND_APPROVER_ABOVE = Decimal("50.00")
    settings.OMS_PAYMENT_SANDBOX_FAIL_REFUNDS = False
    settings.OMS_NOTIFICATION_GROUP_SECONDS = 0
    settings.OMS_SHELL_OPERATORS = ""


def _requested(amount="20"):
    order = paid_order()
    return refund_request(order=order, actor=finance_user(*REQUESTER), amount=amount, reason="goodwill")


def _approval_event(refund):
    return OrderEvent.objects.get(order=refund.order, type="refund_approved")


def _unchanged(refund):
    refreshed = Refund.objects.get(pk=refund.pk)
    return refreshed.status == refund.status and refreshed.approved_by_id == refund.approved_by_id


# --- someone not mapped: --as and the account's password -------------------------------------------


def test_naming_an_account_is_not_enough_to_act_as_it():
    refund = _requested()
    finance = finance_user(*APPROVER)

    with pytest.raises(CommandError, match="shell_identity_refused"):
        call_command("refund_approve", refund.number, "--as", finance.username)

    assert _unchanged(refund)


def test_without_the_password_of_the_named_account_nothing_is_approved(caplog):
    refund = _requested()
    finance = finance_user(*APPROVER)
    caplog.set_level(logging.WARNING, logger="oms.shell")

    with pytest.raises(CommandError, match="shell_identity_refused"):
        call_command("refund_approve", refund.number, "--as", finance.username, stdin=io.StringIO("guess\n"))

    assert _unchanged(refund)
    assert not OrderEvent.objects.filter(order=refund.order, type="refund_approved").exists()
    warning = next(r for r in caplog.records if r.name == "oms.shell")
    assert OS_USER in warning.getMessage() and finance.username in warning.getMessage()


def test_with_the_password_of_the_named_account_it_approves_and_says_how(capsys):
    refund = _requested()
    finance = finance_user(*APPROVER)

    call_command("refund_approve", refund.number, "--as", finance.username, stdin=io.StringIO("pw\n"))

    approved = Refund.objects.get(pk=refund.pk)
    via = f"via shell, password of {finance.username} given by OS user {OS_USER}"
    assert (approved.status, approved.approved_by) == ("approved", finance)
    assert _approval_event(refund).payload["via"] == via
    assert _approval_event(refund).actor == finance
    history = approved.history.latest()
    assert history.history_user == finance and via in history.history_change_reason
    assert f"Refund {refund.number} approved by {finance.username} ({via})." in capsys.readouterr().out


def test_an_unknown_an_inactive_or_a_non_staff_account_is_refused_like_a_wrong_password():
    refund = _requested()
    inactive = finance_user(*APPROVER)
    inactive.is_active = False
    inactive.save(update_fields=["is_active"])
    outsider = finance_user(*APPROVER)
    outsider.is_staff = False
    outsider.save(update_fields=["is_staff"])

    messages = []
    for username in ("nobody-here", inactive.username, outsider.username):
        with pytest.raises(CommandError) as refused:
            call_command("refund_approve", refund.number, "--as", username, stdin=io.StringIO("pw\n"))
        messages.append(str(refused.value).replace(username, "<name>"))

    assert len(set(messages)) == 1, messages
    assert _unchanged(refund)


def test_without_a_mapping_the_account_must_be_named():
    refund = _requested()

    with pytest.raises(CommandError, match="--as"):
        call_command("refund_approve", refund.number, stdin=io.StringIO("pw\n"))

    assert _unchanged(refund)


def test_an_empty_password_is_refused():
    refund = _requested()
    finance = finance_user(*APPROVER)

    with pytest.raises(CommandError, match="shell_identity_refused"):
        call_command("refund_approve", refund.number, "--as", finance.username, stdin=io.StringIO(""))

    assert _unchanged(refund)


# --- an operating-system user mapped to a staff account -------------------------------------------


def test_a_mapped_os_user_acts_as_its_account_without_a_password(settings):
    refund = _requested(amount="60")
    manager = finance_user(*MANAGER)
    settings.OMS_SHELL_OPERATORS = f"someone=nobody, {OS_USER}={manager.username}"

    call_command("refund_approve", refund.number, stdin=io.StringIO(""))

    approved = Refund.objects.get(pk=refund.pk)
    assert (approved.status, approved.approved_by) == ("approved", manager)
    assert _approval_event(refund).payload["via"] == f"via shell, OS user {OS_USER} mapped to {manager.username}"


def test_a_mapped_os_user_naming_another_account_is_refused_even_with_its_password(settings, caplog):
    refund = _requested()
    mapped, other = finance_user(*APPROVER), finance_user(*MANAGER)
    settings.OMS_SHELL_OPERATORS = f"{OS_USER}={mapped.username}"
    caplog.set_level(logging.WARNING, logger="oms.shell")

    with pytest.raises(CommandError, match="shell_identity_refused"):
        call_command("refund_approve", refund.number, "--as", other.username, stdin=io.StringIO("pw\n"))

    assert _unchanged(refund)
    assert any(OS_USER in r.getMessage() and other.username in r.getMessage() for r in caplog.records)
    call_command("refund_approve", refund.number, "--as", mapped.username)
    assert Refund.objects.get(pk=refund.pk).approved_by == mapped


def test_the_environment_does_not_make_someone_a_mapped_os_user(settings, monkeypatch):
    refund = _requested()
    manager = finance_user(*MANAGER)
    settings.OMS_SHELL_OPERATORS = f"alice-{OS_USER}={manager.username}"
    for name in ("USER", "LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.setenv(name, f"alice-{OS_USER}")

    with pytest.raises(CommandError, match="--as"):
        call_command("refund_approve", refund.number, stdin=io.StringIO(""))

    assert _unchanged(refund)


def test_the_service_rules_still_apply_to_the_established_account(settings):
    refund = _requested(amount="60")
    finance = finance_user(*APPROVER)
    settings.OMS_SHELL_OPERATORS = f"{OS_USER}={finance.username}"

    with pytest.raises(CommandError, match="second_approver_required"):
        call_command("refund_approve", refund.number)

    assert _unchanged(refund)


# --- refund_process: the same identity ----------------------------------------------------------


def test_refund_process_needs_the_same_proof_and_records_it():
    refund = _requested()
    finance = finance_user(*APPROVER)
    refund_approve(refund=refund, actor=finance_user(*APPROVER))

    with pytest.raises(CommandError, match="shell_identity_refused"):
        call_command("refund_process", refund.number, "--as", finance.username, stdin=io.StringIO("nope\n"))
    assert Refund.objects.get(pk=refund.pk).status == "approved"

    call_command("refund_process", refund.number, "--as", finance.username, stdin=io.StringIO("pw\n"))

    processed = Refund.objects.get(pk=refund.pk)
    via = f"via shell, password of {finance.username} given by OS user {OS_USER}"
    assert processed.status == "processed"
    event = OrderEvent.objects.get(order=refund.order, type="refund_processed")
    assert (event.actor, event.payload["via"]) == (finance, via)
    assert via in processed.history.latest().history_change_reason
