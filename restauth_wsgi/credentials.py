"""Reading credentials out of the ``Authorization`` header.

Why not ``werkzeug.datastructures.Authorization.from_header``: it turns
invalid base64 and a colon-less Basic payload into the username ``""`` and
a bearer token with an inner ``=`` into parameters, so it cannot tell
malformed credentials (400) from wrong ones (401); and building a
``Request`` costs microseconds the hot path does not have. The grammar
here is RFC 7235 / RFC 6750 (``b64token``) / RFC 7617 (UTF-8 Basic).
"""

from __future__ import annotations

import binascii
import hashlib
import json
import re

from restauth_wsgi.errors import InvalidCredentials, InvalidToken, MalformedCredentials
from restauth_wsgi.jwt import jws
from restauth_wsgi.jwt.jws import ParsedJwt
from restauth_wsgi.providers.routing import family_of

#: Credentials longer than this are refused before any parsing or lookup.
#: Far above any real token (large Azure/Keycloak JWTs are 4-8 KB), far
#: below what would let a client make us hash or decode megabytes.
MAX_CREDENTIALS_LENGTH = 16 * 1024

_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class Credentials:
    """Credentials from one ``Authorization`` header.

    :param scheme: ``Bearer``, ``Basic``, or another scheme as the client
        wrote it (then nothing else is parsed).
    :param secret: the bearer token, or the Basic password.
    :param username: the Basic user; ``None`` for other schemes.
    """

    # A plain slotted class: built on every request, read by every
    # authenticator; the JWT parse happens at most once, when first asked for.
    __slots__ = ("_jwt", "scheme", "secret", "username")

    def __init__(self, scheme: str, secret: str = "", username: str | None = None) -> None:
        self.scheme = scheme
        self.secret = secret
        self.username = username
        self._jwt: ParsedJwt | bool | None = False

    @property
    def unverified_jwt(self) -> ParsedJwt | None:
        """A bearer token parsed as a JWT (not yet verified), once per request."""
        if self._jwt is False:
            self._jwt = jws.parse(self.secret) if self.scheme == "Bearer" else None
        return self._jwt  # type: ignore[return-value]

    def __repr__(self) -> str:  # never the secret
        return f"Credentials(scheme={self.scheme!r}, username={self.username!r})"


def parse_authorization(header: str, accepted: frozenset[str]) -> Credentials:
    """Parse a non-empty ``Authorization`` header value (as WSGI gives it: latin-1).

    :param accepted: the enabled schemes (``Bearer``, ``Basic``); credentials
        in any other scheme come back with only ``scheme`` set, unparsed.
    :raises MalformedCredentials: when the syntax of Bearer or Basic is broken.
    :raises InvalidCredentials: when the credentials are too long to be real.
    """
    scheme, _, rest = header.strip(" \t").partition(" ")
    folded = scheme.lower()
    if folded == "bearer" and "Bearer" in accepted:
        return _bearer(rest.strip(" \t"))
    if folded == "basic" and "Basic" in accepted:
        return _basic(rest.strip(" \t"))
    return Credentials(scheme=scheme)


def _bearer(token: str) -> Credentials:
    if not token:
        raise MalformedCredentials(
            "The Bearer scheme needs a token: 'Authorization: Bearer <token>'.", scheme="Bearer"
        )
    if len(token) > MAX_CREDENTIALS_LENGTH:
        raise InvalidToken(
            "The access token is invalid.", reason="the token is too long", scheme="Bearer"
        )
    if "." in token:
        # Perhaps a JWT: its strict parse (exactly three segments) checks every
        # character anyway (base64url only, which b64token allows), once, for
        # everything after. Asked with "in", which stops at the first dot;
        # counting them read the whole token.
        parsed = jws.parse(token)
        # Padding is allowed only at a b64token's end, not inside a JWT.
        if parsed is not None and (
            (equals := token.find("=")) == -1 or not token[equals:].strip("=")
        ):
            credentials = Credentials(scheme="Bearer", secret=token)
            credentials._jwt = parsed
            return credentials
        if parsed is None and _jws_header(token):
            # A JWT spelt as no JWT is (padding or a dot added, the standard
            # base64 alphabet...): one provider's token, which must not be
            # shown to the others as an opaque one.
            raise InvalidToken(
                "The access token is invalid.",
                reason="a JWT in a form no JWT has",
                scheme="Bearer",
            )
    if _B64TOKEN.fullmatch(token) is None:
        raise MalformedCredentials(
            "The bearer token contains characters that are not allowed in a token"
            " (spaces, quotes, non-ASCII...).",
            scheme="Bearer",
        )
    credentials = Credentials(scheme="Bearer", secret=token)
    credentials._jwt = None  # not a JWT: no need to parse it again
    return credentials


