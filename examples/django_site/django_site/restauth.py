"""request.user from restauth-wsgi's REMOTE_USER, without sessions (docs/deployment.md)."""

from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.utils.functional import SimpleLazyObject


class RemoteUserNoSessionMiddleware:
    """request.user from the REMOTE_USER restauth-wsgi set, on every request,
    without login(): no session row, no cookie."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.user = SimpleLazyObject(lambda: self.user(request))
        return self.get_response(request)

    @staticmethod
    def user(request):
        username = request.META.get("REMOTE_USER")  # the WSGI environ, never a header
        if username:
            user = auth.authenticate(request, remote_user=username)
            if user is not None:
                return user
        return AnonymousUser()
