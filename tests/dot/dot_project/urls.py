"""DOT under /o/, and its metadata views at the root too.

``include("oauth2_provider.urls")`` under ``o/`` serves
``/o/.well-known/openid-configuration`` (OpenID discovery, with ``jwks_uri``
and ``userinfo_endpoint`` but no ``introspection_endpoint``) and
``/o/.well-known/oauth-authorization-server`` (RFC 8414's "pragmatic"
prefixed form, which lists ``introspection_endpoint``). ``metadata_urlpatterns``
at the root adds the strict RFC 8414 location,
``/.well-known/oauth-authorization-server/o``.
"""

from django.urls import include, path
from oauth2_provider import urls as oauth2_urls

urlpatterns = [
    path("o/", include("oauth2_provider.urls")),
    path("", include((oauth2_urls.metadata_urlpatterns, "oauth2_metadata"))),
]
