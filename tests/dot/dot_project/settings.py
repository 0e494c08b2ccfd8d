"""django-oauth-toolkit as a real OAuth 2.0 / OpenID provider for the tests.

Test-only settings: everything comes from environment variables that
``tests/dot_provider.py`` sets, nothing here is fit for production.

* ``DOT_DATA_DIR``: the directory of the SQLite database (one per provider);
* ``DOT_ISSUER``: ``OIDC_ISS_ENDPOINT``, e.g. ``http://127.0.0.1:PORT/o`` (without
  it DOT derives the issuer from each request's Host);
* ``DOT_OIDC_KEY_FILE``: the RSA private key (PEM) that signs ID tokens and
  the JWT access tokens, published at ``/o/.well-known/jwks.json``.

Applications whose ``client_id`` starts with ``jwt-`` get JWT access tokens
(see :mod:`dot_project.tokens`); every other application gets DOT's usual
opaque ones.
"""

import os
from pathlib import Path

DATA_DIR = Path(os.environ["DOT_DATA_DIR"])

SECRET_KEY = "dot-test-provider-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
ROOT_URLCONF = "dot_project.urls"
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "oauth2_provider",
    "dot_project",  # its management command, dot_setup
]
# CommonMiddleware as in a usual project: it redirects /o/introspect to /o/introspect/.
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "dot.sqlite3",
        "OPTIONS": {"timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# A fresh database for each run: tables straight from the models
# (``migrate --run-syncdb``) in a fraction of the time the migrations take.
MIGRATION_MODULES = {app: None for app in ("auth", "contenttypes", "oauth2_provider")}

# Fast hashing: DOT hashes client secrets with the default hasher and checks
# them on every token and introspection request; PBKDF2 would cost ~0.5 s each.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django.request": {"handlers": ["console"], "level": "ERROR"},
        "oauth2_provider": {"handlers": ["console"], "level": "WARNING"},
    },
}

OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": Path(os.environ["DOT_OIDC_KEY_FILE"]).read_text(),
    "OIDC_ISS_ENDPOINT": os.environ["DOT_ISSUER"],
    "SCOPES": {
        "openid": "OpenID Connect",
        "read": "Reading scope",
        "write": "Writing scope",
        "introspection": "Introspect tokens",
    },
    "DEFAULT_SCOPES": ["read"],
    "ACCESS_TOKEN_EXPIRE_SECONDS": int(os.environ.get("DOT_ACCESS_TTL", "300")),
    # Users get their tokens by the password grant (no login pages to drive). DOT
    # logs an RFC 9700 warning for each, and 4.0 turns this gate to True.
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": False,
    "ACCESS_TOKEN_GENERATOR": "dot_project.tokens.access_token",
    # Without this oauthlib makes refresh tokens with the access-token generator.
    "REFRESH_TOKEN_GENERATOR": "oauthlib.oauth2.rfc6749.tokens.random_token_generator",
}
