"""The self-service token API through the WSGI interface: the lifecycle as
Atlassian documents it, who may create what, limits, admins, a token minting
a token, bodies an attacker would send, CORS, path spellings, the audit lines.

The callers are a password user (Basic ``jenkins:...``) and users whose
provider tokens a local userinfo endpoint vouches for, with the groups and
scopes each test needs. The real provider, gunicorn and concurrency are in
``test_self_service_servers.py``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.exceptions import ClientDisconnected
from werkzeug.middleware.lint import LintMiddleware
from werkzeug.test import Client, EnvironBuilder, run_wsgi_app

from restauth_wsgi import ConfigurationError, RestAuthMiddleware, Settings
from restauth_wsgi.providers.settings import ProviderSettings
from restauth_wsgi.self_service.body import MAX_BODY
from restauth_wsgi.tokens import format as token_format
from restauth_wsgi.tokens.store import TokenStore

from .fake_provider import FakeProvider
from .helpers import claims_token, echo_app, eventually, serve_claims
from .self_service_support import (
    API,
    CREATED_FIELDS,
    DAY,
    LISTED_FIELDS,
    Answer,
    basic,
    bearer,
    call,
    parse_time,
)

PASSWORD = "s3cret-pw"
JENKINS = basic("jenkins", PASSWORD)
ALICE = bearer(claims_token(sub="alice", groups=["engineering"], scope="read write"))
BOB = bearer(claims_token(sub="bob", groups=["operations"]))
ROOT = bearer(claims_token(sub="root", groups=["token-admins"]))
RITA = bearer(claims_token(sub="rita", groups=["auditors"]))
Web = Callable[..., Client]


@pytest.fixture
def web(fake_provider: FakeProvider, store_url: str, tmp_path: Path) -> Web:
    """The echo app behind the middleware with the API on; changes to the settings as keywords."""
    fake_provider.route("/me", serve_claims)
    provider = ProviderSettings(
        "idp", type="oauth2", userinfo_url=f"{fake_provider.url}/me", cache_ttl=0
    )
    passwords = tmp_path / "htpasswd"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    passwords.write_text(f"jenkins:{hashed}\n")

    def build(**changes: Any) -> Client:
        values: dict[str, Any] = {
            "token_store": store_url,
            "providers": (provider,),
            "password_file": str(passwords),
            "self_service": True,
            **changes,
        }
        return Client(LintMiddleware(RestAuthMiddleware(echo_app, settings=Settings(**values))))

    return build


def create(client: Client, headers: dict[str, str], **body: Any) -> Answer:
    return call(client, "POST", headers=headers, json_body={"name": "ci", **body})


def refused(answer: Answer, status: int, code: str, field: str | None = None) -> str:
    """Check a refusal's status and body (RFC 6750's fields and Atlassian's); its sentence."""
    assert answer.status == status, answer
    body = answer.body
    assert body["error"] == code, body
    assert body["errorMessages"] == [body["error_description"]]
    assert body["errors"] == ({field: body["error_description"]} if field else {}), body
    assert answer.headers["Cache-Control"] == "no-store"
    description: str = body["error_description"]
    return description


# -- the lifecycle, as Atlassian's page shows it ----------------------------------------


def test_lifecycle_as_atlassian_documents_it(web: Web) -> None:
    """Create (201 with rawToken, shown once), list (no secret), use, revoke (204),
    then the token is refused and its id is gone."""
    client = web()
    before = time.time()
    created = call(
        client, "POST", headers=JENKINS, json_body={"name": "tokenName", "expirationDuration": 90}
    )
    assert created.status == 201, created
    token = created.body
    assert set(token) == CREATED_FIELDS
    assert (token["name"], token["user"]) == ("tokenName", "jenkins")
    assert token_format.is_token_id(token["id"])
    assert token_format.parse(token["rawToken"]).token_id == token["id"]
    created_at = parse_time(token["createdAt"])
    assert before - 1 <= created_at <= time.time()
    assert parse_time(token["expiringAt"]) - created_at == 90 * DAY
    assert created.headers["Cache-Control"] == "no-store"
    raw = token["rawToken"]

    listed = call(client, "GET", headers=JENKINS)
    assert listed.status == 200
    assert [(t["id"], t["name"]) for t in listed.body] == [(token["id"], "tokenName")]
    shown = listed.body[0]
    assert set(shown) == LISTED_FIELDS
    assert (shown["lastAccessedAt"], shown["status"], shown["expiresSoon"]) == (
        None,
        "ACTIVE",
        False,
    )
    text = json.dumps(listed.body)
    assert raw not in text
    assert token_format.hash_token(raw) not in text

    assert call(client, "GET", "/rest/api/2/myself", headers=bearer(raw)).body["remote_user"] == (
        "jenkins"
    )
    assert call(client, "GET", "/", headers=basic("jenkins", raw)).status == 200
    eventually(
        lambda: call(client, "GET", headers=JENKINS).body[0]["lastAccessedAt"] is not None,
        "the use shown as lastAccessedAt",
    )

    deleted = call(client, "DELETE", f"{API}/{token['id']}", headers=JENKINS)
    assert (deleted.status, deleted.body) == (204, None)
    assert call(client, "GET", headers=JENKINS).body == []
    eventually(
        lambda: call(client, "GET", "/", headers=bearer(raw)).status == 401,
        "the revoked token refused",
        timeout=2,
    )
    refused(call(client, "DELETE", f"{API}/{token['id']}", headers=JENKINS), 404, "not_found")


