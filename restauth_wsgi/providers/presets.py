"""Presets: what each provider type fills in from the few values a user has.

An Okta domain, an Azure tenant id, a Keycloak URL and realm, a Cognito
region and pool id... become issuers, endpoints, the validation that suits
the provider, its username and group claims, and the checks that tell its
access tokens from its ID tokens. Every value can still be overridden by
the generic settings (``RESTAUTH_<NAME>_ISSUER``, ``_JWKS_URL``...).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from restauth_wsgi.errors import ConfigurationError
from restauth_wsgi.providers.claims import IdentityMapping
from restauth_wsgi.providers.resolved import ClaimRule, ProviderConfig
from restauth_wsgi.providers.settings import HMAC_ALGORITHMS, ProviderSettings
from restauth_wsgi.urls import check_url

#: Claims only ID tokens carry (OpenID Connect Core 2 and 3.1.3.6): a JWT
#: with one is an ID token, whatever else it looks like.
ID_TOKEN_CLAIMS = ("nonce", "at_hash", "c_hash", "s_hash")
#: Presets whose tokens form a family with recognisable prefixes (see
#: :mod:`restauth_wsgi.providers.routing`).
FAMILIES = ("github", "gitlab", "slack", "google", "facebook")

_GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_HOST = re.compile(r"[A-Za-z0-9.-]+(:\d+)?")


@dataclass(frozen=True)
class Preset:
    """The defaults one provider type supplies."""

    validations: tuple[str, ...]
    validation: str
    issuers: tuple[str, ...] = ()
    discovery_url: str | None = None
    jwks_url: str | None = None
    introspection_url: str | None = None
    userinfo_url: str | None = None
    check: str | None = None
    api_url: str | None = None
    audience: tuple[str, ...] = ()
    audience_claim: str = "aud"
    #: Username attributes by validation; ``""`` is the fallback for any.
    usernames: tuple[tuple[str, tuple[str, ...]], ...] = (("", ("sub",)),)
    groups: tuple[str, ...] = ()
    claim_rules: tuple[ClaimRule, ...] = ()
    any_of_claims: tuple[str, ...] = ()
    refuse_nonce_header: bool = False
    token_prefixes: tuple[str, ...] = ()
    require_verified_email: bool = False
    userinfo_dialect: str = "oidc"
    #: The setting the preset's URLs are built from, named in errors about them.
    source: str = "issuer"
    #: Claims that mark an ID token (not an access token) of this provider.
    id_token_claims: tuple[str, ...] = ID_TOKEN_CLAIMS
    #: How its tokens without a user are recognised (mapping.CLIENT_TOKEN_RULES).
    client_tokens: str = "generic"
    #: Its answers cannot say whether a token was issued to this app unless
    #: ALLOWED_CLIENTS is set: start only with that or ANY_CLIENT=true.
    needs_client_check: bool = False

    def username_attributes(self, validation: str) -> tuple[str, ...]:
        """The username attributes for tokens validated by ``validation``."""
        table = dict(self.usernames)
        return table.get(validation) or table[""]


def _need(ps: ProviderSettings, attribute: str, example: str) -> str:
    value = getattr(ps, attribute)
    if not value:
        raise ConfigurationError(
            ps.variable(attribute), f"required for the {ps.type} type: {example}"
        )
    return str(value)


def _host(ps: ProviderSettings, attribute: str, example: str) -> str:
    value = _need(ps, attribute, example).removeprefix("https://").rstrip("/")
    if not _HOST.fullmatch(value):
        raise ConfigurationError(ps.variable(attribute), f"{value!r} is not a host name: {example}")
    return value


def _base_url(ps: ProviderSettings, default: str | None, example: str) -> str:
    value = ps.url or default
    if value is None:
        value = _need(ps, "url", example)
    return value.rstrip("/")


def _azure(ps: ProviderSettings) -> Preset:
    tenant = _need(ps, "tenant", "the Directory (tenant) ID from the Azure portal")
    if not _GUID.fullmatch(tenant):
        raise ConfigurationError(
            ps.variable("tenant"),
            f"{tenant!r} is not a tenant ID; use the Directory (tenant) ID, a GUID"
            " (tokens name the tenant by it, not by its domain)",
        )
    v1 = f"https://sts.windows.net/{tenant}/"
    v2 = f"https://login.microsoftonline.com/{tenant}/v2.0"
    issuers = {"1": (v1,), "2": (v2,)}.get(ps.version or "", (v2, v1))
    return Preset(
        validations=("jwt",),
        validation="jwt",
        issuers=issuers,
        jwks_url=f"https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys",
        # Readable logins (what Atlassian-facing services show), which
        # Microsoft says are mutable: USERNAME_ATTRIBUTE=oid is the stable choice.
        usernames=(("", ("preferred_username", "upn", "unique_name")),),
        groups=("groups", "roles"),
        # Each issuer's tokens carry their own version; a v1 token claiming
        # the v2 issuer (or the reverse) is not one Azure issued.
        claim_rules=(ClaimRule("ver", ("2.0",), v2), ClaimRule("ver", ("1.0",), v1)),
        # Access tokens name the client they were issued to (azp in v2,
        # appid in v1); ID tokens do not (they may carry roles, so roles
        # tells nothing). Microsoft's access and ID token claims references.
        any_of_claims=("azp", "appid"),
        refuse_nonce_header=True,
        client_tokens="azure",
        source="tenant",
    )


def _azure_b2c(ps: ProviderSettings) -> Preset:
    tenant = _need(ps, "tenant", "the B2C tenant name, e.g. contoso for contoso.onmicrosoft.com")
    policy = _need(ps, "policy", "the user flow or custom policy, e.g. B2C_1_signupsignin")
    tenant_id = _need(ps, "tenant_id", "the B2C Directory (tenant) ID, a GUID")
    base = _base_url(ps, f"https://{tenant}.b2clogin.com", "")
    return Preset(
        validations=("jwt",),
        validation="jwt",
        # The default issuer, and the one that names the user flow
        # ("Issuer (iss) claim" setting: https://<domain>/tfp/{tenant id}/{policy}/v2.0/).
        issuers=(f"{base}/{tenant_id}/v2.0/", f"{base}/tfp/{tenant_id}/{policy}/v2.0/"),
        jwks_url=f"{base}/{tenant}.onmicrosoft.com/{policy}/discovery/v2.0/keys",
        # sub is one constant string under the legacy "Not supported" setting:
        # oid is the user's object id in every configuration that has users.
        usernames=(("", ("oid",)),),
        # Only tokens from this user flow or policy: tfp, or acr in older ones.
        claim_rules=(ClaimRule("tfp", (policy,), fallback="acr", ignore_case=True),),
        # Access tokens carry scp; B2C's ID tokens do not (and its access
        # tokens carry the request's nonce, so nonce marks nothing).
        any_of_claims=("scp",),
        id_token_claims=("at_hash", "c_hash", "s_hash"),
        source="tenant",
    )


def _okta(ps: ProviderSettings) -> Preset:
    domain = _host(ps, "domain", "your Okta domain, e.g. dev-123456.okta.com")
    server = ps.auth_server or "default"
    if server == "org":
        # Org authorization server tokens cannot be verified by third parties.
        base = f"https://{domain}/oauth2/v1"
        return Preset(
            validations=("introspection", "userinfo"),
            validation="introspection" if ps.client_secret else "userinfo",
            issuers=(f"https://{domain}",),
            # Org server tokens all carry the org as audience.
            audience=(f"https://{domain}",),
            introspection_url=f"{base}/introspect",
            userinfo_url=f"{base}/userinfo",
            usernames=(
                ("introspection", ("username", "sub")),
                ("", ("preferred_username", "sub")),
            ),
            groups=("groups",),
            # Every org server token carries the org as audience: only the
            # client tells whether it was issued to an app of yours.
            needs_client_check=True,
            source="domain",
        )
    issuer = f"https://{domain}/oauth2/{server}"
    return Preset(
        validations=("jwt", "introspection", "userinfo"),
        validation="jwt",
        issuers=(issuer,),
        jwks_url=f"{issuer}/v1/keys",
        introspection_url=f"{issuer}/v1/introspect",
        userinfo_url=f"{issuer}/v1/userinfo",
        audience=("api://default",) if server == "default" else (),
        usernames=(
            ("introspection", ("username", "sub")),
            ("userinfo", ("preferred_username", "sub")),
            ("", ("sub",)),
        ),
        groups=("groups",),
        # Okta access tokens name their client in cid; its ID tokens do not.
        any_of_claims=("cid",),
        source="domain",
    )


def _keycloak(ps: ProviderSettings) -> Preset:
    base = _base_url(ps, None, "the Keycloak base URL, e.g. https://sso.example.com")
    realm = _need(ps, "realm", "the realm name")
    issuer = f"{base}/realms/{realm}"
    connect = f"{issuer}/protocol/openid-connect"
    return Preset(
        validations=("jwt", "introspection", "userinfo"),
        validation="jwt",
        issuers=(issuer,),
        jwks_url=f"{connect}/certs",
        introspection_url=f"{connect}/token/introspect",
        userinfo_url=f"{connect}/userinfo",
        usernames=(("", ("preferred_username",)),),
        groups=("realm_access.roles", "groups"),
        # Keycloak marks access tokens typ=Bearer and ID tokens typ=ID; its
        # access tokens may carry the nonce of the request that got them.
        claim_rules=(ClaimRule("typ", ("Bearer",)),),
        id_token_claims=("at_hash", "c_hash", "s_hash"),
        # A client-credentials token's user is service-account-<client>.
        client_tokens="keycloak",
        source="url",
    )


def _cognito(ps: ProviderSettings) -> Preset:
    region = _need(ps, "region", "the AWS region of the user pool, e.g. eu-west-1")
    pool = _need(ps, "user_pool_id", "the user pool id, e.g. eu-west-1_AbCdEf123")
    issuer = f"https://cognito-idp.{region}.amazonaws.com/{pool}"
    return Preset(
        validations=("jwt",),
        validation="jwt",
        issuers=(issuer,),
        jwks_url=f"{issuer}/.well-known/jwks.json",
        # Cognito access tokens have no aud: the app client is in client_id.
        audience=(ps.client_id,) if ps.client_id else (),
        audience_claim="client_id",
        usernames=(("", ("username",)),),
        groups=("cognito:groups",),
        claim_rules=(ClaimRule("token_use", ("access",)),),
        source="region",
    )


def _google(ps: ProviderSettings) -> Preset:
    api = _base_url(ps, "https://oauth2.googleapis.com", "")
    return Preset(
        validations=("check", "userinfo"),
        # tokeninfo tells which client a token was issued to; userinfo does not.
        validation="check" if ps.client_id else "userinfo",
        userinfo_url="https://openidconnect.googleapis.com/v1/userinfo",
        check="google",
        api_url=api,
        audience=(ps.client_id,) if ps.client_id else (),
        usernames=(("", ("email",)),),
        token_prefixes=("ya29.",),
        require_verified_email=True,
        source="url",
    )


def _github(ps: ProviderSettings) -> Preset:
    api = _base_url(ps, "https://api.github.com", "")
    return Preset(
        validations=("check", "userinfo"),
        validation="check" if ps.client_id and ps.client_secret else "userinfo",
        userinfo_url=f"{api}/user",
        check="github",
        api_url=api,
        usernames=(("", ("login",)),),
        token_prefixes=("gho_", "ghu_", "ghp_", "github_pat_"),
        source="url",
    )


def _slack(ps: ProviderSettings) -> Preset:
    return Preset(
        validations=("userinfo",),
        validation="userinfo",
        userinfo_url="https://slack.com/api/openid.connect.userInfo",
        usernames=(("", ("email",)),),
        token_prefixes=("xoxp-", "xoxe.xoxp-"),
        require_verified_email=True,
        userinfo_dialect="slack",
        # Its userinfo names the team, never the app a token was issued to.
        needs_client_check=True,
        source="type",
    )


def _gitlab(ps: ProviderSettings) -> Preset:
    base = _base_url(ps, "https://gitlab.com", "")
    return Preset(
        validations=("check", "userinfo"),
        validation="check" if ps.client_id else "userinfo",
        issuers=(base,),
        userinfo_url=f"{base}/oauth/userinfo",
        check="gitlab",
        api_url=base,
        # userinfo's nickname; /api/v4/user's username (tokens without openid).
        usernames=(("", ("nickname", "preferred_username", "username")),),
        groups=("groups",),
        source="url",
    )


def _facebook(ps: ProviderSettings) -> Preset:
    api = _base_url(ps, "https://graph.facebook.com", "")
    return Preset(
        validations=("check", "userinfo"),
        validation="check" if ps.client_id and ps.client_secret else "userinfo",
        userinfo_url=f"{api}/me?fields=id,name,email",
        check="facebook",
        api_url=api,
        usernames=(("", ("email", "id")),),
        token_prefixes=("EAA",),
        userinfo_dialect="facebook",
        source="url",
    )


def _oidc(ps: ProviderSettings) -> Preset:
    issuer = _need(ps, "issuer", "the issuer URL; discovery is at {issuer}/.well-known/...")
    return Preset(
        validations=("jwt", "introspection", "userinfo"),
        validation="jwt",
        issuers=(issuer,),
        discovery_url=f"{issuer.rstrip('/')}/.well-known/openid-configuration",
        usernames=(("introspection", ("username", "sub")), ("", ("sub",))),
        groups=("groups",),
    )


def _oauth2(ps: ProviderSettings) -> Preset:
    if not (ps.issuer or ps.userinfo_url or ps.introspection_url or ps.jwks_url):
        _need(ps, "userinfo_url", "the URL that answers a bearer token with its user")
    if ps.introspection_url:
        validation = "introspection"
    elif ps.jwks_url and ps.issuer:
        validation = "jwt"
    else:
        validation = "userinfo"
    return Preset(
        validations=("jwt", "introspection", "userinfo"),
        validation=validation,
        issuers=(ps.issuer,) if ps.issuer else (),
        usernames=(("introspection", ("username", "sub")), ("", ("sub",))),
        groups=("groups",),
        source="userinfo_url",
    )


PRESETS: dict[str, Callable[[ProviderSettings], Preset]] = {
    "azure": _azure,
    "azure-b2c": _azure_b2c,
    "okta": _okta,
    "keycloak": _keycloak,
    "cognito": _cognito,
    "google": _google,
    "github": _github,
    "slack": _slack,
    "gitlab": _gitlab,
    "facebook": _facebook,
    "oidc": _oidc,
    "oauth2": _oauth2,
}
#: The types a provider can have (``RESTAUTH_<NAME>_TYPE``): the presets, the
#: two generic ones last.
TYPES = tuple(PRESETS)


def resolve(ps: ProviderSettings, *, allow_http: bool) -> ProviderConfig:
    """The provider's full configuration, from its preset and its settings.

    No I/O: endpoints that only discovery can tell are left ``None``.
    :raises ConfigurationError: naming the variable that is missing or wrong.
    """
    assert ps.type is not None  # ProviderSettings fills it in
    preset = PRESETS[ps.type](ps)
    validation = ps.validation or preset.validation
    if validation not in preset.validations:
        raise ConfigurationError(
            ps.variable("validation"),
            f"a {ps.type} provider supports {', '.join(preset.validations)}, not {validation}",
        )
    issuers = (ps.issuer,) if ps.issuer else preset.issuers
    urls = {
        "discovery_url": ps.discovery_url or preset.discovery_url,
        "jwks_url": ps.jwks_url or preset.jwks_url,
        "introspection_url": ps.introspection_url or preset.introspection_url,
        "userinfo_url": ps.userinfo_url or preset.userinfo_url,
    }
    if ps.type == "oauth2" and ps.issuer and not urls["discovery_url"]:
        urls["discovery_url"] = f"{ps.issuer.rstrip('/')}/.well-known/openid-configuration"
    for attribute, url in [*urls.items(), ("api_url", preset.api_url)]:
        if url is not None:
            try:
                check_url(url, allow_http=allow_http)
            except ValueError as exc:
                source = attribute if getattr(ps, attribute, None) else preset.source
                raise ConfigurationError(ps.variable(source), str(exc)) from None
    for issuer in issuers:
        try:
            check_url(issuer, allow_http=allow_http)
        except ValueError as exc:
            raise ConfigurationError(
                ps.variable("issuer" if ps.issuer else preset.source), str(exc)
            ) from None
    audience = ps.audience or preset.audience
    _check_needs(ps, preset, validation, issuers, urls, audience)
    _check_client_binding(ps, preset, validation)
    regex = re.compile(ps.username_regex) if ps.username_regex else None
    mapping = IdentityMapping(
        username_attributes=ps.username_attribute or preset.username_attributes(validation),
        groups_attributes=ps.groups_attribute if ps.groups_attribute is not None else preset.groups,
        lowercase=ps.username_lowercase,
        strip_domains=ps.username_strip_domain,
        username_prefix=ps.username_prefix,
        regex=regex,
        replacement=ps.username_replacement,
        service_accounts=dict(ps.service_accounts),
        require_verified_email=(
            preset.require_verified_email
            if ps.require_verified_email is None
            else ps.require_verified_email
        ),
        client_tokens=preset.client_tokens,
        allowed_clients=ps.allowed_clients,
        required_values=(("https://slack.com/team_id", ps.team),) if ps.team else (),
        prefix=ps.prefix,
    )
    if regex is not None:
        _check_replacement(ps, regex)
    config = ProviderConfig(
        name=ps.name,
        kind=ps.type,
        validation=validation,
        issuers=issuers,
        discovery_url=urls["discovery_url"],
        jwks_url=urls["jwks_url"],
        introspection_url=urls["introspection_url"],
        userinfo_url=urls["userinfo_url"],
        check=preset.check if validation == "check" else None,
        api_url=preset.api_url,
        audience=audience,
        audience_claim=preset.audience_claim,
        client_id=ps.client_id,
        client_secret=ps.client_secret,
        introspection_auth=ps.introspection_auth,
        algorithms=ps.algorithms,
        hmac_secret=ps.hmac_secret,
        leeway=ps.leeway,
        claim_rules=preset.claim_rules,
        any_of_claims=preset.any_of_claims,
        access_token_types=ps.access_token_type,
        refuse_nonce_header=preset.refuse_nonce_header,
        mapping=mapping,
        cache_ttl=ps.cache_ttl
        if ps.cache_ttl is not None
        else (300 if validation in ("jwt", "introspection") else 120),
        token_prefixes=ps.token_prefixes
        if ps.token_prefixes is not None
        else preset.token_prefixes,
        userinfo_dialect=preset.userinfo_dialect,
        id_token_claims=preset.id_token_claims,
        family=ps.type if ps.type in FAMILIES else None,
        any_client=ps.any_client,
    )
    return dataclasses.replace(config, fingerprint=fingerprint(config))


def fingerprint(config: ProviderConfig) -> str:
    """A digest of everything in ``config`` that decides its answers, secrets left out."""
    shown = dataclasses.asdict(dataclasses.replace(config, client_secret=None, hmac_secret=None))
    shown.pop("fingerprint")
    text = json.dumps(shown, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_GROUP_REFERENCE = re.compile(r"\\g<([^>]*)>|\\(\d+)")


def _check_replacement(ps: ProviderSettings, regex: re.Pattern[str]) -> None:
    """Every group the replacement names must exist in the regex."""
    for name, number in _GROUP_REFERENCE.findall(ps.username_replacement):
        reference = name or number
        known = reference in regex.groupindex or (
            reference.isdigit() and int(reference) <= regex.groups
        )
        if not known:
            raise ConfigurationError(
                ps.variable("username_replacement"),
                f"refers to group {reference!r}, which {ps.variable('username_regex')} lacks",
            )


def _check_client_binding(ps: ProviderSettings, preset: Preset, validation: str) -> None:
    """A provider must be able to tell that a token was issued to this app, or
    the administrator must say, explicitly, that any app's token will do."""
    if ps.allowed_clients and validation == "userinfo":
        raise ConfigurationError(
            ps.variable("allowed_clients"),
            "userinfo answers do not say which client a token was issued to;"
            " use a validation that does (jwt, introspection, check)",
        )
    if ps.team and ps.type != "slack":
        raise ConfigurationError(ps.variable("team"), "only a Slack provider has a team")
    if preset.needs_client_check and not ps.allowed_clients and not ps.any_client:
        can_tell = validation != "userinfo"
        raise ConfigurationError(
            ps.variable("allowed_clients" if can_tell else "any_client"),
            f"a {ps.type} provider with {validation} validation accepts tokens issued to any"
            " app"
            + (
                f"; list your app's client ids in {ps.variable('allowed_clients')}, or set"
                f" {ps.variable('any_client')}=true to accept any"
                if can_tell
                else f" (its answers cannot tell which); set {ps.variable('any_client')}=true"
                " to accept that explicitly"
                + (f", and {ps.variable('team')} to your team ids" if ps.type == "slack" else "")
            ),
        )


