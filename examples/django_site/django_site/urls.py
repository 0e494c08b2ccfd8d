"""One view: who does Django think is calling?"""

from django.http import HttpRequest, JsonResponse
from django.urls import path


def whoami(request: HttpRequest) -> JsonResponse:
    """The Django user RemoteUserNoSessionMiddleware found from REMOTE_USER."""
    identity = request.META.get("restauth.identity")
    return JsonResponse(
        {
            "username": request.user.get_username(),
            "is_authenticated": request.user.is_authenticated,
            "method": identity.method if identity is not None else None,
        }
    )


urlpatterns = [path("whoami", whoami)]
