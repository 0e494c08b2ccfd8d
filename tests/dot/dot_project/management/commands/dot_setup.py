"""``django-admin dot_setup``: migrate, create users and applications, expire tokens.

Reads one JSON object on stdin, so a test makes all it needs in one process::

    {"migrate": true,
     "users": [{"username": "alice", "password": "pw"}],
     "applications": [{"name": "api", "client_id": "api", "client_secret": "s",
                       "grant_type": "password"}],
     "expire": ["<access token>"]}

Grant types are spelled as in OAuth (``password``, ``client_credentials``,
``authorization_code``). Writes ``{"users": {"alice": <id>}}`` on stdout.
"""

import hashlib
import json
import sys
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model

GRANT_TYPES = {
    "password": "password",
    "client_credentials": "client-credentials",
    "authorization_code": "authorization-code",
}


class Command(BaseCommand):
    help = "Set up the test provider from a JSON object on stdin."

    def handle(self, *args, **options):
        spec = json.load(sys.stdin)
        if spec.get("migrate"):
            call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
        created = {}
        with transaction.atomic():
            for user in spec.get("users", ()):
                created[user["username"]] = self.user(**user).pk
            for application in spec.get("applications", ()):
                self.application(**application)
            for token in spec.get("expire", ()):
                checksum = hashlib.sha256(token.encode()).hexdigest()
                get_access_token_model().objects.filter(token_checksum=checksum).update(
                    expires=timezone.now() - timedelta(seconds=1)
                )
        self.stdout.write(json.dumps({"users": created}))

    @staticmethod
    def user(username, password, **fields):
        model = get_user_model()
        user, _ = model.objects.get_or_create(username=username, defaults=fields)
        user.set_password(password)
        user.save()
        return user

    @staticmethod
    def application(
        name,
        client_id,
        client_secret,
        grant_type,
        client_type="confidential",
        algorithm="RS256",
        redirect_uris="",
        user=None,
    ):
        model = get_application_model()
        owner = get_user_model().objects.get(username=user) if user else None
        model.objects.update_or_create(
            client_id=client_id,
            defaults={
                "name": name,
                "client_secret": client_secret,
                "authorization_grant_type": GRANT_TYPES[grant_type],
                "client_type": client_type,
                "algorithm": algorithm,
                "redirect_uris": redirect_uris,
                "user": owner,
                "skip_authorization": True,
            },
        )
