"""Consents (Person agent's GDPR operations) and the archive of changed consents."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from ..types import Consent, ConsentChangeRow
from . import queries
from .transport import elements


class ConsentOperations:
    """Person.GetConsentInfos / SetConsent / RemoveConsent and changes since a time."""

    def consents(self, *, person_id: int) -> list[Consent]:
        """Person.GetConsentInfos (may include withdrawn consents)."""
        infos = self._call("Person", "GetConsentInfos", PersonId=person_id).Response
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
            for i in elements(infos, "ConsentInfo")
        ]

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
        self._call(
            "Person",
            "SetConsent",
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
