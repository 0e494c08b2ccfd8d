"""The WSGI entry point of the Flask example, for gunicorn and mod_wsgi.

gunicorn -w 2 --chdir examples/flask_app wsgi:application
"""

from app import create_app

application = create_app()
