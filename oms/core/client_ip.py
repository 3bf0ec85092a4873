"""The address a request came from, for login throttling and the logs.

REMOTE_ADDR, unless settings.OMS_CLIENT_IP_HEADER names a header that the reverse proxy in front of
the OMS sets (X-Forwarded-For, X-Real-IP). Only then is a header read: a client may send any header
it likes, and one that chose its address would escape the login throttling or lock out somebody
else. Each proxy appends the address it saw to X-Forwarded-For, so the entry
OMS_CLIENT_IP_PROXY_COUNT from the right is the one written by the outermost of our proxies; what
stands left of it was written by the client and is ignored. A header that is missing, too short or
not an address leaves REMOTE_ADDR.
"""

import ipaddress

from django.conf import settings


def _address(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    if request is None:
        return None
    remote = request.META.get("REMOTE_ADDR") or None
    header = settings.OMS_CLIENT_IP_HEADER
    if not header:
        return remote
    hops = [hop for hop in (request.headers.get(header) or "").split(",") if hop.strip()]
    count = settings.OMS_CLIENT_IP_PROXY_COUNT
    if count < 1 or len(hops) < count:
        return remote
    return _address(hops[-count]) or remote
