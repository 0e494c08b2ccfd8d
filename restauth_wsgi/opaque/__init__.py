"""Opaque provider tokens, looked up at the provider.

* :mod:`.lookups`: introspection (RFC 7662), userinfo and the providers' own
  token-check APIs, each answer read into one shape;
* :mod:`.authenticator`: the authenticator, with the shared cache of answers;
* :mod:`.single_flight`: one call per token however many requests wait for it.
"""