def test_a_provider_token_creates_a_token_that_works_without_it(web: Web) -> None:
    client = web()
    created = create(client, ALICE)
    assert created.status == 201
    seen = call(client, "GET", "/x", headers=bearer(created.body["rawToken"])).body
    assert seen["remote_user"] == "alice"
    assert seen["identity"]["method"] == "api_token"
    assert seen["identity"]["scopes"] == [], "scopes are granted only when asked for"


def test_off_by_default_the_path_is_the_applications(web: Web) -> None:
    client = web(self_service=False)
    answer = call(client, "POST", headers=ALICE, json_body={"name": "ci"})
    assert (answer.status, answer.body["remote_user"]) == (200, "alice")


# -- expiry -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "body", "lifetime"),
    [
        pytest.param({}, {}, 90 * DAY, id="no-duration-default-lifetime"),
        pytest.param({"token_default_lifetime": 7 * DAY}, {}, 7 * DAY, id="set-default"),
        pytest.param({"token_allow_no_expiry": True}, {}, None, id="no-duration-never-expires"),
        pytest.param(
            {"token_allow_no_expiry": True},
            {"expirationDuration": None},
            None,
            id="null-duration-never-expires",
        ),
        pytest.param({}, {"expirationDuration": 1}, DAY, id="one-day"),
        pytest.param({}, {"expirationDuration": 365}, 365 * DAY, id="the-maximum"),
    ],
)
def test_expiry(
    web: Web, store: TokenStore, changes: dict[str, Any], body: dict[str, Any], lifetime: int | None
) -> None:
    created = create(web(**changes), JENKINS, **body)
    assert created.status == 201, created
    record = store.get(created.body["id"])
    assert record is not None
    if lifetime is None:
        assert (record.expires_at, created.body["expiringAt"]) == (None, None)
    else:
        assert record.expires_at is not None
        assert record.expires_at - record.created_at == lifetime


def test_a_lifetime_beyond_the_maximum_is_refused(web: Web) -> None:
    client = web(token_max_lifetime=30 * DAY, token_default_lifetime=30 * DAY)
    answer = create(client, JENKINS, expirationDuration=31)
    assert "at most 30 days" in refused(answer, 400, "limit_exceeded", "expirationDuration")
    assert create(client, JENKINS, expirationDuration=30).status == 201


def test_a_maximum_under_a_day_says_to_leave_the_duration_out(web: Web) -> None:
    client = web(token_max_lifetime=12 * 3600, token_default_lifetime=3600)
    answer = create(client, ALICE, expirationDuration=1)
    description = refused(answer, 400, "limit_exceeded", "expirationDuration")
    assert "cannot be given here" in description
    assert "12h" in description
    assert "1h" in description
    assert create(client, ALICE).status == 201


def test_tokens_expiring_within_five_days_are_marked(web: Web, store: TokenStore) -> None:
    client = web()
    created = create(client, JENKINS, expirationDuration=5)
    later = create(client, JENKINS, expirationDuration=6)
    assert (created.status, later.status) == (201, 201)
    shown = {t["id"]: t for t in call(client, "GET", headers=JENKINS).body}
    assert (shown[created.body["id"]]["status"], shown[created.body["id"]]["expiresSoon"]) == (
        "EXPIRES_SOON",
        True,
    )
    assert (shown[later.body["id"]]["status"], shown[later.body["id"]]["expiresSoon"]) == (
        "ACTIVE",
        False,
    )


# -- who may, and how many ----------------------------------------------------------------


def test_at_most_the_policys_tokens_per_user(web: Web) -> None:
    client = web(token_max_per_user=2)
    made = [create(client, JENKINS) for _ in range(2)]
    assert [a.status for a in made] == [201, 201]
    third = create(client, JENKINS)
    assert "revoke one first" in refused(third, 400, "limit_exceeded")
    assert create(client, ALICE).status == 201, "the limit is per user"
    assert call(client, "DELETE", f"{API}/{made[0].body['id']}", headers=JENKINS).status == 204
    assert create(client, JENKINS).status == 201, "revoked tokens do not count"


def test_only_members_of_the_groups_create(web: Web) -> None:
    client = web(self_service_groups=("engineering",))
    assert create(client, ALICE).status == 201
    refused(create(client, BOB), 403, "forbidden")
    refused(create(client, JENKINS), 403, "forbidden")  # a password carries no groups
    listed = call(client, "GET", headers=BOB)
    assert (listed.status, listed.body) == (200, [])


def test_a_read_only_group_member_cannot_create(web: Web) -> None:
    client = web(read_only_groups=("auditors",))
    refused(create(client, RITA), 403, "forbidden")
    assert call(client, "GET", headers=RITA).status == 200


def test_a_trusted_remote_user_lists_but_does_not_create(web: Web) -> None:
    client = web(trust_remote_user=True)
    kerberos = {"REMOTE_USER": "kerb"}
    listed = client.get(API, environ_overrides=kerberos)
    assert (listed.status_code, listed.get_json()) == (200, [])
    answer = client.post(API, json={"name": "ci"}, environ_overrides=kerberos)
    assert answer.status_code == 403


def test_a_user_name_with_a_colon_cannot_own_a_token(web: Web) -> None:
    """Basic user:token could not carry it (a provider's prefix such as gh:)."""
    answer = create(web(), bearer(claims_token(sub="gh:octocat")))
    assert "cannot own an API token" in refused(answer, 403, "forbidden")


def test_credentials_come_only_from_the_authorization_header(web: Web) -> None:
    client = web()
    token = create(client, JENKINS).body["rawToken"]
    answer = call(client, "POST", headers={"Cookie": f"token={token}"}, json_body={"name": "x"})
    assert (answer.status, answer.body["error"]) == (401, "missing_credentials")
    assert call(client, "GET", "/", headers={"Cookie": f"session={token}"}).status == 401


