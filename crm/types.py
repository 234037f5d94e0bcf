"""Plain data the CRM client returns. No zeep objects ever leave ``crm``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

# TicketEntity.OwnedBy: 0 = unassigned, 2147483647 = assign by the category's rules.
UNASSIGNED = 0
ASSIGN_BY_CATEGORY = 2147483647


@dataclass(frozen=True)
class ListItem:
    id: int
    name: str
    key: str = ""
    # Only for custom fields: the CustomFieldType ("ShortText", "Integer", "Date", ...).
    type: str = ""


@dataclass(frozen=True)
class Principal:
    """Who a ticket belongs to (the hub's own user, or a web-panel user)."""

    associate_id: int
    name: str
    full_name: str
    email: str = ""
    group_id: int = 0
    secondary_group_ids: tuple[int, ...] = ()
    context_identifier: str = ""

    @property
    def group_ids(self) -> tuple[int, ...]:
        return (
            (self.group_id, *self.secondary_group_ids)
            if self.group_id
            else (self.secondary_group_ids)
        )


@dataclass(frozen=True)
class Interest:
    id: int
    name: str
    selected: bool


@dataclass(frozen=True)
class Person:
    id: int
    first_name: str
    last_name: str
    title: str = ""
    email: str = ""
    emails: tuple[str, ...] = ()
    phone: str = ""
    mobile: str = ""
    company_id: int | None = None
    company_name: str = ""
    company_owner_id: int | None = None
    country_id: int | None = None
    no_mailing: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    interests: tuple[Interest, ...] = ()
    custom_fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PersonBrief:
    """A person as the light Person carrier tells it (Person.GetPersonList): names, first
    e-mail and company, not the company's owner, which only the PersonEntity carries."""

    id: int
    first_name: str
    last_name: str
    email: str
    company_id: int | None
    company_name: str


@dataclass(frozen=True)
class PersonMatch:
    """A person found by email (Archive row)."""

    id: int
    first_name: str
    last_name: str
    email: str
    company_id: int | None
    registered_at: datetime | None


@dataclass(frozen=True)
class NewCompany:
    name: str
    country_id: int | None = None
    category_id: int | None = None
    business_id: int | None = None
    owner_id: int | None = None


@dataclass(frozen=True)
class Company:
    """A SuperOffice company (a Contact), as the company picker offers it."""

    id: int
    name: str
    department: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} ({self.department})" if self.department else self.name


@dataclass(frozen=True)
class Consent:
    purpose_key: str
    purpose_name: str
    legal_base_key: str
    legal_base_name: str
    source_key: str
    comment: str
    registered_at: datetime | None
    updated_at: datetime | None

    @property
    def is_withdrawn(self) -> bool:
        return self.legal_base_key == "WITHDRAWN"


@dataclass(frozen=True)
class ConsentChangeRow:
    """A consent as the ConsentPurpose archive lists it: whose, of which purpose, its legal
    base as the archive shows it (the list's text), and the day it last changed."""

    person_id: int
    purpose_key: str
    legal_base: str
    updated_on: date | None


@dataclass(frozen=True)
class Member:
    """A person in a selection or project. ``member_id`` is the project member row id."""

    person_id: int
    company_id: int | None
    email: str
    first_name: str
    last_name: str
    member_id: int | None = None
    title: str = ""
    phone: str = ""
    mobile: str = ""
    company_name: str = ""
    registered_at: datetime | None = None
    # The "No Mailings" checkbox (archive column personNoMail): direct mail only.
    no_mailing: bool = False
    # An EMARKETING consent whose legal base is not WITHDRAWN (hasEmarketingConsent).
    has_emarketing_consent: bool = False

    @property
    def emarketing_switch_on(self) -> bool:
        """SuperOffice's e-marketing switch: the EMARKETING consent (hasEmarketingConsent).
        NoMailing is the direct-mail flag ("Do not send DM's"), not e-marketing."""
        return self.has_emarketing_consent


@dataclass(frozen=True)
class MemberPage:
    members: tuple[Member, ...]
    page: int
    page_size: int

    @property
    def has_more(self) -> bool:
        return len(self.members) == self.page_size


@dataclass(frozen=True)
class CreatedTicket:
    id: int
    owner_id: int


@dataclass(frozen=True)
class Webhook:
    """A webhook as NetServer's Webhook agent keeps it (the secret is never read back)."""

    id: int
    name: str
    events: tuple[str, ...]
    target_url: str
    # SuperOffice's WebhookState: Unknown, Active, Stopped or TooManyErrors.
    state: str
    registered_at: datetime | None = None
    updated_at: datetime | None = None
    # Who changed it last (an admin who stopped it in SuperOffice, say).
    updated_by: str = ""
    # Only a NetServer of 12.0.342 or later reports these on the carrier; None before.
    consecutive_errors: int | None = None
    last_error: str = ""

    @property
    def is_active(self) -> bool:
        return self.state == "Active"
