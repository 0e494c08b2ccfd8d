"""The Flask example: a REST facade over Atlassian-style data, protected by restauth-wsgi.

The application itself is ``restauth_wsgi/example/app.py``: it ships inside
the package so that ``restauth demo`` runs from an installed package. This
file lets it be run from this directory, as any Flask app is::

    flask --app app run
    gunicorn -c ../gunicorn/gunicorn.conf.py 'app:create_app()'

``create_app()`` wraps ``app.wsgi_app`` in ``RestAuthMiddleware`` (settings
from ``RESTAUTH_*``), so Flask's server, gunicorn and the test client all go
through authentication.
"""

from restauth_wsgi.example.app import create_app

__all__ = ["create_app"]
