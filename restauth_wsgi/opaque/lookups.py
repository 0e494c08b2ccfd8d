"""Asking a provider about an opaque token.

Each lookup answers "active, with these claims, until then" or "not active";
it raises :class:`UpstreamError` when the provider cannot answer (a 503,
never a 401: the caller's token may be fine). What an answer means:

* RFC 7662 introspection: ``active``, ``exp``, ``aud``, ``scope``, ``username``/``sub``;
* userinfo: 200 with a user is active, 400/401/403 is not; Slack answers 200
  with ``"ok": false`` instead;
* the providers' own check endpoints, which also say which client a token
  was issued to: GitHub ``POST /applications/{client_id}/token``, Google
  ``tokeninfo``, GitLab ``/oauth/token/info``, Facebook ``debug_token``.
"""

from __future__ import annotations

import datetime
import hashlib
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from restauth_wsgi.providers.claims import scopes_of
from restauth_wsgi.providers.discovery import Discovery
from restauth_wsgi.providers.resolved import ProviderConfig
from restauth_wsgi.strict_json import finite_number
from restauth_wsgi.upstream import (
    MAX_RETRY_AFTER,
    Answer,
    UpstreamClient,
    UpstreamError,
    retry_after_seconds,
)

# Slack's "ok": false errors that mean the token, not Slack, is the problem.
_SLACK_TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
# Facebook's error codes for throttling and temporary trouble (Graph API
# "Handling Errors": 1, 2 temporary; 4, 17, 32, 613 rate limits; 341 app limit).
_FACEBOOK_RETRY_CODES = frozenset({1, 2, 4, 17, 32, 341, 613})
# Wait this long for a provider that says it is throttled without saying how long.
_THROTTLED_WAIT = 60.0
_USERINFO_SCOPE = (
    "; userinfo needs a token with the openid scope at most providers (and the"
    " profile or email scope for those claims)"
)


