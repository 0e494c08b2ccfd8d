"""A provider's OpenID discovery document, fetched when first needed.

A provider that is down at start-up is not a start-up error: the document
is fetched on the first request that needs it, kept for a day, and a failed
fetch is retried on a later request (the upstream backoff keeps that from
being every request). A document whose ``issuer`` is not the configured one
is refused (OpenID Connect Discovery 1.0, section 4.3).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from restauth_wsgi.upstream import UpstreamClient, UpstreamError

from .config import ProviderConfig

#: How long a fetched discovery document is used before it is fetched again.
MAX_AGE = 24 * 3600


class Discovery:
    """One provider's discovery document."""

    def __init__(self, config: ProviderConfig, http: UpstreamClient) -> None:
        self.config = config
        self.http = http
        self._document: dict[str, Any] | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def endpoint(self, name: str) -> str:
        """The document's ``name`` (``jwks_uri``, ``introspection_endpoint``...).

        :raises UpstreamError: if the document cannot be had or lacks it.
        """
        value = self.document().get(name)
        if not isinstance(value, str) or not value:
            raise UpstreamError(f"the discovery document of {self.config.name} has no {name}")
        return value

    def document(self) -> dict[str, Any]:
        """The document, fetched now if there is none or it is a day old.

        A failed refetch keeps the document it has.
        """
        if self._document is not None and time.monotonic() - self._fetched_at < MAX_AGE:
            return self._document
        with self._lock:
            if self._document is not None and time.monotonic() - self._fetched_at < MAX_AGE:
                return self._document
            try:
                self._document = self._fetch()
                self._fetched_at = time.monotonic()
            except UpstreamError:
                if self._document is None:
                    raise
            return self._document

    def _fetch(self) -> dict[str, Any]:
        url = self.config.discovery_url
        if url is None:
            raise UpstreamError(f"{self.config.name} has no discovery URL")
        answer = self.http.request("GET", url, headers={"Accept": "application/json"})
        if answer.status != 200:
            raise UpstreamError(f"{answer.where} answered {answer.status}")
        document = answer.json_object()
        issuer = document.get("issuer")
        if self.config.issuers and issuer not in self.config.issuers:
            raise UpstreamError(
                f"the discovery document of {self.config.name} names the issuer {issuer!r},"
                f" not {self.config.issuers[0]!r}"
            )
        return document
