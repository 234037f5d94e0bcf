"""The simulator's Archive agent: GetArchiveListByColumns, strict to SuperOffice's catalogue.

A query is answered only when its provider, every column, every sort column, every
entity and every restriction (a column that takes restrictions, an operator of its
restriction type) is in the catalogue the hub carries from SuperOffice's documentation
(``crm.catalogue``); anything else is a SOAP fault naming what is unknown, as NetServer
answers. Values go out in the documented encodings (``[I:…]``, ``[D:dd.MM.yyyy]``,
``[DT:MM/dd/yyyy HH:mm:ss]``, ``[F:…]``, ``[M:…]``; strings plain); a bool, for which
no marker is documented, as ``[I:1]``/``[I:0]``, as SuperOffice encodes booleans elsewhere.

Rows come from the tenant's indexes where a restriction has one, so a call costs the
same with 300 persons as with 100,000.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from crm.catalogue import DATE_TYPES, STRING_TYPES, Catalogue, catalogue

from .errors import SimFault
from .state import Tenant

ARCHIVE_FAULT = "SoArchiveException"
MAX_PAGE_SIZE = 1000


def _unknown(message: str) -> SimFault:
    return SimFault(message, exception_type=ARCHIVE_FAULT)


@dataclass(frozen=True)
class Restriction:
    column: str
    operator: str
    values: tuple[str, ...]
    kind: str | None


def check(cat: Catalogue, request: dict[str, Any]) -> tuple[list[Restriction], tuple[str, ...]]:
    """Refuse what SuperOffice does not document; the active restrictions and entities."""
    provider_name = request.get("ProviderName") or ""
    provider = cat.providers.get(provider_name)
    if provider is None:
        raise _unknown(f"Unknown archive provider {provider_name!r}")

    def column(name: str | None, role: str):
        found = provider.columns.get(name or "")
        if found is None:
            raise _unknown(f"Unknown {role} {name!r} in archive provider {provider_name}")
        return found

    for name in request.get("Columns") or []:
        column(name, "column")
    for order in request.get("SortOrder") or []:
        if not column(order.get("Name"), "sort column").order_by:
            raise _unknown(f"Column {order.get('Name')!r} of {provider_name} cannot be sorted")
    entities = tuple(request.get("Entities") or ())
    for entity in entities:
        if entity not in provider.entities:
            raise _unknown(f"Unknown entity {entity!r} in archive provider {provider_name}")
    restrictions = []
    for info in request.get("Restriction") or []:
        found = column(info.get("Name"), "restriction column")
        if found.restriction is None:
            raise _unknown(f"Column {found.name!r} of {provider_name} takes no restriction")
        operator = info.get("Operator") or ""
        if operator not in cat.operators_for(found.restriction):
            raise _unknown(
                f"Unknown operator {operator!r} for column {found.name!r} "
                f"(restriction type {found.restriction}) in archive provider {provider_name}"
            )
        if info.get("IsActive", True) is False:
            continue
        restrictions.append(
            Restriction(found.name, operator, tuple(info.get("Values") or ()), found.restriction)
        )
    return restrictions, entities


# -- values: reading restriction values, encoding replies ------------------------------

_MARKED = re.compile(r"^\[(DT|TS|I|F|M|D|T|B):(.*)\]$", re.DOTALL)


def _plain(value: str) -> tuple[str | None, str]:
    marked = _MARKED.match(value.strip())
    return (marked.group(1), marked.group(2)) if marked else (None, value.strip())


def _date_of(value: str) -> date:
    _, raw = _plain(value)
    for layout in ("%d.%m.%Y", "%m/%d/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(raw.split(" ")[0], layout).date()
        except ValueError:
            continue
    raise SimFault(f"Not a date: {value!r}", exception_type="SoValidationException")


def _datetime_of(value: str) -> datetime:
    _, raw = _plain(value)
    day, _, clock = raw.partition(" ")
    whole = clock.split(".")[0] or "00:00:00"
    parts = [int(p) for p in whole.split(":")] + [0] * (3 - len(whole.split(":")))
    return datetime.combine(_date_of(day), time(*parts[:3]), tzinfo=UTC)


def _int_of(value: str) -> int:
    try:
        return int(_plain(value)[1])
    except ValueError as exc:
        raise SimFault(f"Not a number: {value!r}", exception_type="SoValidationException") from exc


def _bool_of(value: str) -> bool:
    return _plain(value)[1].lower() in {"1", "true", "yes"}


def encode(value: Any, kind: str | None) -> str:
    """A row value as NetServer displays it in an archive row."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return f"[I:{int(value)}]"
    if kind in STRING_TYPES:
        return str(value)
    if isinstance(value, int):
        return f"[I:{value}]"
    if isinstance(value, Decimal):
        return f"[M:{value}]"
    if isinstance(value, float):
        return f"[F:{value}]"
    if isinstance(value, datetime):
        if kind in DATE_TYPES:
            return f"[D:{value.astimezone(UTC):%d.%m.%Y}]"
        return f"[DT:{value.astimezone(UTC):%m/%d/%Y %H:%M:%S}]"
    if isinstance(value, date):
        return f"[D:{value:%d.%m.%Y}]"
    return str(value)


