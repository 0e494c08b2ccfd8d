"""The decision: may this request through, as whom, or what is the answer.

:class:`Gatekeeper` is the whole of the middleware's judgement, and nothing
of WSGI: it takes one :class:`~restauth_wsgi.request.description.Request` and returns a
:class:`Decision`. The middleware is an adapter around it, and ``restauth
check`` runs the very same object, so the two cannot disagree. In order:

1. the network allow-list, for every request (public paths and preflights too);
2. a CORS preflight passes: to the self-service token API, which answers it
   itself, and to the application only when allowed
   (``RESTAUTH_ALLOW_PREFLIGHT``: the application then runs it with no user);
3. the path's level: public passes unauthenticated (never the self-service
   token API's paths, which always need credentials);
4. who is asking: a ``REMOTE_USER`` the server in front vouched for (when
   trusted), nobody on an optional path without credentials, or the
   authenticator chain, guarded (:class:`~restauth_wsgi.authenticator.Guard`)
   by blocked passwords and the lockout before anything costly or guessable;
5. what they may do (:meth:`~restauth_wsgi.access.policy.AccessPolicy.authorize`):
   token restrictions, read-only groups, rules. Every identity goes
   through it, a trusted ``REMOTE_USER`` included.

Failures of guessable credentials are counted for the lockout here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

from restauth_wsgi.access.lockout import Lockout, Reservation, address_subject
from restauth_wsgi.access.policy import AccessPolicy, load_rules
from restauth_wsgi.authentication import Authentication, Recalled
from restauth_wsgi.authenticator import UNGUARDED
from restauth_wsgi.errors import (
    AuthenticationError,
    Forbidden,
    InvalidCredentials,
    MalformedCredentials,
    MissingCredentials,
    PasswordsBlocked,
    ServiceUnavailable,
    TooManyFailures,
)
from restauth_wsgi.identity import Identity
from restauth_wsgi.metrics import NO_METRICS, Metrics, prometheus_metrics
from restauth_wsgi.request.description import Request
from restauth_wsgi.request.paths import PathGlobs
from restauth_wsgi.settings import Settings, api_globs

log = logging.getLogger("restauth_wsgi")


class Decision(NamedTuple):
    """What was decided about one request.

    :param outcome: ``allowed``, ``anonymous``, ``public``, ``refused``,
        ``unauthenticated``, ``forbidden``, ``locked``, ``unavailable`` or
        ``malformed``.
    :param identity: who is asking, when known (also for a 403).
    :param error: the refusal, which becomes the answer; ``None`` lets the request through.
    """

    outcome: str
    identity: Identity | None = None
    error: AuthenticationError | None = None


PUBLIC = Decision("public")
_new_tuple = tuple.__new__


def _allowed(identity: Identity) -> Decision:
    """The decision for every request let through. Built by ``tuple.__new__``
    itself: a named tuple's own ``__new__`` is a Python function, twice the cost."""
    return _new_tuple(Decision, ("allowed", identity, None))


ANONYMOUS = Decision("anonymous")
# What counts towards a lockout: credentials that were wrong or garbled. Not
# missing credentials, outages, or passwords refused unchecked (blocked).
_FAILURES = (InvalidCredentials, MalformedCredentials)


def refusal(error: AuthenticationError, identity: Identity | None = None) -> Decision:
    """The decision that answers with ``error``."""
    outcome = "refused"
    if isinstance(error, ServiceUnavailable):
        outcome = "unavailable"
    elif isinstance(error, TooManyFailures):
        outcome = "locked"
    elif isinstance(error, Forbidden):
        outcome = "forbidden"
    elif isinstance(error, MissingCredentials):
        outcome = "unauthenticated"
    elif error.status == 400 and not isinstance(error, MalformedCredentials):
        outcome = "malformed"
    return Decision(outcome, identity, error)


