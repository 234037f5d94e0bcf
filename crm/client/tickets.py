"""Ticket and CRMScript agents: requests (tickets) and scripts."""

from __future__ import annotations

from typing import Any

from ..types import UNASSIGNED, CreatedTicket
from . import queries


class TicketOperations:
    """Ticket.* and CRMScript.* operations, and finding a request by marker."""

    def create_ticket(
        self,
        *,
        title: str,
        person_id: int | None = None,
        priority_id: int | None = None,
        category_id: int | None = None,
        owner_id: int = UNASSIGNED,
    ) -> CreatedTicket:
        """Ticket.SaveTicketEntity with TicketId 0. ``owner_id``: an associate,
        ``types.UNASSIGNED`` (0) or ``types.ASSIGN_BY_CATEGORY``."""
        entity: dict[str, Any] = {
            "TicketId": 0,
            "Title": title,
            "OwnedBy": {"AssociateId": owner_id},
            "Category": {"TicketCategoryId": category_id} if category_id else None,
            "Priority": {"TicketPriorityId": priority_id} if priority_id else None,
            "Person": {"PersonId": person_id} if person_id else None,
        }
        saved = self._call("Ticket", "SaveTicketEntity", TicketEntity=entity).Response
        owner = saved.OwnedBy.AssociateId if saved.OwnedBy is not None else 0
        return CreatedTicket(id=saved.TicketId, owner_id=owner or 0)

    def find_ticket_by_marker(self, *, person_id: int, marker: str) -> int | None:
        """Archive.GetArchiveListByColumns on provider ``Ticket``, ``title contains
        <marker>`` and the person: the lowest id of a request a run already created."""
        rows = self._query(
            queries.TICKETS_BY_MARKER,
            {"title": marker, "personId": person_id},
            page=0,
            page_size=50,
        )
        found = [row["ticketId"] or key for key, row in rows if marker in (row["title"] or "")]
        return min(found) if found else None

    def execute_script(self, *, script_id: int, parameters: dict[str, str]) -> str:
        """CRMScript.ExecuteScript: the script's printed output."""
        pairs = [{"Key": k, "Value": str(v)} for k, v in parameters.items()]
        body = self._call(
            "CRMScript",
            "ExecuteScript",
            CRMScriptId=script_id,
            Parameters={"StringKeyValuePair": pairs},
        )
        return body.Response or ""