def _day(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date()
    return value if isinstance(value, date) else None


def _matches(r: Restriction, value: Any, who: int) -> bool:
    op, values = r.operator, r.values
    if r.kind in STRING_TYPES:
        text, wanted = str(value or "").lower(), (values[0] if values else "").lower()
        return {
            "begins": text.startswith(wanted),
            "contains": wanted in text,
            "is": text == wanted,
            "notBegins": not text.startswith(wanted),
            "notContains": wanted not in text,
            "isNot": text != wanted,
        }[op]
    if r.kind == "bool":
        return bool(value) == _bool_of(values[0] if values else "1")
    if r.kind in ("int", "decimal"):
        numbers = [_int_of(v) for v in values]
        if value is None:
            return op == "unequals"
        return {
            "equals": lambda: value == numbers[0],
            "unequals": lambda: value != numbers[0],
            "greater": lambda: value > numbers[0],
            "less": lambda: value < numbers[0],
            "between": lambda: numbers[0] <= value <= numbers[1],
        }[op]()
    if r.kind in ("listAny", "associate"):
        ids = {_int_of(v) for v in values}
        return {
            "oneOf": lambda: value in ids,
            "notOneOf": lambda: value not in ids,
            "associateIsOneOf": lambda: value in ids,
            "associateIsNotOneOf": lambda: value not in ids,
            "currentAssociate": lambda: value == who,
        }[op]()
    if r.kind in DATE_TYPES:
        day, today = _day(value), datetime.now(UTC).date()
        if day is None:
            return False
        simple = {
            "before": lambda: day < _date_of(values[0]),
            "after": lambda: day > _date_of(values[0]),
            "date": lambda: day == _date_of(values[0]),
            "dateBetween": lambda: _date_of(values[0]) <= day <= _date_of(values[1]),
            "beforeToday": lambda: day < today,
            "today": lambda: day == today,
            "afterToday": lambda: day > today,
        }
        if op not in simple:
            raise SimFault(
                f"The simulator does not evaluate the documented operator {op!r}",
                exception_type="SimulatorLimitation",
            )
        return simple[op]()
    if r.kind == "datetime":
        if value is None:
            return False
        moment = value.astimezone(UTC)
        return {
            "afterTime": lambda: moment >= _datetime_of(values[0]),
            "beforeTime": lambda: moment < _datetime_of(values[0]),
            "dateTime": lambda: moment == _datetime_of(values[0]),
        }[op]()
    raise SimFault(
        f"The simulator does not evaluate restrictions of type {r.kind}",
        exception_type="SimulatorLimitation",
    )


# -- where the rows come from ---------------------------------------------------------------

# A row: (entity name, primary key, {column: value}).
Row = tuple[str, int, dict[str, Any]]


@dataclass
class Candidates:
    """The rows a provider offers for the restrictions it could use an index for:
    ``keys`` in the provider's natural order, ``row`` builds one, and ``used`` names the
    restrictions the keys already satisfy (the rest are checked row by row)."""

    keys: list[Any]
    row: Callable[[Any], Row]
    natural_order: str
    used: set[int]


def _first(restrictions: list[Restriction], column: str, *operators: str) -> int | None:
    for index, r in enumerate(restrictions):
        if r.column == column and r.operator in operators:
            return index
    return None


def _person_values(t: Tenant, pid: int, prefix: str = "") -> dict[str, Any]:
    person = t.persons[pid]
    company = t.companies.get(person["ContactId"])
    emarketing = t.consents.get((pid, "EMARKETING"))
    store = t.consents.get((pid, "STORE"))
    values = {
        "personId": pid,
        "firstName": person["Firstname"],
        "lastName": person["Lastname"],
        "fullName": f"{person['Firstname']} {person['Lastname']}".strip(),
        "title": person["Title"],
        "contactId": person["ContactId"],
        "personContact/name": company["Name"] if company else "",
        "email/emailAddress": person["Emails"][0] if person["Emails"] else "",
        "personDirectPhone/formattedNumber": (person["OfficePhones"] or [""])[0],
        "personMobilePhone/formattedNumber": (person["MobilePhones"] or [""])[0],
        "personRegisteredDate": person["Registered"],
        "personUpdatedDate": person["Updated"],
        "personNoMail": person["NoMailing"],
        "hasEmarketingConsent": emarketing is not None and emarketing["legal_base"] != "WITHDRAWN",
        "hasStoreConsent": store is not None and store["legal_base"] != "WITHDRAWN",
    }
    return {f"{prefix}{name}": value for name, value in values.items()}


def _person_source(t: Tenant, rs: list[Restriction], entities: tuple[str, ...]) -> Candidates:
    by_email = _first(rs, "email/emailAddress", "is")
    by_id = _first(rs, "personId", "equals")
    if by_email is not None:
        keys, used = t.persons_with_email(rs[by_email].values[0].strip().lower()), {by_email}
    elif by_id is not None:
        pid = _int_of(rs[by_id].values[0])
        keys, used = ([pid] if pid in t.persons else []), {by_id}
    else:
        keys, used = sorted(t.persons), set()
    return Candidates(keys, lambda pid: ("person", pid, _person_values(t, pid)), "personId", used)


def _selection_source(t: Tenant, rs: list[Restriction], entities: tuple[str, ...]) -> Candidates:
    by_selection = _first(rs, "selectionId", "equals")
    if by_selection is None:
        raise SimFault("A selectionId restriction is required", exception_type=ARCHIVE_FAULT)
    selection_id = _int_of(rs[by_selection].values[0])
    selection = t.selections.get(selection_id)
    if selection is None:
        raise SimFault(
            f"Selection {selection_id} does not exist", exception_type="SoNotFoundException"
        )
    members = selection["members"]
    # Without entities NetServer lists both kinds: the companies, then their persons.
    kinds = entities or ("staticContact", "staticPerson")
    used = {by_selection}
    by_person = _first(rs, "personId", "equals")
    keys: list[tuple[str, int]] = []
    if "staticContact" in kinds:
        companies = sorted({t.persons[pid]["ContactId"] for pid in members if pid in t.persons})
        keys += [("staticContact", cid) for cid in companies]
    if "staticPerson" in kinds:
        if by_person is not None:
            pid = _int_of(rs[by_person].values[0])
            keys += [("staticPerson", pid)] if pid in members else []
            if "staticContact" not in kinds:
                used.add(by_person)
        else:
            keys += [("staticPerson", pid) for pid in members.ordered()]

    def row(key: tuple[str, int]) -> Row:
        kind, ident = key
        if kind == "staticContact":
            company = t.companies[ident]
            return (
                kind,
                ident,
                {
                    "contactId": ident,
                    "name": company["Name"],
                    "email/emailAddress": company["Email"],
                    "selectionId": selection_id,
                },
            )
        values = _person_values(t, ident)
        company = t.companies.get(values["contactId"])
        # On this provider email/emailAddress is the company's e-mail; the person's is
        # personEmail/emailAddress (contactpersonstaticselectionv2.md).
        values |= {
            "personEmail/emailAddress": values.pop("email/emailAddress"),
            "email/emailAddress": company["Email"] if company else "",
            "name": company["Name"] if company else "",
            "selectionId": selection_id,
        }
        return kind, ident, values

    return Candidates(keys, row, "personId" if kinds == ("staticPerson",) else "", used)


def _project_member_source(
    t: Tenant, rs: list[Restriction], entities: tuple[str, ...]
) -> Candidates:
    by_project = _first(rs, "projectId", "equals")
    if by_project is None:
        raise SimFault("A projectId restriction is required", exception_type=ARCHIVE_FAULT)
    project_id = _int_of(rs[by_project].values[0])
    project = t.projects.get(project_id)
    if project is None:
        raise SimFault(f"Project {project_id} does not exist", exception_type="SoNotFoundException")
    used = {by_project}
    by_person = _first(rs, "personId", "equals")
    if by_person is not None:
        member_id = project["by_person"].get(_int_of(rs[by_person].values[0]))
        keys = [] if member_id is None else [member_id]
        used.add(by_person)
    else:
        keys = project["order"].ordered()

    def row(member_id: int) -> Row:
        pid = project["members"][member_id]
        company_id = t.persons[pid]["ContactId"]
        company = t.companies.get(company_id)
        values = {
            "projectMemberId": member_id,
            "projectId": project_id,
            "personId": pid,
            "contactId": company_id,
            "contact/name": company["Name"] if company else "",
        } | _person_values(t, pid, prefix="person/")
        return "projectMember", member_id, values

    return Candidates(keys, row, "projectMemberId", used)


def _company_source(t: Tenant, rs: list[Restriction], entities: tuple[str, ...]) -> Candidates:
    by_id = _first(rs, "contactId", "equals")
    if by_id is not None:
        cid = _int_of(rs[by_id].values[0])
        keys, used = ([cid] if cid in t.companies else []), {by_id}
    else:
        keys, used = sorted(t.companies), set()

    def row(cid: int) -> Row:
        company = t.companies[cid]
        return (
            "contact",
            cid,
            {
                "contactId": cid,
                "name": company["Name"],
                "department": company.get("Department", ""),
            },
        )

    return Candidates(keys, row, "contactId", used)


def _ticket_source(t: Tenant, rs: list[Restriction], entities: tuple[str, ...]) -> Candidates:
    def row(tid: int) -> Row:
        ticket = t.service_tickets[tid]
        return (
            "ticket",
            tid,
            {
                "ticketId": tid,
                "title": ticket["Title"],
                "personId": ticket["PersonId"] or None,
            },
        )

    return Candidates(sorted(t.service_tickets), row, "ticketId", set())


def _appointment_source(t: Tenant, rs: list[Restriction], entities: tuple[str, ...]) -> Candidates:
    by_person = _first(rs, "personId", "oneOf")
    if by_person is not None:
        ids = {_int_of(v) for v in rs[by_person].values}
        keys = sorted(aid for pid in ids for aid in t.appointments_by_person.get(pid, ()))
        used = {by_person}
    else:
        keys, used = sorted(t.appointments), set()

    def row(aid: int) -> Row:
        a = t.appointments[aid]
        return (
            "appointment",
            aid,
            {
                "appointmentId": aid,
                "personId": a["PersonId"] or None,
                "text": a["Description"],
            },
        )

    return Candidates(keys, row, "appointmentId", used)


def _consent_source(t: Tenant, rs: list[Restriction], entities: tuple[str, ...]) -> Candidates:
    by_day = _first(rs, "consentPerson/updatedDate", "after")
    if by_day is not None:
        # After a day: from the next midnight on (UTC), found in the tenant's time index.
        start = datetime.combine(_date_of(rs[by_day].values[0]), time(), tzinfo=UTC)
        rows = t.consents_updated_since(start + timedelta(days=1))
        used = {by_day}
    else:
        rows, used = sorted(t.consents), set()
    keys = sorted(rows)  # (person id, purpose key): the order of consentPerson/personId
    purposes = {key: (pid, name) for pid, name, key in t.consent_purposes}
    bases = {key: name for _, name, key in t.legal_bases}

    def row(key: tuple[int, str]) -> Row:
        pid, purpose = key
        consent = t.consents[key]
        purpose_id, purpose_name = purposes[purpose]
        return (
            "consentPurpose",
            purpose_id,
            {
                "consentPurposeId": purpose_id,
                "key": purpose,
                "name": purpose_name,
                "consentPerson/consentPersonId": consent["id"],
                "consentPerson/personId": pid,
                # A list column shows the list item's text.
                "consentPerson/legalBase": bases.get(consent["legal_base"], consent["legal_base"]),
                "consentPerson/updatedDate": consent["updated"],
            },
        )

    return Candidates(keys, row, "consentPerson/personId", used)


SOURCES: dict[str, Callable[[Tenant, list[Restriction], tuple[str, ...]], Candidates]] = {
    "Person": _person_source,
    "Contact": _company_source,
    "ContactPersonStaticSelectionV2": _selection_source,
    "ProjectMember": _project_member_source,
    "Ticket": _ticket_source,
    "Appointment": _appointment_source,
    "ConsentPurpose": _consent_source,
}


def _sort_key(value: Any) -> tuple:
    return (value is None, value)


def get_archive_list_by_columns(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    cat = catalogue()
    try:
        restrictions, entities = check(cat, p)
    except SimFault:
        t.counters["archive_refusals"] = t.counters.get("archive_refusals", 0) + 1
        raise
    provider = p["ProviderName"]
    columns = list(p.get("Columns") or [])
    orders = list(p.get("SortOrder") or [])
    t.archive_log.append(
        {
            "provider": provider,
            "columns": columns,
            "restrictions": [[r.column, r.operator] for r in restrictions],
            "order_by": [o.get("Name") for o in orders],
            "entities": list(entities),
        }
    )
    page, page_size = p.get("Page") or 0, p.get("PageSize") or 50
    if page_size > MAX_PAGE_SIZE:
        raise SimFault(f"PageSize may not exceed {MAX_PAGE_SIZE}", exception_type=ARCHIVE_FAULT)
    source = SOURCES.get(provider)
    if source is None:
        raise SimFault(
            f"The simulator holds no rows for archive provider {provider}",
            exception_type="SimulatorLimitation",
        )
    found = source(t, restrictions, entities)
    rest = [r for index, r in enumerate(restrictions) if index not in found.used]
    order = orders[0].get("Name") if orders else found.natural_order
    descending = bool(orders) and orders[0].get("Direction") == "DESC"
    window = slice(page * page_size, (page + 1) * page_size)
    if not rest and order == found.natural_order and not descending:
        # The keys are in the asked order already: build the page's rows only.
        rows: Iterable[Row] = (found.row(key) for key in found.keys[window])
    else:
        built = [found.row(key) for key in found.keys]
        built = [r for r in built if all(_matches(x, r[2].get(x.column), who) for x in rest)]
        built.sort(key=lambda r: _sort_key(r[2].get(order)), reverse=descending)
        rows = built[window]
    kinds = {c: cat.column_type(provider, c) for c in columns}
    return {
        "Response": [
            {
                "EntityName": entity,
                "PrimaryKey": key,
                "ColumnData": {
                    c: {"DisplayValue": encode(values.get(c), kinds[c])} for c in columns
                },
            }
            for entity, key, values in rows
        ]
    }
