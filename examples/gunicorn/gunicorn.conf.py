"""gunicorn settings for an application behind restauth-wsgi.

    gunicorn -c gunicorn.conf.py 'app:create_app()'
    gunicorn -c gunicorn.conf.py 'restauth_wsgi.wrap:wrap("myapp.wsgi:application")'

Settings for the middleware come from RESTAUTH_* variables in gunicorn's
environment (or RESTAUTH_SETTINGS_FILE).
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# Authentication is mostly waiting (a store read, a provider call on a token's
# first use), so threads per worker go further than more workers.
workers = int(os.environ.get("GUNICORN_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 8)))
worker_class = "gthread"
threads = 4

# Longer than the slowest authentication (RESTAUTH_HTTP_TIMEOUT, 3 s by
# default, and a waiting request's share of it), plus the app's own time.
timeout = 30
graceful_timeout = 30
keepalive = 5

# Safe with restauth-wsgi: the middleware connects to nothing until the first
# request, and each worker makes its own store, cache and HTTP connections.
preload_app = True

# Large JWTs (Azure tokens with many groups, Keycloak tokens with many roles)
# outgrow gunicorn's 8 KB header line; the middleware accepts up to 16 KB.
limit_request_field_size = 16 * 1024 + 100

# Only trust X-Forwarded-* from the proxy in front.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Recent gunicorn opens a control socket under ~/.gunicorn; not needed here.
control_socket_disable = True
