"""The ``ACCESS_TOKEN_GENERATOR``: JWT access tokens for ``jwt-`` applications.

An application whose ``client_id`` starts with ``jwt-`` gets RFC 9068-style
JWT access tokens: RS256, signed with the OIDC key (``kid`` its thumbprint,
as in DOT's JWKS), header ``typ: at+jwt``, claims ``iss`` (``OIDC_ISS_ENDPOINT``),
``sub`` (the user's database id, as in DOT's ID tokens and userinfo; the
client id for the client-credentials grant), ``aud`` and ``client_id`` (the
client id), ``scope``, ``iat``, ``exp``, ``jti``. DOT stores the JWT like any
token, so introspection and revocation work for it too. Every other
application gets oauthlib's usual random (opaque) token.
"""

import time
import uuid

from jwcrypto import jwt
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.utils import jwk_from_pem
from oauthlib.oauth2.rfc6749.tokens import random_token_generator

JWT_PREFIX = "jwt-"


def access_token(request, refresh_token=False):
    client_id = request.client_id or request.client.client_id
    if not client_id.startswith(JWT_PREFIX):
        return random_token_generator(request)
    key = jwk_from_pem(oauth2_settings.OIDC_RSA_PRIVATE_KEY)
    user = getattr(request, "user", None)
    if request.grant_type == "client_credentials" or user is None:
        subject = client_id
    else:
        subject = str(user.pk)
    now = int(time.time())
    claims = {
        "iss": oauth2_settings.OIDC_ISS_ENDPOINT,
        "sub": subject,
        "aud": client_id,
        "client_id": client_id,
        "scope": " ".join(request.scopes or ()),
        "iat": now,
        "exp": now + int(request.expires_in),
        "jti": uuid.uuid4().hex,
    }
    token = jwt.JWT(
        header={"alg": "RS256", "typ": "at+jwt", "kid": key.thumbprint()}, claims=claims
    )
    token.make_signed_token(key)
    return token.serialize()
