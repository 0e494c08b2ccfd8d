"""JWT access tokens, validated here and nowhere else.

* :mod:`.jws`: a compact JWS parsed once, strictly; its signature verified
  with PyJWT's algorithms; its registered claims checked (RFC 7519, RFC 8725);
* :mod:`.keys`: a provider's key set, fetched, cached and refreshed;
* :mod:`.validator`: one provider's checks (algorithms, types, audience,
  claim rules) and the authenticator that routes a JWT to its provider by issuer.
"""
