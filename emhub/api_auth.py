"""REST API authentication: `Authorization: Bearer <api key>`, or a signed-in session.

Wrong API keys are counted per address by django-axes, like wrong passwords
(emhub.sign_in): past the limit the address gets 429 for every key until the lockout ends.
"""

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth.signals import user_login_failed
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from .selectors import api_key_by_raw_key
from .services import api_key_touch
from .sign_in import API_KEY_USERNAME, cooloff_minutes

_API_KEY_CREDENTIALS = {"username": API_KEY_USERNAME}


class ApiKeyLockedOut(exceptions.Throttled):
    default_detail = "Too many wrong API keys from this address."


def _locked_out() -> ApiKeyLockedOut:
    minutes = cooloff_minutes()
    return ApiKeyLockedOut(
        wait=minutes * 60 or None,
        detail=f"Too many wrong API keys from this address. Try again in {minutes} minutes, "
        "or ask the operator to lift the lockout.",
    )


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0] != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the key as 'Authorization: Bearer <key>', with no spaces in the key."
            )
        django_request = request._request
        if not AxesProxyHandler.is_allowed(django_request, _API_KEY_CREDENTIALS):
            raise _locked_out()
        api_key = api_key_by_raw_key(raw_key=parts[1])
        if api_key is None:
            user_login_failed.send(
                sender=ApiKeyAuthentication,
                credentials=_API_KEY_CREDENTIALS,
                request=django_request,
            )
            if getattr(django_request, "axes_locked_out", False):
                raise _locked_out()
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        api_key_touch(api_key=api_key)
        # The API key is the caller: the request works in the key's account.
        request._request.account = api_key.account
        request._request.membership = None
        return (ApiKeyUser(api_key), api_key)

    def authenticate_header(self, request):
        return self.keyword


class ApiKeyUser:
    """The principal behind an API key: authenticated, not a person, not staff."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    is_active = True

    def __init__(self, api_key):
        self.api_key = api_key
        self.pk = None
        self.id = None
        self.username = f"api-key:{api_key.prefix}"

    def __str__(self) -> str:
        return self.username


def request_account(request):
    return getattr(request._request, "account", None) or getattr(request, "account", None)


class HasAccount(permissions.BasePermission):
    """Every API call works in exactly one account: the key's, or the session's."""

    message = "Sign in and choose an account, or send an API key."

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated and request_account(request))


class IsAccountAdmin(permissions.BasePermission):
    """Session users who are admins of the current account (API keys cannot manage keys)."""

    message = "Only an account admin signed in to the hub can do this."

    def has_permission(self, request, view):
        membership = getattr(request._request, "membership", None)
        return membership is not None and membership.is_admin


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents the Bearer API key in the OpenAPI schema."""

    target_class = "emhub.api_auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An account API key."}
