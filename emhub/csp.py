"""django-csp's middleware with the policy of a response without a nonce built once.

The stock middleware builds both policies (enforced and report-only) from the settings on
every response, a tenth of a tracked-link click's CPU. A response that used no nonce and
changed no directive (no csp_update/csp_replace/csp_exempt decorator) gets the policy of
the settings alone, the same text every time: it is built once and kept until a setting
changes. Everything else goes through django-csp unchanged.
"""

from __future__ import annotations

import http.client

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as StockCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

# Any of these on a response means a decorator changed its policy.
_RESPONSE_OVERRIDES = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_exempt",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
    "_csp_exempt_ro",
)
_DEBUG_EXEMPT = (http.client.INTERNAL_SERVER_ERROR, http.client.NOT_FOUND)

# (enforced header, its excluded prefixes, report-only header, its excluded prefixes) of
# the settings alone; None until a response needs it.
_plain: tuple | None = None


@receiver(setting_changed)
def _forget_plain_policy(*, setting, **kwargs):
    global _plain
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _plain = None


def _plain_policy() -> tuple:
    global _plain
    if _plain is None:
        enforced = getattr(settings, "CONTENT_SECURITY_POLICY", None) or {}
        report_only = getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None) or {}
        _plain = (
            build_policy(),
            tuple(enforced.get("EXCLUDE_URL_PREFIXES", None) or ()),
            build_policy(report_only=True),
            tuple(report_only.get("EXCLUDE_URL_PREFIXES", None) or ()),
        )
    return _plain


class CSPMiddleware(StockCSPMiddleware):
    def process_response(self, request, response):
        if getattr(request, "_csp_nonce", None) is not None or any(
            hasattr(response, name) for name in _RESPONSE_OVERRIDES
        ):
            return super().process_response(request, response)
        if response.status_code in _DEBUG_EXEMPT and settings.DEBUG:
            return response
        csp, excluded, csp_ro, excluded_ro = _plain_policy()
        path = request.path_info
        if csp and HEADER not in response and not path.startswith(excluded):
            response[HEADER] = csp
        if csp_ro and HEADER_REPORT_ONLY not in response and not path.startswith(excluded_ro):
            response[HEADER_REPORT_ONLY] = csp_ro
        # As django-csp: a nonce asked for after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
