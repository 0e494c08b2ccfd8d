"""restauth-wsgi: REST API authentication in front of any WSGI application.

Wrap the application, let it read ``REMOTE_USER``::

    from restauth_wsgi import RestAuthMiddleware
    application = RestAuthMiddleware(application)
"""

from __future__ import annotations

from restauth_wsgi.errors import ConfigurationError, RestAuthError
from restauth_wsgi.identity import Identity
from restauth_wsgi.middleware import RestAuthMiddleware
from restauth_wsgi.providers.settings import ProviderSettings
from restauth_wsgi.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "Identity",
    "ProviderSettings",
    "RestAuthError",
    "RestAuthMiddleware",
    "Settings",
    "__version__",
]
