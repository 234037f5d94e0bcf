"""Consents (Person agent's GDPR operations) and the archive of changed consents."""

from __future__ import annotations

from datetime import UTC, datetime

from ..types import Consent
from .archive import restriction
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

    def consents_changed_since(self, *, since: datetime) -> list[int]:
        """Ids of persons whose consents changed at or after ``since``: Archive
        GetArchiveListByColumns, provider Person, restriction ``consentPerson/updatedDate
        afterTime [DT:...]``, every page (ordered by personId)."""
        stamp = f"[DT:{since.astimezone(UTC).strftime('%m/%d/%Y %H:%M:%S.00000')}]"
        person_ids: list[int] = []
        page, page_size = 0, 500
        while True:
            rows = self._archive(
                provider="Person",
                columns=["personId"],
                restrictions=[restriction("consentPerson/updatedDate", stamp, "afterTime")],
                order_by="personId",
                page=page,
                page_size=page_size,
            )
            person_ids += [row["personId"] or key for key, row in rows]
            if len(rows) < page_size:
                return person_ids
            page += 1
