"""The only exceptions the CRM client raises. Classified once, here, for every caller.

- ``TransientCrmError``: try again later (timeout, connection refused, HTTP 5xx,
  throttling). ``retry_after`` carries the server's hint in seconds, if it gave one.
- ``PermanentCrmError``: SuperOffice refused this request (bad data); retrying the
  same request cannot help. ``NotFoundCrmError`` narrows it to a missing object.
- ``ConfigurationCrmError``: the account's connection is wrong (bad credentials,
  wrong address, ticket refused even after a renewal): stop the account's CRM work
  and tell the admin.
"""

from __future__ import annotations


class CrmError(Exception):
    """Base of all CRM client errors."""

    def __init__(self, message: str, *, exception_type: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.exception_type = exception_type


class TransientCrmError(CrmError):
    def __init__(
        self, message: str, *, retry_after: float | None = None, exception_type: str = ""
    ) -> None:
        super().__init__(message, exception_type=exception_type)
        self.retry_after = retry_after


class PermanentCrmError(CrmError):
    pass


class NotFoundCrmError(PermanentCrmError):
    pass


class ConfigurationCrmError(CrmError):
    pass
