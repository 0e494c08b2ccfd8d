"""Authenticators: one class per way of checking credentials.

Each answers one of three things, as in Django REST framework: ``None``
(*not mine*: try the next), an :class:`~restauth_wsgi.identity.Identity`,
or it raises an :class:`~restauth_wsgi.errors.AuthenticationError` (*mine,
but invalid*: stop). They know nothing of WSGI or HTTP responses.
"""

from __future__ import annotations

from typing import Protocol

from restauth_wsgi.credentials import Credentials
from restauth_wsgi.identity import Identity


class Authenticator(Protocol):
    """The protocol every authenticator follows."""

    #: The HTTP schemes whose credentials this authenticator may accept.
    schemes: frozenset[str]

    def authenticate(self, credentials: Credentials) -> Identity | None:
        """Return the identity, ``None`` if the credentials are not this
        authenticator's kind, or raise ``AuthenticationError``."""
