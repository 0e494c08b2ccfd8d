"""The files settings point to: RESTAUTH_SETTINGS_FILE and RESTAUTH_PASSWORD_FILE
share one reader; a file that is missing or not UTF-8 is an error naming the
setting, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from restauth_wsgi import Settings
from restauth_wsgi.errors import ConfigurationError
from restauth_wsgi.passwords import PasswordFile

BCRYPT = "$2b$12$" + "a" * 53


def test_settings_file_skips_blank_lines_and_comments(tmp_path: Path, store_url: str) -> None:
    path = tmp_path / "restauth.env"
    path.write_text(f"# comment\n\n  export RESTAUTH_TOKEN_STORE='{store_url}'\n  # indented\n")
    settings = Settings.from_env({"RESTAUTH_SETTINGS_FILE": str(path)})
    assert settings.token_store == store_url


def test_password_file_skips_blank_lines_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text(f"# service accounts\n\n  jenkins:{BCRYPT}  \n")
    assert PasswordFile.load(str(path)).hashes == {"jenkins": BCRYPT}


@pytest.mark.parametrize("problem", ["missing", "not-utf8"])
def test_settings_file_that_cannot_be_read_names_the_variable(tmp_path: Path, problem: str) -> None:
    path = tmp_path / "restauth.env"
    if problem == "not-utf8":
        path.write_bytes(b"RESTAUTH_REALM=caf\xe9\n")
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"RESTAUTH_SETTINGS_FILE": str(path)})
    assert raised.value.variable == f"RESTAUTH_SETTINGS_FILE ({path})"
    expected = "is not UTF-8" if problem == "not-utf8" else "cannot be read: No such file"
    assert expected in str(raised.value)


@pytest.mark.parametrize("problem", ["missing", "not-utf8"])
def test_password_file_that_cannot_be_read_names_the_variable(tmp_path: Path, problem: str) -> None:
    path = tmp_path / "htpasswd"
    if problem == "not-utf8":
        path.write_bytes(b"jos\xe9:" + BCRYPT.encode() + b"\n")
    with pytest.raises(ConfigurationError) as raised:
        PasswordFile.load(str(path))
    assert raised.value.variable == "RESTAUTH_PASSWORD_FILE"
    expected = f"{path} is not UTF-8" if problem == "not-utf8" else f"{path} cannot be read: No"
    assert expected in str(raised.value)
