"""Webhook agent: the hub's webhooks in SuperOffice (SaveWebhook, GetWebhook,
GetAllWebhooks, DeleteWebhook, GetLastError).

SuperOfficeDocs: docs/en/automation/webhook/dev/register.md (a save is preceded by a
test POST to the target, which must answer 200), docs/en/api/reference/soap/Services88/
Webhook/*.md (the operations and the carrier).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..types import Webhook
from .transport import elements

# WebhookState "Unknown" as a GetAllWebhooks filter means every state
# (docs/en/api/reference/restful/rest/Webhook/v1Webhook_GetAllWebhooks.md).
ANY_STATE = "Unknown"


def _later_element(carrier: Any, name: str) -> str | None:
    """The text of an element a newer NetServer added to the carrier (kept by zeep
    after the ones the hub's WSDL names), or None when the carrier has none."""
    for element in getattr(carrier, "_value_1", None) or []:
        tag = getattr(element, "tag", None)
        if isinstance(tag, str) and tag.rsplit("}", 1)[-1] == name:
            return element.text or ""
    return None


def webhook_from_carrier(carrier: Any) -> Webhook:
    errors = _later_element(carrier, "ConsecutiveErrors")
    updated_by = carrier.UpdatedAssociate
    return Webhook(
        id=carrier.WebhookId or 0,
        name=carrier.Name or "",
        events=tuple(e for e in elements(carrier.Events, "string") if e),
        target_url=carrier.TargetUrl or "",
        state=carrier.State or "Unknown",
        registered_at=carrier.Registered,
        updated_at=carrier.Updated,
        updated_by=(updated_by.FullName or updated_by.Name or "") if updated_by else "",
        consecutive_errors=int(errors) if errors and errors.strip().isdigit() else None,
        last_error=_later_element(carrier, "LastError") or "",
    )


class WebhookOperations:
    """The hub's webhooks in SuperOffice."""

    def _webhook_carrier(self, webhook_id: int) -> Any:
        return self._call("Webhook", "GetWebhook", WebhookId=webhook_id).Response

    def get_webhook(self, *, webhook_id: int) -> Webhook | None:
        """Webhook.GetWebhook; None when SuperOffice has no such webhook."""
        carrier = self._webhook_carrier(webhook_id)
        if carrier is None or not carrier.WebhookId:
            return None
        return webhook_from_carrier(carrier)

    def find_webhooks(self, *, name: str) -> list[Webhook]:
        """Webhook.GetAllWebhooks(NameFilter=name, EventFilter nil, StatusFilter Unknown =
        every state)."""
        found = self._call(
            "Webhook", "GetAllWebhooks", NameFilter=name, EventFilter=None, StatusFilter=ANY_STATE
        ).Response
        return [webhook_from_carrier(c) for c in elements(found, "Webhook") if c is not None]

    def save_webhook(
        self,
        *,
        name: str,
        events: Iterable[str],
        target_url: str,
        secret: str,
        webhook_id: int = 0,
    ) -> Webhook:
        """Webhook.SaveWebhook, active, of Type "webhook" (an HTTP POST per event).

        A new one (``webhook_id`` 0) is sent with only what the hub sets. An existing one is
        read first (GetWebhook) and sent back with those values changed, so elements a
        newer NetServer added to the carrier (ErrorsEmail, ...) keep their values. NetServer
        POSTs a test event to ``target_url`` before it saves, and refuses the save unless
        the target answers 200."""
        values = {
            "Name": name,
            "Events": {"string": list(events)},
            "TargetUrl": target_url,
            "Secret": secret,
            "State": "Active",
            "Type": "webhook",
        }
        carrier: Any = None
        if webhook_id:
            carrier = self._webhook_carrier(webhook_id)
        if carrier is not None and carrier.WebhookId:
            for key, value in values.items():
                setattr(carrier, key, value)
        else:
            carrier = {"WebhookId": 0, **values}
        saved = self._call("Webhook", "SaveWebhook", Webhook=carrier).Response
        return webhook_from_carrier(saved)

    def delete_webhook(self, *, webhook_id: int) -> None:
        """Webhook.DeleteWebhook."""
        self._call("Webhook", "DeleteWebhook", WebhookId=webhook_id)

    def webhook_last_error(self, *, webhook_id: int) -> str:
        """Webhook.GetLastError: the last delivery error SuperOffice recorded ("" if none)."""
        return self._call("Webhook", "GetLastError", WebhookId=webhook_id).Response or ""
