"""API tokens the service issues itself.

* :mod:`.format`: the token's shape (prefix, id, secret, checksum);
* :mod:`.issuing`: making one under the limits;
* :mod:`.restrictions`: what a token may do (read-only, requests, networks, scopes);
* :mod:`.store`, :mod:`.sqlite`, :mod:`.postgres`, :mod:`.sql`: where they live;
* :mod:`.feed`: how every process learns that the store changed;
* :mod:`.authenticator`: checking one on a request.
"""