# -- admins -----------------------------------------------------------------------------


def test_admins_list_and_revoke_anyones_tokens(web: Web, caplog: pytest.LogCaptureFixture) -> None:
    client = web(self_service_admin_groups=("token-admins",))
    alices = create(client, ALICE).body
    create(client, BOB)
    listed = call(client, "GET", f"{API}", headers=ROOT, query_string={"user": "alice"})
    assert [t["id"] for t in listed.body] == [alices["id"]]
    assert [t["user"] for t in call(client, "GET", headers=BOB).body] == ["bob"]
    refused(call(client, "GET", headers=BOB, query_string={"user": "alice"}), 403, "forbidden")
    with caplog.at_level(logging.INFO, logger="restauth.audit"):
        assert call(client, "DELETE", f"{API}/{alices['id']}", headers=ROOT).status == 204
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if "event" in r.getMessage()]
    assert (line["event"], line["actor"], line["owner"]) == ("token_revoked", "root", "alice")
    assert call(client, "GET", headers=ALICE).body == []


def test_someone_elses_token_id_is_not_found_as_an_unknown_one(web: Web) -> None:
    client = web()
    alices = create(client, ALICE).body
    theirs = call(client, "DELETE", f"{API}/{alices['id']}", headers=BOB)
    unknown = call(client, "DELETE", f"{API}/AAAAAAAAAAAA", headers=BOB)
    assert theirs.status == unknown.status == 404
    assert theirs.body == unknown.body
    assert [t["id"] for t in call(client, "GET", headers=ALICE).body] == [alices["id"]]


# -- a token minting a token --------------------------------------------------------------


PARENT = {
    "name": "parent",
    "expirationDuration": 10,
    "restrictions": {
        "allow": ["* /rest/api/*", "* /rest/pat/*"],
        "networks": ["127.0.0.0/8"],
        "scopes": ["read"],
    },
}


@pytest.fixture
def parent(web: Web) -> tuple[Client, str]:
    """A client with tokens allowed to create tokens, and a restricted token of alice's."""
    client = web(self_service_from_tokens=True)
    made = call(client, "POST", headers=ALICE, json_body=PARENT)
    assert made.status == 201, made
    return client, made.body["rawToken"]


def test_a_token_cannot_create_tokens_by_default(web: Web) -> None:
    client = web()
    token = create(client, ALICE).body["rawToken"]
    description = refused(create(client, bearer(token)), 403, "forbidden")
    assert "API token cannot create tokens" in description
    assert call(client, "GET", headers=bearer(token)).status == 200, "it may list them"


def test_a_token_made_by_a_token_inherits_its_restrictions_and_expiry(
    parent: tuple[Client, str], store: TokenStore
) -> None:
    client, token = parent
    child = create(client, bearer(token))
    assert child.status == 201, child
    assert child.body["user"] == "alice"
    record = store.get(child.body["id"])
    maker = store.get(token_format.parse(token).token_id)
    assert record is not None
    assert maker is not None
    assert record.restrictions is not None
    assert maker.restrictions is not None
    assert record.restrictions.allow == maker.restrictions.allow
    assert record.restrictions.networks == maker.restrictions.networks
    assert record.restrictions.scopes == (), "scopes are only granted when asked for"
    assert record.expires_at is not None
    assert maker.expires_at is not None
    assert record.expires_at <= maker.expires_at
    raw = child.body["rawToken"]
    assert call(client, "GET", "/rest/api/2/myself", headers=bearer(raw)).status == 200
    assert call(client, "GET", "/elsewhere", headers=bearer(raw)).status == 403


@pytest.mark.parametrize(
    ("restrictions", "field"),
    [
        pytest.param({"allow": ["GET /rest/api/2/*"]}, None, id="narrower-allow"),
        pytest.param({"allow": ["GET /other/*"]}, "restrictions.allow", id="other-path"),
        pytest.param({"allow": ["* /rest/*"]}, "restrictions.allow", id="wider-glob"),
        pytest.param({"allow": ["GET /rest/ap*"]}, "restrictions.allow", id="shorter-prefix"),
        pytest.param({"networks": ["127.0.0.0/16"]}, None, id="narrower-network"),
        pytest.param({"networks": ["10.0.0.0/8"]}, "restrictions.networks", id="other-network"),
        pytest.param({"networks": ["0.0.0.0/0"]}, "restrictions.networks", id="wider-network"),
        pytest.param({"networks": ["::1/128"]}, "restrictions.networks", id="other-family"),
        pytest.param({"scopes": ["read"]}, None, id="a-scope-it-has"),
        pytest.param({"scopes": ["write"]}, "restrictions.scopes", id="a-scope-it-lacks"),
        pytest.param({"readOnly": True}, None, id="read-only"),
    ],
)
def test_a_token_made_by_a_token_is_never_wider(
    parent: tuple[Client, str], restrictions: dict[str, Any], field: str | None
) -> None:
    client, token = parent
    answer = create(client, bearer(token), restrictions=restrictions)
    if field is None:
        assert answer.status == 201, answer
    else:
        refused(answer, 400, "invalid_request", field)


def test_a_token_made_by_a_token_cannot_outlive_it(parent: tuple[Client, str]) -> None:
    client, token = parent
    answer = create(client, bearer(token), expirationDuration=11)
    assert "outlive" in refused(answer, 400, "limit_exceeded", "expirationDuration")
    assert create(client, bearer(token), expirationDuration=9).status == 201


