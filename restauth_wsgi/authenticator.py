"""The protocol every authenticator follows, and the guard a request gives it.

Authenticators (one class per way of checking credentials) live with their
feature: :mod:`restauth_wsgi.jwt.validator`,
:mod:`restauth_wsgi.opaque.authenticator`,
:mod:`restauth_wsgi.tokens.authenticator`, :mod:`restauth_wsgi.passwords`.
Each answers one of three things, as in Django REST framework: ``None``
(*not mine*: try the next), an :class:`~restauth_wsgi.identity.Identity`,
or it raises an :class:`~restauth_wsgi.errors.AuthenticationError` (*mine,
but invalid*: stop). They know nothing of WSGI or HTTP responses.

Everything the chain relies on is on the protocol: the schemes, whether an
answer may be remembered, and ``close()``. The :class:`Guard` is how the
request's circumstances reach an authenticator: it is asked before
anything that costs or can be guessed (a provider call, a password check)
and raises if the request may not have it (a lockout, blocked passwords).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    # The protocol only names them: every feature's authenticator imports
    # this module, and none needs what these import.
    from restauth_wsgi.credentials import Credentials
    from restauth_wsgi.identity import Identity


class Guard(Protocol):
    """What a request may spend: asked before costly or guessable checks."""

    def before_costly_call(self) -> None:
        """Before a call to a provider about a token not seen before (each
        request waiting for the answer asks this).

        :raises AuthenticationError: if the request may not make one.
        """

    def making_costly_call(self) -> None:
        """Just before the one request that makes the call makes it: the
        attempt is counted now, and given back if the token was good.

        :raises AuthenticationError: if the request may not make it after all.
        """

    def before_password(self, username: str, *, remembered: bool = False) -> None:
        """Before a password is checked, or a remembered one accepted.

        :param remembered: the password is known right already (nothing to guess).
        :raises AuthenticationError: if passwords may not be tried here.
        """


class Unguarded:
    """A guard that allows everything (no lockout, no blocked passwords)."""

    def before_costly_call(self) -> None:
        """Allow the call."""

    def making_costly_call(self) -> None:
        """Count nothing."""

    def before_password(self, username: str, *, remembered: bool = False) -> None:
        """Allow the password check."""


UNGUARDED = Unguarded()


class Authenticator(Protocol):
    """The protocol every authenticator follows."""

    #: The HTTP schemes whose credentials this authenticator may accept.
    schemes: frozenset[str]
    #: Whether its answers depend only on the credentials, so that the
    #: chain may remember them for the credentials' hash (API tokens: no,
    #: the store decides every time).
    remembers: bool

    def authenticate(self, credentials: Credentials, guard: Guard) -> Identity | None:
        """Return the identity, ``None`` if the credentials are not this
        authenticator's kind, or raise ``AuthenticationError``."""

    def close(self) -> None:
        """Close the connections this authenticator holds (safe to repeat)."""
