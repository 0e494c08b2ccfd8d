"""The Flask example: a REST facade over Atlassian-style data, behind the middleware.

It ships inside the package so that ``restauth demo`` runs from an installed
package (``pip install 'restauth-wsgi[demo]'``); ``examples/flask_app`` runs
it by hand. It needs Flask, the ``demo`` extra: import
:mod:`restauth_wsgi.example.app` only where Flask is installed.
"""