def test_a_token_never_outlives_it_even_where_tokens_may_never_expire(web: Web) -> None:
    client = web(self_service_from_tokens=True, token_allow_no_expiry=True)
    maker = create(client, ALICE, expirationDuration=3).body
    child = create(client, bearer(maker["rawToken"])).body
    assert child["expiringAt"] is not None
    assert parse_time(child["expiringAt"]) <= parse_time(maker["expiringAt"])


@pytest.mark.parametrize("feed", [True, False], ids=["change-feed", "no-feed"])
def test_a_token_made_by_a_token_ends_with_it(web: Web, store: TokenStore, feed: bool) -> None:
    """Revoking a leaked token ends what it made, and what that made: a token
    cannot make itself a successor that outlives its revocation."""
    client = web(self_service_from_tokens=True, token_allow_no_expiry=True, token_feed=feed)
    parent = create(client, ALICE, name="ci-deploy").body
    child = create(client, bearer(parent["rawToken"]), name="ci-deploy").body
    grandchild = create(client, bearer(child["rawToken"]), name="ci-deploy").body
    assert (child["madeBy"], grandchild["madeBy"]) == (parent["id"], child["id"])
    assert "madeBy" not in parent
    listed = {t["id"]: t.get("madeBy") for t in call(client, "GET", headers=ALICE).body}
    assert listed == {parent["id"]: None, child["id"]: parent["id"], grandchild["id"]: child["id"]}
    for made in (child, grandchild):
        # Used once, so that with the feed each is remembered when its maker goes.
        assert call(client, "GET", "/", headers=bearer(made["rawToken"])).status == 200
    assert call(client, "DELETE", f"{API}/{parent['id']}", headers=ALICE).status == 204

    def refused_now() -> bool:
        return all(
            call(client, "GET", "/", headers=bearer(made["rawToken"])).status == 401
            for made in (child, grandchild)
        )

    if feed:
        eventually(refused_now, "the feed ends what the revoked token made", timeout=3)
    assert refused_now()
    answer = call(client, "GET", "/", headers=bearer(child["rawToken"]))
    assert "revoked" in answer.headers["WWW-Authenticate"]


def test_a_token_whose_maker_is_gone_is_refused(
    parent: tuple[Client, str], store: TokenStore
) -> None:
    client, token = parent
    child = create(client, bearer(token)).body
    maker_id = token_format.parse(token).token_id
    assert store.revoke(maker_id, now=int(time.time())) is not None
    assert store.prune(before=int(time.time()) + 1) >= 1  # the maker's row is deleted
    assert store.get(maker_id) is None
    assert call(client, "GET", "/rest/api/2/x", headers=bearer(child["rawToken"])).status == 401


def test_scopes_asked_for_are_among_the_callers(web: Web) -> None:
    client = web()
    granted = create(client, ALICE, restrictions={"scopes": ["read"]})
    assert granted.status == 201
    seen = call(client, "GET", "/", headers=bearer(granted.body["rawToken"])).body
    assert seen["identity"]["scopes"] == ["read"]
    refused(
        create(client, ALICE, restrictions={"scopes": ["admin"]}),
        400,
        "invalid_request",
        "restrictions.scopes",
    )
    refused(
        create(client, JENKINS, restrictions={"scopes": ["read"]}),
        400,
        "invalid_request",
        "restrictions.scopes",
    )


def test_restrictions_asked_for_hold(web: Web) -> None:
    client = web()
    made = create(
        client,
        ALICE,
        restrictions={"readOnly": True, "allow": ["GET /rest/api/*"], "networks": ["127.0.0.1"]},
    )
    assert made.status == 201, made
    assert made.body["restrictions"] == {
        "readOnly": True,
        "allow": ["GET /rest/api/*"],
        "networks": ["127.0.0.1/32"],
        "scopes": [],
    }
    raw = made.body["rawToken"]
    assert call(client, "GET", "/rest/api/x", headers=bearer(raw)).status == 200
    assert call(client, "POST", "/rest/api/x", headers=bearer(raw)).status == 403
    assert call(client, "GET", "/rest/admin", headers=bearer(raw)).status == 403
    listed = call(client, "GET", headers=ALICE).body
    assert listed[0]["restrictions"] == made.body["restrictions"]


# -- bodies an attacker (or a typo) sends --------------------------------------------------


def _body(value: Any) -> str:
    return json.dumps(value)


