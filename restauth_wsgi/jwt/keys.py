"""A provider's signing keys (its JWKS), kept and refreshed with discipline.

What PyJWT's ``PyJWKClient`` lacks, and this adds: tokens with unknown
``kid`` values cause at most one fetch per cooldown (forged ``kid`` values
cannot drive fetches), while a routine fetch (the first, or the hourly one)
does not use the cooldown up, so a key rotated just after it is fetched at
once; a failed refresh keeps the last good key set; one thread refreshes
while the others wait for it; fetches are bounded by the upstream client's
timeout; and the key set is shared with other processes through the shared
cache, so a rotation costs one fetch, not one per worker.
Keys are only ever fetched from the configured (or discovered) JWKS URL,
never from a URL a token names (``jku``, ``x5u``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from jwt import PyJWK
from jwt.exceptions import InvalidKeyError, PyJWKError

from restauth_wsgi.cache import SharedCache
from restauth_wsgi.metrics import NO_METRICS, Metrics
from restauth_wsgi.strict_json import finite_number
from restauth_wsgi.upstream import UpstreamClient, UpstreamError

log = logging.getLogger(__name__)

# How far ahead of this host's clock another host's may run: a key set from
# the shared cache fetched later than that is from no clock of ours.
_SKEW = 300.0


class UnknownKey(LookupError):
    """No key in the set fits the token's ``kid`` and ``alg``."""


