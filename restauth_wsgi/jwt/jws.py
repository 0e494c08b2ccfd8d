"""Compact JWS (a signed JWT): parsed once, strictly; verified with PyJWT's
algorithm objects; its registered claims checked as RFC 7519 and RFC 8725 ask.

Why not ``jwt.decode``: it parses the token again after we read it to find
its provider and key, and its parse checks each base64url character in
Python, which together cost more than the RSA verification itself. The
cryptography here is still PyJWT's (``PyJWK.Algorithm.verify``, on keys
``PyJWK`` loaded); what is ours is one strict parse and the claim rules,
which the hostile-token table and the mutation corpus test.
"""

from __future__ import annotations

import binascii
import time
from collections.abc import Collection
from typing import Any, NamedTuple

from restauth_wsgi import strict_json

# base64url to standard base64; the standard alphabet's own "+" and "/" to a
# character the strict decode refuses, since they are not base64url.
_TO_STANDARD = bytes.maketrans(b"-_+/", b"+/!!")
_VALUE = {
    char: value
    for value, char in enumerate(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
}
# JSON text in a JWT is UTF-8 (RFC 7519 section 7.2): decoded as such, strictly,
# then parsed by the decoder itself (json.loads on bytes would also guess
# UTF-16/32), refusing NaN and infinities.
_decode_json = strict_json.loads
# The largest time claim taken as a number: far beyond any real date, and
# still exact as a float (a 400-digit exp would overflow one).
_MAX_TIME = 2**53
# A time claim's JSON types, exactly: a bool is an int to isinstance, not a
# number to JSON (strict_json makes every number finite).
_NUMBERS = frozenset({int, float})
_NOT_BEFORE_CLAIMS = ("nbf", "iat")
_STRINGS = frozenset({str})


class ParsedJwt(NamedTuple):
    """A token shaped like a signed JWT, parsed but not yet trusted."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


class InvalidJwt(ValueError):
    """The token is not a valid JWT for us; the message says why (for logs).

    Each reason is a subclass named as PyJWT names the same failure (so a
    log line reads as operators know it from PyJWT), whose
    :attr:`description` is what the caller may be told.
    """

    #: What the caller is told (RFC 6750 ``error_description``): a holder of
    #: the token may learn why it fails, nothing about anyone else.
    description = "The access token is invalid."

    def __init__(self, detail: str) -> None:
        super().__init__(f"{type(self).__name__}: {detail}")
        #: The reason without the class name.
        self.detail = detail


class DecodeError(InvalidJwt):
    """A registered claim has the wrong JSON type."""


class MissingRequiredClaimError(InvalidJwt):
    """A claim that must be present (``exp``, ``aud``) is not."""


class ExpiredSignatureError(InvalidJwt):
    """``exp`` has passed."""

    description = "The access token has expired."


class ImmatureSignatureError(InvalidJwt):
    """``nbf`` or ``iat`` is in the future."""

    description = "The access token is not valid yet."


class InvalidIssuerError(InvalidJwt):
    """``iss`` is not one of the accepted issuers."""


class InvalidAudienceError(InvalidJwt):
    """``aud`` names none of the accepted audiences, or is not strings."""

    description = "The access token was issued for another audience."


class InvalidSignatureError(InvalidJwt):
    """The signature does not verify with the key."""


def _segment(raw: bytes) -> bytes:
    """Decode one base64url segment, refusing anything but its one canonical spelling."""
    stripped = raw.rstrip(b"=")
    padding = len(raw) - len(stripped)
    tail = len(stripped) % 4
    if padding > 2 or (padding and len(raw) % 4) or tail == 1:
        raise ValueError("bad padding")
    # Every character outside base64url (an inner "=", a space, a "+" made
    # "!") is refused by the strict decode, in C: a regex over the segment
    # cost as much as the decode itself.
    decoded = binascii.a2b_base64(
        stripped.translate(_TO_STANDARD) + b"=" * (-tail % 4), strict_mode=True
    )
    # Different last characters can decode to the same bytes when the last
    # one has bits to spare (4 of them after 2 characters, 2 after 3): only
    # the canonical spelling, those bits zero, is the signed token.
    if tail and _VALUE[stripped[-1]] & (0x0F if tail == 2 else 0x03):
        raise ValueError("not canonical base64url")
    return decoded


def parse(token: str) -> ParsedJwt | None:
    """The header, claims and signature of a compact JWS, or ``None`` if it is not one."""
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        return None
    parts = raw.split(b".")
    if len(parts) != 3:
        return None
    try:
        header = _decode_json(_segment(parts[0]).decode("utf-8"))
        claims = _decode_json(_segment(parts[1]).decode("utf-8"))
        signature = _segment(parts[2])
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return ParsedJwt(header, claims, raw[: len(parts[0]) + 1 + len(parts[1])], signature)


def verify_signature(parsed: ParsedJwt, algorithm: Any, key: Any) -> None:
    """Check the signature with a PyJWT algorithm object and a prepared key.

    :raises InvalidJwt: if it does not verify.
    """
    if not algorithm.verify(parsed.signing_input, key, parsed.signature):
        raise InvalidSignatureError("Signature verification failed")


def check_claims(
    claims: dict[str, Any],
    *,
    issuers: Collection[str],
    audience: Collection[str] | None,
    leeway: int,
    now: float | None = None,
) -> None:
    """``exp`` required and not past, ``nbf`` and ``iat`` not in the future (with
    leeway), ``iss`` one of ``issuers``, and, unless ``audience`` is ``None``,
    ``aud`` present and naming one of them.

    :raises InvalidJwt: the subclass saying which claim fails, in PyJWT's words.
    """
    # One name given as a string would be matched as a substring ("i" in "iss").
    if isinstance(issuers, str):
        issuers = (issuers,)
    if isinstance(audience, str):
        audience = (audience,)
    now = time.time() if now is None else now
    exp = claims.get("exp")
    if exp is None:
        raise MissingRequiredClaimError('Token is missing the "exp" claim')
    if not _number(exp):
        raise DecodeError("Expiration Time claim (exp) must be a number")
    if exp <= now - leeway:
        raise ExpiredSignatureError("Signature has expired")
    for name in _NOT_BEFORE_CLAIMS:
        value = claims.get(name)
        if value is None:
            continue
        if not _number(value):
            raise DecodeError(f"{name} must be a number")
        if value > now + leeway:
            raise ImmatureSignatureError(f"The token is not yet valid ({name})")
    if claims.get("iss") not in issuers:
        raise InvalidIssuerError("Invalid issuer")
    if audience is not None:
        aud = claims.get("aud")
        if aud is None:
            raise MissingRequiredClaimError('Token is missing the "aud" claim')
        if type(aud) is str:
            matches = aud in audience
        elif type(aud) is list and _STRINGS.issuperset(map(type, aud)):
            matches = any(map(audience.__contains__, aud))
        else:
            raise InvalidAudienceError("Invalid claim format in token")
        if not matches:
            raise InvalidAudienceError("Audience doesn't match")


def _number(value: object) -> bool:
    """A JSON number usable as a time: an int or a float exactly (a bool is
    neither to JSON), finite (strict_json), and within range."""
    return type(value) in _NUMBERS and -_MAX_TIME <= value <= _MAX_TIME  # type: ignore[operator]