class Gatekeeper:
    """Decides requests; built once, used by every request and thread.

    :param authentication: the authenticator chain.
    :param access: path levels, networks, read-only groups and rules.
    :param lockout: counts failures and refuses what is locked out, if on.
    :param block_passwords: refuse Basic passwords (API tokens still work),
        except for ``password_users`` and on ``password_paths``.
    :param record_failures: count failures for the lockout (``restauth
        check`` only looks).
    :param metrics: where the decisions are counted.
    :param always_required: path globs that need credentials whatever the
        path levels say (the self-service token API); they cover every spelling.
    """

    def __init__(
        self,
        authentication: Authentication,
        access: AccessPolicy,
        *,
        lockout: Lockout | None = None,
        block_passwords: bool = False,
        password_paths: Iterable[str] = (),
        password_users: Iterable[str] = (),
        allow_preflight: bool = False,
        trust_remote_user: bool = False,
        record_failures: bool = True,
        metrics: Metrics = NO_METRICS,
        always_required: Iterable[str] = (),
    ) -> None:
        self.authentication = authentication
        #: Where decisions are counted (the middleware counts each it answers).
        self.metrics = metrics
        self.access = access
        self.lockout = lockout
        self.block_passwords = block_passwords
        self.password_paths = PathGlobs(password_paths)
        self.password_users = frozenset(password_users)
        self.allow_preflight = allow_preflight
        self.trust_remote_user = trust_remote_user
        self.record_failures = record_failures
        self.always_required = PathGlobs(always_required)
        self._always_required = bool(self.always_required.globs)
        self._guarded = lockout is not None or block_passwords

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        record_failures: bool = True,
        create_store: bool = True,
        clock: Callable[[], float] | None = None,
        metrics: Metrics | None = None,
    ) -> Gatekeeper:
        """The gatekeeper the settings describe, without any network I/O.

        :param record_failures: count failures for the lockout (``restauth check`` only looks).
        :param create_store: make the token store if missing (``check`` does not).
        :param clock: the time, for every part that keeps time (tests pass
            their own); by default the system's wall and monotonic clocks.
        :param metrics: where the parts count what they do; by default
            Prometheus's when ``RESTAUTH_METRICS`` is on, else none.
        :raises ConfigurationError: for a rules or password file that cannot be used.
        """
        if metrics is None:
            metrics = prometheus_metrics() if settings.metrics else NO_METRICS
        shared = settings.shared_cache(metrics)
        lockout = None
        if settings.lockout_threshold:
            lockout = Lockout(
                # In process memory, answers and counters would share one
                # bounded map, where a stream of answers evicts live counters.
                settings.shared_cache(metrics) if settings.cache == "memory" else shared,
                settings,
                clock=clock or time.time,
                metrics=metrics,
            )
        access = AccessPolicy(
            public=settings.public_paths,
            protected=settings.protected_paths,
            optional=settings.optional_paths,
            default=settings.default_access,
            networks=settings.allowed_networks,
            read_only_groups=settings.read_only_groups,
            rules=load_rules(settings.rules_file) if settings.rules_file else (),
        )
        return cls(
            Authentication.from_settings(
                settings, shared=shared, create_store=create_store, clock=clock, metrics=metrics
            ),
            access,
            lockout=lockout,
            block_passwords=settings.block_basic_passwords,
            password_paths=settings.basic_password_paths,
            password_users=settings.basic_password_users,
            allow_preflight=settings.allow_preflight,
            trust_remote_user=settings.trust_remote_user,
            record_failures=record_failures,
            metrics=metrics,
            always_required=api_globs(settings.self_service_path) if settings.self_service else (),
        )

    def decide(self, request: Request) -> Decision:
        """Who is asking, and may they: the whole of the judgement."""
        access = self.access
        if access.networks:
            try:
                access.check_network(request.client)
            except AuthenticationError as error:
                return refusal(error)
        if request.preflight and (
            self.allow_preflight
            # The self-service API answers its own preflights (for the origins
            # it lists); the application never sees them.
            or (self._always_required and self.always_required.covers(request.path))
        ):
            return PUBLIC
        level = access.level(request.path)
        if (
            level != "required"
            and self._always_required
            and self.always_required.covers(request.path)
        ):
            level = "required"
        if level == "public":
            return PUBLIC
        if self.trust_remote_user and request.upstream_user is not None:
            return self.authorized(_upstream(request), request)
        header = request.authorization
        if level == "optional" and (header is None or not header.strip(" \t")):
            return ANONYMOUS
        identity = self.authentication.recall(header)
        if not isinstance(identity, Identity):
            return self._authenticate(request, header, identity)
        if identity.restrictions is None and not access.checks_identities:
            # Nothing to authorize (the usual case): the decision, inline.
            return _new_tuple(Decision, ("allowed", identity, None))
        return self.authorized(identity, request)

    def _authenticate(
        self, request: Request, header: str | None, recalled: Recalled | None
    ) -> Decision:
        """Authenticate what the recent answers could not vouch for, guarded."""
        guard = _RequestGuard(self, request) if self._guarded else None
        try:
            identity = self.authentication.authenticate(
                header, guard or UNGUARDED, recalled=recalled
            )
        except AuthenticationError as error:
            failed = isinstance(error, _FAILURES) and not isinstance(error, PasswordsBlocked)
            # A guessable attempt was counted before it was checked; any other
            # failure (a wrong API token, a bad JWT) is counted now.
            reserved = guard is not None and guard.settle(failed=failed)
            if failed and not reserved and self.record_failures and self.lockout is not None:
                user = error.username if error.password else None
                self.lockout.failed(_address(request), user)
            return refusal(error)
        if guard is not None:
            guard.settle(failed=False)
        if identity.method == "password" and self.lockout is not None and self.record_failures:
            self.lockout.password_accepted(identity.username, _address(request))
        return self.authorized(identity, request)

    def authorized(self, identity: Identity, request: Request) -> Decision:
        """Allow ``identity`` this request, or refuse it with 403."""
        try:
            self.access.authorize(identity, request)
        except AuthenticationError as error:
            return refusal(error, identity)
        return _allowed(identity)

    def close(self) -> None:
        """Close the connections held for deciding (token store, shared cache)."""
        self.authentication.close()
        if self.lockout is not None:
            self.lockout.shared.close()

    def password_refused(self, username: str, request: Request) -> None:
        """Refuse a password here if passwords are blocked for this user and path.

        Decided before the password is checked, so the answer is the same
        for a right and a wrong one.

        :raises PasswordsBlocked: if they are.
        """
        if (
            self.block_passwords
            and username not in self.password_users
            and not self.password_paths.matches(request.path)
        ):
            error = PasswordsBlocked(
                "Basic authentication with a password is not allowed here; use an API token.",
                reason=f"{username[:60]!r} sent a password (RESTAUTH_BLOCK_BASIC_PASSWORDS)",
                scheme="Basic",
            )
            error.username = username
            raise error