class KeySet:
    """The keys at one JWKS URL.

    :param locate: returns the JWKS URL (it may come from discovery, so it
        is asked for only when keys are first needed).
    :param cooldown: least seconds between fetches caused by unknown ``kid`` values.
    :param max_age: seconds after which the key set is fetched again anyway.
    """

    def __init__(
        self,
        locate: Callable[[], str],
        http: UpstreamClient,
        shared: SharedCache,
        *,
        cooldown: float,
        max_age: float,
        clock: Callable[[], float] = time.time,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._locate = locate
        self.metrics = metrics
        self.http = http
        self.shared = shared
        self.cooldown = cooldown
        self.max_age = max_age
        self._clock = clock
        self._jwks: dict[str, dict[str, Any]] = {}  # kid ("" for none) -> JWK
        self._keys: dict[tuple[str, str], PyJWK] = {}  # (kid, alg) -> key object
        self._fetched_at: float | None = None  # when the keys we hold were fetched
        self._attempted_at = float("-inf")  # our last fetch attempt, ok or not
        # Our last fetch caused by an unknown kid: the only kind the cooldown limits.
        self._kid_fetch_at = float("-inf")
        self._attempt_failed = False
        self._lock = threading.Lock()

    def key(self, kid: str | None, alg: str) -> PyJWK:
        """The key that verifies a token with this ``kid`` and ``alg``.

        :raises UnknownKey: no such key, even after the refresh the cooldown allows.
        :raises UpstreamError: no key set could be had at all, or the kid is
            unknown and the provider could not be asked (it may be a new key).
        """
        now = self._clock()
        if self._fetched_at is None or now - self._fetched_at >= self.max_age:
            self._refresh(force=False)
        found = self._find(kid, alg)
        if found is None:
            self._refresh(force=True)
            found = self._find(kid, alg)
        if found is None:
            if self._attempt_failed:
                raise UpstreamError(f"kid {kid!r} is unknown and the key set cannot be fetched")
            raise UnknownKey(f"no key with kid {kid!r} for {alg} in the key set")
        return found

    @property
    def kids(self) -> list[str]:
        """The key ids currently held."""
        return sorted(self._jwks)

    def _find(self, kid: str | None, alg: str) -> PyJWK | None:
        jwks = self._jwks
        if kid is None:
            # Without a kid, a key set of exactly one key is unambiguous.
            if len(jwks) != 1:
                return None
            kid = next(iter(jwks))
        cached = self._keys.get((kid, alg))
        if cached is not None:
            return cached
        jwk = jwks.get(kid)
        if jwk is None or jwk.get("alg", alg) != alg:
            return None
        try:
            key = PyJWK(jwk, algorithm=alg)
        except (PyJWKError, InvalidKeyError, ValueError, TypeError) as exc:
            log.info("key %r cannot verify %s: %s", kid, alg, exc)
            return None
        # Checked once, when the key is loaded, not on every token.
        weak = key.Algorithm.check_key_length(key.key)
        if weak:
            log.warning("key %r is refused: %s", kid, weak)
            return None
        self._keys[(kid, alg)] = key
        return key

    def _refresh(self, *, force: bool) -> None:
        """Fetch the key set, unless another thread just did or the cooldown forbids.

        ``force`` is for an unknown kid: only if no fetch for an unknown kid
        happened within the cooldown (here or, through the shared cache, in
        another process). A routine fetch is not limited by it, and does not
        count against it.
        """
        before = self._fetched_at
        with self._lock:
            if self._fetched_at != before:
                return  # another thread refreshed while we waited
            now = self._clock()
            kid_fetch_at = self._adopt_shared(now)
            if kid_fetch_at is None:
                return  # a newer key set from another process
            if force:
                if now - max(kid_fetch_at, self._kid_fetch_at) < self.cooldown:
                    return
            elif now - self._attempted_at < self.cooldown:
                # A routine fetch that failed moments ago is not retried at once.
                if self._fetched_at is None:
                    raise UpstreamError(
                        "the key set could not be fetched moments ago",
                        retry_after=self.cooldown - (now - self._attempted_at),
                    )
                return
            self._attempted_at = now
            if force:
                self._kid_fetch_at = kid_fetch_at = now
            try:
                jwks = self._fetch()
                self._install(jwks, now)
            except UpstreamError:
                self.metrics.jwks_refresh("failed")
                self._attempt_failed = True
                if self._fetched_at is None:
                    raise
                log.warning("key set refresh failed; keeping the last good one")
                return
            self.metrics.jwks_refresh("ok")
            self._attempt_failed = False
            entry = {"fetched_at": now, "kid_fetch_at": kid_fetch_at, "jwks": jwks}
            self.shared.set("jwks", self._locate(), entry, self.max_age)

    def _adopt_shared(self, now: float) -> float | None:
        """Take a key set another process fetched, if it is newer than ours.

        :return: ``None`` if one was taken; else when the last fetch for an
            unknown kid happened anywhere, as far as the shared cache knows.
        """
        entry = self.shared.get("jwks", self._locate())
        if entry is None:
            return float("-inf")
        # Times as no release writes them (a bool, 10**400, a time to come,
        # which would keep a key set fresh for ever) are no times.
        fetched_at, jwks = finite_number(entry.get("fetched_at")), entry.get("jwks")
        kid_fetch_at = finite_number(entry.get("kid_fetch_at"))
        if kid_fetch_at is None or kid_fetch_at > now + _SKEW:
            kid_fetch_at = float("-inf")
        if fetched_at is None or fetched_at > now + _SKEW or not isinstance(jwks, dict):
            return kid_fetch_at
        if self._fetched_at is not None and fetched_at <= self._fetched_at:
            return kid_fetch_at
        if now - fetched_at >= self.max_age:
            return kid_fetch_at
        try:
            self._install(jwks, fetched_at)
        except UpstreamError:
            return kid_fetch_at
        return None

    def _fetch(self) -> dict[str, Any]:
        answer = self.http.request("GET", self._locate(), headers={"Accept": "application/json"})
        if answer.status != 200:
            raise UpstreamError(f"{answer.where} answered {answer.status}")
        return answer.json_object()

    def _install(self, jwks: dict[str, Any], fetched_at: float) -> None:
        keys = jwks.get("keys")
        if not isinstance(keys, list):
            raise UpstreamError("the key set has no 'keys' list")
        usable = {
            str(jwk.get("kid", "")): jwk
            for jwk in keys
            if isinstance(jwk, dict) and jwk.get("use", "sig") == "sig"
        }
        if not usable:
            raise UpstreamError("the key set has no signing keys")
        self._jwks, self._keys, self._fetched_at = usable, {}, fetched_at
