"""The client's address, as far as it can be trusted.

``REMOTE_ADDR`` is the peer that connected. Behind reverse proxies, each
appends the address it received the request from to ``X-Forwarded-For``;
with ``RESTAUTH_TRUSTED_PROXIES=N``, the address N entries from the right is
the client's, counting only the proxies we run, as werkzeug's ``ProxyFix``
does. Anything further left was written by the client and is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_address(environ: Mapping[str, Any], trusted_proxies: int) -> IPAddress | None:
    """The client's address, or ``None`` if none can be told (no or bad ``REMOTE_ADDR``)."""
    if trusted_proxies:
        forwarded = [a.strip() for a in str(environ.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
        if len(forwarded) >= trusted_proxies:
            address = _parse(forwarded[-trusted_proxies])
            if address is not None:
                return address
    return _parse(str(environ.get("REMOTE_ADDR", "")))


def _parse(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket is still that IPv4 client.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
