"""A second real provider on loopback: django-oauth-toolkit (DOT) under gunicorn.

The Django project is in ``tests/dot`` (see its settings for what is
configured and why). :class:`DotProvider` migrates a fresh SQLite database,
creates the users and applications below, and serves DOT with gunicorn on a
free port; the issuer is ``http://127.0.0.1:<port>/o`` (``OIDC_ISS_ENDPOINT``).

What DOT does that a test should know (checked against 3.4.1):

* ``/o/.well-known/openid-configuration`` has ``jwks_uri`` and
  ``userinfo_endpoint`` but no ``introspection_endpoint``; only the RFC 8414
  document (``/o/.well-known/oauth-authorization-server``, and
  ``/.well-known/oauth-authorization-server/o``) lists it.
* Introspection answers ``active``, ``scope``, ``exp``, ``client_id`` and, for a
  user's token, ``username``: no ``aud``, ``sub`` or ``iss``. Any confidential
  application (whatever its grant type) may introspect any token. Only
  ``/o/introspect/`` is routed: ``/o/introspect`` is a 301 (Django's APPEND_SLASH).
* Userinfo answers only ``{"sub": "<user's database id>"}``, 401 to a token
  without ``openid``, and 500 to a client-credentials token with ``openid``
  (:meth:`DotProvider.token_that_breaks_userinfo`).
* Applications whose ``client_id`` starts with ``jwt-`` get JWT access tokens
  (``typ: at+jwt``, RS256 with the OIDC key, ``aud`` = ``client_id`` = the
  client id, ``sub`` = the user's id or, for client credentials, the client id);
  the others get opaque tokens.
* Tokens live in the database: they survive a restart of the provider.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .helpers import free_port, gunicorn_command, wait_for_port

DOT_DIR = Path(__file__).with_name("dot")
PASSWORD = "dot-user-password"
#: The users made at start; their database ids are in ``DotProvider.users``.
USERS = ("alice", "bob")

#: (client_id, client_secret) of the applications made at start.
#: Password grant, opaque tokens: the API's own client (the audience a resource server accepts).
API_CLIENT = ("dot-api", "dot-api-secret")
#: Password grant, opaque tokens: another client, whose tokens the API must refuse.
OTHER_CLIENT = ("dot-other", "dot-other-secret")
#: Password grant, JWT access tokens (``aud`` = ``jwt-api``).
JWT_CLIENT = ("jwt-api", "jwt-api-secret")
#: Client credentials, JWT access tokens (``sub`` = ``aud`` = ``jwt-service``).
JWT_SERVICE = ("jwt-service", "jwt-service-secret")
#: Client credentials, opaque tokens: a service without a user.
SERVICE_CLIENT = ("dot-service", "dot-service-secret")
#: The resource server's credentials for introspection (a confidential
#: client-credentials application; DOT lets any confidential client introspect).
INTROSPECTION_CLIENT = ("dot-resource-server", "dot-resource-server-secret")

_DEFAULT_APPLICATIONS = (
    (API_CLIENT, "password"),
    (OTHER_CLIENT, "password"),
    (JWT_CLIENT, "password"),
    (JWT_SERVICE, "client_credentials"),
    (SERVICE_CLIENT, "client_credentials"),
    (INTROSPECTION_CLIENT, "client_credentials"),
)


def dot_available() -> str | None:
    """Why the provider cannot run here, or None if it can."""
    for module in ("oauth2_provider", "django", "gunicorn"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: pip install -e '.[test]'"
    return None


class DotProvider:
    """One django-oauth-toolkit under gunicorn on a free loopback port.

    :param workdir: holds the database, the key and ``dot-provider.log``.
    :param access_ttl: access-token lifetime in seconds.
    """

    def __init__(self, workdir: Path, access_ttl: int = 300) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.issuer = f"{self.base_url}/o"
        self.access_ttl = access_ttl
        self.log = workdir / "dot-provider.log"
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_file = workdir / "dot-oidc-key.pem"
        self.key_file.write_bytes(
            self.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        #: username -> database id (the ``sub`` of userinfo and of JWT access tokens).
        self.users: dict[str, int] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self._set_up = False

    # -- endpoints -------------------------------------------------------------------

    @property
    def discovery_url(self) -> str:
        """OpenID discovery: no ``introspection_endpoint`` in it."""
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def metadata_url(self) -> str:
        """RFC 8414 metadata (the prefixed form): lists ``introspection_endpoint``."""
        return f"{self.issuer}/.well-known/oauth-authorization-server"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/token/"

    @property
    def introspection_url(self) -> str:
        """With the trailing slash: ``/o/introspect`` is a 301 (Django's APPEND_SLASH)."""
        return f"{self.issuer}/introspect/"

    @property
    def revocation_url(self) -> str:
        return f"{self.issuer}/revoke_token/"

    @property
    def userinfo_url(self) -> str:
        return f"{self.issuer}/userinfo/"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/.well-known/jwks.json"

    @property
    def introspection_client(self) -> tuple[str, str]:
        """(client_id, client_secret) a resource server introspects with."""
        return INTROSPECTION_CLIENT

    # -- the process -----------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "dot_project.settings",
            "PYTHONPATH": str(DOT_DIR),
            "DOT_DATA_DIR": str(self.workdir),
            "DOT_ISSUER": self.issuer,
            "DOT_OIDC_KEY_FILE": str(self.key_file),
            "DOT_ACCESS_TTL": str(self.access_ttl),
        }

    def start(self) -> None:
        """Serve, set up the database (first start only), wait until DOT answers.

        gunicorn boots while ``dot_setup`` migrates: Django opens the database
        only for a request, and the first one is made once the setup is done.
        """
        command = gunicorn_command("dot_project.wsgi", self.port, "--threads", "8")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=DOT_DIR, env=self._env(), stdout=log, stderr=log
            )
        try:
            if not self._set_up:
                self._first_setup()
            wait_for_port(self.port, self.process)
            self._wait_until_answering()
        except BaseException:
            self.stop()
            raise

    def _first_setup(self) -> None:
        answer = self.setup(
            migrate=True,
            users=[{"username": name, "password": PASSWORD} for name in USERS],
            applications=[
                self._application(client, grant) for client, grant in _DEFAULT_APPLICATIONS
            ],
        )
        self.users.update(answer["users"])
        self._set_up = True

    def _wait_until_answering(self, timeout: float = 30) -> None:
        # The port is bound by gunicorn's master; Django loads in the worker.
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(self.discovery_url, timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"DOT exited with {self.process.returncode}: see {self.log}")
            if time.monotonic() > deadline:
                raise AssertionError(f"DOT does not answer after {timeout} s: see {self.log}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop gunicorn (the database, and so every token, is kept).

        A quick shutdown (SIGQUIT): a graceful one waits out the idle
        keep-alive connections the middleware's HTTP client leaves open.
        """
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    # -- users and applications ------------------------------------------------------

    def setup(self, **spec: Any) -> dict[str, Any]:
        """Run ``django-admin dot_setup`` with ``spec`` (``migrate``, ``users``,
        ``applications``, ``expire``: see tests/dot/.../dot_setup.py); one
        Django start-up, about half a second."""
        django_admin = str(Path(sys.executable).with_name("django-admin"))
        done = subprocess.run(
            [django_admin, "dot_setup"],
            input=json.dumps(spec),
            cwd=DOT_DIR,
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        with self.log.open("a") as log:
            log.write(done.stderr)
        if done.returncode != 0:
            raise AssertionError(f"dot_setup failed ({done.returncode}): {done.stderr[-2000:]}")
        answer: dict[str, Any] = json.loads(done.stdout)
        return answer

    @staticmethod
    def _application(client: tuple[str, str], grant_type: str, **fields: Any) -> dict[str, Any]:
        return {
            "name": client[0],
            "client_id": client[0],
            "client_secret": client[1],
            "grant_type": grant_type,
            **fields,
        }

    def create_user(self, username: str, password: str = PASSWORD) -> int:
        """Create (or reset the password of) a user; return its database id."""
        user_id: int = self.setup(users=[{"username": username, "password": password}])["users"][
            username
        ]
        self.users[username] = user_id
        return user_id

    def create_application(
        self, client_id: str, grant_type: str = "password", client_secret: str | None = None
    ) -> tuple[str, str]:
        """Create a confidential application; ``grant_type`` is ``password``,
        ``client_credentials`` or ``authorization_code``. A ``client_id``
        starting with ``jwt-`` gets JWT access tokens. Returns its credentials."""
        client = (client_id, client_secret or f"{client_id}-secret")
        self.setup(applications=[self._application(client, grant_type)])
        return client

    # -- tokens ----------------------------------------------------------------------

    def _token(self, client: tuple[str, str], form: dict[str, str]) -> dict[str, Any]:
        answer = requests.post(self.token_url, data=form, auth=client, timeout=10)
        if answer.status_code != 200:
            raise AssertionError(
                f"DOT's token endpoint answered {answer.status_code}: {answer.text}"
            )
        tokens: dict[str, Any] = answer.json()
        return tokens

    def password_grant(
        self,
        username: str,
        *,
        client: tuple[str, str] = API_CLIENT,
        scope: str = "read",
        password: str = PASSWORD,
    ) -> dict[str, Any]:
        """The token response of the password grant (``access_token``, ``refresh_token``...)."""
        form = {"grant_type": "password", "username": username, "password": password}
        return self._token(client, {**form, "scope": scope})

    def user_token(
        self, username: str, *, client: tuple[str, str] = API_CLIENT, scope: str = "read"
    ) -> str:
        """A user's access token from ``client`` (opaque, or a JWT for a ``jwt-`` client)."""
        token: str = self.password_grant(username, client=client, scope=scope)["access_token"]
        return token

    def client_credentials(
        self, client: tuple[str, str] = SERVICE_CLIENT, scope: str = "read"
    ) -> str:
        """An access token of the client-credentials grant (no user)."""
        form = {"grant_type": "client_credentials", "scope": scope}
        token: str = self._token(client, form)["access_token"]
        return token

    def token_that_breaks_userinfo(self) -> str:
        """A token DOT's userinfo answers 500 to: client credentials with ``openid``
        (DOT builds the claims from the token's user, and there is none)."""
        return self.client_credentials(SERVICE_CLIENT, scope="openid read")

    def revoke(self, token: str, client: tuple[str, str] = API_CLIENT) -> None:
        """Revoke a token (RFC 7009) with the credentials of the client it was issued to."""
        answer = requests.post(self.revocation_url, data={"token": token}, auth=client, timeout=10)
        answer.raise_for_status()

    def expire(self, *tokens: str) -> None:
        """Make tokens expired in DOT's database (a second ago)."""
        self.setup(expire=list(tokens))

    def introspect(self, token: str) -> dict[str, Any]:
        """DOT's own introspection answer, asked with :attr:`introspection_client`."""
        answer = requests.post(
            self.introspection_url,
            data={"token": token},
            auth=self.introspection_client,
            timeout=10,
        )
        answer.raise_for_status()
        claims: dict[str, Any] = answer.json()
        return claims

    def userinfo(self, token: str) -> requests.Response:
        """DOT's userinfo answer to a bearer token, whatever its status."""
        return requests.get(
            self.userinfo_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
