"""Caches, one module each: the hot path's in-process map of answers
(:mod:`.recent`), answers and counters shared between processes
(:mod:`.shared`), and the backends ``RESTAUTH_CACHE`` names (:mod:`.backends`).

API tokens are not answered from these: they are remembered under the token
store's change feed (:mod:`restauth_wsgi.tokens.feed`).
"""

from __future__ import annotations

from restauth_wsgi.cache.backends import check_cache_url
from restauth_wsgi.cache.recent import ExpiringMap, RecentAnswers, Refusal
from restauth_wsgi.cache.shared import SharedCache, open_shared_cache

__all__ = [
    "ExpiringMap",
    "RecentAnswers",
    "Refusal",
    "SharedCache",
    "check_cache_url",
    "open_shared_cache",
]
