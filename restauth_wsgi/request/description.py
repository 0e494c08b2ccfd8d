"""One description of a request, computed once, that every check consults.

Checks that each read ``environ`` their own way disagree about what a
request is, and an attacker picks the reading that passes. So the path and
method are worked out here, once, as the application will act on them:

* the **path** as its router will see it (:mod:`restauth_wsgi.request.paths`);
* the **methods** the application may run: ``REQUEST_METHOD`` upper-cased
  (werkzeug, Flask and Django upper-case it; werkzeug's server passes
  ``delete`` through), ``HEAD`` judged as ``GET`` (frameworks run the GET
  view for it), ``OPTIONS`` and any method beyond ``GET``, ``HEAD``,
  ``POST``, ``PUT``, ``PATCH`` and ``DELETE`` judged as every method (a
  Django function view or a Pyramid view without a method predicate runs
  its code for any method, so a rule on ``GET`` must cover ``FOO`` too), and
  the method of an override header
  (``X-HTTP-Method-Override``, ``X-HTTP-Method``, ``X-Method-Override``,
  which middleware such as Flask's ``HTTPMethodOverrideMiddleware`` obeys)
  judged too: every check must pass for each of them, so the stricter wins.
  A method that is not an HTTP token (RFC 9110), or an override that is not
  one, is a 400;
* the **client address**, as far as it can be trusted
  (:mod:`restauth_wsgi.request.client_address`);
* whether it is a CORS **preflight**: ``OPTIONS`` with ``Origin`` and
  ``Access-Control-Request-Method``, and no override header.

Nothing here depends on WSGI but :func:`describe_environ`, so ``restauth
check`` and the tests build the same description from plain values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from restauth_wsgi.errors import MalformedRequest
from restauth_wsgi.identity import NOT_IN_NAMES
from restauth_wsgi.request.client_address import (
    LONGEST_ADDRESS,
    ClientAddress,
    client_address,
    remembered_address,
)
from restauth_wsgi.request.paths import (
    REMEMBERED_PATH_LENGTH,
    RequestPath,
    remembered_path,
    request_path,
)

#: The environ keys of the method-override headers that frameworks obey.
OVERRIDE_HEADERS = (
    "HTTP_X_HTTP_METHOD_OVERRIDE",
    "HTTP_X_HTTP_METHOD",
    "HTTP_X_METHOD_OVERRIDE",
)
# RFC 9110 section 9.1: a method is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}")
_GET = frozenset({"GET"})
#: What a method outside the routed ones (``OPTIONS``, ``TRACE``, ``FOO``) is
#: judged as, beside itself: every method, since a view that does not look at
#: the method runs its code for it.
EVERY_METHOD = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_new_tuple = tuple.__new__


class Request(NamedTuple):
    """What the middleware decides about, independent of WSGI.

    :param method: the method as the application will run it (upper case).
    :param methods: every method to judge the request as (``HEAD`` as
        ``GET``, override headers included); each check must pass for all.
    :param path: the path as the router will see it.
    :param client: the client's address, if it can be told.
    :param authorization: the ``Authorization`` header, if any.
    :param preflight: whether it is a CORS preflight.
    :param upstream_user: a ``REMOTE_USER`` the server in front set (only
        used when ``RESTAUTH_TRUST_REMOTE_USER`` is on).
    :param upstream_auth_type: the ``AUTH_TYPE`` that came with it.
    """

    method: str
    methods: frozenset[str]
    path: RequestPath
    client: ClientAddress | None
    authorization: str | None
    preflight: bool = False
    upstream_user: str | None = None
    upstream_auth_type: str | None = None


def judged(method: str) -> str:
    """The method a check judges: ``HEAD`` runs the ``GET`` view."""
    return "GET" if method == "HEAD" else method


def judged_as(method: str) -> frozenset[str]:
    """Every method a request with this (upper-case) method is judged as."""
    plain = _PLAIN.get(method)
    if plain is not None:
        return plain
    return EVERY_METHOD | {method}


def describe(
    *,
    method: str,
    path_info: str,
    client: ClientAddress | None = None,
    authorization: str | None = None,
    overrides: Iterable[str] = (),
    cors: bool = False,
    upstream_user: str | None = None,
    upstream_auth_type: str | None = None,
) -> Request:
    """The description of a request from plain values.

    :param overrides: the values of method-override headers.
    :param cors: whether ``Origin`` and ``Access-Control-Request-Method`` were sent.
    :param upstream_user: a ``REMOTE_USER`` the server in front set: an empty
        one means nobody (servers set that for anonymous requests).
    :raises MalformedRequest: for a method or override that is not an HTTP
        method, or an upstream user that is not a username.
    """
    run = _method(method, "method")
    if upstream_user is not None:
        upstream_user = _upstream(upstream_user)
    extra = [_method(value, "method override header") for value in overrides]
    methods = judged_as(run)
    for method in extra:
        methods = methods | judged_as(method)
    return Request(
        method=run,
        methods=methods,
        path=request_path(path_info),
        client=client,
        authorization=authorization,
        preflight=cors and run == "OPTIONS" and not extra,
        upstream_user=upstream_user,
        upstream_auth_type=upstream_auth_type,
    )


def describe_environ(
    environ: Mapping[str, Any],
    *,
    trusted_proxies: int,
    upstream_user: str | None = None,
    upstream_auth_type: str | None = None,
) -> Request:
    """The description of a WSGI request.

    :param upstream_user: a ``REMOTE_USER`` from the server in front, when trusted.
    :raises MalformedRequest: for a method or override that is not an HTTP method.
    """
    get = environ.get
    method = get("REQUEST_METHOD") or "GET"
    simple = _PLAIN.get(method)
    if (
        simple is not None
        and upstream_user is None
        and "HTTP_X_HTTP_METHOD_OVERRIDE" not in environ
        and "HTTP_X_HTTP_METHOD" not in environ
        and "HTTP_X_METHOD_OVERRIDE" not in environ
        and (method != "OPTIONS" or "HTTP_ORIGIN" not in environ)
    ):
        # Every request that needs no judgement beyond the usual (the hot
        # path): the path and the address straight from their caches when
        # they are short enough to be kept there, one tuple built by
        # tuple.__new__ itself (a named tuple's own __new__ is a Python function).
        path_info = get("PATH_INFO", "")
        remote = get("REMOTE_ADDR", "")
        return _new_tuple(
            Request,
            (
                method,
                simple,
                remembered_path(path_info)
                if len(path_info) <= REMEMBERED_PATH_LENGTH
                else request_path(path_info),
                remembered_address(remote)
                if not trusted_proxies and type(remote) is str and len(remote) <= LONGEST_ADDRESS
                else client_address(environ, trusted_proxies),
                get("HTTP_AUTHORIZATION"),
                False,
                None,
                None,
            ),
        )
    overrides = [get(k) for k in OVERRIDE_HEADERS if k in environ]
    return describe(
        method=method,
        path_info=get("PATH_INFO", ""),
        client=client_address(environ, trusted_proxies),
        authorization=get("HTTP_AUTHORIZATION"),
        overrides=[str(v) for v in overrides],
        cors="HTTP_ORIGIN" in environ and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ,
        upstream_user=upstream_user,
        upstream_auth_type=upstream_auth_type,
    )


# The usual methods, as written by every server, and what each is judged as.
_PLAIN = {
    "GET": _GET,
    "HEAD": _GET,
    "POST": frozenset({"POST"}),
    "PUT": frozenset({"PUT"}),
    "PATCH": frozenset({"PATCH"}),
    "DELETE": frozenset({"DELETE"}),
    "OPTIONS": EVERY_METHOD,
}


def _upstream(user: str) -> str | None:
    if not user.strip():
        return None
    if len(user) > 255 or NOT_IN_NAMES.search(user):
        raise MalformedRequest("The user the server in front names is not a username.")
    return user


def _method(value: str, what: str) -> str:
    text = value.strip() if what != "method" else value
    if not _TOKEN.fullmatch(text):
        raise MalformedRequest(f"The {what} is not an HTTP method.")
    return text.upper()
