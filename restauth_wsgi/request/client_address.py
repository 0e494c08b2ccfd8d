"""The client's address, as far as it can be trusted.

``REMOTE_ADDR`` is the peer that connected. Behind reverse proxies, each
appends the address it received the request from to ``X-Forwarded-For``;
with ``RESTAUTH_TRUSTED_PROXIES=N``, the address N entries from the right is
the client's, counting only the proxies we run, as werkzeug's ``ProxyFix``
does. Anything further left was written by the client and is ignored.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NamedTuple

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ClientAddress(NamedTuple):
    """An address, parsed (for network checks) and as canonical text (for keys and logs)."""

    ip: IPAddress
    text: str


def client_address(environ: Mapping[str, Any], trusted_proxies: int) -> ClientAddress | None:
    """The client's address, or ``None`` if it cannot be told.

    With trusted proxies, the entry they wrote is the client's: an
    ``address:port`` or ``[v6]:port`` entry (Azure's Application Gateway
    writes those) is read as its address, and one that is not an address at
    all (``unknown``) makes the client unknown. It is never replaced by
    ``REMOTE_ADDR``, which is the proxy's own address and may well be in an
    allowed network. Only a request with fewer entries than proxies (one
    that did not come through them all) is judged by ``REMOTE_ADDR``, as
    werkzeug's ``ProxyFix`` does.
    """
    if trusted_proxies:
        header = environ.get("HTTP_X_FORWARDED_FOR")
        forwarded = [] if header is None else str(header).split(",")
        if len(forwarded) >= trusted_proxies:
            return parse_forwarded(forwarded[-trusted_proxies].strip())
    return parse_address(str(environ.get("REMOTE_ADDR", "")))


_PORTED = re.compile(r"\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?|(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}")


def parse_forwarded(entry: str) -> ClientAddress | None:
    """An ``X-Forwarded-For`` entry as an address, with or without a port."""
    address = parse_address(entry)
    if address is not None:
        return address
    ported = _PORTED.fullmatch(entry)
    if ported is None:
        return None
    return parse_address(ported.group(1) or ported.group(2))


#: The longest text that can be an address: an IPv6 address in brackets
#: with a scope id, and spaces around it.
LONGEST_ADDRESS = 128


def parse_address(text: str) -> ClientAddress | None:
    """``text`` as an address, or ``None`` if it is not one."""
    # Longer text (a client's X-Forwarded-For entry) is not remembered.
    return remembered_address(text) if len(text) <= LONGEST_ADDRESS else None


# Addresses repeat request after request; parsing one with ipaddress costs
# microseconds, a cache hit a fraction of one. Bounded, so it cannot grow.
@lru_cache(maxsize=4096)
def remembered_address(text: str) -> ClientAddress | None:
    """:func:`parse_address` for text of at most :data:`LONGEST_ADDRESS`
    characters, straight from the bounded cache (for the hot path, which
    checks the length itself and saves a call)."""
    try:
        ip = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket is still that IPv4 client.
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ClientAddress(ip, str(ip))
