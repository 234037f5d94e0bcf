"""Sign-in throttling with django-axes: who is locked out, and what they are told.

A user name is locked after AXES_FAILURE_LIMIT wrong passwords in a row, from any address,
and so is an address, whatever user names it tried; both for AXES_COOLOFF_TIME, or until
an admin lifts the lockout (the account's Settings → Sign-in lockouts, Django's admin, or
``manage.py axes_reset_username``). Wrong API keys count against the address only: an API
key names no user, and a user name that anyone could lock would lock every API client.
"""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render

# The user name axes records for a wrong API key (never a real user name: it has a colon).
API_KEY_USERNAME = "api-key:"


def client_ip(request) -> str:
    """The caller's address: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies that append
    to X-Forwarded-For, the address the outermost trusted proxy saw (never a value the
    caller wrote itself, which would let it pick a new address for every attempt)."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < proxies:
        return remote
    return forwarded[-proxies]


def lockout_parameters(request_or_attempt, credentials=None):
    username = (credentials or {}).get("username")
    if username is None:
        username = getattr(request_or_attempt, "username", None)
    if username == API_KEY_USERNAME:
        return ["ip_address"]
    return ["username", "ip_address"]


def cooloff_minutes() -> int:
    cooloff = settings.AXES_COOLOFF_TIME
    return int(cooloff.total_seconds() // 60) if cooloff else 0


def lockout_response(request, original_response=None, credentials=None):
    message = (
        f"Too many failed sign-ins. Signing in is locked for {cooloff_minutes()} minutes "
        "for this user and from this address. An admin of your account can lift the lockout "
        "sooner (Settings → Sign-in lockouts)."
    )
    if request.path.startswith("/api/"):
        return JsonResponse(
            {
                "detail": f"Too many wrong API keys from this address. Try again in "
                f"{cooloff_minutes()} minutes, or ask the operator to lift the lockout."
            },
            status=429,
        )
    return render(
        request,
        "emhub/locked_out.html",
        {"message": message, "username": (credentials or {}).get("username", "")},
        status=429,
    )
