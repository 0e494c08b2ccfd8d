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
from functools import lru_cache
from typing import Any, NamedTuple

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ClientAddress(NamedTuple):
    """An address, parsed (for network checks) and as canonical text (for keys and logs)."""

    ip: IPAddress
    text: str


def client_address(environ: Mapping[str, Any], trusted_proxies: int) -> ClientAddress | None:
    """The client's address, or ``None`` if none can be told (no or bad ``REMOTE_ADDR``)."""
    if trusted_proxies:
        forwarded = str(environ.get("HTTP_X_FORWARDED_FOR", "")).split(",")
        if len(forwarded) >= trusted_proxies:
            address = parse_address(forwarded[-trusted_proxies].strip())
            if address is not None:
                return address
    return parse_address(str(environ.get("REMOTE_ADDR", "")))


# Addresses repeat request after request; parsing one with ipaddress costs
# microseconds, a cache hit a fraction of one. Bounded, so it cannot grow.
@lru_cache(maxsize=4096)
def parse_address(text: str) -> ClientAddress | None:
    """``text`` as an address, or ``None`` if it is not one."""
    try:
        ip = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket is still that IPv4 client.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ClientAddress(ip, str(ip))
