"""The API token lifecycle through the middleware: create, use, expire, revoke, prune, limits."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from werkzeug.test import Client

from restauth_wsgi import RestAuthMiddleware, Settings
from restauth_wsgi.decision import Gatekeeper
from restauth_wsgi.errors import TokenLimitExceeded
from restauth_wsgi.tokens import format as token_format
from restauth_wsgi.tokens.issuing import NEVER, issue_token
from restauth_wsgi.tokens.store import TokenRecord, TokenStore

from .helpers import echo_app, eventually

Issue = Callable[..., tuple[str, TokenRecord]]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def refusal(client: Client, headers: dict[str, str]) -> tuple[int, str, str]:
    response = client.get("/", headers=headers)
    body = json.loads(response.get_data())
    return response.status_code, body["error"], body["error_description"]


def test_token_works_as_bearer_and_as_basic_for_its_owner(client: Client, issue: Issue) -> None:
    token, _ = issue("alice")
    assert client.get("/", headers=bearer(token)).status_code == 200
    assert client.get("/", headers=basic("alice", token)).status_code == 200


def test_basic_with_another_user_looks_like_a_wrong_token(client: Client, issue: Issue) -> None:
    token, _ = issue("alice")
    forged, _ = token_format.generate()
    as_bob = refusal(client, basic("bob", token))
    unknown = refusal(client, basic("alice", forged))
    assert as_bob == unknown == (401, "invalid_credentials", "The username or token is invalid.")


def test_unknown_and_mistyped_tokens(client: Client, issue: Issue) -> None:
    token, _ = issue("alice")
    forged, _ = token_format.generate()  # well-formed, never stored
    typo = token[:-7] + ("a" if token[-7] != "a" else "b") + token[-6:]
    assert refusal(client, bearer(forged)) == (401, "invalid_token", "The access token is invalid.")
    status, code, description = refusal(client, bearer(typo))
    assert (status, code) == (401, "invalid_token")
    assert "malformed" in description


def test_expired_token_is_refused(client: Client, issue: Issue) -> None:
    token, _ = issue("alice", lifetime=60, now=int(time.time()) - 61)
    assert refusal(client, bearer(token)) == (401, "invalid_token", "The API token has expired.")
    status, code, _ = refusal(client, basic("alice", token))
    assert (status, code) == (401, "invalid_credentials")


def test_revoked_token_is_refused_on_the_next_request(
    client: Client, issue: Issue, store: TokenStore
) -> None:
    token, record = issue("alice")
    assert client.get("/", headers=bearer(token)).status_code == 200
    store.revoke(record.token_id, now=int(time.time()))
    assert refusal(client, bearer(token)) == (
        401,
        "invalid_token",
        "The API token has been revoked.",
    )


def test_state_is_only_told_to_whoever_holds_the_secret(
    client: Client, issue: Issue, store: TokenStore
) -> None:
    token, record = issue("alice")
    store.revoke(record.token_id, now=int(time.time()))
    same_id_other_secret = _with_secret(token, "B" * token_format.SECRET_LENGTH)
    assert refusal(client, bearer(same_id_other_secret))[2] == "The access token is invalid."


def _with_secret(token: str, secret: str) -> str:
    body = token[: len(token_format.PREFIX) + token_format.ID_LENGTH + 1] + secret
    return body + token_format._checksum(body)


def test_last_used_is_written_at_most_once_a_minute(
    settings: Settings, issue: Issue, store: TokenStore
) -> None:
    now = [float(int(time.time()))]
    gatekeeper = Gatekeeper.from_settings(settings, clock=lambda: now[0])
    client = Client(RestAuthMiddleware(echo_app, settings=settings, gatekeeper=gatekeeper))
    token, record = issue("alice")
    assert record.last_used_at is None
    first = now[0]
    assert client.get("/", headers=bearer(token)).status_code == 200
    # Written by the change feed's thread, off the request path.
    eventually(lambda: _last_used(store, record.token_id) == first, "the first use written")

    now[0] = first + 30
    for _ in range(5):
        assert client.get("/", headers=bearer(token)).status_code == 200
    time.sleep(0.3)  # a few polls of the feed's thread
    assert _last_used(store, record.token_id) == first, "no write within the minute"
    now[0] = first + 61
    assert client.get("/", headers=bearer(token)).status_code == 200
    eventually(lambda: _last_used(store, record.token_id) == first + 61, "a later use written")
    gatekeeper.close()


def _last_used(store: TokenStore, token_id: str) -> int | None:
    record = store.get(token_id)
    assert record is not None
    return record.last_used_at


def test_only_a_hash_is_stored(issue: Issue, store: TokenStore) -> None:
    token, record = issue("alice")
    secret = token[len(token_format.PREFIX) + token_format.ID_LENGTH + 1 :]
    store.close()
    stored = b"".join(p.read_bytes() for p in Path(store.path).parent.iterdir())  # type: ignore[attr-defined]
    assert record.token_id.encode() in stored
    assert secret[:20].encode() not in stored
    assert token.encode() not in stored


def test_at_most_ten_active_tokens_per_user_by_default(issue: Issue, store: TokenStore) -> None:
    records = [issue("alice")[1] for _ in range(10)]
    with pytest.raises(TokenLimitExceeded, match="RESTAUTH_TOKEN_MAX_PER_USER"):
        issue("alice")
    issue("bob")  # the limit is per user
    store.revoke(records[0].token_id, now=int(time.time()))
    issue("alice")  # revoked tokens do not count


def test_expired_tokens_do_not_count_towards_the_limit(
    settings: Settings, store: TokenStore
) -> None:
    policy = dataclasses.replace(settings, token_max_per_user=1).token_policy()
    issue_token(store, policy, owner="alice", lifetime=60, now=int(time.time()) - 120)
    issue_token(store, policy, owner="alice")
    with pytest.raises(TokenLimitExceeded):
        issue_token(store, policy, owner="alice")


def test_zero_means_no_limit(settings: Settings, store: TokenStore) -> None:
    policy = dataclasses.replace(settings, token_max_per_user=0).token_policy()
    for _ in range(12):
        issue_token(store, policy, owner="alice")


@pytest.mark.parametrize(
    ("changes", "lifetime", "allowed"),
    [
        pytest.param({}, 365 * 86400, True, id="max-lifetime"),
        pytest.param({}, 365 * 86400 + 1, False, id="over-max-lifetime"),
        pytest.param({}, NEVER, False, id="never-by-default"),
        pytest.param({"token_allow_no_expiry": True}, NEVER, True, id="never-when-allowed"),
        pytest.param({"token_max_lifetime": 86400}, 2 * 86400, False, id="lower-max"),
    ],
)
def test_lifetime_limits(
    settings: Settings,
    store: TokenStore,
    make_client: Callable[..., Client],
    changes: dict[str, object],
    lifetime: int,
    allowed: bool,
) -> None:
    changes.setdefault("token_default_lifetime", 3600)
    settings = dataclasses.replace(settings, **changes)
    if not allowed:
        with pytest.raises(TokenLimitExceeded):
            issue_token(store, settings.token_policy(), owner="alice", lifetime=lifetime)
        return
    token, record = issue_token(store, settings.token_policy(), owner="alice", lifetime=lifetime)
    assert record.expires_at is None if lifetime == NEVER else record.expires_at is not None
    assert make_client(settings).get("/", headers=bearer(token)).status_code == 200


def test_default_lifetime_is_ninety_days(issue: Issue) -> None:
    _, record = issue("alice")
    assert record.expires_at is not None
    assert record.expires_at - record.created_at == 90 * 86400


@pytest.mark.parametrize("owner", ["", " alice", "al:ice", "a\nb", "x" * 256])
def test_owners_that_cannot_be_a_remote_user_are_refused(issue: Issue, owner: str) -> None:
    with pytest.raises(ValueError, match="user"):
        issue(owner)


def test_prune_deletes_long_dead_tokens_only(issue: Issue, store: TokenStore) -> None:
    now = int(time.time())
    _, long_expired = issue("alice", lifetime=86400, now=now - 50 * 86400)
    _, just_expired = issue("alice", lifetime=86400, now=now - 2 * 86400)
    _, long_revoked = issue("alice")
    store.revoke(long_revoked.token_id, now=now - 40 * 86400)
    _, active = issue("alice")
    assert store.prune(before=now - 30 * 86400) == 2
    left = {r.token_id for r in store.list()}
    assert left == {just_expired.token_id, active.token_id}
    assert long_expired.token_id not in left