@dataclass(frozen=True)
class LookupAnswer:
    """What a provider said about a token."""

    active: bool
    claims: dict[str, Any]
    expires_at: float | None = None
    scopes: frozenset[str] | None = None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """For the shared cache."""
        return {
            "active": self.active,
            "claims": self.claims,
            "expires_at": self.expires_at,
            "scopes": None if self.scopes is None else sorted(self.scopes),
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LookupAnswer | None:
        """Back from the shared cache; ``None`` if the entry is not one of ours."""
        claims, scopes, expires_at = data.get("claims"), data.get("scopes"), data.get("expires_at")
        if not isinstance(data.get("active"), bool) or not isinstance(claims, dict):
            return None
        if expires_at is not None:
            expires_at = finite_number(expires_at)
            if expires_at is None:
                return None
        return cls(
            active=data["active"],
            claims=claims,
            expires_at=expires_at,
            scopes=None if not isinstance(scopes, list) else frozenset(map(str, scopes)),
            reason=str(data.get("reason", "")),
        )


def inactive(reason: str) -> LookupAnswer:
    """The provider does not vouch for the token."""
    return LookupAnswer(active=False, claims={}, reason=reason)


Lookup = Callable[[str], LookupAnswer]


def build_lookup(config: ProviderConfig, http: UpstreamClient, discovery: Discovery) -> Lookup:
    """The lookup the provider's validation calls for."""

    def endpoint(url: str | None, name: str) -> Callable[[], str]:
        return (lambda: url) if url else (lambda: discovery.endpoint(name))

    userinfo_url = endpoint(config.userinfo_url, "userinfo_endpoint")
    if config.validation == "introspection":
        return _introspection(
            config, http, endpoint(config.introspection_url, "introspection_endpoint")
        )
    if config.validation == "userinfo":
        return _userinfo(config, http, userinfo_url)
    checks = {"github": _github, "google": _google, "gitlab": _gitlab, "facebook": _facebook}
    assert config.check in checks, config
    return checks[config.check](config, http, userinfo_url)


# Times beyond this are not dates (and a 400-digit one would overflow a float).
_MAX_TIME = 2**53


def _expiry(value: Any) -> float | None:
    # isdigit() is true of "²", which int() refuses: ASCII digits only.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 17:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not -_MAX_TIME <= value <= _MAX_TIME:  # strict JSON: never NaN or infinite
        return None
    return float(value)


def _string_set(value: Any) -> frozenset[str] | None:
    """A list of strings as a set (scopes); ``None`` if it is not a list."""
    if not isinstance(value, list):
        return None
    return frozenset(item for item in value if isinstance(item, str) and item)


def _audience_ok(config: ProviderConfig, *values: Any) -> bool:
    """Whether one of ``values`` (strings or lists of strings) is an accepted audience.

    ``*`` (introspection only, set explicitly) accepts any.
    """
    if "*" in config.audience:
        return True
    found: set[str] = set()
    for value in values:
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    return bool(found & set(config.audience))


def _client_auth_failed(answer: Answer, config: ProviderConfig) -> UpstreamError:
    return UpstreamError(
        f"{answer.where} refused our client credentials ({answer.status});"
        f" check RESTAUTH_{config.name.upper()}_CLIENT_ID and _CLIENT_SECRET"
    )


def _introspection(config: ProviderConfig, http: UpstreamClient, url: Callable[[], str]) -> Lookup:
    client_id, secret = config.client_id or "", config.client_secret or ""

    def lookup(token: str) -> LookupAnswer:
        form = {"token": token, "token_type_hint": "access_token"}
        auth: tuple[str, str] | None = None
        if config.introspection_auth == "client_secret_post":
            form.update(client_id=client_id, client_secret=secret)
        else:
            # RFC 6749 section 2.3.1: form-encode both before Basic encoding.
            auth = (urllib.parse.quote(client_id, safe=""), urllib.parse.quote(secret, safe=""))
        answer = http.request(
            "POST",
            url(),
            data=form,
            auth=auth,
            headers={"Accept": "application/json"},
            subject=subject_of(token),
        )
        if answer.status in (400, 401, 403):
            raise _client_auth_failed(answer, config)
        if answer.status != 200:
            raise UpstreamError(f"{answer.where} answered {answer.status}")
        claims = answer.json_object()
        if claims.get("active") is not True:
            return inactive("the provider says the token is not active")
        expires_at = _expiry(claims.get("exp"))
        if expires_at is not None and expires_at <= time.time():
            return inactive("the token has expired")
        if config.issuers and "iss" in claims and claims["iss"] not in config.issuers:
            return inactive(f"the token was issued by {claims['iss']!r}")
        # RFC 7662 makes aud optional: a provider that leaves it out (as
        # django-oauth-toolkit does) names the client the token was issued to.
        audience = claims.get("aud") if "aud" in claims else claims.get("client_id")
        if not _audience_ok(config, audience):
            return inactive("the token is for another audience")
        return LookupAnswer(True, claims, expires_at, scopes_of(claims))

    return lookup


def subject_of(token: str) -> str:
    """What a call is about, for the upstream backoff: a hash, never the token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def _github_rate_limited(answer: Answer) -> UpstreamError | None:
    """GitHub's rate limits come as 403 (or 429) with these marks (GitHub REST docs,
    "Rate limits for the REST API": x-ratelimit-remaining 0, retry-after, or the message)."""
    if answer.status not in (403, 429):
        return None
    headers = answer.headers
    message = answer.body[:300].decode("utf-8", "replace").lower()
    remaining = headers.get("x-ratelimit-remaining")
    retry_after = retry_after_seconds(headers.get("retry-after"))
    if remaining != "0" and retry_after is None and "rate limit" not in message:
        return None
    wait = retry_after
    reset = headers.get("x-ratelimit-reset", "")
    if wait is None and remaining == "0" and reset.isdigit():
        wait = max(1.0, float(reset) - time.time())
    return UpstreamError(
        f"{answer.where} is rate limited (GitHub answered {answer.status})",
        retry_after=min(wait or _THROTTLED_WAIT, MAX_RETRY_AFTER),
    )


def _facebook_error(answer: Answer, config: ProviderConfig) -> tuple[str, UpstreamError | None]:
    """Facebook's ``{"error": {"code": ...}}``, by code, not by HTTP status: the
    token's problem (returned as a reason), or throttling and our own
    misconfiguration (returned as an error: a 503, never the user's refusal)."""
    try:
        error = answer.json_object().get("error")
    except UpstreamError:
        error = None
    if not isinstance(error, dict):
        return "", UpstreamError(f"{answer.where} answered {answer.status} without an error")
    code = error.get("code")
    # A number, exactly: a list is unhashable, and True and 4.0 equal 1 and 4.
    if type(code) is int and code in _FACEBOOK_RETRY_CODES:
        return "", UpstreamError(
            f"{answer.where} is throttling us (Facebook error {code})", retry_after=_THROTTLED_WAIT
        )
    # Only the number: Facebook's message quotes the token it was sent
    # ("Malformed access token EAAG..."), and a reason reaches logs and caches.
    shown = code if type(code) is int else "without a number"
    return f"Facebook error {shown}", None


def _userinfo(config: ProviderConfig, http: UpstreamClient, url: Callable[[], str]) -> Lookup:
    def lookup(token: str) -> LookupAnswer:
        answer = http.request("GET", url(), headers=_bearer(token), subject=subject_of(token))
        rate_limited = _github_rate_limited(answer) if config.kind == "github" else None
        if rate_limited is not None:
            raise rate_limited
        if config.userinfo_dialect == "facebook" and answer.status in (400, 401, 403):
            reason, throttled = _facebook_error(answer, config)
            if throttled is not None:
                raise throttled
            return inactive(reason)
        if answer.status in (400, 401, 403):
            return inactive(f"userinfo answered {answer.status}{_USERINFO_SCOPE}")
        if answer.status != 200:
            raise UpstreamError(f"{answer.where} answered {answer.status}")
        claims = answer.json_object()
        if config.userinfo_dialect == "slack" and claims.get("ok") is not True:
            error = str(claims.get("error", ""))
            if error in _SLACK_TOKEN_ERRORS:
                return inactive(f"Slack says {error}")
            if error == "ratelimited":
                raise UpstreamError(f"{answer.where} is rate limited", retry_after=_THROTTLED_WAIT)
            raise UpstreamError(f"{answer.where} answered ok=false ({error[:40]})")
        scopes = None
        if "X-OAuth-Scopes" in answer.headers:  # GitHub says the scopes in a header
            scopes = frozenset(
                s.strip() for s in answer.headers["X-OAuth-Scopes"].split(",") if s.strip()
            )
        return LookupAnswer(True, claims, None, scopes)

    return lookup


def _github(config: ProviderConfig, http: UpstreamClient, userinfo: Callable[[], str]) -> Lookup:
    url = (
        f"{config.api_url}/applications/{urllib.parse.quote(config.client_id or '', safe='')}/token"
    )

    def lookup(token: str) -> LookupAnswer:
        answer = http.request(
            "POST",
            url,
            json_body={"access_token": token},
            auth=(config.client_id or "", config.client_secret or ""),
            headers={"Accept": "application/vnd.github+json"},
            subject=subject_of(token),
        )
        if answer.status in (404, 422):
            return inactive("GitHub does not know the token for this app")
        rate_limited = _github_rate_limited(answer)
        if rate_limited is not None:
            raise rate_limited
        if answer.status in (401, 403):
            raise _client_auth_failed(answer, config)
        if answer.status != 200:
            raise UpstreamError(f"{answer.where} answered {answer.status}")
        data = answer.json_object()
        user = data.get("user")
        if not isinstance(user, dict):
            raise UpstreamError(f"{answer.where} answered without a user")
        expires = data.get("expires_at")
        expires_at = None
        if isinstance(expires, str):
            try:
                expires_at = datetime.datetime.fromisoformat(expires).timestamp()
            except ValueError:
                expires_at = None
        scopes = data.get("scopes")
        return LookupAnswer(
            True,
            dict(user),  # the answer also holds the token itself: keep only the user
            expires_at,
            _string_set(scopes),
        )

    return lookup


def _google(config: ProviderConfig, http: UpstreamClient, userinfo: Callable[[], str]) -> Lookup:
    url = f"{config.api_url}/tokeninfo"

    def lookup(token: str) -> LookupAnswer:
        answer = http.request("GET", url, params={"access_token": token}, subject=subject_of(token))
        if answer.status in (400, 401):
            return inactive("Google's tokeninfo does not know the token")
        if answer.status != 200:
            raise UpstreamError(f"{answer.where} answered {answer.status}")
        claims = answer.json_object()
        if not _audience_ok(config, claims.get("aud"), claims.get("azp")):
            return inactive("the token was issued to another client")
        expires_at = _expiry(claims.get("exp"))
        if expires_at is None and _expiry(claims.get("expires_in")) is not None:
            expires_at = time.time() + float(claims["expires_in"])
        return LookupAnswer(True, claims, expires_at, scopes_of(claims))

    return lookup


def _gitlab(config: ProviderConfig, http: UpstreamClient, userinfo: Callable[[], str]) -> Lookup:
    """GitLab: token info says the application and the scopes; the user comes
    from /oauth/userinfo when the token has openid (it has the groups), else
    from /api/v4/user, which read_user, read_api and api tokens may read."""
    info_url = f"{config.api_url}/oauth/token/info"
    user_url = f"{config.api_url}/api/v4/user"
    ask_userinfo = _userinfo(config, http, userinfo)

    def lookup(token: str) -> LookupAnswer:
        subject = subject_of(token)
        answer = http.request("GET", info_url, headers=_bearer(token), subject=subject)
        if answer.status in (401, 403, 404):
            return inactive("GitLab does not know the token")
        if answer.status != 200:
            raise UpstreamError(f"{answer.where} answered {answer.status}")
        info = answer.json_object()
        application = info.get("application")
        uid = application.get("uid") if isinstance(application, dict) else None
        if uid != config.client_id:
            return inactive("the token was issued to another application")
        scopes = _string_set(info.get("scope")) or _string_set(info.get("scopes")) or frozenset()
        if "openid" in scopes:
            user = ask_userinfo(token)
        elif scopes & {"read_user", "read_api", "api"}:
            user = _gitlab_user(http, user_url, token, subject)
        else:
            return inactive(
                "GitLab tells the user only to tokens with the openid, read_user,"
                f" read_api or api scope; this one has {' '.join(sorted(scopes)) or 'none'}"
            )
        if not user.active:
            return user
        expires_in = _expiry(info.get("expires_in"))
        expires_at = None if expires_in is None else time.time() + expires_in
        return LookupAnswer(True, user.claims, expires_at, scopes)

    return lookup


def _gitlab_user(http: UpstreamClient, url: str, token: str, subject: str) -> LookupAnswer:
    answer = http.request("GET", url, headers=_bearer(token), subject=subject)
    if answer.status in (401, 403):
        return inactive(f"GitLab's /api/v4/user answered {answer.status}")
    if answer.status != 200:
        raise UpstreamError(f"{answer.where} answered {answer.status}")
    return LookupAnswer(True, answer.json_object())


def _facebook(config: ProviderConfig, http: UpstreamClient, userinfo: Callable[[], str]) -> Lookup:
    """Facebook's debug_token: a problem with the input token comes back in
    ``data`` (``is_valid: false``); a top-level ``error`` is about our call
    (the app token: our misconfiguration) or throttling, a 503 either way."""
    url = f"{config.api_url}/debug_token"
    ask_userinfo = _userinfo(config, http, userinfo)

    def lookup(token: str) -> LookupAnswer:
        answer = http.request(
            "GET",
            url,
            params={
                "input_token": token,
                "access_token": f"{config.client_id}|{config.client_secret}",
            },
            subject=subject_of(token),
        )
        if answer.status != 200:
            reason, error = _facebook_error(answer, config)
            if error is not None:
                raise error
            raise UpstreamError(
                f"{answer.where} refused our app token ({reason}); check"
                f" RESTAUTH_{config.name.upper()}_CLIENT_ID and _CLIENT_SECRET"
            )
        data = answer.json_object().get("data")
        if not isinstance(data, dict) or data.get("is_valid") is not True:
            return inactive("Facebook says the token is not valid")
        if str(data.get("app_id")) != config.client_id:
            return inactive("the token was issued to another app")
        user = ask_userinfo(token)
        if not user.active:
            return user
        expires = _expiry(data.get("expires_at"))
        scopes = data.get("scopes")
        return LookupAnswer(
            True,
            user.claims,
            expires or None,  # 0 means it does not expire
            _string_set(scopes),
        )

    return lookup
