"""The one strict JWT parse and the registered-claim rules (restauth_wsgi.jwt.jws)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from restauth_wsgi.jwt import jws


def b64(data: Any) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


HEADER = b64({"alg": "RS256"})
CLAIMS = b64({"iss": "i", "exp": 2})
SIGNATURE = b64(b"\x01\x02\x03\x04")


@pytest.mark.parametrize(
    ("token", "parses"),
    [
        pytest.param(f"{HEADER}.{CLAIMS}.{SIGNATURE}", True, id="plain"),
        pytest.param(f"{HEADER}.{CLAIMS}.", True, id="empty-signature"),
        pytest.param(f"{HEADER}.{CLAIMS}.{SIGNATURE}==", True, id="correct-padding"),
        pytest.param(f"{HEADER}.{CLAIMS}.{SIGNATURE}=", False, id="padding-on-wrong-length"),
        pytest.param(f"{HEADER}.{CLAIMS}.{SIGNATURE}===", False, id="too-much-padding"),
        pytest.param(f"{HEADER}.{CLAIMS}", False, id="two-segments"),
        pytest.param(f"{HEADER}.{CLAIMS}.{SIGNATURE}.x", False, id="four-segments"),
        pytest.param(f"{HEADER}.{CLAIMS}.{SIGNATURE[:-1]}B", False, id="non-canonical-last-char"),
        pytest.param(f"{HEADER}.{CLAIMS}.ab+/", False, id="not-base64url"),
        pytest.param(f"{HEADER}.{CLAIMS}.ab/_", False, id="standard-alphabet-slash"),
        # What a lenient base64 decoder skips or stops at, each inside a segment.
        pytest.param(f"{HEADER}.{CLAIMS}.AB=CAAAA", False, id="inner-padding"),
        pytest.param(f"{HEADER}.{CLAIMS}.AB\nCD", False, id="inner-newline"),
        pytest.param(f"{HEADER}.{CLAIMS}.AB CD", False, id="inner-space"),
        pytest.param(f"{HEADER}.{CLAIMS}.AB!CD", False, id="inner-punctuation"),
        pytest.param(
            f"{HEADER}.{CLAIMS[:4]}={CLAIMS[4:]}.{SIGNATURE}", False, id="claims-inner-pad"
        ),
        pytest.param(f"{HEADER}.{CLAIMS}.{SIGNATURE[:-1]}!", False, id="last-char-not-alphabet"),
        pytest.param(f"{HEADER}.{CLAIMS}.=", False, id="padding-only"),
        pytest.param(f"{HEADER}.{CLAIMS}.abcde", False, id="impossible-length"),
        pytest.param(f"{HEADER}.{b64([1, 2])}.{SIGNATURE}", False, id="claims-not-an-object"),
        pytest.param(f"{b64(b'not json')}.{CLAIMS}.{SIGNATURE}", False, id="header-not-json"),
        pytest.param(f"{HEADER}.{b64(b'[' * 100_000)}.{SIGNATURE}", False, id="deep-nesting"),
        pytest.param(f"{HEADER}.{CLAIMS}.{SIGNATURE}\u00e9", False, id="non-ascii"),
    ],
)
def test_parse(token: str, parses: bool) -> None:
    parsed = jws.parse(token)
    assert (parsed is not None) == parses
    if parsed is not None:
        assert parsed.signing_input == token.rsplit(".", 1)[0].encode()


def test_padded_segments_whose_length_allows_it_are_accepted() -> None:
    padded = base64.urlsafe_b64encode(json.dumps({"alg": "RS256"}).encode()).decode()
    assert padded.endswith("=")
    assert jws.parse(f"{padded}.{CLAIMS}.{SIGNATURE}") is not None


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 6])
def test_only_the_canonical_spelling_of_a_segment_parses(length: int) -> None:
    """Where the last character has spare bits, a spelling parses only if
    those bits are zero: never two spellings of the same bytes."""
    canonical = b64(bytes(range(7, 7 + length)))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    parsed_to: dict[bytes, str] = {}
    for char in alphabet:
        spelling = canonical[:-1] + char
        lenient = base64.urlsafe_b64decode(spelling + "=" * (-len(spelling) % 4))
        parsed = jws.parse(f"{HEADER}.{CLAIMS}.{spelling}")
        assert (parsed is not None) == (b64(lenient) == spelling), spelling
        if parsed is not None:
            assert parsed.signature == lenient
            assert lenient not in parsed_to
            parsed_to[lenient] = spelling
    assert canonical in parsed_to.values()
    assert len(parsed_to) == {1: 4, 2: 16, 0: 64}[length % 3]


def test_json_in_another_unicode_encoding_is_refused() -> None:
    """RFC 7519 asks for UTF-8; json.loads on bytes would also accept UTF-16."""
    utf16 = base64.urlsafe_b64encode(json.dumps({"iss": "i", "exp": 2}).encode("utf-16")).decode()
    assert jws.parse(f"{HEADER}.{utf16.rstrip('=')}.{SIGNATURE}") is None


NOW = 1_000_000


@pytest.mark.parametrize(
    ("claims", "audience", "error"),
    [
        pytest.param({"iss": "i", "exp": NOW + 10}, None, None, id="valid"),
        pytest.param({"iss": "i", "exp": NOW - 30}, None, None, id="within-leeway"),
        pytest.param({"iss": "i", "exp": NOW - 61}, None, "ExpiredSignatureError", id="expired"),
        pytest.param({"iss": "i"}, None, "MissingRequiredClaimError", id="no-exp"),
        pytest.param({"iss": "i", "exp": True}, None, "DecodeError", id="exp-bool"),
        pytest.param({"iss": "i", "exp": False}, None, "DecodeError", id="exp-false"),
        pytest.param({"iss": "i", "exp": NOW + 10.5}, None, None, id="exp-float"),
        pytest.param({"iss": "i", "exp": float("nan")}, None, "DecodeError", id="exp-nan"),
        pytest.param({"iss": "i", "exp": float("inf")}, None, "DecodeError", id="exp-infinite"),
        pytest.param({"iss": "i", "exp": 2**53 + 1}, None, "DecodeError", id="exp-beyond-float"),
        pytest.param({"iss": "i", "exp": [NOW + 10]}, None, "DecodeError", id="exp-list"),
        pytest.param(
            {"iss": "i", "exp": NOW + 10, "iat": True}, None, "DecodeError", id="iat-bool"
        ),
        pytest.param(
            {"iss": "i", "exp": NOW + 10, "nbf": None}, None, None, id="nbf-null-is-absent"
        ),
        pytest.param({"iss": "i", "exp": "9999999999"}, None, "DecodeError", id="exp-string"),
        pytest.param(
            {"iss": "i", "exp": NOW + 10, "nbf": NOW + 61},
            None,
            "ImmatureSignatureError",
            id="nbf-future",
        ),
        pytest.param(
            {"iss": "i", "exp": NOW + 10, "nbf": NOW + 59}, None, None, id="nbf-within-leeway"
        ),
        pytest.param(
            {"iss": "i", "exp": NOW + 10, "iat": NOW + 61},
            None,
            "ImmatureSignatureError",
            id="iat-future",
        ),
        pytest.param(
            {"iss": "i", "exp": NOW + 10, "nbf": "soon"}, None, "DecodeError", id="nbf-string"
        ),
        pytest.param({"iss": "j", "exp": NOW + 10}, None, "InvalidIssuerError", id="issuer"),
        pytest.param({"exp": NOW + 10}, None, "InvalidIssuerError", id="no-issuer"),
        pytest.param(
            {"iss": "i", "exp": NOW + 10}, ("api",), "MissingRequiredClaimError", id="no-aud"
        ),
        pytest.param({"iss": "i", "exp": NOW + 10, "aud": "api"}, ("api",), None, id="aud"),
        pytest.param(
            {"iss": "i", "exp": NOW + 10, "aud": ["x", "api"]}, ("api",), None, id="aud-list"
        ),
        pytest.param(
            {"iss": "i", "exp": NOW + 10, "aud": ["x"]},
            ("api",),
            "InvalidAudienceError",
            id="aud-other",
        ),
        pytest.param(
            {"iss": "i", "exp": NOW + 10, "aud": [1]},
            ("api",),
            "InvalidAudienceError",
            id="aud-not-strings",
        ),
        pytest.param(
            {"iss": "i", "exp": NOW + 10, "aud": ["api", 1]},
            ("api",),
            "InvalidAudienceError",
            id="aud-match-beside-a-number",
        ),
        pytest.param(
            {"iss": "i", "exp": NOW + 10, "aud": ["api", ["api"]]},
            ("api",),
            "InvalidAudienceError",
            id="aud-match-beside-a-list",
        ),
        pytest.param(
            {"iss": "i", "exp": NOW + 10, "aud": []},
            ("api",),
            "InvalidAudienceError",
            id="aud-empty-list",
        ),
        pytest.param(
            {"iss": "i", "exp": NOW + 10, "aud": True},
            ("api",),
            "InvalidAudienceError",
            id="aud-bool",
        ),
        pytest.param(
            {"iss": "i", "exp": NOW + 10, "aud": {"api": 1}},
            ("api",),
            "InvalidAudienceError",
            id="aud-object",
        ),
    ],
)
def test_check_claims(
    claims: dict[str, Any], audience: tuple[str, ...] | None, error: str | None
) -> None:
    if error is None:
        jws.check_claims(claims, issuers=("i",), audience=audience, leeway=60, now=NOW)
    else:
        with pytest.raises(jws.InvalidJwt, match=f"^{error}:"):
            jws.check_claims(claims, issuers=("i",), audience=audience, leeway=60, now=NOW)


@pytest.mark.parametrize(
    ("claims", "error", "description"),
    [
        ({"iss": "i", "exp": NOW - 61}, jws.ExpiredSignatureError, "has expired"),
        ({"iss": "i", "exp": NOW + 10, "nbf": NOW + 61}, jws.ImmatureSignatureError, "not valid"),
        ({"iss": "i", "exp": NOW + 10, "aud": "other"}, jws.InvalidAudienceError, "audience"),
        ({"iss": "j", "exp": NOW + 10, "aud": "api"}, jws.InvalidIssuerError, "is invalid"),
        ({"iss": "i", "exp": "soon", "aud": "api"}, jws.DecodeError, "is invalid"),
    ],
)
def test_each_reason_is_a_class_that_says_what_the_caller_is_told(
    claims: dict[str, Any], error: type[jws.InvalidJwt], description: str
) -> None:
    with pytest.raises(error) as raised:
        jws.check_claims(claims, issuers=("i",), audience=("api",), leeway=60, now=NOW)
    assert type(raised.value) is error
    assert description in raised.value.description
    assert str(raised.value) == f"{error.__name__}: {raised.value.detail}"


def test_an_issuer_or_audience_given_as_one_string_is_matched_whole() -> None:
    """A caller that passes a string where a collection is asked for must not
    get substring matching ("a" is in "api")."""
    claims = {"iss": "i", "exp": NOW + 10, "aud": "a"}
    with pytest.raises(jws.InvalidAudienceError):
        jws.check_claims(claims, issuers="i", audience="api", leeway=60, now=NOW)
    with pytest.raises(jws.InvalidIssuerError):
        jws.check_claims(
            {"iss": "h", "exp": NOW + 10}, issuers="https", audience=None, leeway=60, now=NOW
        )
    jws.check_claims({**claims, "aud": "api"}, issuers="i", audience="api", leeway=60, now=NOW)
