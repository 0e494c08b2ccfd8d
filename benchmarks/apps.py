"""The apps gunicorn serves in the end-to-end benchmark."""

from __future__ import annotations

from benchmarks.common import hello
from restauth_wsgi import RestAuthMiddleware

#: The bare hello app.
bare = hello
#: The same app behind the middleware (settings from RESTAUTH_*).
wrapped = RestAuthMiddleware(hello)