class _RequestGuard:
    """The guard of one request: blocked passwords, and the lockout's
    reservation of the one guessable attempt a request makes."""

    __slots__ = ("_gatekeeper", "_request", "_reservation")

    def __init__(self, gatekeeper: Gatekeeper, request: Request) -> None:
        self._gatekeeper = gatekeeper
        self._request = request
        self._reservation: Reservation | None = None

    def before_costly_call(self) -> None:
        lockout = self._gatekeeper.lockout
        if lockout is not None and self._reservation is None:
            lockout.check_address(_address(self._request))

    def making_costly_call(self) -> None:
        lockout = self._gatekeeper.lockout
        if lockout is None or self._reservation is not None:
            return
        if self._gatekeeper.record_failures:  # restauth check only looks
            self._reservation = lockout.reserve_costly(_address(self._request))

    def before_password(self, username: str, *, remembered: bool = False) -> None:
        self._gatekeeper.password_refused(username, self._request)
        lockout = self._gatekeeper.lockout
        if lockout is None or self._reservation is not None:
            return
        address = _address(self._request)
        if remembered or not self._gatekeeper.record_failures:
            lockout.check_password(username, address)
        else:
            self._reservation = lockout.reserve_password(username, address)

    def settle(self, *, failed: bool) -> bool:
        """Keep the reserved counts as a failure or give them back; whether
        there was a reservation."""
        if self._reservation is None:
            return False
        self._reservation.settle(failed=failed)
        self._reservation = None
        return True


def _address(request: Request) -> str:
    return address_subject(request.client)


def _upstream(request: Request) -> Identity:
    assert request.upstream_user is not None
    return Identity(
        username=request.upstream_user,
        method="remote_user",
        auth_type=request.upstream_auth_type or "upstream",
    )
