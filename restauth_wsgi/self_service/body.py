"""The body of a token creation, read strictly.

A creation is a JSON object (``Content-Type: application/json``, else 415:
HTML forms cannot send that type, which keeps cross-site forms out) of at
most :data:`MAX_BODY` bytes (else 413), with these members, each of exactly
its type (a refusal names the member that is wrong; no member is guessed at):

* ``name`` (required): a string of 1 to 200 characters, not blank, no
  control characters;
* ``expirationDuration``: whole days, a JSON integer from 1 (Atlassian's
  meaning); absent or ``null`` asks for no expiry (see :mod:`.grants`);
* ``restrictions``: an object of ``readOnly`` (boolean), ``allow``
  (``"METHOD /path-glob"`` strings, as ``restauth token create --allow``),
  ``networks`` (CIDRs) and ``scopes`` (scope tokens), each optional.

Anything else, a member of another type, a key given twice, ``NaN``, an
object nested too deep, bytes that are not UTF-8: 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.wsgi import get_content_length, get_input_stream

from restauth_wsgi.access.policy import parse_networks
from restauth_wsgi.self_service.refusals import ApiRefusal, BodyTooLarge, UnsupportedMediaType
from restauth_wsgi.strict_json import loads_unique
from restauth_wsgi.tokens.issuing import check_name
from restauth_wsgi.tokens.restrictions import TokenRestrictions, parse_allow

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

#: The longest body read, in bytes: a creation needs a few hundred.
MAX_BODY = 16 * 1024
#: The most entries each list of ``restrictions`` may have.
MAX_ENTRIES = 50
#: The most days ``expirationDuration`` is read as (longer is refused by the policy anyway).
MAX_DAYS = 100 * 366
# RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,100}")
_CREATION = frozenset({"name", "expirationDuration", "restrictions"})
_RESTRICTIONS = frozenset({"readOnly", "allow", "networks", "scopes"})


class Creation(NamedTuple):
    """What a creation asks for, checked for form (the limits come later).

    :param days: the lifetime in days; ``None`` when no expiry was given.
    :param restrictions: the restrictions asked for, if any.
    """

    name: str
    days: int | None
    restrictions: TokenRestrictions | None


def read_creation(environ: WSGIEnvironment) -> Creation:
    """The creation a request's body asks for.

    :raises ApiRefusal: (or a subclass: 413, 415) saying what is wrong.
    """
    return parse_creation(read_object(environ))


def read_object(environ: WSGIEnvironment) -> dict[str, Any]:
    """The request's body: one JSON object, declared as JSON, bounded.

    :raises ApiRefusal: (or a subclass: 413, 415) saying what is wrong.
    """
    media, options = parse_options_header(str(environ.get("CONTENT_TYPE", "")))
    charset = options.get("charset", "utf-8").lower()
    if media.lower() != "application/json" or charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(
            "Send the body as JSON, with 'Content-Type: application/json'.",
            reason=f"content type {str(environ.get('CONTENT_TYPE', ''))[:80]!r}",
        )
    data = _read_bounded(environ)
    if not data.strip():
        raise ApiRefusal('The body is empty; send a JSON object such as {"name": "ci"}.')
    try:
        document = loads_unique(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad UTF-8, bad JSON, NaN, a 5000-digit number.
        raise ApiRefusal(f"The body is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(document, dict):
        raise ApiRefusal(
            f"The body must be a JSON object, not {_kind(document)}; send"
            ' {"name": "...", "expirationDuration": 90}.'
        )
    return document


def _read_bounded(environ: WSGIEnvironment) -> bytes:
    """At most :data:`MAX_BODY` bytes of body, or 413 if there are more.

    :raises BodyTooLarge: if the body is longer.
    """
    try:
        return _read_up_to_limit(environ)
    except (ClientDisconnected, OSError):
        # The client stopped sending or went away mid-body (werkzeug's limit
        # says ClientDisconnected; mod_wsgi raises OSError "request data read
        # error" past Apache's Timeout): the request is incomplete, not ours
        # to fail with a 500.
        raise ApiRefusal(
            "The body could not be read to its end: the client stopped sending."
        ) from None


def _read_up_to_limit(environ: WSGIEnvironment) -> bytes:
    too_large = BodyTooLarge(f"The body is longer than {MAX_BODY} bytes.")
    if "wsgi.input_terminated" in environ and get_content_length(environ) is None:
        # A chunked body, its end found by the server (gunicorn says so for
        # every request). werkzeug's limit on such a stream returns the first
        # MAX_BODY bytes of a longer body without complaint, so the API would
        # act on a body the client did not send: read one byte past it instead.
        stream = environ["wsgi.input"]
        chunks, size = [], 0
        while size <= MAX_BODY:
            chunk = stream.read(MAX_BODY + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    else:
        try:
            data = get_input_stream(environ, max_content_length=MAX_BODY).read(MAX_BODY + 1)
        except RequestEntityTooLarge:
            raise too_large from None
    if len(data) > MAX_BODY:
        raise too_large
    return data


def parse_creation(document: Mapping[str, Any]) -> Creation:
    """Check each member of a creation's object.

    :raises ApiRefusal: naming the member that is wrong.
    """
    _no_unknown(document, _CREATION, "")
    name = document.get("name")
    if not isinstance(name, str):
        raise _wrong("name", 'a string such as "ci-deploy"', name, required=True)
    if not name.strip():
        raise ApiRefusal("name must not be blank.", field="name")
    try:
        check_name(name)
    except ValueError as exc:
        raise ApiRefusal(f"name: {exc}.", field="name") from None
    days = document.get("expirationDuration")
    if days is not None and (
        isinstance(days, bool) or not isinstance(days, int) or not 0 < days <= MAX_DAYS
    ):
        raise _wrong("expirationDuration", f"a whole number of days from 1 to {MAX_DAYS}", days)
    restrictions = document.get("restrictions")
    return Creation(name, days, None if restrictions is None else _restrictions(restrictions))


def _restrictions(value: object) -> TokenRestrictions:
    if not isinstance(value, dict):
        raise _wrong("restrictions", 'an object such as {"readOnly": true}', value)
    _no_unknown(value, _RESTRICTIONS, "restrictions.")
    read_only = value.get("readOnly", False)
    if not isinstance(read_only, bool):
        raise _wrong("restrictions.readOnly", "true or false", read_only)
    allow = _entries(value, "allow", parse_allow)
    networks = _entries(value, "networks", _network)
    scopes = _entries(value, "scopes", _scope)
    return TokenRestrictions(
        read_only=read_only, allow=tuple(allow), networks=tuple(networks), scopes=tuple(scopes)
    )


def _entries(value: Mapping[str, Any], key: str, parse: Callable[[str], Any]) -> list[Any]:
    field = f"restrictions.{key}"
    items = value.get(key, [])
    if not isinstance(items, list) or len(items) > MAX_ENTRIES:
        raise _wrong(field, f"a list of at most {MAX_ENTRIES} strings", items)
    parsed = []
    for item in items:
        if not isinstance(item, str):
            raise _wrong(field, "a list of strings", item)
        try:
            parsed.append(parse(item))
        except ValueError as exc:
            raise ApiRefusal(f"{field}: {exc}.", field=field) from None
    return parsed


def _network(text: str) -> str:
    (network,) = parse_networks([text])
    return str(network)


def _scope(text: str) -> str:
    if not _SCOPE.fullmatch(text):
        raise ValueError(f"{text[:40]!r} is not a scope (1-100 printable characters, no spaces)")
    return text


def _no_unknown(document: Mapping[str, Any], known: frozenset[str], prefix: str) -> None:
    unknown = sorted(set(document) - known)
    if unknown:
        field = prefix + unknown[0][:60]
        raise ApiRefusal(
            f"{field!r} is not a field of this request; use {', '.join(sorted(known))}.",
            field=field,
        )


def _wrong(field: str, expected: str, got: object, *, required: bool = False) -> ApiRefusal:
    if got is None and required:
        return ApiRefusal(f"{field} is required: {expected}.", field=field)
    return ApiRefusal(f"{field} must be {expected}, not {_kind(got)}.", field=field)


def _kind(value: object) -> str:
    """What a JSON value is, in JSON's words (never the value: it may be long)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return str(value) if abs(value) < 10**12 else "a number that large"
    if isinstance(value, float):
        return f"the fraction {value!r:.20}"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"
