"""Bounded outbound HTTP calls to identity providers.

Every call has a total deadline (connect plus the whole answer), a size cap
on the answer, verified TLS, no redirects followed, and https required
beyond loopback. A provider that failed is not called again for a short
backoff, so an outage answers 503 at once instead of every request waiting
out the timeout. Errors never carry a URL's query string (Google's and
Facebook's check endpoints take the token as a query parameter).
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.auth import AuthBase

from . import metrics, strict_json
from .per_thread import PerThread
from .values import check_url

log = logging.getLogger(__name__)

#: The largest answer read from a provider; a JWKS or userinfo is a few KB.
MAX_ANSWER_BYTES = 1024 * 1024


class UpstreamError(Exception):
    """A provider gave no usable answer (down, slow, refusing, garbage): a 503."""


@dataclass(frozen=True)
class Answer:
    """A provider's HTTP answer, read whole within the limits."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    where: str

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object.

        :raises UpstreamError: if it is not one.
        """
        try:
            data = strict_json.loads_bytes(self.body)
        except (ValueError, RecursionError):
            raise UpstreamError(f"{self.where} answered {self.status} with non-JSON") from None
        if not isinstance(data, dict):
            raise UpstreamError(f"{self.where} answered JSON that is not an object")
        return data


class UpstreamClient:
    """Makes the outbound calls, one ``requests`` session per thread.

    :param timeout: seconds a whole call may take.
    :param ca_bundle: a CA file to verify with instead of the default. Passed
        on every call, because ``REQUESTS_CA_BUNDLE`` overrides a session's own.
    :param backoff: seconds a failed provider is not called again (0: always call).
    """

    def __init__(
        self,
        *,
        timeout: float,
        ca_bundle: str | None = None,
        allow_http: bool = False,
        backoff: float = 2.0,
        max_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.timeout = timeout
        self.verify: str | bool = ca_bundle or True
        self.allow_http = allow_http
        self.backoff = backoff
        self.max_bytes = max_bytes
        #: Calls made, by origin and path: what the tests and metrics count.
        self.calls: Counter[str] = Counter()
        self._down_until: dict[str, float] = {}
        self._lock = threading.Lock()
        self._sessions = PerThread(requests.Session)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        json_body: Any = None,
        auth: tuple[str, str] | AuthBase | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Answer:
        """Make one call; any answer below 500 comes back for the caller to judge.

        :raises UpstreamError: unreachable, too slow, too large, redirected,
            a 5xx or 429, or a URL that breaks the https rule.
        """
        parts = urllib.parse.urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        where = f"{origin}{parts.path}"
        try:
            check_url(url, allow_http=self.allow_http)
        except ValueError as exc:
            raise UpstreamError(str(exc).split(";")[0]) from None
        if self._down_until.get(origin, 0.0) > time.monotonic():
            raise UpstreamError(f"{origin} failed moments ago; not asked again yet")
        with self._lock:
            self.calls[where] += 1
        started = time.monotonic()
        try:
            answer = self._call(method, url, where, origin, headers, data, json_body, auth, params)
        except UpstreamError:
            metrics.METRICS.upstream(where, "failed", time.monotonic() - started)
            raise
        metrics.METRICS.upstream(where, "ok", time.monotonic() - started)
        return answer

    def _call(
        self,
        method: str,
        url: str,
        where: str,
        origin: str,
        headers: Mapping[str, str] | None,
        data: Mapping[str, str] | None,
        json_body: Any,
        auth: tuple[str, str] | AuthBase | None,
        params: Mapping[str, str] | None,
    ) -> Answer:
        deadline = time.monotonic() + self.timeout
        try:
            response = self._sessions.get().request(
                method,
                url,
                headers=dict(headers or {}),
                data=data,
                json=json_body,
                auth=auth,
                params=params,
                timeout=(self.timeout, self.timeout),
                stream=True,
                allow_redirects=False,
                verify=self.verify,
            )
            with response:
                body = self._read(response, deadline, where)
        except requests.Timeout:
            raise self._failed(
                origin, f"{where} did not answer within {self.timeout:g} s"
            ) from None
        except requests.RequestException as exc:
            raise self._failed(origin, f"{where} is unreachable ({type(exc).__name__})") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise self._failed(origin, f"{where} answered {response.status_code}")
        if 300 <= response.status_code < 400:
            raise UpstreamError(f"{where} answered a redirect, which is not followed")
        self._down_until.pop(origin, None)
        return Answer(response.status_code, response.headers, body, where)

    def _read(self, response: requests.Response, deadline: float, where: str) -> bytes:
        # read1 returns what one receive brings, so a provider that trickles
        # bytes is stopped at the deadline instead of holding the request.
        chunks: list[bytes] = []
        size = 0
        while True:
            if time.monotonic() > deadline:
                raise requests.Timeout()
            chunk = response.raw.read1(65536, decode_content=True)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_bytes:
                raise UpstreamError(f"{where} answered more than {self.max_bytes} bytes")
            chunks.append(chunk)

    def _failed(self, origin: str, reason: str) -> UpstreamError:
        if self.backoff:
            self._down_until[origin] = time.monotonic() + self.backoff
        log.warning("provider call failed: %s", reason)
        return UpstreamError(reason)
