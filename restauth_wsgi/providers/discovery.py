"""A provider's metadata: OpenID discovery, and RFC 8414 where that falls short.

A provider that is down at start-up is not a start-up error: the documents
are fetched on the first request that needs them, kept for a day, and a
failed fetch is retried on a later request (the upstream backoff keeps that
from being every request). A document whose ``issuer`` is not the configured
one is refused (OpenID Connect Discovery 1.0 section 4.3, RFC 8414 section 3.3).

Some providers list an endpoint only in their OAuth 2.0 authorization server
metadata (RFC 8414): django-oauth-toolkit names its introspection endpoint
there and not in ``openid-configuration``. When the OpenID document lacks
an endpoint, that document is asked too, at the RFC's own place (the
well-known path inserted before the issuer's path) and where such providers
serve it (appended to the issuer, as OpenID's is).
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from typing import Any

from restauth_wsgi.providers.resolved import ProviderConfig
from restauth_wsgi.upstream import UpstreamClient, UpstreamError

#: How long a fetched document is used before it is fetched again.
MAX_AGE = 24 * 3600
#: How long "there is no RFC 8414 document" is believed.
MISSING_AGE = 300
#: The setting that overrides each endpoint, named when none is found.
OVERRIDES = {
    "jwks_uri": "JWKS_URL",
    "introspection_endpoint": "INTROSPECTION_URL",
    "userinfo_endpoint": "USERINFO_URL",
}
_RFC8414 = "/.well-known/oauth-authorization-server"


class _Document:
    """One fetched document, kept for a while, refetched under a lock."""

    def __init__(self) -> None:
        self.value: dict[str, Any] | None = None
        self.fetched_at = 0.0
        self.max_age = MAX_AGE
        self.lock = threading.Lock()

    def fresh(self) -> dict[str, Any] | None:
        if self.value is not None and time.monotonic() - self.fetched_at < self.max_age:
            return self.value
        return None


class Discovery:
    """One provider's metadata documents."""

    def __init__(self, config: ProviderConfig, http: UpstreamClient) -> None:
        self.config = config
        self.http = http
        self._openid = _Document()
        self._oauth = _Document()

    def endpoint(self, name: str) -> str:
        """The endpoint ``name`` (``jwks_uri``, ``introspection_endpoint``...).

        :raises UpstreamError: if no document can be had, or none has it
            (naming the setting that gives it).
        """
        value = self.document().get(name)
        if isinstance(value, str) and value:
            return value
        value = self.authorization_server_metadata().get(name)
        if isinstance(value, str) and value:
            return value
        setting = OVERRIDES.get(name)
        fix = f"; set RESTAUTH_{self.config.name.upper()}_{setting}" if setting else ""
        raise UpstreamError(
            f"neither the OpenID discovery document nor the OAuth authorization server"
            f" metadata (RFC 8414) of {self.config.name} has {name}{fix}"
        )

    def document(self) -> dict[str, Any]:
        """The OpenID discovery document, fetched now if there is none or it is a
        day old. A failed refetch keeps the document it has."""
        url = self.config.discovery_url
        if url is None:
            raise UpstreamError(f"{self.config.name} has no discovery URL")
        return self._get(self._openid, [url], required=True)

    def authorization_server_metadata(self) -> dict[str, Any]:
        """The RFC 8414 document, or ``{}`` when the provider serves none."""
        urls = metadata_urls(self.config.issuers[0]) if self.config.issuers else []
        return self._get(self._oauth, urls, required=False)

    def _get(self, held: _Document, urls: list[str], *, required: bool) -> dict[str, Any]:
        fresh = held.fresh()
        if fresh is not None:
            return fresh
        with held.lock:
            fresh = held.fresh()
            if fresh is not None:
                return fresh
            try:
                document = self._fetch_first(urls)
            except UpstreamError:
                if held.value is None:
                    raise
                return held.value
            if document is None:
                if required:
                    raise UpstreamError(f"{urls[0]} has no metadata document")
                document, held.max_age = {}, MISSING_AGE
            else:
                held.max_age = MAX_AGE
            held.value, held.fetched_at = document, time.monotonic()
            return document

    def _fetch_first(self, urls: list[str]) -> dict[str, Any] | None:
        """The first of ``urls`` that answers 200 (404s are skipped)."""
        for url in urls:
            answer = self.http.request("GET", url, headers={"Accept": "application/json"})
            if answer.status == 404:
                continue
            if answer.status != 200:
                raise UpstreamError(f"{answer.where} answered {answer.status}")
            document = answer.json_object()
            issuer = document.get("issuer")
            if self.config.issuers and issuer not in self.config.issuers:
                raise UpstreamError(
                    f"the metadata of {self.config.name} at {answer.where} names the issuer"
                    f" {str(issuer)[:120]!r}, not {self.config.issuers[0]!r}"
                )
            return document
        return None


def metadata_urls(issuer: str) -> list[str]:
    """Where an issuer's RFC 8414 metadata may be: the RFC's place (the
    well-known path inserted between host and path, section 3), then appended
    to the issuer as OpenID's document is (what django-oauth-toolkit serves)."""
    parts = urllib.parse.urlsplit(issuer)
    path = parts.path.rstrip("/")
    inserted = urllib.parse.urlunsplit(parts._replace(path=_RFC8414 + path, query="", fragment=""))
    appended = issuer.rstrip("/") + _RFC8414
    return [inserted] if inserted == appended else [inserted, appended]
