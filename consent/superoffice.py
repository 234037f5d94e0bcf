"""What the sync engine needs from SuperOffice, expressed through the crm client.

Keeps the engine's few CRM questions in one place (and counts the calls they
make, for the cycle's figures). Every call goes through `crm`'s client, which
raises only the hub's CRM error classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from crm.types import ConsentChangeRow

from .models import Origin
from .rules import ConsentState

# The consent-source keys SuperOffice documents ("e.g. 'USER', 'WEBFORM' or 'API'",
# SuperOfficeDocs Services88/Person/SetConsent.md). A hub source that is one of these is
# passed on; any other is mapped from where it came from. The "Import" source's key is
# not documented, so an import's consent goes as API ("Other integration"); so does an
# unsubscribe, whose "E-mail" source has no documented key either.
KNOWN_SOURCES = {"USER", "WEBFORM", "API"}
SOURCE_BY_ORIGIN = {
    Origin.HUB: "USER",
    Origin.API: "API",
    Origin.FORM: "WEBFORM",
    Origin.IMPORT: "API",
    Origin.UNSUBSCRIBE: "API",
    Origin.SUPEROFFICE: "USER",
}


@dataclass(frozen=True)
class SuperOfficePerson:
    person_id: int
    registered_at: datetime | None
    consents: dict[str, ConsentState] = field(default_factory=dict)


class ConsentPort:
    """The engine's view of one account's SuperOffice, over the real client."""

    def __init__(self, client) -> None:
        self.client = client
        self.calls = 0
        self._legal_bases: dict[str, str] | None = None

    def _call(self, name: str, *args, **kwargs):
        self.calls += 1
        return getattr(self.client, name)(*args, **kwargs)

    @property
    def can_list_changes(self) -> bool:
        return hasattr(self.client, "consent_changes_since")

    def consent_changes_since(self, *, since: datetime) -> list[ConsentChangeRow] | None:
        """The consents SuperOffice lists as changed since about `since` (to the day, see
        the client), or None when the client offers no such query."""
        if not self.can_list_changes:
            return None
        return list(self._call("consent_changes_since", since=since))

    def legal_base_key(self, shown: str) -> str:
        """The key of a legal base as an archive row shows it (its name, key or id). The
        list is read once per cycle, and only when a row needs it."""
        if self._legal_bases is None:
            self._legal_bases = {}
            for item in self._call("list_items", list_name="legal_bases"):
                for label in (item.name, item.key, str(item.id)):
                    if label:
                        self._legal_bases.setdefault(label.strip().casefold(), item.key)
        return self._legal_bases.get((shown or "").strip().casefold(), "")

    def consents_of(self, person_id: int) -> dict[str, ConsentState]:
        states: dict[str, ConsentState] = {}
        for consent in self._call("consents", person_id=person_id):
            when = consent.updated_at or consent.registered_at
            if when is None:
                continue
            states[consent.purpose_key] = ConsentState(
                consent.legal_base_key, when, consent.source_key or ""
            )
        return states

    def persons_for_contact(self, *, contact) -> list[SuperOfficePerson]:
        """The contact's person and every other person sharing its email, with consents."""
        matches = {
            m.id: m.registered_at for m in self._call("find_persons_by_email", email=contact.email)
        }
        if contact.superoffice_person_id and contact.superoffice_person_id not in matches:
            # Linked by hand to a person whose primary email differs: still the contact's.
            matches[contact.superoffice_person_id] = None
        return [
            SuperOfficePerson(pid, registered, self.consents_of(pid))
            for pid, registered in sorted(matches.items())
        ]

    def consent_write(
        self,
        *,
        person_id: int,
        purpose: str,
        legal_basis: str,
        source: str,
        origin: str,
        comment: str,
    ) -> None:
        # A withdrawal is written as the WITHDRAWN legal base (SetConsent), not
        # RemoveConsent: the row keeps its Updated time, which the next cycle compares.
        source = source.upper() if source and source.upper() in KNOWN_SOURCES else ""
        self._call(
            "set_consent",
            person_id=person_id,
            purpose_key=purpose,
            legal_base_key=legal_basis,
            source_key=source or SOURCE_BY_ORIGIN.get(origin, "USER"),
            comment=comment,
        )
