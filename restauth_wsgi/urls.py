"""URLs: which are safe to call, and how to show one without its password."""

from __future__ import annotations

import ipaddress
import re
import urllib.parse


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine: ``localhost`` or a loopback address."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, allow_http: bool) -> str:
    """An absolute http(s) URL; plain http only for loopback unless ``allow_http``.

    :raises ValueError: saying what is wrong.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{url!r} is not an absolute https URL")
    if parts.username or parts.password:
        raise ValueError(f"{url!r} has credentials in it; use the CLIENT_ID/CLIENT_SECRET settings")
    if parts.scheme == "http" and not allow_http and not is_loopback(parts.hostname):
        raise ValueError(
            f"{url!r} is plain http; use https (or RESTAUTH_ALLOW_HTTP=true, which is unsafe)"
        )
    return url


def mask_url(text: str) -> str:
    """Hide the password of a URL such as ``postgresql://user:secret@host/db``."""
    return re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1****@", text)
