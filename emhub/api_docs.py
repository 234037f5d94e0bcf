"""The error answers of the API, as the schema documents them (drf-spectacular)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse

_DESCRIPTIONS = {
    400: 'Invalid input; nothing was changed. Messages per field (`{"field": ["..."]}`), '
    'or `{"detail": "..."}` for a body that is no JSON.',
    401: "No API key, or an unknown or revoked one.",
    403: "The credentials do not allow this: no account, or not an account admin.",
    404: "Not found in this account.",
    415: "The body is not JSON (send `Content-Type: application/json`).",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    return {
        status: OpenApiResponse(OpenApiTypes.OBJECT, description=_DESCRIPTIONS[status])
        for status in statuses
    }
