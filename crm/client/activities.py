"""Sale and Appointment agents: sales and follow-ups, and finding them by marker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from . import direct, queries
from .transport import elements


def _saved_id(operation: str, name: str) -> Any:
    """A reader of the id ``name`` of the entity a Save<X>Entity reply returns (the hub
    reads only that): an int, or left to zeep (no entity, no id, anything else)."""

    def read(element: Any) -> int:
        reply = direct.response_fields(element, operation, whole=True)
        saved = direct.value(direct.fields_of(reply, "Response"), name, direct.INT)
        if saved is None:
            raise direct.LeftToZeep
        return saved

    return read


_SALE_ID = _saved_id("SaveSaleEntity", "SaleId")
_APPOINTMENT_ID = _saved_id("SaveAppointmentEntity", "AppointmentId")


class ActivityOperations:
    """Sale.* and Appointment.* operations."""

    def create_sale(
        self,
        *,
        heading: str,
        text: str,
        person_id: int,
        owner_id: int,
        company_id: int | None = None,
        source_id: int | None = None,
        rating_id: int | None = None,
        sale_date: datetime | None = None,
    ) -> int:
        """Sale.SaveSaleEntity with SaleId 0. Put the caller's marker in ``text``."""
        entity: dict[str, Any] = {
            "Associate": {"AssociateId": owner_id},
            "Contact": {"ContactId": company_id} if company_id else None,
            "SaleText": text,
            "Person": {"PersonId": person_id},
            "Rating": {"Id": rating_id} if rating_id else None,
            "Source": {"Id": source_id} if source_id else None,
            "Status": "Open",
            "Saledate": sale_date or datetime.now(UTC),
            "SaleId": 0,
            "Heading": heading,
        }
        return self._call_read(
            "Sale",
            "SaveSaleEntity",
            directly=_SALE_ID,
            through_zeep=lambda body: body.Response.SaleId,
            SaleEntity=entity,
        )

    def find_sale_by_marker(self, *, person_id: int, marker: str) -> int | None:
        """Sale.GetSalesFromPerson (open and closed); the lowest id whose text or
        heading contains ``marker``."""
        sales = self._call(
            "Sale", "GetSalesFromPerson", PersonId=person_id, OnlyOpenSales=False
        ).Response
        found = [
            s.SaleId
            for s in elements(sales, "Sale")
            if marker in (s.Description or "") or marker in (s.Title or "")
        ]
        return min(found) if found else None

    def create_appointment(
        self,
        *,
        person_id: int,
        owner_id: int,
        task_id: int,
        description: str,
        start: datetime,
        end: datetime,
        completed: bool = False,
        company_id: int | None = None,
        project_id: int | None = None,
        appointment_type: str = "inDiary",
    ) -> int:
        """Appointment.SaveAppointmentEntity with AppointmentId 0 (Completed = Completed
        or NotStarted; ``appointment_type`` "inDiary" for a meeting, "inChecklist" for a
        task). Put the caller's marker in ``description``."""
        entity: dict[str, Any] = {
            "Associate": {"AssociateId": owner_id},
            "Contact": {"ContactId": company_id} if company_id else None,
            "AppointmentId": 0,
            "Description": description,
            "StartDate": start,
            "EndDate": end,
            "Person": {"PersonId": person_id},
            "Project": {"ProjectId": project_id} if project_id else None,
            "Type": appointment_type,
            "Completed": "Completed" if completed else "NotStarted",
            "Task": {"TaskListItemId": task_id},
        }
        return self._call_read(
            "Appointment",
            "SaveAppointmentEntity",
            directly=_APPOINTMENT_ID,
            through_zeep=lambda body: body.Response.AppointmentId,
            AppointmentEntity=entity,
        )

    def find_appointment_by_marker(self, *, person_id: int, marker: str) -> int | None:
        """Archive.GetArchiveListByColumns on provider ``Appointment``, restriction
        ``personId oneOf <person>``, every page: the lowest id of a follow-up whose text
        holds ``marker``. (Appointment.GetPersonAppointments serves a SuperOffice user's
        own diary and refuses a contact person.)"""
        found = [
            row["appointmentId"] or key
            for key, row in self._query_all(
                queries.APPOINTMENTS_OF_PERSON, {"personId": [person_id]}
            )
            if marker in (row["text"] or "")
        ]
        return min(found) if found else None
