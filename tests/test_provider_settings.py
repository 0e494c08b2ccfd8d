"""Provider settings from the environment: what parses, and errors that name the variable."""

from __future__ import annotations

from typing import Any

import pytest

from restauth_wsgi import ConfigurationError, RestAuthMiddleware, Settings
from restauth_wsgi.providers.settings import ProviderSettings
from restauth_wsgi.settings import unknown_variables

from .helpers import echo_app

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def test_providers_from_the_environment() -> None:
    settings = Settings.from_mapping(
        {
            "RESTAUTH_PROVIDERS": "corp, github",
            "RESTAUTH_CORP_TYPE": "okta",
            "RESTAUTH_CORP_DOMAIN": "dev-123456.okta.com",
            "RESTAUTH_CORP_USERNAME_ATTRIBUTE": "email,sub",
            "RESTAUTH_CORP_USERNAME_LOWERCASE": "true",
            "RESTAUTH_CORP_SERVICE_ACCOUNTS": "0oa1=svc-ci, 0oa2=svc-deploy",
            "RESTAUTH_CORP_LEEWAY": "30",
            "RESTAUTH_CORP_CACHE_TTL": "5m",
            "RESTAUTH_GITHUB_CLIENT_ID": "Iv1.abc",
            "RESTAUTH_GITHUB_CLIENT_SECRET": "s3cret",
        }
    )
    corp, github = settings.providers
    assert (corp.name, corp.type, corp.domain) == ("corp", "okta", "dev-123456.okta.com")
    assert corp.username_attribute == ("email", "sub")
    assert corp.username_lowercase is True
    assert corp.service_accounts == {"0oa1": "svc-ci", "0oa2": "svc-deploy"}
    assert (corp.leeway, corp.cache_ttl) == (30, 300)
    assert (github.type, github.client_id) == ("github", "Iv1.abc")
    assert "s3cret" not in repr(github)
    shown = settings.masked()
    assert shown["RESTAUTH_GITHUB_CLIENT_SECRET"] == "****"
    assert shown["RESTAUTH_CORP_DOMAIN"] == "dev-123456.okta.com"


