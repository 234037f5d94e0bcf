"""The gate of every panel view: find the account by panel key, allow framing by its
SuperOffice host only, establish who is looking, and refuse everyone else.

Refusals render the sign-in page with no data at all (401), or a refusal (403) when the
user is known but may not see this panel or the URL names another user.
"""

from __future__ import annotations

from functools import wraps

from django.conf import settings as django_settings
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from emhub.framing import allow_framing_by

from . import auth
from .selectors import panel_settings_by_key

COOKIE_NAME = "emhub_panel"
HEADER_NAME = "HTTP_X_PANEL_TOKEN"
PARAM_NAME = "pt"


def _ancestors(request):
    settings = getattr(request, "panel_settings", None)
    return settings.ancestors if settings is not None else []


def presented_token(request) -> tuple[str, str]:
    """(token, where): the header or a posted form's field first, the cookie last.

    Never the query string: a token in a URL ends up in access logs, the browser's
    history and Referer headers, where it could be replayed."""
    header = request.META.get(HEADER_NAME, "")
    if header:
        return header, "header"
    field = request.POST.get(PARAM_NAME, "") if request.method == "POST" else ""
    if field:
        return field, "field"
    return request.COOKIES.get(COOKIE_NAME, ""), "cookie"


def set_panel_cookie(request, response, token: str) -> None:
    """Keep the panel token in a cookie that a cross-site frame may use (CHIPS).

    Only over https: browsers refuse `SameSite=None` without `Secure`. Over plain http
    (tests, the demo on 127.0.0.1) the token travels in the header and fields instead.
    """
    if not request.is_secure():
        return
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=auth.PANEL_TOKEN_MAX_AGE,
        secure=True,
        httponly=True,
        samesite="None",
        path="/panels/",
    )
    # Django 5.2 has no `partitioned` argument; add the attribute to the Morsel's output.
    morsel = response.cookies[COOKIE_NAME]
    morsel._reserved = {**morsel._reserved, "partitioned": "Partitioned"}  # noqa: SLF001
    morsel._flags = {*morsel._flags, "partitioned"}  # noqa: SLF001
    morsel["partitioned"] = True


def _refuse(request, *, panel: str, status: int, message: str):
    settings = request.panel_settings
    return render(
        request,
        "leads/panel_sign_in.html",
        {
            "panel_settings": settings,
            "panel": panel,
            "message": message,
            "sign_in_url": reverse("leads:panel_sign_in", kwargs={"panel_key": settings.panel_key}),
            "oidc_ready": settings.oidc_configured,
            "usid": request.GET.get("usid", ""),
        },
        status=status,
    )


def panel_view(panel: str):
    """Decorate a panel view ``view(request, panel_key, ...)`` with the gate."""

    def decorator(view):
        @wraps(view)
        def gate(request, panel_key: str, *args, **kwargs):
            settings = panel_settings_by_key(panel_key=panel_key)
            if settings is None:
                raise Http404("No such panel")
            request.panel_settings = settings
            request.account = settings.account
            request.panel_token = ""

            token, where = presented_token(request)
            user = auth.panel_token_read(token=token) if token else None
            if user is not None and (
                user.account_id != settings.account_id
                or user.context_identifier != settings.context_identifier
                or (user.method == "usec" and not settings.usec_enabled)
            ):
                user = None
            # A cookie alone never authorises a change: a form posted from another site
            # would carry it. Changes need the token in the header or the form.
            if user is not None and request.method == "POST" and where == "cookie":
                user = None
            fresh = False
            if user is None and request.method == "GET" and request.GET.get("usec"):
                user = auth.usec_verify(settings=settings, usec=request.GET["usec"])
                fresh = user is not None
                if user is not None:
                    token = auth.panel_token_issue(user=user)
            elif user is not None and where != "cookie" and request.method == "GET":
                # A token handed over by the sign-in (header): keep it in the cookie too,
                # where the browser allows one.
                fresh = request.COOKIES.get(COOKIE_NAME) != token
            if user is None:
                return _refuse(
                    request,
                    panel=panel,
                    status=401,
                    message="Sign in with SuperOffice to see this panel.",
                )
            usid = request.GET.get("usid", "").strip()
            if usid and usid != str(user.associate_id):
                return _refuse(
                    request,
                    panel=panel,
                    status=403,
                    message="This panel was opened for another SuperOffice user. Sign in again.",
                )
            allowed = settings.groups_for(panel)
            if allowed and not (user.group_ids and set(allowed) & set(user.group_ids)):
                return render(
                    request,
                    "leads/panel_refused.html",
                    {
                        "message": "Your SuperOffice user group may not see this panel."
                        if user.group_ids is not None
                        else "This panel is limited to some user groups, and this sign-in "
                        "does not tell yours. Ask your admin.",
                    },
                    status=403,
                )
            request.panel_user = user
            request.panel_token = token
            response = view(request, panel_key, *args, **kwargs)
            if fresh:
                set_panel_cookie(request, response, token)
            return response

        @wraps(view)
        def private(request, *args, **kwargs):
            response = gate(request, *args, **kwargs)
            # Panel URLs may carry <usec>: no Referer for them, no cached copy.
            response["Referrer-Policy"] = "no-referrer"
            response["Cache-Control"] = "no-store"
            # A panel opened on its own (not framed) is the sign-in pop-up's opener: the
            # default same-origin opener policy would cut the pop-up off from it, so the
            # token could never come back. Pop-ups keep their opener; other pages do not.
            response["Cross-Origin-Opener-Policy"] = "same-origin-allow-popups"
            return response

        return csrf_exempt(allow_framing_by(_ancestors)(private))

    return decorator


def panel_context(request, **extra) -> dict:
    settings = request.panel_settings
    return {
        "panel_settings": settings,
        "panel_key": settings.panel_key,
        "panel_user": request.panel_user,
        "panel_token": request.panel_token,
        "debug": django_settings.DEBUG,
        **extra,
    }
