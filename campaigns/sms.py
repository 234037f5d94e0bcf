"""SMS delivery behind a pluggable backend, the way Django's mail backends work.

`SMS_BACKEND` names the class (dotted path). A backend has `send(*, account_id, to,
body) -> str` returning the provider's message id, and raises `SmsDeliveryError` when
the message did not go out. The development backend stores messages in a table.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

DEFAULT_SMS_BACKEND = "campaigns.sms.StoredSmsBackend"


class SmsDeliveryError(Exception):
    """The message did not go out; the sendout records the error and tries again."""


class StoredSmsBackend:
    """Development backend: the message is stored (campaigns.StoredSms), not sent."""

    def send(self, *, account_id: int, to: str, body: str) -> str:
        from .models import StoredSms

        return str(StoredSms.objects.create(account_id=account_id, to=to, body=body).pk)


def sms_backend():
    return import_string(getattr(settings, "SMS_BACKEND", DEFAULT_SMS_BACKEND))()
