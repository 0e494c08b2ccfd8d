"""The WSGI application: Django behind restauth-wsgi. From examples/django_site::

gunicorn -c ../gunicorn/gunicorn.conf.py django_site.wsgi:application
"""

import os

from django.core.wsgi import get_wsgi_application

from restauth_wsgi import RestAuthMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")

# Settings from RESTAUTH_* variables; REMOTE_USER reaches request.META.
application = RestAuthMiddleware(get_wsgi_application())
