"""Consents (Person agent's GDPR operations) and the archive of changed consents."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from ..types import Consent, ConsentChangeRow
from . import direct, queries
from .transport import elements


def _consents_of_infos(infos: Any) -> list[Consent]:
    """The consents in zeep's body of a GetConsentInfos reply."""
    return [
        Consent(
            purpose_key=i.ConsentPurposeKey or "",
            purpose_name=i.ConsentPurposeName or "",
            legal_base_key=i.LegalBaseKey or "",
            legal_base_name=i.LegalBaseName or "",
            source_key=i.ConsentSourceKey or "",
            comment=i.Comment or "",
            registered_at=i.Registered,
            updated_at=i.Updated,
        )
        for i in elements(infos.Response, "ConsentInfo")
    ]


def _consents_read(element: Any) -> list[Consent]:
    """The consents of a GetConsentInfos reply, read as ``_consents_of_infos`` reads zeep's
    body of it."""
    reply = direct.response_fields(element, "GetConsentInfos", whole=True)
    value = direct.value
    text, when = direct.STRING, direct.DATETIME
    return [
        Consent(
            purpose_key=value(i, "ConsentPurposeKey", text) or "",
            purpose_name=value(i, "ConsentPurposeName", text) or "",
            legal_base_key=value(i, "LegalBaseKey", text) or "",
            legal_base_name=value(i, "LegalBaseName", text) or "",
            source_key=value(i, "ConsentSourceKey", text) or "",
            comment=value(i, "Comment", text) or "",
            registered_at=value(i, "Registered", when),
            updated_at=value(i, "Updated", when),
        )
        for i in direct.items(reply, "Response", "ConsentInfo")
    ]


def _nothing_read(operation: str) -> Any:
    """A reader of a reply the hub does not read (only that it came, and succeeded)."""

    def read(element: Any) -> None:
        direct.response_fields(element, operation, whole=True)

    return read


_SET_CONSENT_READ = _nothing_read("SetConsent")


class ConsentOperations:
    """Person.GetConsentInfos / SetConsent / RemoveConsent and changes since a time."""

    def consents(self, *, person_id: int) -> list[Consent]:
        """Person.GetConsentInfos (may include withdrawn consents)."""
        return self._call_read(
            "Person",
            "GetConsentInfos",
            directly=_consents_read,
            through_zeep=_consents_of_infos,
            PersonId=person_id,
        )

    def set_consent(
        self,
        *,
        person_id: int,
        purpose_key: str,
        legal_base_key: str,
        source_key: str = "API",
        comment: str = "",
    ) -> None:
        """Person.SetConsent (keys: purpose "STORE"/"EMARKETING", legal base "61A"...)."""
        self._call_read(
            "Person",
            "SetConsent",
            directly=_SET_CONSENT_READ,
            through_zeep=lambda body: None,
            PersonId=person_id,
            Purpose=purpose_key,
            Source=source_key,
            LegalBase=legal_base_key,
            Comment=comment,
        )

    def withdraw_consent(self, *, person_id: int, purpose_key: str) -> None:
        """Person.RemoveConsent (the consent reads back with legal base WITHDRAWN)."""
        self._call("Person", "RemoveConsent", PersonId=person_id, Purpose=purpose_key)

    def consent_changes_since(self, *, since: datetime) -> list[ConsentChangeRow]:
        """Consents changed since about ``since``: Archive GetArchiveListByColumns, provider
        ConsentPurpose, restriction ``consentPerson/updatedDate after [D:...]``, every page.

        ``consentPerson/updatedDate`` is a date (consentpurpose.md), so a change is known
        only to its day, and a tenant may count its days in its own time zone: the rows
        are those changed on or after the day before ``since``'s day in UTC. That is a
        superset of the changes since ``since``; the caller skips what it already knows."""
        first_day = since.astimezone(UTC).date() - timedelta(days=1)
        rows = self._query_all(
            queries.CONSENT_CHANGES,
            # "after" a day is taken as strictly after it; a tenant reading it as "on or
            # after" answers one day more, which is dropped below.
            {"consentPerson/updatedDate": first_day - timedelta(days=1)},
        )
        changes = []
        for _, row in rows:
            updated = row["consentPerson/updatedDate"]
            day = updated.date() if isinstance(updated, datetime) else updated
            if isinstance(day, date) and day < first_day:
                continue
            changes.append(
                ConsentChangeRow(
                    person_id=row["consentPerson/personId"] or 0,
                    purpose_key=row["key"] or "",
                    legal_base=str(row["consentPerson/legalBase"] or ""),
                    updated_on=day if isinstance(day, date) else None,
                )
            )
        return [c for c in changes if c.person_id]

    def consents_changed_since(self, *, since: datetime) -> list[int]:
        """Ids of the persons in ``consent_changes_since``, ascending."""
        return sorted({change.person_id for change in self.consent_changes_since(since=since)})
