"""Bounded outbound HTTP calls to identity providers.

Every call has a total deadline (connect plus the whole answer), a size cap
on the answer, verified TLS, no redirects followed, and https required
beyond loopback. Errors never carry a URL's query string (Google's and
Facebook's check endpoints take the token as a query parameter).

Backoff tells a provider that is down from one bad token. A provider that
cannot be reached, times out, or says it is rate limited (429, with its
``Retry-After``) is not called again for a short backoff, so an outage
answers 503 at once instead of every request waiting out the timeout. A 5xx
about one token (the *subject* of the call: a hash, never the token) backs
off that token only; any client can mint a token that makes a provider fail,
and must not take the provider down for everyone. Only when several
different tokens fail with 5xx in a row is the whole provider backed off.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import urllib.parse
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
import urllib3.exceptions
from requests.auth import AuthBase

from restauth_wsgi import deadline_http, strict_json
from restauth_wsgi.cache import ExpiringMap
from restauth_wsgi.fork_safety import PerThread
from restauth_wsgi.metrics import NO_METRICS, Metrics
from restauth_wsgi.urls import check_url

log = logging.getLogger(__name__)

#: The largest answer read from a provider; a JWKS or userinfo is a few KB.
MAX_ANSWER_BYTES = 1024 * 1024
#: How many different tokens must fail with 5xx in a row before the whole
#: provider is taken to be failing.
FAILING_FOR_EVERYONE = 3
#: The longest wait a provider's Retry-After may impose.
MAX_RETRY_AFTER = 300.0


class UpstreamError(Exception):
    """A provider gave no usable answer (down, slow, refusing, garbage): a 503.

    :param retry_after: seconds after which asking again makes sense (the
        backoff actually applied, or what the provider said), if known.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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
    :param clock: monotonic seconds, for the back-off (tests pass their own).
    :param metrics: where calls are counted and timed.
    """

    def __init__(
        self,
        *,
        timeout: float,
        ca_bundle: str | None = None,
        allow_http: bool = False,
        backoff: float = 2.0,
        max_bytes: int = MAX_ANSWER_BYTES,
        clock: Callable[[], float] = time.monotonic,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.timeout = timeout
        self.metrics = metrics
        self._clock = clock
        self.verify: str | bool = ca_bundle or True
        self.allow_http = allow_http
        self.backoff = backoff
        self.max_bytes = max_bytes
        #: Calls made, by origin and path: what the tests and metrics count.
        self.calls: Counter[str] = Counter()
        self._down_until: dict[str, float] = {}
        # Subjects (token hashes) a provider answered 5xx about, by origin.
        self._failing_subjects: ExpiringMap[tuple[str, str], bool] = ExpiringMap(10_000, clock)
        self._recent_5xx: dict[str, deque[str]] = {}
        self._lock = threading.Lock()
        self._sessions = PerThread(deadline_http.session)

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
        subject: str | None = None,
    ) -> Answer:
        """Make one call; any answer below 500 comes back for the caller to judge.

        :param subject: what the call is about (a hash of the token), so that a
            5xx about it backs off that token only.
        :raises UpstreamError: unreachable, too slow, too large, redirected,
            a 5xx or 429, or a URL that breaks the https rule.
        """
        try:
            # A discovery document's endpoint is the provider's to write, and
            # may not parse at all ("http://[::1/keys").
            parts = urllib.parse.urlsplit(url)
            check_url(url, allow_http=self.allow_http)
        except ValueError as exc:
            raise UpstreamError(str(exc).split(";")[0]) from None
        origin = f"{parts.scheme}://{parts.netloc}"
        where = f"{origin}{parts.path}"
        now = self._clock()
        down_until = self._down_until.get(origin, 0.0)
        if down_until > now:
            raise UpstreamError(
                f"{origin} failed moments ago; not asked again yet", retry_after=down_until - now
            )
        if subject is not None and self._failing_subjects.get((origin, subject)):
            raise UpstreamError(
                f"{where} failed on this token moments ago; not asked again yet",
                retry_after=self.backoff,
            )
        with self._lock:
            self.calls[where] += 1
        started = time.monotonic()
        try:
            answer = self._call(
                method, url, where, origin, headers, data, json_body, auth, params, subject
            )
        except UpstreamError:
            self.metrics.upstream(where, "failed", time.monotonic() - started)
            raise
        self.metrics.upstream(where, "ok", time.monotonic() - started)
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
        subject: str | None,
    ) -> Answer:
        deadline = time.monotonic() + self.timeout
        try:
            with deadline_http.deadline(deadline):
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
        except (requests.RequestException, urllib3.exceptions.HTTPError, ValueError) as exc:
            # Each is the provider failing, never a 500. The body is read from
            # urllib3 directly (read1, below), so its own errors come through
            # unwrapped (a connection cut mid-body, a body that is not the
            # encoding it claims); requests parses a redirect's Location even
            # when it follows none, and a socket cut at the deadline
            # (deadline_http) reads as a closed file.
            raise self._failed(origin, self._why(exc, where, deadline)) from None
        status = response.status_code
        if status == 429:
            # Rate limited: for everyone, for as long as the provider says.
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            raise self._failed(origin, f"{where} answered 429 (rate limited)", wait)
        if status >= 500:
            raise self._failed_about(origin, subject, f"{where} answered {status}")
        if 300 <= status < 400:
            try:
                location = urllib.parse.urlsplit(response.headers.get("Location", ""))
                shown = urllib.parse.urlunsplit(location._replace(query="", fragment=""))
            except ValueError:
                shown = "a URL that does not parse"
            raise UpstreamError(
                f"{where} answered a redirect to {shown or '(no Location)'}, which is not"
                " followed; if that is the endpoint, set its URL to it"
            )
        self._down_until.pop(origin, None)
        self._recent_5xx.pop(origin, None)
        return Answer(status, response.headers, body, where)

    def _why(self, exc: Exception, where: str, deadline: float) -> str:
        """What a call that raised ``exc`` is said to have done."""
        if isinstance(exc, requests.Timeout | urllib3.exceptions.ReadTimeoutError) or (
            time.monotonic() >= deadline
        ):
            return f"{where} did not answer within {self.timeout:g} s"
        if isinstance(exc, requests.RequestException):
            return f"{where} is unreachable ({type(exc).__name__})"
        if isinstance(exc, ValueError):
            return f"{where} gave an answer that could not be read ({type(exc).__name__})"
        return f"{where} broke off its answer ({type(exc).__name__})"

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

    def _failed(self, origin: str, reason: str, wait: float | None = None) -> UpstreamError:
        """The provider failed for everyone: back it off (for ``wait``, if it said)."""
        backoff = self.backoff if wait is None else min(max(wait, self.backoff), MAX_RETRY_AFTER)
        if backoff:
            self._down_until[origin] = self._clock() + backoff
        log.warning("provider call failed: %s", reason)
        return UpstreamError(reason, retry_after=backoff or None)

    def _failed_about(self, origin: str, subject: str | None, reason: str) -> UpstreamError:
        """A 5xx: about this subject only, unless different ones keep failing."""
        if subject is None:
            return self._failed(origin, reason)
        with self._lock:
            recent = self._recent_5xx.setdefault(origin, deque(maxlen=FAILING_FOR_EVERYONE))
            if subject not in recent:
                recent.append(subject)
            everyone = len(recent) >= FAILING_FOR_EVERYONE
        if everyone:
            return self._failed(origin, f"{reason} for {FAILING_FOR_EVERYONE} different tokens")
        if self.backoff:
            self._failing_subjects.put((origin, subject), True, self.backoff)
        log.warning("provider call failed for one token: %s", reason)
        return UpstreamError(f"{reason} for this token", retry_after=self.backoff or None)


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header's delay in seconds (the delta-seconds form), if any."""
    if value is None or not value.strip().isdigit() or len(value.strip()) > 6:
        return None
    return float(value.strip())


def retry_after_header(seconds: float | None, default: int = 5) -> int:
    """Whole seconds for a ``Retry-After`` header: at least one, rounded up."""
    return default if seconds is None else max(1, math.ceil(seconds))
