"""restauth-wsgi: REST API authentication in front of any WSGI application.

Wrap the application, let it read ``REMOTE_USER``::

    from restauth_wsgi import RestAuthMiddleware
    application = RestAuthMiddleware(application)
"""

from __future__ import annotations

from .errors import ConfigurationError, RestAuthError
from .identity import Identity
from .middleware import RestAuthMiddleware
from .providers.settings import ProviderSettings
from .settings import Settings

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
