"""A minimal Django site whose users come from restauth-wsgi's REMOTE_USER.

The two lines that matter are RemoteUserMiddleware in MIDDLEWARE and
RemoteUserBackend in AUTHENTICATION_BACKENDS; wsgi.py wraps the Django
application in RestAuthMiddleware, which sets REMOTE_USER.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# An example: set DJANGO_SECRET_KEY in production.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Logs in (and creates, the first time) the user named by REMOTE_USER.
    "django.contrib.auth.middleware.RemoteUserMiddleware",
]

AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.RemoteUserBackend"]

ROOT_URLCONF = "django_site.urls"
WSGI_APPLICATION = "django_site.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB_PATH", str(BASE_DIR / "db.sqlite3")),
    }
}

USE_TZ = True
