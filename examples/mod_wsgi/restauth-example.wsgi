"""mod_wsgi entry point: the Flask example behind restauth-wsgi.

Settings are the RESTAUTH_* variables of the file RESTAUTH_SETTINGS_FILE
names (default /etc/restauth/restauth.env), under any in the environment;
see restauth.env.example. The virtual host puts examples/flask_app on the
path (python-path=...).
"""

import os

from app import create_app

os.environ.setdefault("RESTAUTH_SETTINGS_FILE", "/etc/restauth/restauth.env")

# create_app() wraps app.wsgi_app in RestAuthMiddleware, which reads the settings.
application = create_app()
