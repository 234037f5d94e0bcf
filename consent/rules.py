"""The decision rule of the legal-basis sync, as pure functions (no database, no CRM).

For one contact and one purpose the hub holds its latest change and SuperOffice
holds the latest change of the person that counts. The newer change wins and the
other side is updated. Equal times change nothing, except that a withdrawal tying
with a grant wins (the GDPR-conservative choice). When the two sides already hold
the same legal basis nothing is written, whatever their times: writing a value
moves SuperOffice's `Updated`, and comparing times alone would then bounce the
same value back and forth.

When several SuperOffice persons share the contact's email, the oldest person
(earliest registered, then lowest id) is the one that counts and is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from crm.plain_words import legal_basis_in_words

WITHDRAWN = "WITHDRAWN"


@dataclass(frozen=True)
class ConsentState:
    """A side's latest change: its legal-base key (or WITHDRAWN) and when it changed."""

    legal_basis: str
    changed_at: datetime
    source: str = ""

    @property
    def is_withdrawn(self) -> bool:
        return self.legal_basis == WITHDRAWN

    @property
    def in_words(self) -> str:
        # Reasons are read by marketers: "legitimate interest", not the key 61F.
        return "withdrawn" if self.is_withdrawn else legal_basis_in_words(self.legal_basis)

    def describe(self) -> str:
        return f"{self.in_words} at {self.changed_at:%Y-%m-%d %H:%M:%S}"


@dataclass(frozen=True)
class PersonConsent:
    """One SuperOffice person sharing the contact's email, with its consent for the purpose."""

    person_id: int
    registered_at: datetime | None
    state: ConsentState | None


class Action(StrEnum):
    NONE = "none"
    WRITE_SUPEROFFICE = "write_superoffice"
    WRITE_HUB = "write_hub"


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    # The value both sides hold afterwards (None when neither side has one).
    result: ConsentState | None
    # The SuperOffice person that counted, and is written when action is WRITE_SUPEROFFICE.
    person_id: int | None = None
    # Several persons share the email and disagree.
    conflict: bool = False


def decide(*, hub: ConsentState | None, superoffice: ConsentState | None) -> Decision:
    """Which side wins for one contact and purpose, and why."""
    if hub is None and superoffice is None:
        return Decision(Action.NONE, "Neither side has a legal basis: nothing to do.", None)
    if superoffice is None:
        return Decision(
            Action.WRITE_SUPEROFFICE,
            f"Only the hub has a legal basis ({hub.describe()}): written to SuperOffice.",
            hub,
        )
    if hub is None:
        return Decision(
            Action.WRITE_HUB,
            f"Only SuperOffice has a legal basis ({superoffice.describe()}): written to the hub.",
            superoffice,
        )
    if hub.legal_basis == superoffice.legal_basis:
        return Decision(
            Action.NONE,
            f"Both sides agree ({hub.in_words}): nothing to write.",
            hub if hub.changed_at >= superoffice.changed_at else superoffice,
        )
    if hub.changed_at > superoffice.changed_at:
        return Decision(
            Action.WRITE_SUPEROFFICE,
            f"The hub's change ({hub.describe()}) is newer than SuperOffice's "
            f"({superoffice.describe()}): written to SuperOffice.",
            hub,
        )
    if superoffice.changed_at > hub.changed_at:
        return Decision(
            Action.WRITE_HUB,
            f"SuperOffice's change ({superoffice.describe()}) is newer than the hub's "
            f"({hub.describe()}): written to the hub.",
            superoffice,
        )
    # Equal times from here on.
    if hub.is_withdrawn and not superoffice.is_withdrawn:
        return Decision(
            Action.WRITE_SUPEROFFICE,
            f"Equal times ({hub.changed_at:%Y-%m-%d %H:%M:%S}); the hub's withdrawal wins over "
            f"SuperOffice's {superoffice.in_words}: written to SuperOffice.",
            hub,
        )
    if superoffice.is_withdrawn and not hub.is_withdrawn:
        return Decision(
            Action.WRITE_HUB,
            f"Equal times ({hub.changed_at:%Y-%m-%d %H:%M:%S}); SuperOffice's withdrawal wins over "
            f"the hub's {hub.in_words}: written to the hub.",
            superoffice,
        )
    return Decision(
        Action.NONE,
        f"Equal times ({hub.changed_at:%Y-%m-%d %H:%M:%S}) with different legal bases "
        f"(hub {hub.in_words}, SuperOffice {superoffice.in_words}): nothing changed.",
        None,
    )


def _age_key(person: PersonConsent) -> tuple:
    # Persons with no registration date sort after dated ones, then by id.
    registered = person.registered_at
    return (registered is None, registered or datetime.min, person.person_id)


def counting_person(persons: list[PersonConsent]) -> PersonConsent | None:
    """The person that counts among those sharing an email: the oldest (earliest
    registered, then lowest id)."""
    if not persons:
        return None
    return min(persons, key=_age_key)


def decide_for_contact(*, hub: ConsentState | None, persons: list[PersonConsent]) -> Decision:
    """The decision for a contact whose email one or more SuperOffice persons share."""
    person = counting_person(persons)
    if person is None:
        return Decision(Action.NONE, "No SuperOffice person for this contact.", None)
    decision = decide(hub=hub, superoffice=person.state)
    bases = {p.state.legal_basis if p.state else None for p in persons}
    conflict = len(persons) > 1 and len(bases) > 1
    reason = decision.reason
    if len(persons) > 1:
        others = ", ".join(
            str(p.person_id) for p in sorted(persons, key=_age_key) if p is not person
        )
        reason = (
            f"{len(persons)} SuperOffice persons share the email"
            f"{' and disagree' if conflict else ''}; the oldest, person {person.person_id}, "
            f"counts (others: {others}). {reason}"
        )
    return Decision(decision.action, reason, decision.result, person.person_id, conflict)
