"""The API token format.

A token reads ``restauth_<id>_<secret><checksum>``:

* ``restauth_`` is a fixed prefix, so secret scanners (and people) can
  recognise a leaked token: ``restauth_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}``;
* ``<id>`` is 12 base62 characters, the public id under which the store
  keeps the token (it appears in ``restauth token list`` and in logs);
* ``<secret>`` is 32 base62 characters, about 190 random bits; only its
  SHA-256 is stored (a fast hash is right for a secret this random: there is
  nothing to brute-force, unlike a password);
* ``<checksum>`` is the CRC32 of everything before it in 6 base62
  characters, as GitHub's tokens do, so a mistyped or truncated token is
  rejected without a store lookup.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import zlib
from typing import NamedTuple

PREFIX = "restauth_"
ID_LENGTH = 12
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
TOKEN_LENGTH = len(PREFIX) + ID_LENGTH + 1 + SECRET_LENGTH + CHECKSUM_LENGTH
#: A pattern for secret scanners; it matches every token this module makes.
SCANNER_PATTERN = (
    rf"\b{PREFIX}[0-9A-Za-z]{{{ID_LENGTH}}}_[0-9A-Za-z]{{{SECRET_LENGTH + CHECKSUM_LENGTH}}}\b"
)

_ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
_VALUE = {char: value for value, char in enumerate(_ALPHABET)}
_SHAPE = re.compile(
    rf"{PREFIX}([0-9A-Za-z]{{{ID_LENGTH}}})_([0-9A-Za-z]{{{SECRET_LENGTH}}})[0-9A-Za-z]{{{CHECKSUM_LENGTH}}}"
)
_ID_SHAPE = re.compile(rf"[0-9A-Za-z]{{{ID_LENGTH}}}")


def named_in(header: str) -> bool:
    """Whether an ``Authorization`` header names an API token in the clear.

    A look at its first characters (``Bearer restauth_…``), for the hot path
    to choose its way before anything is parsed; Basic ``user:token`` hides
    the prefix in base64 and answers ``False``. Never a judgement of the token.
    """
    # The scheme and its spaces come first; 24 characters leave room for them.
    return header.find(PREFIX, 0, 24) != -1


class MalformedToken(ValueError):
    """The text has the token prefix but is not a well-formed token."""


class ParsedToken(NamedTuple):
    """A syntactically valid token: its public id and the hash of the whole token."""

    token_id: str
    secret_hash: str


def generate() -> tuple[str, ParsedToken]:
    """Make a new random token; return it raw (shown once) and parsed."""
    token_id = _random(ID_LENGTH)
    body = f"{PREFIX}{token_id}_{_random(SECRET_LENGTH)}"
    raw = body + _checksum(body)
    return raw, ParsedToken(token_id, hash_token(raw))


def looks_like_token(text: str) -> bool:
    """Whether ``text`` claims to be one of our tokens (has the prefix)."""
    return text.startswith(PREFIX)


def parse(raw: str) -> ParsedToken:
    """Check a token's shape and checksum without touching the store.

    :raises MalformedToken: if the shape or the checksum is wrong.
    """
    if len(raw) != TOKEN_LENGTH:
        raise MalformedToken("the token has the wrong length")
    match = _SHAPE.fullmatch(raw)
    if match is None:
        raise MalformedToken("the token has characters that do not belong in it")
    body = raw[:-CHECKSUM_LENGTH]
    written = 0
    for char in raw[-CHECKSUM_LENGTH:]:  # the shape check made every character base62
        written = written * 62 + _VALUE[char]
    # Not secret (a CRC of the token), so a plain comparison is fine here; the
    # secret itself is compared in constant time against the stored hash.
    if written != zlib.crc32(body.encode("ascii")):
        raise MalformedToken("the token's checksum does not match (mistyped or truncated?)")
    return ParsedToken(match.group(1), hash_token(raw))


def is_token_id(text: str) -> bool:
    """Whether ``text`` has the shape of a token's public id."""
    return _ID_SHAPE.fullmatch(text) is not None


def hash_token(raw: str) -> str:
    """Return the stored form of a token: the hex SHA-256 of the whole token."""
    return hashlib.sha256(raw.encode("ascii")).hexdigest()


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _checksum(body: str) -> str:
    value = zlib.crc32(body.encode("ascii"))
    digits = []
    for _ in range(CHECKSUM_LENGTH):
        value, digit = divmod(value, 62)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))