MALFORMED = [
    # (raw body, content type, status, error code, field named)
    pytest.param("not json", "application/json", 400, "invalid_request", None, id="not-json"),
    pytest.param("", "application/json", 400, "invalid_request", None, id="empty"),
    pytest.param("[]", "application/json", 400, "invalid_request", None, id="an-array"),
    pytest.param('"ci"', "application/json", 400, "invalid_request", None, id="a-string"),
    pytest.param("null", "application/json", 400, "invalid_request", None, id="null"),
    pytest.param("90", "application/json", 400, "invalid_request", None, id="a-number"),
    pytest.param('{"name": "x"}', "text/plain", 415, "unsupported_media_type", None, id="text"),
    pytest.param(
        "name=x",
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
        None,
        id="form",
    ),
    pytest.param(
        '{"name": "x"}',
        "multipart/form-data; boundary=x",
        415,
        "unsupported_media_type",
        None,
        id="multipart",
    ),
    pytest.param(
        '{"name": "x"}',
        "application/json; charset=latin-1",
        415,
        "unsupported_media_type",
        None,
        id="other-charset",
    ),
    pytest.param(_body({}), "application/json", 400, "invalid_request", "name", id="no-name"),
    pytest.param(
        _body({"name": 5}), "application/json", 400, "invalid_request", "name", id="numeric-name"
    ),
    pytest.param(
        _body({"name": None}), "application/json", 400, "invalid_request", "name", id="null-name"
    ),
    pytest.param(
        _body({"name": ["ci"]}), "application/json", 400, "invalid_request", "name", id="list-name"
    ),
    pytest.param(
        _body({"name": ""}), "application/json", 400, "invalid_request", "name", id="empty-name"
    ),
    pytest.param(
        _body({"name": "   "}), "application/json", 400, "invalid_request", "name", id="blank-name"
    ),
    pytest.param(
        _body({"name": "x" * 201}),
        "application/json",
        400,
        "invalid_request",
        "name",
        id="huge-name",
    ),
    pytest.param(
        _body({"name": "a\nb"}),
        "application/json",
        400,
        "invalid_request",
        "name",
        id="newline-in-name",
    ),
    *[
        pytest.param(
            _body({"name": "x", "expirationDuration": value}),
            "application/json",
            400,
            "invalid_request",
            "expirationDuration",
            id=f"duration-{label}",
        )
        for label, value in [
            ("string", "90"),
            ("bool", True),
            ("float", 1.5),
            ("whole-float", 90.0),
            ("zero", 0),
            ("negative", -1),
            ("huge", 10**30),
            ("list", [90]),
            ("object", {"days": 90}),
        ]
    ],
    pytest.param(
        '{"name": "x", "expirationDuration": NaN}',
        "application/json",
        400,
        "invalid_request",
        None,
        id="nan",
    ),
    pytest.param(
        '{"name": "x", "expirationDuration": 1' + "0" * 5000 + "}",
        "application/json",
        400,
        "invalid_request",
        None,
        id="5000-digits",
    ),
    pytest.param(
        _body({"name": "x", "scope": "read"}),
        "application/json",
        400,
        "invalid_request",
        "scope",
        id="unknown-field",
    ),
    pytest.param(
        '{"name": "a", "name": "b"}',
        "application/json",
        400,
        "invalid_request",
        None,
        id="key-twice",
    ),
    pytest.param(
        "[" * 5000 + "]" * 5000, "application/json", 400, "invalid_request", None, id="deep-nesting"
    ),
    pytest.param(
        _body({"name": "x", "restrictions": ["GET /x"]}),
        "application/json",
        400,
        "invalid_request",
        "restrictions",
        id="restrictions-list",
    ),
    pytest.param(
        _body({"name": "x", "restrictions": {"readOnly": "yes"}}),
        "application/json",
        400,
        "invalid_request",
        "restrictions.readOnly",
        id="read-only-string",
    ),
    pytest.param(
        _body({"name": "x", "restrictions": {"allow": "GET /x"}}),
        "application/json",
        400,
        "invalid_request",
        "restrictions.allow",
        id="allow-string",
    ),
    pytest.param(
        _body({"name": "x", "restrictions": {"allow": ["/x"]}}),
        "application/json",
        400,
        "invalid_request",
        "restrictions.allow",
        id="allow-without-method",
    ),
    pytest.param(
        _body({"name": "x", "restrictions": {"allow": ["HEAD /x"]}}),
        "application/json",
        400,
        "invalid_request",
        "restrictions.allow",
        id="allow-head",
    ),
    pytest.param(
        _body({"name": "x", "restrictions": {"allow": ["GET /x\r\x1b[2K<fake row>"]}}),
        "application/json",
        400,
        "invalid_request",
        "restrictions.allow",
        id="allow-escape",
    ),
    pytest.param(
        _body({"name": "x", "restrictions": {"allow": ["GET /x\x9b2K"]}}),
        "application/json",
        400,
        "invalid_request",
        "restrictions.allow",
        id="allow-c1-csi",
    ),
    pytest.param(
        _body({"name": "x", "restrictions": {"allow": ["GET /\ud800"]}}),
        "application/json",
        400,
        "invalid_request",
        "restrictions.allow",
        id="allow-surrogate",
    ),
    pytest.param(
        _body({"name": "x", "restrictions": {"allow": ["OPTIONS /x"]}}),
        "application/json",
        400,
        "invalid_request",
        "restrictions.allow",
        id="allow-options",
    ),
    pytest.param(
        _body({"name": "a\x9b2Kb"}),
        "application/json",
        400,
        "invalid_request",
        "name",
        id="c1-control-in-name",
    ),
    pytest.param(
        _body({"name": "x", "restrictions": {"allow": ["GET x"]}}),
        "application/json",
        400,
        "invalid_request",
        "restrictions.allow",
        id="allow-relative",
    ),
    pytest.param(
        _body({"name": "x", "restrictions": {"allow": [5]}}),
        "application/json",
        400,
        "invalid_request",
        "restrictions.allow",
        id="allow-number",
    ),
    pytest.param(
        _body({"name": "x", "restrictions": {"allow": ["GET /x"] * 51}}),
        "application/json",
        400,
        "invalid_request",
        "restrictions.allow",
        id="allow-too-many",
    ),
    pytest.param(
        _body({"name": "x", "restrictions": {"networks": ["nope"]}}),
        "application/json",
        400,
        "invalid_request",
        "restrictions.networks",
        id="network-not-cidr",
    ),
    pytest.param(
        _body({"name": "x", "restrictions": {"scopes": ["a b"]}}),
        "application/json",
        400,
        "invalid_request",
        "restrictions.scopes",
        id="scope-with-space",
    ),
    pytest.param(
        _body({"name": "x", "restrictions": {"admin": True}}),
        "application/json",
        400,
        "invalid_request",
        "restrictions.admin",
        id="unknown-restriction",
    ),
]


