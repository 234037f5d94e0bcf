"""What a webhook delivery from SuperOffice is to a receiver: its signature and payload.

SuperOfficeDocs (docs/en/automation/webhook/):
- ``dev/security.md``: ``X-SuperOffice-Signature`` holds the base64 (standard, padded)
  HMAC-SHA256 of the raw request body, keyed with the webhook's Secret. The body is
  hashed exactly as received; the comparison must take constant time. Nothing else is
  signed (no timestamp), so a replay is caught by the EventId, not the signature.
- ``dev/notification.md``: the payload (EventId, Timestamp, Changes, Event, PrimaryKey,
  Entity, ContextIdentifier, ChangedByAssociateId, WebhookName, FieldValues) and the
  X-SuperOffice-Event / -EventId / -Retry headers, whose case varies in SuperOffice's
  own samples (a receiver reads them case-insensitively).
- ``reference/test-event.md``: the test POST before a save has Event ``test`` and the
  header ``X-Hook-Test: true``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime

SIGNATURE_HEADER = "X-SuperOffice-Signature"
TEST_HEADER = "X-Hook-Test"


def webhook_signature(*, secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def webhook_signature_valid(*, secret: str, body: bytes, signature: str | None) -> bool:
    """Whether ``signature`` is the delivery's, compared in constant time."""
    if not secret or not signature:
        return False
    expected = webhook_signature(secret=secret, body=body)
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


@dataclass(frozen=True)
class WebhookDelivery:
    event_id: str
    event: str
    entity: str
    primary_key: int
    occurred_at: datetime | None
    context_identifier: str
    payload: dict

    @property
    def is_test(self) -> bool:
        return self.event == "test"


class BadDelivery(ValueError):
    """Not a webhook payload SuperOffice documents."""


def _timestamp(value) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # NetServer writes seven fraction digits; Python reads up to six.
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def webhook_delivery_parse(body: bytes) -> WebhookDelivery:
    """The delivery in a verified body. Raises BadDelivery when it is not one."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadDelivery("The body is not JSON.") from exc
    if not isinstance(payload, dict):
        raise BadDelivery("The body is not a JSON object.")
    event_id, event = payload.get("EventId"), payload.get("Event")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 64:
        raise BadDelivery("EventId is missing.")
    if not isinstance(event, str) or not event or len(event) > 100:
        raise BadDelivery("Event is missing.")
    key = payload.get("PrimaryKey")
    if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key < 2**63:
        raise BadDelivery("PrimaryKey is not an id.")
    return WebhookDelivery(
        event_id=event_id.strip(),
        event=event,
        entity=str(payload.get("Entity") or ""),
        primary_key=key,
        occurred_at=_timestamp(payload.get("Timestamp")),
        context_identifier=str(payload.get("ContextIdentifier") or ""),
        payload=payload,
    )
