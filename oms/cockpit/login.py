"""What the cockpit does about logins beyond Django's: the lockout page and the log lines.

Throttling itself is django-axes (settings: AXES_*): failures are counted per username and address,
and past the limit the login is refused with `lockout_response` (templates/admin/login_locked.html)
until the cool-off ends. The receivers write the JSON log lines an operator greps for, each failure
and lockout with the username and the address (axes's own lines mask both).
"""

import logging

from axes.helpers import get_client_username, get_cool_off
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from oms.core.client_ip import client_ip

logger = logging.getLogger("oms.cockpit.login")


def _request_facts(request) -> dict:
    if request is None:  # authenticate() called outside a request: no address to tell
        return {"client_ip": None, "path": None}
    return {"client_ip": client_ip(request), "path": request.path}


def login_failed_log(sender, credentials, request=None, **kwargs) -> None:
    # Django has replaced the password in `credentials` by stars; the username is all that is kept.
    username = str(credentials.get("username") or "")[:150]
    facts = _request_facts(request)
    logger.warning("Login failed for %r from %s", username, facts["client_ip"], extra={"username": username, **facts})


def login_locked_out_log(sender, request, username, ip_address, **kwargs) -> None:
    username = str(username or "")[:150]
    logger.warning(
        "Login locked out for %r from %s",
        username,
        ip_address,
        extra={"username": username, "client_ip": ip_address, "path": getattr(request, "path", None)},
    )


def logged_in_log(sender, request, user, **kwargs) -> None:
    facts = _request_facts(request)
    logger.info(
        "Login by %s from %s", user.get_username(), facts["client_ip"], extra={"username": user.get_username(), **facts}
    )


def lockout_response(request, original_response=None, credentials=None):
    """The cockpit's page for a locked-out login: 429, and when to try again (Retry-After)."""
    cool_off = get_cool_off(request)
    minutes = max(1, round(cool_off.total_seconds() / 60)) if cool_off else None
    context = {
        **admin.site.each_context(request),
        "title": _("Login locked"),
        "username": get_client_username(request, credentials) or "",
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": minutes,
    }
    response = TemplateResponse(request, "admin/login_locked.html", context, status=429)
    if cool_off:
        response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response.render()


def connect() -> None:
    user_login_failed.connect(login_failed_log, dispatch_uid="oms.cockpit.login.failed")
    user_locked_out.connect(login_locked_out_log, dispatch_uid="oms.cockpit.login.locked_out")
    user_logged_in.connect(logged_in_log, dispatch_uid="oms.cockpit.login.logged_in")