@pytest.mark.parametrize(("raw", "content_type", "status", "code", "field"), MALFORMED)
def test_malformed_bodies_are_refused_with_a_clear_message(
    web: Web,
    store: TokenStore,
    raw: str,
    content_type: str,
    status: int,
    code: str,
    field: str | None,
) -> None:
    client = web()
    answer = call(client, "POST", headers=ALICE, data=raw, content_type=content_type)
    assert refused(answer, status, code, field)
    assert "WWW-Authenticate" not in answer.headers, "the credentials were fine"
    assert store.list() == []


def test_bodies_that_are_not_utf8_or_too_large(web: Web) -> None:
    client = web()
    latin = call(
        client, "POST", headers=ALICE, data=b'{"name": "\xff"}', content_type="application/json"
    )
    refused(latin, 400, "invalid_request")
    huge = call(
        client,
        "POST",
        headers=ALICE,
        data=json.dumps({"name": "x", "pad": "y" * 20000}),
        content_type="application/json",
    )
    refused(huge, 413, "request_too_large")


def test_a_chunked_body_is_bounded_as_a_counted_one(web: Web) -> None:
    """A body whose end the server finds (chunked; gunicorn marks every request
    ``wsgi.input_terminated``) is held to the same limit: not cut to its first
    16 KiB and then acted on."""
    client = web()

    def chunked(body: bytes) -> int:
        environ = EnvironBuilder(
            path=API,
            method="POST",
            data=body,
            content_type="application/json",
            headers=ALICE,
            environ_overrides={"REMOTE_ADDR": "127.0.0.1", "wsgi.input_terminated": True},
        ).get_environ()
        del environ["CONTENT_LENGTH"]
        _, status, _ = run_wsgi_app(client.application, environ, buffered=True)
        return int(status.split()[0])

    exact = b'{"name": "ci"}'.ljust(MAX_BODY)
    assert chunked(exact) == 201
    assert chunked(exact + b" ") == 413
    assert chunked(b'{"name": "ci"}'.ljust(MAX_BODY) + b'{"name": "other"}' * 3000) == 413


