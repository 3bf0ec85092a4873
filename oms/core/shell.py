"""Who runs a management command that acts as a person (refund_approve, refund_process).

A shell is not a login: a name typed after `--as` proves nothing. The operating-system user
running the command (its real user id, not $USER or $LOGNAME, which anyone sets) is mapped to a
staff account by settings.OMS_SHELL_OPERATORS ("alice=finance-manager,bob=finance") and acts as
that account, and only that one. Anyone else names the account with `--as` and gives its password,
asked on the terminal or read from the first line of stdin when stdin is not a terminal; it is
checked with `check_password` (not `authenticate()`, whose backends may need a request).

`ShellIdentity.via` says which way the identity was established; the command hands it to the
service, which keeps it on the event and the history row. Every refusal is logged with the OS user.
"""

import getpass
import logging
import os
import pwd
import sys
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from oms.core.errors import ApplicationError, PermissionDeniedError

logger = logging.getLogger("oms.shell")

MAPPED = "mapped"
PASSWORD = "password"  # noqa: S105 - the name of a way to prove who one is, not a password
REFUSED = "shell_identity_refused"
# The same answer whatever was wrong, so that the command does not tell which accounts exist.
WRONG_CREDENTIALS = "Wrong username or password, or not an active staff account."


def os_username() -> str:
    """The name of the real user id running this process."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def shell_operators() -> dict[str, str]:
    """OMS_SHELL_OPERATORS as {os user: staff username}; a malformed entry stops the command."""
    raw = settings.OMS_SHELL_OPERATORS
    if isinstance(raw, dict):
        return {str(k).strip(): str(v).strip() for k, v in raw.items()}
    operators = {}
    for entry in str(raw or "").split(","):
        if not entry.strip():
            continue
        os_user, sep, username = (part.strip() for part in entry.partition("="))
        if not (sep and os_user and username):
            raise ImproperlyConfigured(f"OMS_SHELL_OPERATORS: {entry.strip()!r} is not os_user=username.")
        operators[os_user] = username
    return operators


@dataclass(frozen=True)
class ShellIdentity:
    user: object
    os_user: str
    method: str  # MAPPED or PASSWORD

    @property
    def via(self) -> str:
        username = self.user.get_username()
        if self.method == MAPPED:
            return f"via shell, OS user {self.os_user} mapped to {username}"
        return f"via shell, password of {username} given by OS user {self.os_user}"


def _refuse(message: str, *, os_user: str, username: str, why: str, command: str) -> PermissionDeniedError:
    logger.warning(
        "Shell identity refused: OS user %s, account %r, command %s: %s",
        os_user,
        username,
        command or "-",
        why,
        extra={"os_user": os_user, "account": username, "command": command},
    )
    return PermissionDeniedError(message, code=REFUSED, extra={"os_user": os_user})


def _read_password(stdin, username: str) -> str:
    try:
        if stdin.isatty():
            return getpass.getpass(f"Password of {username}: ")
        return stdin.readline().rstrip("\r\n")
    except (OSError, EOFError):  # no stdin to read (a detached process, a captured test)
        return ""


def _staff(username: str):
    user = get_user_model().objects.filter(username=username).first()
    return user if user is not None and user.is_active and user.is_staff else None


def shell_identity(*, username: str | None, stdin=None, command: str = "") -> ShellIdentity:
    """The staff account this shell acts as, and how that was established (see the module's text)."""
    os_user = os_username()
    username = (username or "").strip()
    mapped = shell_operators().get(os_user)
    if mapped is not None:
        if username and username != mapped:
            raise _refuse(
                f"OS user {os_user} acts as {mapped} (OMS_SHELL_OPERATORS), not as {username}.",
                os_user=os_user,
                username=username,
                why=f"mapped to {mapped}",
                command=command,
            )
        user = _staff(mapped)
        if user is None:
            raise _refuse(
                f"OS user {os_user} is mapped to {mapped}, which is not an active staff account.",
                os_user=os_user,
                username=mapped,
                why="mapped account missing, inactive or not staff",
                command=command,
            )
        identity = ShellIdentity(user=user, os_user=os_user, method=MAPPED)
    else:
        if not username:
            raise _refuse(
                f"OS user {os_user} is not in OMS_SHELL_OPERATORS: name the account with --as and give its password.",
                os_user=os_user,
                username="",
                why="not mapped and no --as",
                command=command,
            )
        password = _read_password(stdin if stdin is not None else sys.stdin, username)
        user = _staff(username)
        if user is None:
            get_user_model()().set_password(password)  # the same hashing time as a real check
            why = "no active staff account of that name"
        elif not password:
            why = "no password given"
        elif not user.check_password(password):
            why = "wrong password"
        else:
            why = ""
        if why:
            raise _refuse(WRONG_CREDENTIALS, os_user=os_user, username=username, why=why, command=command)
        identity = ShellIdentity(user=user, os_user=os_user, method=PASSWORD)
    logger.info(
        "Shell identity: %s (command %s)",
        identity.via,
        command or "-",
        extra={"os_user": os_user, "account": identity.user.get_username(), "command": command},
    )
    return identity


class ActingCommand(BaseCommand):
    """A management command that acts as a staff account established by `shell_identity`:
    subclasses call `self.acting_identity(options)` and pass `identity.via` to their service."""

    # call_command(..., stdin=io.StringIO("password\n")) in tests, like createsuperuser.
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument(
            "--as",
            dest="username",
            default=None,
            help=(
                "The staff account to act as. An OS user mapped in OMS_SHELL_OPERATORS acts as its account "
                "(--as may only repeat it); anyone else names the account and is asked for its password "
                "(read from stdin when it is not a terminal)."
            ),
        )

    def acting_identity(self, options) -> ShellIdentity:
        try:
            return shell_identity(
                username=options.get("username"), stdin=options.get("stdin"), command=self._command_name()
            )
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} ({exc.code})") from exc

    def _command_name(self) -> str:
        return self.__module__.rsplit(".", 1)[-1]
