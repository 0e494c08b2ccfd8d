"""Every shape of Authorization header gets a 4xx or a 200, never a 500."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from restauth_wsgi.tokens.store import TokenRecord


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


BEARER_CHALLENGE = 'Bearer realm="api"'
BASIC_CHALLENGE = 'Basic realm="api", charset="UTF-8"'


@pytest.mark.parametrize(
    ("header", "status", "code", "bearer_error"),
    [
        pytest.param(None, 401, "missing_credentials", None, id="absent"),
        pytest.param("", 401, "missing_credentials", None, id="empty"),
        pytest.param("   ", 401, "missing_credentials", None, id="blank"),
        pytest.param("Digest username=alice", 401, "missing_credentials", None, id="digest"),
        pytest.param("Token abc", 401, "missing_credentials", None, id="unknown-scheme"),
        pytest.param("Bearer\tabc", 401, "missing_credentials", None, id="tab-not-space"),
        pytest.param("x" * 100_000, 401, "missing_credentials", None, id="100kb-no-scheme"),
        pytest.param("Bearer", 400, "invalid_request", "invalid_request", id="bare-bearer"),
        pytest.param("Bearer   ", 400, "invalid_request", "invalid_request", id="bearer-spaces"),
        pytest.param("Bearer a b", 400, "invalid_request", "invalid_request", id="inner-space"),
        pytest.param('Bearer "abc"', 400, "invalid_request", "invalid_request", id="quoted"),
        pytest.param("Bearer abc=def", 400, "invalid_request", "invalid_request", id="inner-eq"),
        pytest.param("Bearer caf\xe9", 400, "invalid_request", "invalid_request", id="non-ascii"),
        pytest.param("Bearer \xff\xfe\x80", 400, "invalid_request", "invalid_request", id="bytes"),
        pytest.param("Bearer abc\x00", 400, "invalid_request", "invalid_request", id="nul"),
        pytest.param("Bearer abc", 401, "invalid_token", "invalid_token", id="unknown-token"),
        pytest.param("Bearer abc==", 401, "invalid_token", "invalid_token", id="padded"),
        pytest.param(
            "Bearer restauth_x", 401, "invalid_token", "invalid_token", id="short-api-token"
        ),
        pytest.param(
            "Bearer " + "a" * 100_000, 401, "invalid_token", "invalid_token", id="100kb-bearer"
        ),
        # A first segment that looks like a JOSE header, nested past the JSON
        # parser's recursion (decoded), or also longer than any header (not).
        *[
            pytest.param(
                "Bearer " + b64(b'{"a":' + b"[" * depth).replace("+", "-").rstrip("=") + ".x.y",
                401,
                "invalid_token",
                "invalid_token",
                id=f"header-nested-{depth}-deep",
            )
            for depth in (3000, 9000)
        ],
        pytest.param("Basic", 400, "invalid_request", None, id="bare-basic"),
        pytest.param("Basic !!!!", 400, "invalid_request", None, id="not-base64"),
        pytest.param("Basic YWJ", 400, "invalid_request", None, id="bad-padding"),
        pytest.param("Basic " + b64(b"alice"), 400, "invalid_request", None, id="no-colon"),
        pytest.param("Basic " + b64(b"\xff:x"), 400, "invalid_request", None, id="not-utf8"),
        pytest.param("Basic caf\xe9", 400, "invalid_request", None, id="basic-non-ascii"),
        pytest.param(
            "Basic " + b64(b"alice:nope"), 401, "invalid_credentials", None, id="wrong-password"
        ),
        pytest.param(
            "Basic " + b64(b":"), 401, "invalid_credentials", None, id="empty-user-password"
        ),
        pytest.param(
            "Basic " + "QUFB" * 25_000, 401, "invalid_credentials", None, id="100kb-basic"
        ),
    ],
)
def test_refused_headers(
    client: Client, header: str | None, status: int, code: str, bearer_error: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = client.get("/api/thing", headers=headers)
    assert response.status_code == status
    # Spelt exactly so: atlassian-python-api ignores a 401 body under any other.
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert response.headers["Cache-Control"] == "no-store"
    body = json.loads(response.get_data())
    assert body["error"] == code
    assert body["error_description"]
    # Atlassian's shape too, for the jira and atlassian-python-api clients.
    assert body["errorMessages"] == [body["error_description"]]
    assert body["errors"] == {}
    challenges = response.headers.getlist("WWW-Authenticate")
    assert len(challenges) == 2, "one challenge per enabled scheme"
    bearer, basic = challenges
    assert basic == BASIC_CHALLENGE
    if bearer_error is None:
        assert bearer == BEARER_CHALLENGE, "RFC 6750: no error attribute"
    else:
        assert bearer.startswith(f'{BEARER_CHALLENGE}, error="{bearer_error}", error_description="')


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("Bearer {token}", id="bearer"),
        pytest.param("bearer {token}", id="lower-case"),
        pytest.param("BEARER {token}", id="upper-case"),
        pytest.param("Bearer    {token}   ", id="extra-spaces"),
        pytest.param("  Bearer {token}", id="leading-space"),
        pytest.param("Basic {basic}", id="basic"),
        pytest.param("basic {basic}", id="basic-lower-case"),
        pytest.param("Basic   {basic} ", id="basic-extra-spaces"),
    ],
)
def test_accepted_spellings(
    client: Client, issue: Callable[..., tuple[str, TokenRecord]], template: str
) -> None:
    token, _ = issue("alice")
    header = template.format(token=token, basic=b64(f"alice:{token}".encode()))
    response = client.get("/", headers={"Authorization": header})
    assert response.status_code == 200
    assert json.loads(response.get_data())["remote_user"] == "alice"


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.one_of(
        st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=300),
        st.builds(
            "{} {}".format,
            st.sampled_from(["Bearer", "Basic", "bearer", "basic"]),
            st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=300),
        ),
        st.builds(lambda raw: "Basic " + b64(raw), st.binary(max_size=200)),
    )
)
def test_any_header_is_refused_with_a_4xx(client: Client, header: str) -> None:
    # WSGI header values are latin-1 strings; every byte value 0-255 is covered,
    # set straight in the environ since the test client refuses newlines.
    response = client.get("/", environ_overrides={"HTTP_AUTHORIZATION": header})
    assert 400 <= response.status_code < 500
    assert json.loads(response.get_data())["error"]
