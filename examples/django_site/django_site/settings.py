"""A minimal Django API whose users come from restauth-wsgi's REMOTE_USER.

The lines that matter are RemoteUserNoSessionMiddleware (restauth.py) in
MIDDLEWARE and RemoteUserBackend in AUTHENTICATION_BACKENDS: request.user is
set on every request without login(), so no session is ever created. wsgi.py
wraps the Django application in RestAuthMiddleware, which sets REMOTE_USER.
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
]

MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    # request.user from REMOTE_USER (created the first time), without sessions.
    "django_site.restauth.RemoteUserNoSessionMiddleware",
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