def _check_needs(
    ps: ProviderSettings,
    preset: Preset,
    validation: str,
    issuers: tuple[str, ...],
    urls: dict[str, str | None],
    audience: tuple[str, ...],
) -> None:
    """What each validation cannot work without."""
    if "*" in audience and validation != "introspection":
        raise ConfigurationError(
            ps.variable("audience"),
            f"'*' (any audience) is only possible with introspection, not {validation}",
        )
    if validation == "jwt":
        if not issuers:
            raise ConfigurationError(ps.variable("issuer"), "required to validate JWTs")
        if not urls["jwks_url"] and not urls["discovery_url"]:
            raise ConfigurationError(ps.variable("jwks_url"), "required to validate JWTs")
        if not audience:
            raise ConfigurationError(
                ps.variable("audience"),
                "required to validate JWTs: the audience your API's access tokens carry"
                + (" (the app client id)" if preset.audience_claim == "client_id" else ""),
            )
        hmac = [a for a in ps.algorithms if a in HMAC_ALGORITHMS]
        if hmac and (not ps.hmac_secret or len(ps.hmac_secret) < 32):
            raise ConfigurationError(
                ps.variable("hmac_secret"),
                f"{', '.join(hmac)} needs a shared secret of at least 32 characters",
            )
    elif validation == "introspection":
        if not urls["introspection_url"] and not urls["discovery_url"]:
            raise ConfigurationError(ps.variable("introspection_url"), "required for introspection")
        for attribute in ("client_id", "client_secret"):
            _need(ps, attribute, "introspection authenticates as a client of the provider")
        if not audience:
            # Providers introspect any of their clients' tokens: without an
            # audience, a token minted for another API of the provider passes.
            raise ConfigurationError(
                ps.variable("audience"),
                "required for introspection: the audience (or client id) of the tokens"
                " your API accepts; '*' accepts tokens for any audience (unsafe)",
            )
    elif validation == "userinfo":
        if not urls["userinfo_url"] and not urls["discovery_url"]:
            raise ConfigurationError(ps.variable("userinfo_url"), "required for userinfo")
    elif validation == "check":
        _need(ps, "client_id", "the provider's check endpoint is asked on behalf of your app")
        if preset.check in ("github", "facebook"):
            _need(ps, "client_secret", "the check endpoint authenticates your app")
