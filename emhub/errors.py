"""Error pages for the people who are not the hub's users: recipients of a campaign
(tracked links, the open pixel, public forms, unsubscribe links) and sales reps in the
SuperOffice panels.

They get the plain branded page of their status, in every run mode: never Django's
debug page (which shows settings, code and the request), even where DEBUG is on for the
marketer's own pages. The error is logged with its traceback as Django would log it.
"""

import logging

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpResponse, JsonResponse
from django.template import loader

logger = logging.getLogger("django.request")

# Paths whose visitors are not signed in to the hub (campaigns.urls PUBLIC_URL_NAMES,
# leads.urls PANEL_URL_NAMES).
PUBLIC_PREFIXES = ("/t/", "/o/", "/f/", "/u/", "/panels/")
PANEL_PREFIX = "/panels/"


# The REST API answers in JSON, also where no view of it was reached (a URL that matches
# nothing) or where something failed past DRF's own handling.
API_PREFIX = "/api/v1/"


def is_public_path(path: str) -> bool:
    return path.startswith(PUBLIC_PREFIXES)


def api_error(status: int) -> JsonResponse:
    detail = {404: "Not found.", 500: "Server error; it was recorded."}.get(status, "Error.")
    response = JsonResponse({"detail": detail}, status=status)
    response.branded_error = True
    return response


def error_page(request, status: int) -> HttpResponse:
    """The branded page of `status`, rendered without the request's context (which may be
    what failed)."""
    template = loader.get_template(f"{status}.html")
    response = HttpResponse(template.render(), status=status)
    response.branded_error = True
    response["Cache-Control"] = "no-store"
    if request.path.startswith(PANEL_PREFIX):
        # A panel lives in a SuperOffice frame: its error page must show there too.
        panel_settings = getattr(request, "panel_settings", None)
        if panel_settings is not None:
            response.frame_ancestors = panel_settings.ancestors
            response.xframe_options_exempt = True
    return response


def _status_of(exception: Exception) -> int:
    if isinstance(exception, Http404):
        return 404
    if isinstance(exception, PermissionDenied):
        return 403
    if isinstance(exception, BadRequest | SuspiciousOperation):
        return 400
    return 500


class PublicErrorPageMiddleware:
    """Last in MIDDLEWARE, so it sees a view's exception first."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            request.path.startswith(API_PREFIX)
            and response.status_code in (404, 500)
            and response.get("Content-Type", "").startswith("text/html")
        ):
            return api_error(response.status_code)
        if (
            settings.DEBUG
            and response.status_code in (404, 500)
            and is_public_path(request.path)
            and not getattr(response, "branded_error", False)
            and response.get("Content-Type", "").startswith("text/html")
        ):
            # With DEBUG on, a URL that matched no pattern gets Django's technical 404 page.
            return error_page(request, response.status_code)
        return response

    def process_exception(self, request, exception):
        api = request.path.startswith(API_PREFIX)
        if not (api or is_public_path(request.path)):
            return None
        status = _status_of(exception)
        if status == 500:
            logger.error(
                "Internal Server Error: %s",
                request.path,
                exc_info=exception,
                extra={"status_code": 500, "request": request},
            )
        elif status == 400:
            logger.warning("Bad request: %s: %s", request.path, exception)
        return api_error(status) if api else error_page(request, status)
