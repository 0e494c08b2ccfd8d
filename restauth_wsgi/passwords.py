"""Basic ``user:password`` for service accounts, from an htpasswd-style file.

Only where ``RESTAUTH_PASSWORD_FILE`` names one: ``user:hash`` lines, the
hashes bcrypt (``$2a$``, ``$2b$``, ``$2y$``, as ``htpasswd -B`` makes) or
Argon2 (``$argon2id$``...), checked by the ``bcrypt`` and ``argon2-cffi``
libraries (the ``passwords`` extra). Weaker htpasswd schemes (MD5
``$apr1$``, SHA-1 ``{SHA}``, crypt, plain) are refused when the file is
read. The file is read once, when the middleware starts.

Passwords are slow to check on purpose, so a user:password pair that
checked out is remembered for a minute (by its hash, in the process).
"""

from __future__ import annotations

from dataclasses import dataclass

from restauth_wsgi.authenticator import Guard
from restauth_wsgi.config.env_file import content_lines
from restauth_wsgi.credentials import Credentials, looks_like_a_token
from restauth_wsgi.errors import ConfigurationError, InvalidCredentials
from restauth_wsgi.identity import Identity
from restauth_wsgi.tokens import format as token_format

_SCHEMES = ("$2a$", "$2b$", "$2y$", "$argon2id$", "$argon2i$", "$argon2d$")
#: How long a checked password is remembered (seconds).
REMEMBER_FOR = 60.0
_WRONG = "The username or password is invalid."


@dataclass(frozen=True)
class PasswordFile:
    """The users and hashes of an htpasswd-style file."""

    path: str
    hashes: dict[str, str]

    @classmethod
    def load(cls, path: str) -> PasswordFile:
        """Read and check the file.

        :raises ConfigurationError: naming ``RESTAUTH_PASSWORD_FILE`` and the line.
        """
        hashes: dict[str, str] = {}
        for number, text in content_lines(path, lambda problem: _invalid(f"{path} {problem}")):
            user, colon, hashed = text.partition(":")
            where = f"{path}, line {number}"
            if not colon or not user or not hashed:
                raise _invalid(f"{where} is not user:hash")
            if user.startswith("<"):
                # The names tokens sent as the Basic user are known by begin so.
                raise _invalid(f"{where}: a user name cannot begin with '<'")
            if looks_like_a_token(user):
                raise _invalid(
                    f"{where}: the user name looks like a token (a known family's prefix,"
                    " letters of both cases and digits), which is never taken for a user"
                )
            if not hashed.startswith(_SCHEMES):
                raise _invalid(
                    f"{where}: {user!r} has a hash that is not bcrypt or Argon2;"
                    " make one with 'htpasswd -B' (MD5, SHA-1 and crypt are refused)"
                )
            hashes[user] = hashed
        return cls(path, hashes)


def _invalid(problem: str) -> ConfigurationError:
    return ConfigurationError("RESTAUTH_PASSWORD_FILE", problem)


def _verify(hashed: str, password: str) -> bool:
    if hashed.startswith("$argon2"):
        import argon2

        try:
            return bool(argon2.PasswordHasher().verify(hashed, password))
        except argon2.exceptions.VerificationError:
            return False
        except argon2.exceptions.InvalidHashError:
            return False
    import bcrypt

    try:
        return bool(bcrypt.checkpw(password.encode("utf-8"), hashed.encode("ascii")))
    except ValueError:
        return False


# A valid bcrypt hash of no one's password, for an empty file.
_NOBODY = "$2b$12$pbKC8nhAW7HB7f5UPW2v0uzhPBPRcgeqvaqICByfg2BRWUzL80knW"


class PasswordAuthenticator:
    """Checks Basic ``user:password`` against the password file."""

    schemes = frozenset({"Basic"})
    #: Its answers depend only on the credentials: they may be remembered.
    remembers = True

    def __init__(self, passwords: PasswordFile) -> None:
        self.passwords = passwords
        # Checked when the user is unknown: a hash from the file itself costs
        # what a known user's does, so timing does not tell which it was.
        self._decoy = next(iter(passwords.hashes.values()), _NOBODY)

    def authenticate(self, credentials: Credentials, guard: Guard) -> Identity | None:
        """The user's identity; ``None`` for an API token (not mine)."""
        if token_format.looks_like_token(credentials.secret):
            return None
        user = credentials.username or ""
        # Before the slow check, and whatever the password: a blocked or
        # locked-out password is refused without telling right from wrong.
        guard.before_password(user)
        hashed = self.passwords.hashes.get(user)
        ok = _verify(hashed or self._decoy, credentials.secret)
        if hashed is None or not ok:
            error = InvalidCredentials(
                _WRONG, reason=f"wrong password or unknown user {user[:60]!r}"
            )
            error.password = True
            raise error
        return Identity(username=user, method="password", auth_type="Basic")

    def close(self) -> None:
        """Nothing to close: the file was read once."""