class _BrokenInput:
    """mod_wsgi's wsgi.input when the client stalls past Apache's Timeout or
    drops mid-body (an OSError); werkzeug's own streams raise
    ClientDisconnected."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def read(self, size: int = -1) -> bytes:
        raise self.error

    readline = read


@pytest.mark.parametrize("counted", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize(
    "error",
    [
        OSError("Apache/mod_wsgi request data read error: Partial results are valid"),
        ClientDisconnected(),
    ],
    ids=["mod_wsgi", "werkzeug"],
)
def test_a_body_the_client_stops_sending_is_400(
    web: Web, store: TokenStore, counted: bool, error: Exception
) -> None:
    client = web()
    environ = EnvironBuilder(
        path=API,
        method="POST",
        data=b'{"name": "ci"}',
        content_type="application/json",
        headers=ALICE,
        environ_overrides={"REMOTE_ADDR": "127.0.0.1"},
    ).get_environ()
    environ["wsgi.input"] = _BrokenInput(error)
    if not counted:
        del environ["CONTENT_LENGTH"]
        environ["wsgi.input_terminated"] = True
    body, status, _ = run_wsgi_app(client.application, environ, buffered=True)
    assert status.startswith("400"), status
    answer = json.loads(b"".join(body))
    assert answer["errorMessages"] == [
        "The body could not be read to its end: the client stopped sending."
    ]
    assert store.list() == []


def test_a_name_with_a_lone_surrogate_is_a_bad_name(web: Web) -> None:
    client = web()
    answer = call(
        client,
        "POST",
        headers=ALICE,
        data=b'{"name": "ci\\ud800"}',
        content_type="application/json",
    )
    assert "surrogate" in refused(answer, 400, "invalid_request", "name")
    assert create(client, ALICE).status == 201, "the user may own tokens"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "name",
                    "expirationDuration",
                    "restrictions",
                    "readOnly",
                    "allow",
                    "networks",
                    "scopes",
                    "x",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


# Mostly creations with a name, so that the other members are reached.
CREATIONS = JSON_VALUES | st.fixed_dictionaries(
    {"name": st.text(max_size=30)},
    optional={"expirationDuration": JSON_VALUES, "restrictions": JSON_VALUES},
)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(document=CREATIONS)
def test_no_body_makes_a_server_error(web: Web, document: Any) -> None:
    client = web(token_max_per_user=0)
    answer = call(client, "POST", headers=ALICE, json_body=document if document is not None else {})
    assert answer.status in (201, 400), answer
    assert set(answer.body) == (
        CREATED_FIELDS | ({"restrictions"} if "restrictions" in answer.body else set())
        if answer.status == 201
        else {"error", "error_description", "errorMessages", "errors"}
    )


# -- methods and paths ---------------------------------------------------------------------


def test_methods(web: Web) -> None:
    client = web()
    assert call(client, "PUT", headers=ALICE).headers["Allow"] == "GET, POST"
    refused(call(client, "PUT", headers=ALICE), 405, "method_not_allowed")
    made = create(client, ALICE).body
    item = f"{API}/{made['id']}"
    assert call(client, "GET", item, headers=ALICE).headers["Allow"] == "DELETE"
    head = call(client, "HEAD", headers=ALICE)
    assert (head.status, head.body) == (200, None)
    override = call(client, "POST", item, headers={**ALICE, "X-HTTP-Method-Override": "DELETE"})
    assert "override" in refused(override, 400, "invalid_request")
    assert [t["id"] for t in call(client, "GET", headers=ALICE).body] == [made["id"]]
    refused(call(client, "DELETE", f"{API}/{made['rawToken']}", headers=ALICE), 404, "not_found")
    refused(call(client, "DELETE", f"{item}/more", headers=ALICE), 404, "not_found")
    refused(
        call(client, "DELETE", item, headers=ALICE, query_string={"user": "bob"}),
        400,
        "invalid_request",
    )
    refused(
        call(client, "GET", headers=ALICE, query_string={"owner": "bob"}),
        400,
        "invalid_request",
        "owner",
    )


# Every spelling that a router could resolve to (or below) the API: none may
# reach the application, none is served but the canonical one.
SPELLINGS = [
    "//rest/pat/latest/tokens",
    "/rest//pat/latest/tokens",
    "/x/../rest/pat/latest/tokens",
    "/./rest/pat/latest/tokens",
    "/rest/pat/latest/./tokens",
    "/rest/pat/latest/x/../tokens",
    "/rest/pat/latest/x/%2e%2e/tokens",
    "/rest/pat/latest/tokens/%2e%2e/x",
    "/rest/pat/latest/tokens/../../../admin",
    "/rest/pat/latest/tokens//",
    "/rest\\pat\\latest\\tokens",
]


@pytest.mark.parametrize("path", SPELLINGS)
def test_no_spelling_of_the_api_reaches_the_app_or_escapes_its_checks(web: Web, path: str) -> None:
    client = web(default_access="public", public_paths=("/rest/*",), optional_paths=("/x/*",))
    anonymous = call(client, "POST", path, json_body={"name": "x"})
    assert (anonymous.status, anonymous.body["error"]) == (401, "missing_credentials")
    assert refused(call(client, "GET", path, headers=ALICE), 404, "not_found")
    assert refused(
        call(client, "POST", path, headers=ALICE, json_body={"name": "x"}), 404, "not_found"
    )


@pytest.mark.parametrize("path", [API, API + "/"])
def test_the_canonical_path_is_always_authenticated(web: Web, path: str) -> None:
    client = web(default_access="public", public_paths=(API, "/rest/*"))
    assert call(client, "GET", path).status == 401
    listed = call(client, "GET", path, headers=ALICE)
    assert (listed.status, listed.body) == (200, [])


@pytest.mark.parametrize("path", ["/rest/pat/latest/tokensX", "/rest/pat/latest", "/rest/pat"])
def test_neighbouring_paths_stay_the_applications(web: Web, path: str) -> None:
    client = web(default_access="public")
    answer = call(client, "GET", path)
    assert (answer.status, answer.body["remote_user"]) == (200, None)


def test_another_path(web: Web) -> None:
    client = web(self_service_path="/api/my/tokens")
    assert create(client, ALICE).status == 200, "the default path is the application's again"
    made = call(client, "POST", "/api/my/tokens", headers=ALICE, json_body={"name": "x"})
    assert made.status == 201


# -- CORS -----------------------------------------------------------------------------------

ORIGIN = "https://app.example.com"


def preflight(client: Client, origin: str, method: str = "POST") -> Answer:
    return call(
        client,
        "OPTIONS",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_preflights_are_answered_for_listed_origins_only(web: Web) -> None:
    client = web(self_service_cors_origins=(ORIGIN,))
    allowed = preflight(client, ORIGIN)
    assert allowed.status == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert "Access-Control-Allow-Credentials" not in allowed.headers
    for other in ("https://evil.example", "https://app.example.com.evil.example", "null"):
        answer = preflight(client, other)
        assert answer.status == 403
        assert "Access-Control-Allow-Origin" not in answer.headers
    assert preflight(client, ORIGIN, method="PUT").status == 403
    assert preflight(web(), ORIGIN).status == 403, "no origin is listed by default"


def test_the_apis_own_preflights_never_reach_the_application(web: Web) -> None:
    # Preflights to the application are off by default (RESTAUTH_ALLOW_PREFLIGHT);
    # the API answers its own, under every spelling of its path, and the
    # echo app (which would answer any method with 200 and JSON) sees none.
    client = web(self_service_cors_origins=(ORIGIN,))
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    for path in (API, API + "/7", "/" + API, API + "/../../../../api/x"):
        answer = call(client, "OPTIONS", path, headers=headers)
        assert answer.status in (204, 403, 404), (path, answer)  # the API answered
        assert not (isinstance(answer.body, dict) and "remote_user" in answer.body)
    outside = call(client, "OPTIONS", "/api/x", headers=headers)
    assert outside.status == 401, "the application's preflights need credentials"


def test_answers_name_a_listed_origin_and_never_star(web: Web) -> None:
    client = web(self_service_cors_origins=(ORIGIN,))
    listed = call(client, "GET", headers={**ALICE, "Origin": ORIGIN})
    assert listed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert listed.headers["Vary"] == "Origin"
    other = call(client, "GET", headers={**ALICE, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


# -- audit, and secrets -----------------------------------------------------------------


def test_audit_lines_name_actor_owner_and_token_and_no_secret(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    client = web()
    with caplog.at_level(logging.DEBUG):
        made = create(client, JENKINS, expirationDuration=30).body
        raw = made["rawToken"]
        call(client, "GET", "/", headers=bearer(raw))
        call(client, "POST", headers=bearer(raw), json_body={"name": "again"})  # refused
        call(client, "DELETE", f"{API}/{raw}", headers=JENKINS)  # the token pasted: 404
        call(client, "DELETE", f"{API}/{raw}")  # and without credentials: 401
        call(client, "DELETE", f"{API}/{made['id']}", headers=JENKINS)
    audit = [json.loads(r.getMessage()) for r in caplog.records if r.name == "restauth.audit"]
    events = [line for line in audit if "event" in line]
    assert [(e["event"], e["actor"], e["owner"], e["token"], e["name"]) for e in events] == [
        ("token_created", "jenkins", "jenkins", f"id:{made['id']}", "ci"),
        ("token_revoked", "jenkins", "jenkins", f"id:{made['id']}", "ci"),
    ]
    assert events[0]["auth"] == "password"
    everything = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    secret = raw[len(token_format.PREFIX) + token_format.ID_LENGTH + 1 :]
    for forbidden in (raw, secret[:16], PASSWORD, token_format.hash_token(raw)):
        assert forbidden not in everything


def test_a_token_pasted_anywhere_is_not_logged(web: Web, caplog: pytest.LogCaptureFixture) -> None:
    """Wherever a caller pastes a token (glued to other characters, cut short by
    a length limit, quoted in a refusal, as a name), the logs show its id only."""
    client = web()
    with caplog.at_level(logging.DEBUG):
        raw = create(client, JENKINS).body["rawToken"]
        for path in (
            f"{API}/{raw}_x",
            f"{API}/x{raw}",
            f"{API}/{raw}x",
            f"{API}/{'a' * (199 - len(API))}{raw}",  # the 200-character cut falls inside it
            f"/{'a' * 480}{raw}",  # the audit line's 500-character cut, too
        ):
            call(client, "DELETE", path, headers=JENKINS)
            call(client, "DELETE", path)
        call(client, "GET", f"{API}?{raw}=1", headers=JENKINS)  # quoted as a parameter
        duplicate = f'{{"name": "x", "restrictions": {{"{raw}": 1, "{raw}": 2}}}}'
        call(client, "POST", headers=JENKINS, data=duplicate, content_type="application/json")
        create(client, JENKINS, name=f"rotated from {raw}")
        create(client, JENKINS, restrictions={"scopes": [raw]})
        call(client, raw, headers=JENKINS)  # a token as the method
    everything = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    shown = len(token_format.PREFIX) + token_format.ID_LENGTH + 1  # restauth_<id>_
    assert raw[:shown] + "…" in everything, "ids are logged"
    assert raw[: shown + 1] not in everything, "not one character of the secret"
    assert raw[shown : shown + 8] not in everything


def test_answers_are_not_sniffed(web: Web) -> None:
    client = web()
    made = create(client, ALICE, name="<script>alert(1)</script>")
    assert made.status == 201
    for answer in (made, call(client, "GET", headers=ALICE), create(client, ALICE, name="")):
        assert answer.headers["X-Content-Type-Options"] == "nosniff"


# -- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({"RESTAUTH_SELF_SERVICE_PATH": "/rest/*"}, "RESTAUTH_SELF_SERVICE_PATH"),
        ({"RESTAUTH_SELF_SERVICE_PATH": "/rest/tokens/"}, "RESTAUTH_SELF_SERVICE_PATH"),
        ({"RESTAUTH_SELF_SERVICE_PATH": "/rest/../tokens"}, "RESTAUTH_SELF_SERVICE_PATH"),
        ({"RESTAUTH_SELF_SERVICE_PATH": "rest/tokens"}, "RESTAUTH_SELF_SERVICE_PATH"),
        ({"RESTAUTH_SELF_SERVICE_CORS_ORIGINS": "*"}, "RESTAUTH_SELF_SERVICE_CORS_ORIGINS"),
        (
            {"RESTAUTH_SELF_SERVICE_CORS_ORIGINS": "https://app.example.com/"},
            "RESTAUTH_SELF_SERVICE_CORS_ORIGINS",
        ),
        (
            {"RESTAUTH_SELF_SERVICE_CORS_ORIGINS": "https://App.example.com"},
            "RESTAUTH_SELF_SERVICE_CORS_ORIGINS",
        ),
        (
            {"RESTAUTH_SELF_SERVICE_CORS_ORIGINS": "https://x:port"},
            "RESTAUTH_SELF_SERVICE_CORS_ORIGINS",
        ),
        ({"RESTAUTH_SELF_SERVICE": "maybe"}, "RESTAUTH_SELF_SERVICE"),
        (
            {
                "RESTAUTH_SELF_SERVICE": "true",
                "RESTAUTH_METRICS": "true",
                "RESTAUTH_METRICS_PATH": "/rest/pat/latest/tokens/metrics",
            },
            "RESTAUTH_METRICS_PATH",
        ),
        (
            {"RESTAUTH_SELF_SERVICE": "true", "RESTAUTH_API_TOKENS": "false"},
            "RESTAUTH_SELF_SERVICE",
        ),
    ],
)
def test_settings_name_what_is_wrong(values: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_mapping(values)
    assert raised.value.variable == variable


def test_settings_from_strings(store_url: str) -> None:
    loaded = Settings.from_mapping(
        {
            "RESTAUTH_SELF_SERVICE": "true",
            "RESTAUTH_SELF_SERVICE_PATH": "/api/tokens",
            "RESTAUTH_SELF_SERVICE_GROUPS": "devs, ops",
            "RESTAUTH_SELF_SERVICE_ADMIN_GROUPS": "admins",
            "RESTAUTH_SELF_SERVICE_FROM_TOKENS": "true",
            "RESTAUTH_SELF_SERVICE_CORS_ORIGINS": "https://a.example,http://127.0.0.1:3000",
        }
    )
    assert loaded.self_service
    assert loaded.self_service_path == "/api/tokens"
    assert loaded.self_service_groups == ("devs", "ops")
    assert loaded.self_service_admin_groups == ("admins",)
    assert loaded.self_service_from_tokens
    assert loaded.self_service_cors_origins == ("https://a.example", "http://127.0.0.1:3000")
