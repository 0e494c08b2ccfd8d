"""The authenticator chain: from an ``Authorization`` header to an identity.

It is one step of the decision (:mod:`restauth_wsgi.decision`), which the
middleware and ``restauth check`` both run.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from restauth_wsgi.authenticator import UNGUARDED, Authenticator, Guard
from restauth_wsgi.cache import RecentAnswers, Refusal, SharedCache
from restauth_wsgi.credentials import Credentials, parse_authorization
from restauth_wsgi.errors import (
    AuthenticationError,
    InvalidCredentials,
    InvalidToken,
    MissingCredentials,
    PasswordsBlocked,
    ServiceUnavailable,
    TokenNotRecognised,
    TooManyFailures,
)
from restauth_wsgi.identity import Identity
from restauth_wsgi.metrics import NO_METRICS, Metrics
from restauth_wsgi.passwords import REMEMBER_FOR as PASSWORD_REMEMBERED_FOR
from restauth_wsgi.passwords import PasswordAuthenticator, PasswordFile
from restauth_wsgi.provider_chain import Providers
from restauth_wsgi.providers.routing import family_of
from restauth_wsgi.settings import Settings
from restauth_wsgi.tokens import format as token_format
from restauth_wsgi.tokens.authenticator import ApiTokenAuthenticator, StoreAnswer
from restauth_wsgi.tokens.feed import ChangeFeed
from restauth_wsgi.tokens.store import TokenRecord

log = logging.getLogger("restauth_wsgi")
# The in-process map's key: a header's BLAKE2b, CPython's own code. OpenSSL's
# SHA-256 is faster on a long header in a hot loop, but each call goes through
# OpenSSL's generic EVP layer, which costs far more with the processor's caches
# cold, as they are in a loaded server's worker between two requests: measured
# there, the middleware's CPU per request fell by 3-5 µs (docs/performance.md).
# The key never leaves this process and is never stored.
_key_hash = hashlib.blake2b
# How long an API token's answer is kept while the store does not change: a
# bound on memory, not on revocation (the change feed sees to that).
_REMEMBER_API_TOKEN_FOR = 3600.0
# A named tuple's own constructor is a Python function; its tuples are built
# on the path of every API token's first use and of any answer not standing.
_new_tuple = tuple.__new__


class Recalled(NamedTuple):
    """What :meth:`Authentication.recall` found for a header that does not
    stand as it is: the header's hash and what was remembered under it (an
    identity that needs the guard, a refusal, a stale answer, or nothing)."""

    key: bytes
    remembered: Any


# The order challenges are sent in: the scheme we recommend first.
_SCHEME_ORDER = ("Bearer", "Basic")


def _scheme_named(scheme: str) -> str:
    """Which scheme is not accepted, for a refusal (and so for the logs): a
    scheme's word is named, anything else is not. A header without one (a
    token or Basic's base64 sent bare, a tab for the space) would put the
    start of the credential there."""
    word = scheme.replace("-", "")
    if 0 < len(scheme) <= 20 and word.isascii() and word.isalpha():
        return f"The {scheme!r} scheme is not accepted here"
    return "The Authorization header names no scheme accepted here"


class Authentication:
    """Runs the configured authenticators over one request's credentials.

    :param recent: where provider and password answers are remembered (the
        hot path for credentials seen before); ``None`` when there are none.
    :param cache_ttls: per provider name (or ``password``), how long its
        identities are remembered.
    :param negative_ttl: how long a provider's or password's refusal is remembered.
    :param fed_api_tokens: the API-token authenticator (one of
        ``authenticators``) whose answers are remembered under its store's
        change feed, if any; it needs ``recent``.
    """

    def __init__(
        self,
        authenticators: Sequence[Authenticator],
        *,
        fed_api_tokens: ApiTokenAuthenticator | None = None,
        providers: Providers | None = None,
        recent: RecentAnswers | None = None,
        cache_ttls: Mapping[str, float] | None = None,
        negative_ttl: float = 0,
        clock: Callable[[], float] = time.time,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self.authenticators = tuple(authenticators)
        self.metrics = metrics
        self.providers = providers
        enabled = {scheme for a in self.authenticators for scheme in a.schemes}
        #: The enabled schemes, one challenge each, in the order they are offered.
        self.schemes = tuple(s for s in _SCHEME_ORDER if s in enabled)
        self._accepted = frozenset(self.schemes)
        self._by_scheme = {
            scheme: tuple(a for a in self.authenticators if scheme in a.schemes)
            for scheme in self.schemes
        }
        if recent is not None and recent.clock is not clock:
            # recall() reads one clock for the map's expiry and the answers'.
            raise ValueError("the recent answers must keep the authentication's clock")
        self._recent = recent
        # The API tokens that may be remembered under the store's change counter.
        self._api = fed_api_tokens if recent is not None else None
        self._feed = self._api.feed if self._api is not None else None
        # Metrics whose cache() counts nothing (the default) are not called
        # on the hot path; any class that overrides it is.
        self._counting = type(metrics).cache is not Metrics.cache
        self._cache_ttls = dict(cache_ttls or {})
        self._negative_ttl = negative_ttl
        self._clock = clock

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        shared: SharedCache | None = None,
        create_store: bool = True,
        clock: Callable[[], float] | None = None,
        metrics: Metrics = NO_METRICS,
    ) -> Authentication:
        """Build the chain the settings describe, without any network I/O.

        :param shared: the shared cache (one is opened from the settings if not given).
        :param create_store: make the token store on first use if it does not
            exist (the middleware); ``False`` for commands that only look.
        :param clock: the time, for every part that keeps time (tests pass
            their own); by default the system's wall and monotonic clocks.
        :param metrics: where the parts count what they do.
        :raises ConfigurationError: for a password file that cannot be used.
        """
        wall = clock or time.time
        authenticators: list[Authenticator] = []
        fed: ApiTokenAuthenticator | None = None
        if settings.api_tokens:
            store = settings.open_token_store(create=create_store)
            api_tokens = ApiTokenAuthenticator(
                store,
                cache_ttl=settings.token_cache_ttl,
                cache_entries=settings.cache_max_entries,
                feed=ChangeFeed(store) if settings.token_feed else None,
                clock=wall,
            )
            authenticators.append(api_tokens)
            fed = api_tokens if settings.token_feed else None
        ttls: dict[str, float] = {}
        if settings.password_file:
            passwords = PasswordFile.load(settings.password_file)
            authenticators.append(PasswordAuthenticator(passwords))
            ttls["password"] = PASSWORD_REMEMBERED_FOR
        providers = None
        if settings.providers:
            shared = shared or settings.shared_cache(metrics)
            providers = Providers(settings, shared, clock=clock, metrics=metrics)
            for clash in providers.username_clashes():
                log.warning("%s", clash)
            authenticators += providers.authenticators()
            ttls.update(providers.cache_ttls())
        return cls(
            authenticators,
            fed_api_tokens=fed,
            providers=providers,
            recent=(
                RecentAnswers(settings.cache_max_entries, wall) if ttls or fed is not None else None
            ),
            cache_ttls=ttls,
            negative_ttl=settings.negative_cache_ttl,
            clock=wall,
            metrics=metrics,
        )

    def close(self) -> None:
        """Close the connections the authenticators hold (store, shared cache)."""
        for authenticator in self.authenticators:
            authenticator.close()
        if self.providers is not None:
            self.providers.shared.close()

    def recall(self, header: str | None) -> Identity | Recalled | None:
        """The identity remembered for ``header``, if it stands as it is.

        The hot path: a provider's token seen before, or an API token whose
        store has not changed since (the change feed vouches), costs a hash
        and a lookup, and needs no guard. For anything else (a password,
        which the guard must see again; a refusal; an API token the store
        must decide; nothing remembered) the answer is what was found, as
        :class:`Recalled`, to hand to :meth:`authenticate` with the same
        header; ``None`` when nothing is remembered for such a header.
        """
        recent = self._recent
        if recent is None or not header:
            return None
        if self._api is None and token_format.named_in(header):
            return None  # the store decides every time: nothing to look up
        key = _key_hash(header.encode("utf-8", "surrogatepass")).digest()
        # The map's own get(), written out with one clock read for the
        # entry's expiry and the answer's (the same clock: see __init__).
        now = self._clock()
        entry = recent.entries.get(key)
        remembered = None
        if entry is not None:
            if now < entry[0]:
                remembered = entry[1]
            else:
                # Forgotten once it has ended, as ExpiringMap.get() does: a
                # wall clock stepped back must not bring it back.
                recent.entries.pop(key, None)
        if self._counting:
            self.metrics.cache("recent", remembered is not None)
        # Nothing remembered (a first sighting) is asked no more questions.
        if remembered is not None:
            if isinstance(remembered, Identity):
                if remembered.method != "password":
                    return remembered
            elif isinstance(remembered, StoreAnswer):
                # An API token's answer stands if the token has not expired
                # and the change feed vouches that the store has not changed
                # since (and notes the use). Written out here, not in a
                # method: this is every API token seen before. The expiry is
                # checked here, not left to the map, which keeps the answer
                # for an hour whatever the token's lifetime.
                identity = remembered.identity
                expires_at = identity.expires_at
                feed = self._feed
                if (
                    (expires_at is None or now < expires_at)
                    and feed is not None
                    and feed.stands(remembered.epoch, identity.token_id or "", now)
                ):
                    return identity
        return _new_tuple(Recalled, (key, remembered))

    def authenticate(
        self, header: str | None, guard: Guard = UNGUARDED, *, recalled: Recalled | None = None
    ) -> Identity:
        """Return the identity the ``Authorization`` header proves.

        :param guard: asked before anything costly or guessable (see
            :class:`~restauth_wsgi.authenticator.Guard`).
        :param recalled: what :meth:`recall` answered for this same header,
            so that it is not hashed and looked up again.
        :raises AuthenticationError: with the HTTP meaning of the refusal.
        """
        if not header or header.isspace():
            raise MissingCredentials(
                "Authentication is required: send 'Authorization: Bearer <token>'."
            )
        recent = self._recent
        api_token = token_format.named_in(header)
        if recent is None or (api_token and self._api is None):
            # Nothing is remembered: without the change feed the store
            # decides every time, so an API token skips the hash and the lookup.
            return self._run_chain(header, None, guard)
        found = recalled if recalled is not None else self.recall(header)
        if isinstance(found, Identity):
            return found
        assert found is not None  # recall() looks up every header that gets here
        key, remembered = found
        if remembered is None:
            if api_token or (self._api is not None and header[:6].lower() == "basic "):
                # An API token, or perhaps one (Basic user:token hides the prefix).
                return self._run_api_token(header, key, guard)
            return self._run_chain(header, key, guard)
        if isinstance(remembered, Identity):
            # Only a password is recalled but not standing: it is still a
            # password, and a lockout or a block applies to it as to a fresh one.
            guard.before_password(remembered.username, remembered=True)
            return remembered
        if isinstance(remembered, StoreAnswer):
            # Recalled but not standing (a change, a stale feed, an expiry): the store decides.
            return self._run_api_token(header, key, guard, remembered)
        if remembered.password and remembered.username is not None:
            guard.before_password(remembered.username, remembered=True)
        raise remembered.error()

    def _run_api_token(
        self, header: str, key: bytes, guard: Guard, remembered: StoreAnswer | None = None
    ) -> Identity:
        """Read the store, and remember the answer under the change feed's
        epoch as it stood before the read (a change during the read makes it
        stale). An answer remembered before a change (``remembered``) is
        checked again by its token's record alone."""
        api = self._api
        feed = self._feed
        recent = self._recent
        assert api is not None
        assert feed is not None
        assert recent is not None
        epoch = feed.current()
        read: Mapping[str, TokenRecord | None] | None = None
        if remembered is not None:
            try:
                identity, read = api.reread(remembered, self._clock())
            except AuthenticationError as exc:  # the store cannot be read: 503
                _annotate_remembered(exc, remembered.identity)
                raise
            if identity is not None:
                if epoch is not None:
                    answer = _new_tuple(StoreAnswer, (identity, epoch, remembered.record))
                    recent.put(key, answer, _REMEMBER_API_TOKEN_FOR)
                return identity
        credentials = parse_authorization(header, self._accepted)
        try:
            chain = self._by_scheme.get(credentials.scheme, ())
            if not chain or chain[0] is not api:
                return self._check(credentials, key, guard)
            # The chain's first authenticator, asked directly for the record
            # the answer is remembered by; the rest as the chain would.
            try:
                checked = api.check(credentials, read)
            except ServiceUnavailable as exc:
                return self._check(credentials, key, guard, chain[1:], exc)
            if checked is None:  # Basic user:password, for the rest of the chain
                return self._check(credentials, key, guard, chain[1:])
        except AuthenticationError as exc:
            _annotate(exc, credentials)
            if remembered is not None and not isinstance(exc, ServiceUnavailable):
                # Refused now: what was remembered would only be read again.
                recent.discard(key)
            raise
        identity, record = checked
        if epoch is not None:
            # For an hour at most (a bound on memory); its expiry is checked
            # on every recall, so the entry need not end with it.
            answer = _new_tuple(StoreAnswer, (identity, epoch, record))
            recent.put(key, answer, _REMEMBER_API_TOKEN_FOR)
        return identity

    def _run_chain(self, header: str, key: bytes | None, guard: Guard) -> Identity:
        credentials = parse_authorization(header, self._accepted)
        try:
            return self._check(credentials, key, guard)
        except AuthenticationError as exc:
            _annotate(exc, credentials)
            raise

    def _check(
        self,
        credentials: Credentials,
        key: bytes | None,
        guard: Guard,
        chain: Sequence[Authenticator] | None = None,
        unavailable: ServiceUnavailable | None = None,
    ) -> Identity:
        """Ask the scheme's authenticators in turn (or the rest of them,
        ``chain``, after one that answered ``unavailable``)."""
        if chain is None:
            chain = self._by_scheme.get(credentials.scheme)
        if chain is None:
            offered = " or ".join(self.schemes) or "nothing"
            raise MissingCredentials(f"{_scheme_named(credentials.scheme)}; use {offered}.")
        not_recognised: TokenNotRecognised | None = None
        for authenticator in chain:
            try:
                identity = authenticator.authenticate(credentials, guard)
            except ServiceUnavailable as exc:
                # Another provider may still vouch for the token; if none
                # does, the answer is 503, not 401: this one might have.
                unavailable = unavailable or exc
                continue
            except TokenNotRecognised as exc:
                not_recognised = not_recognised or exc
                continue
            except AuthenticationError as exc:
                if authenticator.remembers:
                    _annotate(exc, credentials)  # before it is remembered
                    self._remember_refusal(key, exc)
                raise
            if identity is not None:
                self._remember(key, identity)
                return identity
        if unavailable is not None:
            raise unavailable
        if not_recognised is not None:
            self._remember_refusal(key, not_recognised)
            raise not_recognised
        if credentials.scheme == "Bearer":
            raise InvalidToken(
                "The access token is invalid.",
                reason=self._unrouted(credentials),
                scheme="Bearer",
            )
        raise InvalidCredentials(
            "The username or password is invalid.",
            reason="no authenticator accepted the Basic credentials",
        )

    def _unrouted(self, credentials: Credentials) -> str:
        """Why no authenticator took a bearer token, in words an operator can act on."""
        issuers = self.providers.issuers() if self.providers is not None else ()
        parsed = credentials.unverified_jwt
        if parsed is None:
            family = family_of(credentials.secret)
            if family is not None and family != "restauth":
                return f"a {family} token, and no {family} provider is configured"
            if self.providers is None:
                return "not an API token, and no provider is configured (RESTAUTH_PROVIDERS)"
            return "no provider could have issued this token"
        if self.providers is None:
            return "a JWT, and no provider is configured (RESTAUTH_PROVIDERS)"
        issuer = parsed.claims.get("iss")
        shown = repr(issuer)[:120] if isinstance(issuer, str) else "no string iss"
        configured = ", ".join(repr(i) for i in issuers) or "none"
        return (
            f"a JWT issued by {shown}, which matches no configured issuer ({configured});"
            " check the trailing slash and the host's spelling (localhost or 127.0.0.1)"
        )

    def _remember(self, key: bytes | None, identity: Identity) -> None:
        if key is None or self._recent is None:
            return
        # Provider tokens by provider, passwords by method; API tokens are
        # never remembered here (the store decides, for immediate revocation).
        ttl = self._cache_ttls.get(identity.provider or identity.method, 0.0)
        if ttl <= 0:
            return
        # An end read from one clock, never past the credentials' own expiry.
        now = self._clock()
        until = now + ttl
        if identity.expires_at is not None:
            until = min(until, identity.expires_at)
        if until > now:
            self._recent.put_until(key, identity, until)

    def _remember_refusal(self, key: bytes | None, error: AuthenticationError) -> None:
        # The guard's refusals depend on the request (its address, its path)
        # and a lockout ends on its own schedule: never answer them from memory.
        if (
            key is not None
            and self._recent is not None
            and error.remember
            and not isinstance(error, TooManyFailures | PasswordsBlocked)
        ):
            self._recent.put(key, Refusal.of(error), self._negative_ttl)


def _annotate_remembered(error: AuthenticationError, identity: Identity) -> None:
    """:func:`_annotate` for a remembered answer's header, not parsed again:
    its scheme, and its Basic user (the token's owner, as it was checked)."""
    error.scheme = error.scheme or identity.auth_type
    error.username = identity.username if identity.auth_type == "Basic" else None


def _annotate(error: AuthenticationError, credentials: Credentials) -> None:
    """Tell the refusal which scheme and Basic user it was about (challenges, lockout)."""
    error.scheme = error.scheme or credentials.scheme
    error.username = credentials.username
