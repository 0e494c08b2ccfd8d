"""Create, list, use and revoke your own API token with requests.

The calls of Atlassian's personal access token REST API, as its "Using
Personal Access Tokens" page shows them for Jira and Confluence Data Center
(https://confluence.atlassian.com/enterprise/using-personal-access-tokens-1026032365.html):
the same script works against those and against a service behind
restauth-wsgi with ``RESTAUTH_SELF_SERVICE=true``::

    BASE_URL=https://api.example.com PROVIDER_TOKEN=... python pat.py
    BASE_URL=https://api.example.com BASIC_USER=jenkins BASIC_PASSWORD=... python pat.py

You sign in to create the token with your identity provider's access token
(``PROVIDER_TOKEN``), or with a password where the service has them.
"""

from __future__ import annotations

import os
import sys

import requests


def main() -> int:
    base = os.environ["BASE_URL"].rstrip("/")
    api = f"{base}/rest/pat/latest/tokens"
    with requests.Session() as session:
        if os.environ.get("PROVIDER_TOKEN"):
            session.headers["Authorization"] = f"Bearer {os.environ['PROVIDER_TOKEN']}"
        else:
            session.auth = (os.environ["BASIC_USER"], os.environ["BASIC_PASSWORD"])

        # Create a token that expires in 90 days; rawToken is shown this once.
        created = session.post(
            api, json={"name": "ci-deploy", "expirationDuration": 90}, timeout=10
        )
        if created.status_code != 201:
            # Refusals carry Atlassian's errorMessages (and RFC 6750's error_description).
            print(f"refused ({created.status_code}): {created.json()['errorMessages']}")
            return 1
        token = created.json()
        print(f"created token {token['id']}, expiring at {token['expiringAt']}")

        # Your tokens: never their secrets.
        for listed in session.get(api, timeout=10).json():
            print(
                f"listed {listed['id']} {listed['name']} expiring {listed['expiringAt']}"
                f" last used {listed['lastAccessedAt']}"
            )

        # Use the new token as a Bearer token, as with a Jira or Confluence PAT.
        me = requests.get(
            f"{base}/rest/api/2/myself",
            headers={"Authorization": f"Bearer {token['rawToken']}"},
            timeout=10,
        )
        print(f"with the token: {me.status_code}")

        # Revoke it (204): it is refused from then on.
        session.delete(f"{api}/{token['id']}", timeout=10).raise_for_status()
        print(f"revoked token {token['id']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
