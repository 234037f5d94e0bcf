"""Content-Security-Policy frame-ancestors on every response.

Pages refuse to be framed (`frame-ancestors 'none'`), except views marked with
`allow_framing_by`, which the SuperOffice web panels use to name the account's
SuperOffice host. X-Frame-Options is kept for old browsers.
"""

from functools import wraps

from django.views.decorators.clickjacking import xframe_options_exempt


def allow_framing_by(get_ancestors):
    """Mark a view as frameable by the origins `get_ancestors(request)` returns."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            response = view(request, *args, **kwargs)
            ancestors = [a for a in get_ancestors(request) if a]
            response.frame_ancestors = ancestors
            return response

        return xframe_options_exempt(wrapper)

    return decorator


class FrameAncestorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        ancestors = getattr(response, "frame_ancestors", None)
        value = "frame-ancestors " + (" ".join(ancestors) if ancestors else "'none'")
        existing = response.headers.get("Content-Security-Policy")
        response.headers["Content-Security-Policy"] = f"{existing}; {value}" if existing else value
        return response