@pytest.mark.parametrize(
    ("values", "variable", "words"),
    [
        pytest.param(
            {"RESTAUTH_PROVIDERS": "okta"},
            "RESTAUTH_OKTA_DOMAIN",
            "required",
            id="okta-needs-domain",
        ),
        pytest.param(
            {"RESTAUTH_PROVIDERS": "corp"}, "RESTAUTH_CORP_TYPE", "required", id="name-not-a-preset"
        ),
        pytest.param(
            {"RESTAUTH_PROVIDERS": "corp", "RESTAUTH_CORP_TYPE": "ldap"},
            "RESTAUTH_CORP_TYPE",
            "not one of",
            id="unknown-type",
        ),
        pytest.param(
            {"RESTAUTH_PROVIDERS": "corp-okta"},
            "RESTAUTH_PROVIDERS",
            "not a provider name",
            id="bad-name",
        ),
        pytest.param(
            {"RESTAUTH_PROVIDERS": "token", "RESTAUTH_TOKEN_TYPE": "oidc"},
            "RESTAUTH_PROVIDERS",
            "clash",
            id="name-clash",
        ),
        pytest.param(
            {"RESTAUTH_PROVIDERS": "okta,OKTA", "RESTAUTH_OKTA_DOMAIN": "a.okta.com"},
            "RESTAUTH_PROVIDERS",
            "twice",
            id="twice",
        ),
        pytest.param(
            {
                "RESTAUTH_PROVIDERS": "azure",
                "RESTAUTH_AZURE_TENANT": "contoso.com",
                "RESTAUTH_AZURE_AUDIENCE": "api://x",
            },
            "RESTAUTH_AZURE_TENANT",
            "GUID",
            id="azure-tenant-domain",
        ),
        pytest.param(
            {"RESTAUTH_PROVIDERS": "azure", "RESTAUTH_AZURE_TENANT": TENANT},
            "RESTAUTH_AZURE_AUDIENCE",
            "required",
            id="azure-needs-audience",
        ),
        pytest.param(
            {
                "RESTAUTH_PROVIDERS": "azure",
                "RESTAUTH_AZURE_TENANT": TENANT,
                "RESTAUTH_AZURE_AUDIENCE": "a",
                "RESTAUTH_AZURE_VALIDATION": "userinfo",
            },
            "RESTAUTH_AZURE_VALIDATION",
            "supports jwt",
            id="azure-jwt-only",
        ),
        pytest.param(
            {
                "RESTAUTH_PROVIDERS": "idp",
                "RESTAUTH_IDP_TYPE": "oidc",
                "RESTAUTH_IDP_ISSUER": "http://idp.example.com",
                "RESTAUTH_IDP_AUDIENCE": "a",
            },
            "RESTAUTH_IDP_ISSUER",
            "plain http",
            id="http-issuer",
        ),
        pytest.param(
            {
                "RESTAUTH_PROVIDERS": "idp",
                "RESTAUTH_IDP_TYPE": "oidc",
                "RESTAUTH_IDP_ISSUER": "https://idp.example.com",
                "RESTAUTH_IDP_AUDIENCE": "a",
                "RESTAUTH_IDP_ALGORITHMS": "none",
            },
            "RESTAUTH_IDP_ALGORITHMS",
            "not allowed",
            id="alg-none",
        ),
        pytest.param(
            {
                "RESTAUTH_PROVIDERS": "idp",
                "RESTAUTH_IDP_TYPE": "oidc",
                "RESTAUTH_IDP_ISSUER": "https://idp.example.com",
                "RESTAUTH_IDP_AUDIENCE": "a",
                "RESTAUTH_IDP_ALGORITHMS": "HS256",
            },
            "RESTAUTH_IDP_HMAC_SECRET",
            "32 characters",
            id="hs256-no-secret",
        ),
        pytest.param(
            {
                "RESTAUTH_PROVIDERS": "idp",
                "RESTAUTH_IDP_TYPE": "oidc",
                "RESTAUTH_IDP_ISSUER": "https://idp.example.com",
                "RESTAUTH_IDP_VALIDATION": "introspection",
                "RESTAUTH_IDP_CLIENT_ID": "c",
            },
            "RESTAUTH_IDP_CLIENT_SECRET",
            "required",
            id="introspection-needs-secret",
        ),
        pytest.param(
            {"RESTAUTH_PROVIDERS": "idp", "RESTAUTH_IDP_TYPE": "oauth2"},
            "RESTAUTH_IDP_USERINFO_URL",
            "required",
            id="oauth2-needs-a-url",
        ),
        pytest.param(
            {
                "RESTAUTH_PROVIDERS": "idp",
                "RESTAUTH_IDP_TYPE": "oauth2",
                "RESTAUTH_IDP_USERINFO_URL": "https://x.example/me",
                "RESTAUTH_IDP_USERNAME_REGEX": "(unclosed",
            },
            "RESTAUTH_IDP_USERNAME_REGEX",
            "not a regular expression",
            id="bad-regex",
        ),
        pytest.param(
            {
                "RESTAUTH_PROVIDERS": "idp",
                "RESTAUTH_IDP_TYPE": "oauth2",
                "RESTAUTH_IDP_USERINFO_URL": "https://x.example/me",
                "RESTAUTH_IDP_USERNAME_REGEX": "(.*)@corp",
                "RESTAUTH_IDP_USERNAME_REPLACEMENT": r"\g<user>",
            },
            "RESTAUTH_IDP_USERNAME_REPLACEMENT",
            "lacks",
            id="bad-replacement",
        ),
        pytest.param(
            {
                "RESTAUTH_PROVIDERS": "idp",
                "RESTAUTH_IDP_TYPE": "oauth2",
                "RESTAUTH_IDP_USERINFO_URL": "https://x.example/me",
                "RESTAUTH_IDP_SERVICE_ACCOUNTS": "just-a-client",
            },
            "RESTAUTH_IDP_SERVICE_ACCOUNTS",
            "key=value",
            id="bad-service-accounts",
        ),
        pytest.param(
            {
                "RESTAUTH_PROVIDERS": "idp",
                "RESTAUTH_IDP_TYPE": "oauth2",
                "RESTAUTH_IDP_USERINFO_URL": "https://x.example/me",
                "RESTAUTH_IDP_LEEWAY": "-5",
            },
            "RESTAUTH_IDP_LEEWAY",
            "at least 0",
            id="negative-leeway",
        ),
        pytest.param(
            {
                "RESTAUTH_PROVIDERS": "idp",
                "RESTAUTH_IDP_TYPE": "oauth2",
                "RESTAUTH_IDP_USERINFO_URL": "https://user:pw@x.example/me",
            },
            "RESTAUTH_IDP_USERINFO_URL",
            "credentials",
            id="credentials-in-url",
        ),
        pytest.param(
            {"RESTAUTH_PROVIDERS": "github", "RESTAUTH_GITHUB_VALIDATION": "check"},
            "RESTAUTH_GITHUB_CLIENT_ID",
            "required",
            id="check-needs-client",
        ),
        pytest.param(
            {"RESTAUTH_HTTP_TIMEOUT": "0"}, "RESTAUTH_HTTP_TIMEOUT", "more than 0", id="timeout"
        ),
        pytest.param(
            {"RESTAUTH_JWKS_COOLDOWN": "0"}, "RESTAUTH_JWKS_COOLDOWN", "at least", id="cooldown"
        ),
        pytest.param(
            {"RESTAUTH_CACHE": "pickle://x"}, "RESTAUTH_CACHE", "not a supported", id="cache"
        ),
    ],
)
def test_errors_name_the_variable(values: dict[str, str], variable: str, words: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_mapping(values)
    assert raised.value.variable == variable, raised.value
    assert words in str(raised.value)


def test_allow_http_permits_plain_http_providers() -> None:
    settings = Settings.from_mapping(
        {
            "RESTAUTH_ALLOW_HTTP": "true",
            "RESTAUTH_PROVIDERS": "idp",
            "RESTAUTH_IDP_TYPE": "oidc",
            "RESTAUTH_IDP_ISSUER": "http://idp.example.com",
            "RESTAUTH_IDP_AUDIENCE": "a",
        }
    )
    assert settings.providers[0].issuer == "http://idp.example.com"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("audience", "api://x"),
        ("leeway", "60"),
        ("username_lowercase", 1),
        ("service_accounts", ["a=b"]),
        ("algorithms", ("RS256", 7)),
    ],
)
def test_wrong_types_in_code_name_the_variable(field: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=f"^RESTAUTH_IDP_{field.upper()}: "):
        ProviderSettings("idp", type="oidc", issuer="https://i.example", **{field: value})


def test_misspelt_provider_variables_are_reported() -> None:
    environ = {
        "RESTAUTH_PROVIDERS": "okta",
        "RESTAUTH_OKTA_DOMAIN": "dev-1.okta.com",
        "RESTAUTH_OKTA_DOMIAN": "dev-1.okta.com",
        "RESTAUTH_OTHER_DOMAIN": "x",
    }
    assert unknown_variables(environ) == ["RESTAUTH_OKTA_DOMIAN", "RESTAUTH_OTHER_DOMAIN"]


def test_a_wrong_provider_setting_stops_the_middleware_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RESTAUTH_PROVIDERS", "keycloak")
    monkeypatch.setenv("RESTAUTH_KEYCLOAK_URL", "https://sso.example.com")
    with pytest.raises(ConfigurationError, match=r"^RESTAUTH_KEYCLOAK_REALM: required"):
        RestAuthMiddleware(echo_app)
