"""Metrics: Prometheus counters and histograms, when ``RESTAUTH_METRICS=true``.

Through the ``prometheus_client`` library (the ``metrics`` extra). Under a
multi-process server (gunicorn), set ``PROMETHEUS_MULTIPROC_DIR`` to an
empty directory shared by the workers, as prometheus_client's
multi-process mode asks; the metrics path then reports all workers.

Metric names (docs/audit.md): ``restauth_decisions_total`` (outcome,
method, provider), ``restauth_upstream_requests_total`` (endpoint,
result), ``restauth_upstream_seconds`` (endpoint),
``restauth_cache_requests_total`` (cache, result),
``restauth_jwks_refreshes_total`` (result), ``restauth_lockouts_total``
(kind). Each part that counts is given its metrics when it is built;
without the setting it is given :data:`NO_METRICS`, whose calls do nothing.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


class Metrics:
    """The no-op metrics: what runs when metrics are off."""

    def decision(self, outcome: str, method: str, provider: str) -> None:
        """One request decided."""

    def upstream(self, endpoint: str, result: str, seconds: float) -> None:
        """One call to a provider."""

    def cache(self, cache: str, hit: bool) -> None:
        """One cache lookup: ``recent`` (in-process) or ``shared``."""

    def jwks_refresh(self, result: str) -> None:
        """One key-set fetch."""

    def lockout(self, kind: str) -> None:
        """A client address or user locked out."""


class PrometheusMetrics(Metrics):
    """Metrics kept by prometheus_client."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self._decisions = Counter(
            "restauth_decisions", "Requests decided", ["outcome", "method", "provider"]
        )
        self._upstream = Counter(
            "restauth_upstream_requests", "Calls to identity providers", ["endpoint", "result"]
        )
        self._upstream_seconds = Histogram(
            "restauth_upstream_seconds", "Duration of calls to identity providers", ["endpoint"]
        )
        self._cache = Counter("restauth_cache_requests", "Cache lookups", ["cache", "result"])
        self._jwks = Counter("restauth_jwks_refreshes", "Key-set fetches", ["result"])
        self._lockouts = Counter("restauth_lockouts", "Lockouts started", ["kind"])

    def decision(self, outcome: str, method: str, provider: str) -> None:
        self._decisions.labels(outcome, method, provider).inc()

    def upstream(self, endpoint: str, result: str, seconds: float) -> None:
        self._upstream.labels(endpoint, result).inc()
        self._upstream_seconds.labels(endpoint).observe(seconds)

    def cache(self, cache: str, hit: bool) -> None:
        self._cache.labels(cache, "hit" if hit else "miss").inc()

    def jwks_refresh(self, result: str) -> None:
        self._jwks.labels(result).inc()

    def lockout(self, kind: str) -> None:
        self._lockouts.labels(kind).inc()


#: The metrics when they are off: every call a no-op.
NO_METRICS = Metrics()

_process_wide: PrometheusMetrics | None = None
_process_wide_lock = threading.Lock()


def prometheus_metrics() -> PrometheusMetrics:
    """The process's Prometheus metrics (made on first call).

    One per process, because prometheus_client's registry is: every
    middleware that keeps metrics counts into the same counters, and one
    that does not (given :data:`NO_METRICS`) counts nothing.

    :raises ImportError: without prometheus_client (``pip install 'restauth-wsgi[metrics]'``).
    """
    global _process_wide
    with _process_wide_lock:
        if _process_wide is None:
            _process_wide = PrometheusMetrics()
        return _process_wide


def exposition_app() -> WSGIApplication:
    """A WSGI app answering with the metrics text, all workers' in multi-process mode."""
    from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app

    registry: Any = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    app: WSGIApplication = make_wsgi_app(registry)
    return app
