"""Every archive query the client makes, declared once.

Archive providers, columns and operators are plain strings that no WSDL checks, so
they are written down here and nowhere else: the operations build their requests
from these declarations, ``manage.py superoffice_catalogue`` copies the documented
facts about exactly these names into the hub's catalogue, and the simulator refuses
any name the catalogue does not document, as NetServer does.

Names are as SuperOffice documents them for each provider (SuperOfficeDocs:
docs/en/api/archive-providers/reference/<provider>.md); operators per restriction
type as docs/en/api/archive-providers/restriction-types.md lists them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ArchiveQuery:
    name: str
    provider: str
    columns: tuple[str, ...]
    # (column, operator) of each restriction, in the order they are sent.
    restrictions: tuple[tuple[str, str], ...]
    order_by: str
    # Entities asked for; empty means the provider's default entities.
    entities: tuple[str, ...] = ()
    # What a Member field is read from (member queries only).
    member_fields: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> set[str]:
        """Every column this query names (selected, restricted or sorted)."""
        return {*self.columns, *(c for c, _ in self.restrictions), self.order_by}


_PERSON_MATCH_COLUMNS = (
    "personId",
    "firstName",
    "lastName",
    "contactId",
    "email/emailAddress",
    # person.md: "registered" is not a Person column; the registration date is this one.
    "personRegisteredDate",
)


def _person_search(name: str, column: str, operator: str) -> ArchiveQuery:
    return ArchiveQuery(
        name=name,
        provider="Person",
        columns=_PERSON_MATCH_COLUMNS,
        restrictions=((column, operator),),
        order_by="personId",
    )


# Provider Person, entity person: the person's own e-mail (person.md).
PERSONS_BY_EMAIL = _person_search("persons_by_email", "email/emailAddress", "is")
# fullName and personContact/name are "stringorPK" columns, a restriction type with no
# operator table on restriction-types.md; SuperOffice's own sample restricts such a
# column with a string operator ("begins" on name, docs/en/api/search/find-selection/
# index.md), so the string operators are taken to apply.
PERSONS_BY_NAME = _person_search("persons_by_name", "fullName", "contains")
# The company's name on the Person provider is personContact/name ("name" is not one).
PERSONS_BY_COMPANY = _person_search("persons_by_company", "personContact/name", "contains")
PERSONS_BY_EMAIL_PART = _person_search("persons_by_email_part", "email/emailAddress", "contains")

# Provider Contact, entity contact: companies (contact.md). name is a "stringorPK" column,
# restricted with a string operator as fullName is above; contactId is an int column.
_COMPANY_COLUMNS = ("contactId", "name", "department")
COMPANIES_BY_NAME = ArchiveQuery(
    name="companies_by_name",
    provider="Contact",
    columns=_COMPANY_COLUMNS,
    restrictions=(("name", "contains"),),
    order_by="name",
)
COMPANY_BY_ID = ArchiveQuery(
    name="company_by_id",
    provider="Contact",
    columns=_COMPANY_COLUMNS,
    restrictions=(("contactId", "equals"),),
    order_by="contactId",
)

# ContactPersonStaticSelectionV2 holds companies (entity staticContact) and persons
# (staticPerson); on it email/emailAddress is the company's e-mail and the person's is
# personEmail/emailAddress (contactpersonstaticselectionv2.md).
_SELECTION_MEMBER_FIELDS = {
    "person_id": "personId",
    "company_id": "contactId",
    "email": "personEmail/emailAddress",
    "first_name": "firstName",
    "last_name": "lastName",
    "title": "title",
    "phone": "personDirectPhone/formattedNumber",
    "mobile": "personMobilePhone/formattedNumber",
    "company_name": "name",
    "registered_at": "personRegisteredDate",
    "no_mailing": "personNoMail",
    "has_emarketing_consent": "hasEmarketingConsent",
}
SELECTION_MEMBERS = ArchiveQuery(
    name="selection_members",
    provider="ContactPersonStaticSelectionV2",
    columns=tuple(_SELECTION_MEMBER_FIELDS.values()),
    restrictions=(("selectionId", "equals"),),
    order_by="personId",
    entities=("staticPerson",),
    member_fields=_SELECTION_MEMBER_FIELDS,
)
SELECTION_MEMBER_COUNT = ArchiveQuery(
    name="selection_member_count",
    provider="ContactPersonStaticSelectionV2",
    columns=("personId",),
    restrictions=(("selectionId", "equals"),),
    order_by="personId",
    entities=("staticPerson",),
)
SELECTION_HAS_PERSON = ArchiveQuery(
    name="selection_has_person",
    provider="ContactPersonStaticSelectionV2",
    columns=("personId",),
    restrictions=(("selectionId", "equals"), ("personId", "equals")),
    order_by="personId",
    entities=("staticPerson",),
)

# ProjectMember: only projectMemberId, projectId, personId and contactId are top level;
# the person's fields are under person/, the company's name is contact/name
# (projectmember.md).
_PROJECT_MEMBER_FIELDS = {
    "member_id": "projectMemberId",
    "person_id": "personId",
    "company_id": "contactId",
    "email": "person/email/emailAddress",
    "first_name": "person/firstName",
    "last_name": "person/lastName",
    "title": "person/title",
    "phone": "person/personDirectPhone/formattedNumber",
    "mobile": "person/personMobilePhone/formattedNumber",
    "company_name": "contact/name",
    "registered_at": "person/personRegisteredDate",
    "no_mailing": "person/personNoMail",
    "has_emarketing_consent": "person/hasEmarketingConsent",
}
PROJECT_MEMBERS = ArchiveQuery(
    name="project_members",
    provider="ProjectMember",
    columns=tuple(_PROJECT_MEMBER_FIELDS.values()),
    restrictions=(("projectId", "equals"),),
    order_by="projectMemberId",
    member_fields=_PROJECT_MEMBER_FIELDS,
)
PROJECT_MEMBER_COUNT = ArchiveQuery(
    name="project_member_count",
    provider="ProjectMember",
    columns=("projectMemberId",),
    restrictions=(("projectId", "equals"),),
    order_by="projectMemberId",
)
PROJECT_MEMBER_IDS = ArchiveQuery(
    name="project_member_ids",
    provider="ProjectMember",
    columns=("projectMemberId", "personId"),
    restrictions=(("projectId", "equals"), ("personId", "equals")),
    order_by="projectMemberId",
)

# Ticket: ticketId, title (string) and personId (int) (ticket.md).
TICKETS_BY_MARKER = ArchiveQuery(
    name="tickets_by_marker",
    provider="Ticket",
    columns=("ticketId", "title"),
    restrictions=(("title", "contains"), ("personId", "equals")),
    order_by="ticketId",
)

# Appointment: personId is a listAny column (oneOf), text is the follow-up's text
# (appointment.md). Appointment.GetPersonAppointments is for a user's own diary, so a
# follow-up of a contact person is found here.
APPOINTMENTS_OF_PERSON = ArchiveQuery(
    name="appointments_of_person",
    provider="Appointment",
    columns=("appointmentId", "text"),
    restrictions=(("personId", "oneOf"),),
    order_by="appointmentId",
)

# ConsentPurpose: one row per consent of a purpose, its consentPerson/* columns
# (consentpurpose.md). consentPerson/updatedDate is a date column: "after" a day.
CONSENT_CHANGES = ArchiveQuery(
    name="consent_changes",
    provider="ConsentPurpose",
    columns=(
        "consentPerson/personId",
        "key",
        "consentPerson/legalBase",
        "consentPerson/updatedDate",
    ),
    restrictions=(("consentPerson/updatedDate", "after"),),
    order_by="consentPerson/personId",
)

QUERIES: tuple[ArchiveQuery, ...] = (
    PERSONS_BY_EMAIL,
    PERSONS_BY_NAME,
    PERSONS_BY_COMPANY,
    PERSONS_BY_EMAIL_PART,
    COMPANIES_BY_NAME,
    COMPANY_BY_ID,
    SELECTION_MEMBERS,
    SELECTION_MEMBER_COUNT,
    SELECTION_HAS_PERSON,
    PROJECT_MEMBERS,
    PROJECT_MEMBER_COUNT,
    PROJECT_MEMBER_IDS,
    TICKETS_BY_MARKER,
    APPOINTMENTS_OF_PERSON,
    CONSENT_CHANGES,
)


def needed_names() -> dict[str, set[str]]:
    """provider -> every column the client names on it."""
    needs: dict[str, set[str]] = {}
    for query in QUERIES:
        needs.setdefault(query.provider, set()).update(query.names)
    return needs
