"""Each setting is declared once, and everything else follows from that declaration:
keyword-only construction, the variable named in every error, what ``restauth
config`` shows, and the tables of docs/settings.md and docs/providers.md."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from restauth_wsgi import ConfigurationError, Settings
from restauth_wsgi.access.lockout import Lockout
from restauth_wsgi.cache import open_shared_cache
from restauth_wsgi.config.declaration import declared
from restauth_wsgi.config.kinds import Kind
from restauth_wsgi.providers.presets import PRESETS
from restauth_wsgi.providers.settings import ProviderSettings
from restauth_wsgi.settings import (
    LockoutSettings,
    TokenSettings,
    env_name,
    field_problems,
)
from restauth_wsgi.settings_doc import DOCS, main, rewrite, tables_in, tabulated
from restauth_wsgi.tokens.issuing import TokenPolicy

from .helpers import ROOT

GROUPS = Settings.__bases__
SETTINGS = [name for name, _ in declared(Settings)]
PROVIDER_SETTINGS = [name for name, _ in declared(ProviderSettings)]


@pytest.mark.parametrize(
    "construct",
    [
        pytest.param(lambda: Settings(False, (), False), id="settings"),  # type: ignore[misc]
        pytest.param(lambda: LockoutSettings(3), id="a-group"),  # type: ignore[misc]
        pytest.param(lambda: ProviderSettings("corp", "oidc"), id="provider"),  # type: ignore[misc]
    ],
)
def test_settings_are_given_by_keyword_only(construct: Callable[[], object]) -> None:
    with pytest.raises(TypeError, match="positional argument"):
        construct()


def test_every_field_is_a_declared_setting_with_a_kind_and_a_doc() -> None:
    for of, names in ((Settings, SETTINGS), (ProviderSettings, PROVIDER_SETTINGS)):
        assert [spec.name for spec in fields(of) if spec.name != "name"] == names
        for name, declaration in declared(of):
            assert isinstance(declaration.kind, Kind), name
            assert declaration.doc.strip(), f"{name} has no doc"


def test_each_setting_is_in_exactly_one_group() -> None:
    grouped = [name for group in GROUPS for name, _ in declared(group)]
    assert sorted(grouped) == sorted(SETTINGS)


@pytest.mark.parametrize("name", SETTINGS)
def test_a_value_of_the_wrong_type_names_the_variable(name: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings(**{name: object()})
    assert raised.value.variable == env_name(name)


@pytest.mark.parametrize("name", PROVIDER_SETTINGS)
def test_a_provider_value_of_the_wrong_type_names_the_variable(name: str) -> None:
    values: dict[str, Any] = {"type": "oidc", name: object()}
    with pytest.raises(ConfigurationError) as raised:
        ProviderSettings("corp", **values)
    assert raised.value.variable == f"RESTAUTH_CORP_{name.upper()}"


def test_what_config_shows_of_the_defaults_reads_back_as_the_defaults() -> None:
    defaults = Settings()
    assert Settings.from_mapping(defaults.masked()) == defaults


def test_a_group_alone_has_the_same_defaults_and_checks() -> None:
    assert LockoutSettings().lockout_window == Settings().lockout_window
    with pytest.raises(ConfigurationError) as raised:
        LockoutSettings(lockout_window=0)
    assert raised.value.variable == "RESTAUTH_LOCKOUT_WINDOW"
    with pytest.raises(ConfigurationError) as raised:
        TokenSettings(token_default_lifetime=400 * 86400)
    assert raised.value.variable == "RESTAUTH_TOKEN_DEFAULT_LIFETIME"


def test_a_part_takes_its_group_or_the_whole_settings() -> None:
    shared = open_shared_cache("memory", max_entries=100, timeout=0.5)
    alone = Lockout(shared, LockoutSettings(lockout_threshold=3))
    whole = Lockout(shared, Settings(lockout_threshold=3))
    assert (alone.threshold, alone.window) == (whole.threshold, whole.window) == (3, 300)


def test_the_token_policy_defaults_are_the_settings_defaults() -> None:
    assert Settings().token_policy() == TokenPolicy()


def test_provider_types_are_the_presets() -> None:
    with pytest.raises(ConfigurationError) as raised:
        ProviderSettings("corp", type="ldap")
    assert all(preset in raised.value.problem for preset in PRESETS)


@pytest.mark.parametrize("spelling", ["true", "on", "Yes", "1"])
def test_config_judges_providers_by_allow_http_however_it_is_spelt(spelling: str) -> None:
    values = {
        "RESTAUTH_ALLOW_HTTP": spelling,
        "RESTAUTH_PROVIDERS": "idp",
        "RESTAUTH_IDP_TYPE": "oauth2",
        "RESTAUTH_IDP_USERINFO_URL": "http://idp.example.com/me",
    }
    assert field_problems(values) == []
    assert [p.variable for p in field_problems({**values, "RESTAUTH_ALLOW_HTTP": "maybe"})] == [
        "RESTAUTH_ALLOW_HTTP",
        "RESTAUTH_IDP_USERINFO_URL",
    ]


@pytest.mark.parametrize("doc", DOCS)
def test_the_docs_tables_are_those_the_declarations_write(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    assert rewrite(text) == text, f"run: python -m restauth_wsgi.settings_doc ({doc} differs)"


def test_every_group_has_one_table_in_the_docs() -> None:
    marked = [name for doc in DOCS for name in tables_in((ROOT / doc).read_text("utf-8"))]
    assert sorted(marked) == sorted(tabulated())


def test_settings_doc_rewrites_a_table_that_drifted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for doc in DOCS:
        (tmp_path / doc).parent.mkdir(exist_ok=True)
        shutil.copy(ROOT / doc, tmp_path / doc)
    settings_md = tmp_path / "docs/settings.md"
    original = settings_md.read_text("utf-8")
    settings_md.write_text(
        original.replace("| `RESTAUTH_REALM` | `api` |", "| `RESTAUTH_REALM` | `x` |"), "utf-8"
    )
    assert main(["--check", "--root", str(tmp_path)]) == 1
    assert "docs/settings.md" in capsys.readouterr().out
    assert main(["--root", str(tmp_path)]) == 0
    assert settings_md.read_text("utf-8") == original
    assert main(["--check", "--root", str(tmp_path)]) == 0


def test_a_marker_naming_no_group_is_an_error() -> None:
    with pytest.raises(ValueError, match="NoSuchSettings"):
        rewrite("<!-- settings: NoSuchSettings -->\n<!-- end settings -->\n")