# Characters of a JOSE header's base64 worth decoding to tell a JWT spelt
# wrong (real ones are under 1,000: alg, kid, typ, x5t...).
_LONGEST_HEADER = 4096
# base64url to base64, for a header written in either alphabet.
_TO_STANDARD = str.maketrans("-_", "+/")


def _jws_header(token: str) -> bool:
    """Whether the first segment of a token that failed the strict parse is a
    JWS header nonetheless (JSON with ``alg``, and no ``enc``: a JWE, which
    some providers issue as opaque tokens, is not one)."""
    first = next((segment for segment in token.split(".") if segment), "")
    # Base64 of "{" begins with "e"; a JOSE header is short (a long one, or
    # one nested deep enough to exhaust the JSON parser's recursion, is no
    # JWS header of any provider's).
    if not first.startswith("e") or len(first) > _LONGEST_HEADER:
        return False
    raw = first.rstrip("=").translate(_TO_STANDARD)
    try:
        header = json.loads(binascii.a2b_base64(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        return False
    return isinstance(header, dict) and "alg" in header and "enc" not in header


def _basic(payload: str) -> Credentials:
    if not payload:
        raise MalformedCredentials(
            "The Basic scheme needs base64 of 'user:token': 'Authorization: Basic <base64>'.",
            scheme="Basic",
        )
    if len(payload) > MAX_CREDENTIALS_LENGTH:
        raise InvalidCredentials(
            "The credentials are invalid.", reason="the credentials are too long", scheme="Basic"
        )
    try:
        decoded = binascii.a2b_base64(payload.encode("ascii"), strict_mode=True).decode("utf-8")
    except (UnicodeError, binascii.Error):
        raise MalformedCredentials(
            "The Basic credentials are not valid base64 of UTF-8 'user:token'.", scheme="Basic"
        ) from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise MalformedCredentials(
            "The Basic credentials must be 'user:token' with a colon.", scheme="Basic"
        )
    if looks_like_a_token(username):
        username = _hidden(username)
    elif password in _TOKEN_AS_USER:
        # Perhaps a token, perhaps a password typed in the wrong field: no
        # fingerprint, which would let anyone with the logs test guesses.
        username = f"{HIDDEN_USER_MARK}sent with no password>"
    return Credentials(scheme="Basic", secret=password, username=username)


# A token sent as the Basic user (curl's `-u "$TOKEN:"`, GitHub's
# `<token>:x-oauth-basic`) is, from here on (refusals, logs, audit, the
# lockout's counters), known by a name that is no secret. Such a name never
# logs in: no password file holds a user that begins with "<".
_TOKEN_AS_USER = frozenset({"", "x-oauth-basic"})
#: How every hidden Basic user's name begins.
HIDDEN_USER_MARK = "<user not shown: "


# What a token of a known family, or a JWT, is spelt with: letters, digits
# and the separators - _ . only, letters of both cases and digits mixed in.
_TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9_.\-]{26,}")


def looks_like_a_token(name: str) -> bool:
    """Whether a Basic user is a token (of a known family, ours, or a JWT)
    rather than a user's name: such a user is hidden and never logs in. Real
    tokens are long, of a family's prefix, and mix cases and digits
    (``ghp_``, ``glpat-``, ``xoxb-``, ``ya29.``, ``EAA``, ``restauth_``);
    ``restauth_monitoring_bot`` or ``EAAmir.Khan@example.com`` are names."""
    if _TOKEN_CHARACTERS.fullmatch(name) is None:
        return False
    if not (name.startswith("eyJ") and name.count(".") == 2) and family_of(name) is None:
        return False
    return (
        any(c.isdigit() for c in name)
        and any(c.isupper() for c in name)
        and any(c.islower() for c in name)
    )


def fingerprint(token: str) -> str:
    """``sha256:`` and 12 hex digits of a token: what logs may name it by
    (never for a password, which it would let anyone test guesses against)."""
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest[:12]}"


def _hidden(token: str) -> str:
    """The name a token sent as the Basic user is known by: its fingerprint,
    as a bearer token's in the audit log (the same token, the same name)."""
    return f"{HIDDEN_USER_MARK}a token, {fingerprint(token)}>"
