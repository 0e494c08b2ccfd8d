"""restauth-wsgi: REST API authentication in front of any WSGI application.

Wrap the application, let it read ``REMOTE_USER``::

    from restauth_wsgi import RestAuthMiddleware
    application = RestAuthMiddleware(application)
"""

from __future__ import annotations

from .errors import ConfigurationError, RestAuthError
from .identity import Identity
from .middleware import RestAuthMiddleware
from .settings import Settings, read_env_file

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "Identity",
    "RestAuthError",
    "RestAuthMiddleware",
    "Settings",
    "__version__",
    "read_env_file",
]
