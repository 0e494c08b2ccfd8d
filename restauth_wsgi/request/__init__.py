"""What a request is, worked out once: the method the application will run,
the path as its router will see it, and the client address.

* :mod:`.description`: the one :class:`~restauth_wsgi.request.description.Request`
  every check consults, from a WSGI environ;
* :mod:`.paths`: a path's canonical spelling and every spelling a router may
  resolve it to, and globs over them;
* :mod:`.client_address`: the client's address, behind trusted proxies.
"""
