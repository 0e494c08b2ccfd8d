"""Identity providers: what is configured and what each provider is.

* :mod:`.settings`: one provider's ``RESTAUTH_<NAME>_*`` settings;
* :mod:`.presets`: the presets (Azure, Okta, Keycloak, ...) and how settings
  resolve into a :class:`~restauth_wsgi.providers.resolved.ProviderConfig`;
* :mod:`.resolved`: a provider as resolved, with everything validation needs;
* :mod:`.discovery`: OpenID Connect and RFC 8414 discovery documents;
* :mod:`.claims`: claims (or a provider's answer) to the identity;
* :mod:`.routing`: which providers may receive which tokens.

JWT validation is :mod:`restauth_wsgi.jwt`; opaque-token lookups are
:mod:`restauth_wsgi.opaque`; building them all is
:mod:`restauth_wsgi.provider_chain`.
"""
