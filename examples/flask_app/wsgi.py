"""The WSGI entry point of the Flask example, for gunicorn and mod_wsgi.

gunicorn -c examples/gunicorn/gunicorn.conf.py --chdir examples/flask_app wsgi:application
"""

from app import create_app

application = create_app()
