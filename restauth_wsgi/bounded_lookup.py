"""Name lookups that end by a deadline.

``getaddrinfo`` cannot be interrupted, and a resolver that does not answer
(glibc waits its timeout, for each attempt and each server) would hold a
provider call past its deadline. Lookups here run on a few threads of
their own and the caller waits only until its deadline; a lookup still
running then finishes on its thread, unawaited. At most :data:`WORKERS` run
at once: more wait their turn, each within its own deadline.
"""

from __future__ import annotations

import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as WaitedTooLong

from urllib3.util.connection import allowed_gai_family

from restauth_wsgi.fork_safety import PerProcess

#: Lookups that may run at once in a process.
WORKERS = 4

_pool = PerProcess(lambda: ThreadPoolExecutor(WORKERS, thread_name_prefix="restauth-lookup"))


class LookupTimeout(TimeoutError):
    """The name lookup did not end within the time left."""


def addresses(host: str, port: int, *, within: float) -> list[str]:
    """The numeric addresses of ``host``, in the resolver's order, each once
    (an address literal is its own, with no lookup).

    :param within: seconds the caller may wait.
    :raises LookupTimeout: when the lookup did not end in time.
    :raises socket.gaierror: when the resolver answered that there is none.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [host]
    if within <= 0:
        raise LookupTimeout(f"no time was left to look up {host}")
    lookup = _pool.get().submit(
        socket.getaddrinfo, host, port, allowed_gai_family(), socket.SOCK_STREAM
    )
    try:
        found = lookup.result(timeout=within)
    except WaitedTooLong:
        raise LookupTimeout(f"the name lookup of {host} took longer than {within:.1f} s") from None
    return list(dict.fromkeys(str(info[4][0]) for info in found))
