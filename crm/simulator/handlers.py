"""Operation handlers: NetServer semantics over the simulator's tenant state.

Each handler takes (tenant, associate id of the ticket, request fields) and
returns the response fields, or raises ``SimFault``. Handlers run under the
tenant lock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .state import ASSIGN_BY_CATEGORY, Tenant


class SimFault(Exception):
    def __init__(self, message: str, *, exception_type: str, code: str = "Client") -> None:
        super().__init__(message)
        self.message = message
        self.exception_type = exception_type
        self.code = code


def _not_found(what: str, entity_id: Any) -> SimFault:
    return SimFault(f"{what} {entity_id} does not exist", exception_type="SoNotFoundException")


def _invalid(message: str) -> SimFault:
    return SimFault(message, exception_type="SoValidationException")


def _now() -> datetime:
    return datetime.now(UTC)


def _ref_id(value: dict[str, Any] | None, key: str) -> int:
    if not value:
        return 0
    return int(value.get(key) or 0)


# -- persons -----------------------------------------------------------------


def _person_entity(t: Tenant, person: dict[str, Any]) -> dict[str, Any]:
    company = t.companies.get(person["ContactId"])
    country = dict(t.lists["country"]).get(person["CountryId"])
    return {
        "PersonId": person["PersonId"],
        "Firstname": person["Firstname"],
        "Lastname": person["Lastname"],
        "Title": person["Title"],
        "UpdatedDate": person["Updated"],
        "CreatedDate": person["Registered"],
        "Emails": [{"Value": e, "StrippedValue": e, "Description": ""} for e in person["Emails"]],
        "MobilePhones": [{"Value": p} for p in person["MobilePhones"]],
        "OfficePhones": [{"Value": p} for p in person["OfficePhones"]],
        "Contact": {
            "ContactId": company["ContactId"],
            "Name": company["Name"],
            "AssociateId": company["AssociateId"],
        }
        if company
        else None,
        "Country": {"CountryId": person["CountryId"], "Name": country} if country else None,
        "Interests": [
            {"Id": iid, "Name": name, "Selected": iid in person["Interests"]}
            for iid, name in t.lists["persint"]
        ],
        "FullName": f"{person['Firstname']} {person['Lastname']}".strip(),
        "NoMailing": person["NoMailing"],
        "UserDefinedFields": dict(person["UserDefinedFields"]),
        "ExtraFields": dict(person["ExtraFields"]),
        "CustomFields": dict(person["CustomFields"]),
    } | person["More"]


# The PersonEntity elements the simulator acts on; it keeps every other one as given.
PERSON_MODELLED_FIELDS = frozenset({
    "PersonId", "Firstname", "Lastname", "Title", "UpdatedDate", "CreatedDate", "Emails",
    "MobilePhones", "OfficePhones", "Contact", "Country", "Interests", "FullName",
    "NoMailing", "UserDefinedFields", "ExtraFields", "CustomFields",
})


def _get_person(t: Tenant, person_id: int) -> dict[str, Any]:
    person = t.persons.get(person_id)
    if person is None:
        raise _not_found("Person", person_id)
    return person


def get_person_entity(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    # NetServer answers an unknown id with an empty (nil) Response.
    person = t.persons.get(p.get("PersonEntityId") or 0)
    return {"Response": _person_entity(t, person) if person else None}


def save_person_entity(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    entity = p.get("PersonEntity") or {}
    person_id = entity.get("PersonId") or 0
    company_id = _ref_id(entity.get("Contact"), "ContactId")
    if company_id and company_id not in t.companies:
        raise _not_found("Contact", company_id)
    if person_id:
        person = _get_person(t, person_id)
    else:
        if not (entity.get("Firstname") or entity.get("Lastname")):
            raise _invalid("A person needs a first or last name")
        if not company_id:
            raise _invalid("Contact is mandatory on a person (MandatoryContactOnPerson)")
        person_id = t.new_id("person")
        person = t._new_person_row(
            pid=person_id, first="", last="", email="", company_id=company_id, registered=_now()
        )
        t.persons[person_id] = person
    # As NetServer does, a save writes every element of the entity: one the carrier leaves
    # out (or sends nil) is blanked, so a client must send back all it read.
    for field in ("Firstname", "Lastname", "Title"):
        person[field] = entity.get(field) or ""
    person["NoMailing"] = bool(entity.get("NoMailing"))
    person["More"] = {
        name: value
        for name, value in entity.items()
        if name not in PERSON_MODELLED_FIELDS and value is not None
    }
    for field in ("Emails", "OfficePhones", "MobilePhones"):
        if entity.get(field) is not None:
            person[field] = [e.get("Value") for e in entity[field] if e and e.get("Value")]
    if company_id:
        person["ContactId"] = company_id
    if entity.get("Country"):
        person["CountryId"] = _ref_id(entity["Country"], "CountryId") or person["CountryId"]
    if entity.get("Interests") is not None:
        person["Interests"] = {i["Id"] for i in entity["Interests"] if i and i.get("Selected")}
    for field in ("CustomFields", "UserDefinedFields", "ExtraFields"):
        if entity.get(field):
            person[field].update({k: v for k, v in entity[field].items() if k})
    person["Updated"] = _now()
    t.index_person(person_id)
    return {"Response": _person_entity(t, person)}


def _consent_info(t: Tenant, person_id: int, purpose: str, row: dict[str, Any]) -> dict[str, Any]:
    base = next(b for b in t.legal_bases if b[2] == row["legal_base"])
    purpose_row = next(x for x in t.consent_purposes if x[2] == purpose)
    source_id, source_name = t.consent_sources.get(row["source"], (0, row["source"]))
    return {
        "ConsentPersonId": row["id"],
        "Comment": row["comment"],
        "Registered": row["registered"],
        "RegisteredAssociateId": row["registered_by"],
        "Updated": row["updated"],
        "UpdatedAssociateId": row["updated_by"],
        "LegalBaseId": base[0],
        "LegalBaseKey": base[2],
        "LegalBaseName": base[1],
        "ConsentPurposeId": purpose_row[0],
        "ConsentPurposeKey": purpose,
        "ConsentPurposeName": purpose_row[1],
        "ConsentSourceId": source_id,
        "ConsentSourceKey": row["source"],
        "ConsentSourceName": source_name,
    }


def get_consent_infos(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    person_id = p.get("PersonId") or 0
    _get_person(t, person_id)
    infos = [
        _consent_info(t, person_id, purpose, row)
        for purpose, row in sorted(t.consents_by_person.get(person_id, {}).items())
    ]
    return {"Response": infos}


def _check_purpose(t: Tenant, purpose: str | None) -> str:
    if purpose not in {x[2] for x in t.consent_purposes}:
        raise _invalid(f"Unknown consent purpose {purpose!r}")
    return purpose  # type: ignore[return-value]


def set_consent(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    person_id = p.get("PersonId") or 0
    _get_person(t, person_id)
    purpose = _check_purpose(t, p.get("Purpose"))
    legal_base = p.get("LegalBase")
    if legal_base not in {b[2] for b in t.legal_bases}:
        raise _invalid(f"Unknown legal base {legal_base!r}")
    source = p.get("Source") or "USER"
    if source not in t.consent_sources:
        raise _invalid(f"Unknown consent source {source!r}")
    t._write_consent(person_id, purpose, legal_base, source, p.get("Comment") or "", _now())
    return {}


def remove_consent(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    person_id = p.get("PersonId") or 0
    _get_person(t, person_id)
    purpose = _check_purpose(t, p.get("Purpose"))
    # Withdrawal keeps the row with the WITHDRAWN legal base, so it carries a time.
    row = t.consents.get((person_id, purpose))
    if row is not None:
        t._write_consent(person_id, purpose, "WITHDRAWN", row["source"], row["comment"], _now())
    return {}


# -- companies, sales, appointments ---------------------------------------------


def save_contact_entity(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    entity = p.get("ContactEntity") or {}
    if not (entity.get("Name") or "").strip():
        raise _invalid("A company needs a name")
    company_id = entity.get("ContactId") or t.new_id("company")
    country_id = _ref_id(entity.get("Country"), "CountryId") or 47
    t.companies[company_id] = {
        "ContactId": company_id,
        "Name": entity["Name"],
        "AssociateId": _ref_id(entity.get("Associate"), "AssociateId") or who,
        "CountryId": country_id,
        "CategoryId": _ref_id(entity.get("Category"), "Id"),
        "BusinessId": _ref_id(entity.get("Business"), "Id"),
    }
    c = t.companies[company_id]
    associate = t.associates.get(c["AssociateId"], {})
    return {
        "Response": {
            "ContactId": company_id,
            "Name": c["Name"],
            "Associate": {"AssociateId": c["AssociateId"], "Name": associate.get("Name")},
            "Business": {"Id": c["BusinessId"], "Value": t.list_name("business", c["BusinessId"])},
            "Category": {"Id": c["CategoryId"], "Value": t.list_name("category", c["CategoryId"])},
            "Country": {"CountryId": country_id, "Name": t.list_name("country", country_id)},
        }
    }


def _check_associate(t: Tenant, associate_id: int) -> None:
    if associate_id and associate_id not in t.associates:
        raise _not_found("Associate", associate_id)


def save_sale_entity(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    entity = p.get("SaleEntity") or {}
    person_id = _ref_id(entity.get("Person"), "PersonId")
    if person_id:
        _get_person(t, person_id)
    owner = _ref_id(entity.get("Associate"), "AssociateId") or who
    _check_associate(t, owner)
    if not (entity.get("Heading") or "").strip():
        raise _invalid("A sale needs a heading")
    company_id = _ref_id(entity.get("Contact"), "ContactId") or (
        t.persons[person_id]["ContactId"] if person_id else 0
    )
    sale_id = t.new_id("sale")
    row = {
        "SaleId": sale_id,
        "Heading": entity.get("Heading"),
        "SaleText": entity.get("SaleText") or "",
        "PersonId": person_id,
        "ContactId": company_id,
        "AssociateId": owner,
        "SourceId": _ref_id(entity.get("Source"), "Id"),
        "RatingId": _ref_id(entity.get("Rating"), "Id"),
        "Status": entity.get("Status") or "Open",
        "Saledate": entity.get("Saledate") or _now(),
        "Registered": _now(),
    }
    t.add_sale(row)
    return {
        "Response": {
            "Associate": {"AssociateId": owner},
            "Contact": {"ContactId": company_id},
            "SaleText": row["SaleText"],
            "Person": {"PersonId": person_id},
            "Rating": {"Id": row["RatingId"], "Value": t.list_name("prob", row["RatingId"])},
            "Source": {"Id": row["SourceId"], "Value": t.list_name("source", row["SourceId"])},
            "Status": row["Status"],
            "Saledate": row["Saledate"],
            "SaleId": sale_id,
            "Heading": row["Heading"],
        }
    }


def get_sales_from_person(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    person_id = p.get("PersonId") or 0
    only_open = bool(p.get("OnlyOpenSales"))
    sales = [
        {
            "SaleId": s["SaleId"],
            "Title": s["Heading"],
            "Description": s["SaleText"],
            "PersonId": s["PersonId"],
        }
        for s in (t.sales[sale_id] for sale_id in t.sales_by_person.get(person_id, ()))
        if not only_open or s["Status"] == "Open"
    ]
    return {"Response": sales}


def save_appointment_entity(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    entity = p.get("AppointmentEntity") or {}
    person_id = _ref_id(entity.get("Person"), "PersonId")
    if person_id:
        _get_person(t, person_id)
    owner = _ref_id(entity.get("Associate"), "AssociateId") or who
    _check_associate(t, owner)
    project_id = _ref_id(entity.get("Project"), "ProjectId")
    if project_id and project_id not in t.projects:
        raise _not_found("Project", project_id)
    task_id = _ref_id(entity.get("Task"), "TaskListItemId")
    if task_id and task_id not in dict(t.lists["task"]):
        raise _not_found("Task", task_id)
    start, end = entity.get("StartDate"), entity.get("EndDate")
    if start and end and end < start:
        raise _invalid("EndDate is before StartDate")
    appointment_id = t.new_id("appointment")
    row = {
        "AppointmentId": appointment_id,
        "Description": entity.get("Description") or "",
        "StartDate": start or _now(),
        "EndDate": end or start or _now(),
        "PersonId": person_id,
        "ContactId": _ref_id(entity.get("Contact"), "ContactId")
        or (t.persons[person_id]["ContactId"] if person_id else 0),
        "ProjectId": project_id,
        "AssociateId": owner,
        "TaskId": task_id,
        "Type": entity.get("Type") or "inDiary",
        "Completed": entity.get("Completed") or "NotStarted",
    }
    t.add_appointment(row)
    return {
        "Response": {
            "Associate": {"AssociateId": owner},
            "Contact": {"ContactId": row["ContactId"]},
            "AppointmentId": appointment_id,
            "Description": row["Description"],
            "StartDate": row["StartDate"],
            "EndDate": row["EndDate"],
            "Person": {"PersonId": person_id},
            "Project": {"ProjectId": project_id} if project_id else None,
            "Type": row["Type"],
            "Completed": row["Completed"],
            "Task": {"TaskListItemId": task_id, "Value": t.list_name("task", task_id)},
        }
    }


def get_person_appointments(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    person_id = p.get("PersonId") or 0
    start, end = p.get("StartTime"), p.get("EndTime")
    count = p.get("Count") or 0
    rows = [
        a
        for a in (t.appointments[aid] for aid in t.appointments_by_person.get(person_id, ()))
        if (start is None or a["StartDate"] >= start) and (end is None or a["StartDate"] <= end)
    ]
    rows.sort(key=lambda a: a["StartDate"])
    if count > 0:
        rows = rows[:count]
    return {
        "Response": [
            {
                "AppointmentId": a["AppointmentId"],
                "StartDate": a["StartDate"],
                "EndDate": a["EndDate"],
                "Description": a["Description"],
                "PersonId": a["PersonId"],
            }
            for a in rows
        ]
    }


# -- selections and projects ------------------------------------------------------


def _selection(t: Tenant, selection_id: int) -> dict[str, Any]:
    selection = t.selections.get(selection_id)
    if selection is None:
        raise _not_found("Selection", selection_id)
    return selection


def add_contact_selection_members(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    selection = _selection(t, p.get("SelectionId") or 0)
    for pair in p.get("ContactPersonIds") or []:
        person = _get_person(t, pair.get("PersonId") or 0)
        if pair.get("ContactId") and pair["ContactId"] != person["ContactId"]:
            raise _invalid("The person does not belong to the given contact")
        selection["members"].add(person["PersonId"])
    return {}


def remove_contact_selection_members(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    selection = _selection(t, p.get("SelectionId") or 0)
    for pair in p.get("ContactPersonIds") or []:
        selection["members"].discard(pair.get("PersonId") or 0)
    return {}


def add_project_members(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    project_id = p.get("ProjectEntityId") or 0
    if project_id not in t.projects:
        raise _not_found("Project", project_id)
    for member in p.get("ProjectMembers") or []:
        person = _get_person(t, member.get("PersonId") or 0)
        t._add_project_member(project_id, person["PersonId"])
    return {}


def delete_project_member_by_ids(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    for member_id in p.get("ProjectMemberIds") or []:
        t.remove_project_member(member_id)
    return {}


# -- archive ---------------------------------------------------------------------


def _encode(value: Any) -> str:
    if isinstance(value, bool):
        return f"[B:{int(value)}]"
    if isinstance(value, int):
        return f"[I:{value}]"
    if isinstance(value, datetime):
        return f"[DT:{value.astimezone(UTC).strftime('%m/%d/%Y %H:%M:%S.00000')}]"
    return "" if value is None else str(value)


_EQUALITY = {"=", "equals", "is"}
_PERSON_TEXT_COLUMNS = {"fullName", "name", "email/emailAddress"}


def _restriction_value(
    restrictions: list[dict[str, Any]], name: str, operators: set[str] = _EQUALITY
) -> str | None:
    for r in restrictions:
        if r.get("Name") == name and r.get("IsActive", True) is not False:
            values = r.get("Values") or []
            if r.get("Operator") not in operators:
                raise _invalid(f"Operator {r.get('Operator')!r} is not supported on {name}")
            return values[0] if values else ""
    return None


def _decode_datetime(value: str) -> datetime:
    if value.startswith("[DT:") and value.endswith("]"):
        value = value[4:-1]
    try:
        return datetime.strptime(value, "%m/%d/%Y %H:%M:%S.%f").replace(tzinfo=UTC)
    except ValueError as exc:
        raise _invalid(f"Not a NetServer datetime: {value!r}") from exc


def _person_row(t: Tenant, pid: int) -> dict[str, Any]:
    person = t.persons[pid]
    company = t.companies.get(person["ContactId"])
    emarketing = t.consents.get((pid, "EMARKETING"))
    return {
        "personId": pid,
        "firstName": person["Firstname"],
        "lastName": person["Lastname"],
        "title": person["Title"],
        "contactId": person["ContactId"],
        "name": company["Name"] if company else "",
        "email/emailAddress": person["Emails"][0] if person["Emails"] else "",
        "personDirectPhone/formattedNumber": (person["OfficePhones"] or [""])[0],
        "personMobilePhone/formattedNumber": (person["MobilePhones"] or [""])[0],
        "registered": person["Registered"],
        "personRegisteredDate": person["Registered"],
        "personNoMail": person["NoMailing"],
        "hasEmarketingConsent": emarketing is not None and emarketing["legal_base"] != "WITHDRAWN",
    }


def _matches_text(t: Tenant, pid: int, text_search: list[tuple[str, str]]) -> bool:
    person = t.persons[pid]
    company = t.companies.get(person["ContactId"])
    texts = {
        "fullName": f"{person['Firstname']} {person['Lastname']}".lower(),
        "name": (company["Name"] if company else "").lower(),
        "email/emailAddress": " ".join(person["Emails"]).lower(),
    }
    return all(value and value in texts[name] for name, value in text_search)


def _person_entry(pid: int) -> tuple[str, int, dict[str, Any]]:
    return "person", pid, {}


def _keys_equal_to(keys: list[int]) -> Callable[[int], list[int]]:
    """For a short list of person ids: the ones equal to a given id."""
    return lambda pid: [key for key in keys if key == pid]


def get_archive_list_by_columns(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    provider = p.get("ProviderName")
    columns = p.get("Columns") or []
    restrictions = p.get("Restriction") or []
    page, page_size = p.get("Page") or 0, p.get("PageSize") or 50
    if page_size > 1000:
        raise _invalid("PageSize may not exceed 1000")
    person_filter = _restriction_value(restrictions, "personId")
    # The primary keys of the matching rows, ascending, taken from the tenant's indexes
    # where there is one; ``entry`` gives a key's (entity name, person id, extra columns)
    # and ``keys_of_person`` the keys of one person's rows (a personId restriction).
    # Rows are built for the requested page only, so a call costs the same however many
    # persons the tenant holds.
    keys: list[int]
    entry: Callable[[int], tuple[str, int, dict[str, Any]]] = _person_entry
    keys_of_person: Callable[[int], list[int]]
    text_search = [
        (r["Name"], str((r.get("Values") or [""])[0] or "").lower())
        for r in restrictions
        if r.get("Operator") == "contains" and r.get("Name") in _PERSON_TEXT_COLUMNS
    ]
    if provider == "Person" and text_search:
        # Person search by name, company name or part of the email (operator "contains"):
        # a substring search reads every person.
        keys = [pid for pid in sorted(t.persons) if _matches_text(t, pid, text_search)]
        keys_of_person = _keys_equal_to(keys)
    elif provider == "Person":
        email = _restriction_value(restrictions, "email/emailAddress")
        consent_since = _restriction_value(restrictions, "consentPerson/updatedDate", {"afterTime"})
        if email is not None:
            keys = t.persons_with_email(email.strip().lower())
        elif consent_since is not None:
            keys = t.consent_person_ids_since(_decode_datetime(consent_since))
        else:
            raise _invalid("The Person provider needs a restriction here")
        keys_of_person = _keys_equal_to(keys)
    elif provider == "ContactPersonStaticSelectionV2":
        sid = _restriction_value(restrictions, "selectionId")
        if sid is None:
            raise _invalid("selectionId restriction is required")
        members = _selection(t, int(sid))["members"]
        keys = members.ordered()

        def selected(pid: int) -> list[int]:
            return [pid] if pid in members else []

        keys_of_person = selected
    elif provider == "ProjectMember":
        prid = _restriction_value(restrictions, "projectId")
        if prid is None or int(prid) not in t.projects:
            raise _not_found("Project", prid)
        project_id, project = int(prid), t.projects[int(prid)]
        keys = project["order"].ordered()

        def member_entry(member_id: int) -> tuple[str, int, dict[str, Any]]:
            extra = {"projectMemberId": member_id, "projectId": project_id}
            return "projectMember", project["members"][member_id], extra

        def person_member(pid: int) -> list[int]:
            member_id = project["by_person"].get(pid)
            return [] if member_id is None else [member_id]

        entry, keys_of_person = member_entry, person_member
    elif provider == "Ticket":
        # Requests by title text (the run marker a link action writes into the title).
        title = _restriction_value(restrictions, "title", {"contains"})
        if title is None:
            raise _invalid("The Ticket provider needs a title restriction here")
        keys = [tid for tid, row in sorted(t.service_tickets.items()) if title in row["Title"]]

        def ticket_entry(tid: int) -> tuple[str, int, dict[str, Any]]:
            row = t.service_tickets[tid]
            return "ticket", row["PersonId"] or 0, {"ticketId": tid, "title": row["Title"]}

        def person_tickets(pid: int) -> list[int]:
            return [tid for tid in keys if ticket_entry(tid)[1] == pid]

        entry, keys_of_person = ticket_entry, person_tickets
    else:
        raise _invalid(f"Unknown archive provider {provider!r}")
    if person_filter is not None and keys:
        keys = keys_of_person(int(person_filter))
    items = []
    for key in keys[page * page_size : (page + 1) * page_size]:
        entity, pid, extra = entry(key)
        row = (_person_row(t, pid) if pid in t.persons else {}) | extra
        items.append(
            {
                "EntityName": entity,
                "PrimaryKey": key,
                "ColumnData": {c: {"DisplayValue": _encode(row.get(c))} for c in columns},
            }
        )
    return {"Response": items}


# -- lists -----------------------------------------------------------------------


def get_list(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    name = (p.get("Name") or "").lower()
    if name == "associate":
        items = [(a["AssociateId"], a["FullName"]) for a in t.associates.values()]
    elif name == "usergroup":
        items = sorted(t.usergroups.items())
    elif name == "selection":
        items = [(sid, s["name"]) for sid, s in sorted(t.selections.items())]
    elif name == "project":
        items = [(prid, pr["name"]) for prid, pr in sorted(t.projects.items())]
    elif name == "ejscript":
        items = sorted(t.scripts.items())
    elif name == "ejcategory":
        items = [(cid, c[0]) for cid, c in sorted(t.ticket_categories.items())]
    elif name in t.lists:
        items = t.lists[name]
    else:
        raise _invalid(f"Unknown MDO list {p.get('Name')!r}")
    return {"Response": [{"Id": i, "Name": n, "ToolTip": "", "Deleted": False} for i, n in items]}


def get_legal_bases(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    return {"Response": [{"LegalBaseId": i, "Name": n, "Key": k} for i, n, k in t.legal_bases]}


def get_consent_purposes(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    return {
        "Response": [{"ConsentPurposeId": i, "Name": n, "Key": k} for i, n, k in t.consent_purposes]
    }


# -- tickets and scripts -----------------------------------------------------------


def save_ticket_entity(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    entity = p.get("TicketEntity") or {}
    if not (entity.get("Title") or "").strip():
        raise _invalid("A request needs a title")
    category_id = _ref_id(entity.get("Category"), "TicketCategoryId")
    if category_id and category_id not in t.ticket_categories:
        raise _not_found("Category", category_id)
    priority_id = _ref_id(entity.get("Priority"), "TicketPriorityId")
    if priority_id and priority_id not in dict(t.lists["ticketpriority"]):
        raise _not_found("Priority", priority_id)
    owner = _ref_id(entity.get("OwnedBy"), "AssociateId")
    if owner == ASSIGN_BY_CATEGORY:
        owner = t.ticket_categories[category_id][1] if category_id else 0
    _check_associate(t, owner)
    person_id = _ref_id(entity.get("Person"), "PersonId")
    if person_id:
        _get_person(t, person_id)
    ticket_id = t.new_id("ticket")
    row = {
        "TicketId": ticket_id,
        "Title": entity["Title"],
        "CreatedAt": _now(),
        "OwnerId": owner,
        "CategoryId": category_id,
        "PriorityId": priority_id,
        "PersonId": person_id,
    }
    t.service_tickets[ticket_id] = row
    return {
        "Response": {
            "TicketId": ticket_id,
            "Title": row["Title"],
            "CreatedAt": row["CreatedAt"],
            "OwnedBy": {"AssociateId": owner},
            "Category": {"TicketCategoryId": category_id},
            "Priority": {"TicketPriorityId": priority_id},
            "Person": {"PersonId": person_id},
        }
    }


def get_custom_field_info_list(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    table = (p.get("TableName") or "").lower()
    fields = t.custom_fields.get(table)
    if fields is None:
        raise _invalid(f"Unknown table {p.get('TableName')!r}")
    return {
        "Response": [
            {"FieldType": kind, "FieldName": name, "DisplayName": label}
            for name, label, kind in fields
        ]
    }


def execute_script(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    script_id = p.get("CRMScriptId") or 0
    name = t.scripts.get(script_id)
    if name is None:
        raise _not_found("CRMScript", script_id)
    params = p.get("Parameters") or {}
    rendered = ";".join(f"{k}={params[k]}" for k in sorted(params))
    return {"Response": f"{name}:{rendered}"}


# -- auth ------------------------------------------------------------------------


def _principal(t: Tenant, associate_id: int) -> dict[str, Any]:
    a = t.associates[associate_id]
    return {
        "Associate": a["Name"],
        "AssociateId": associate_id,
        "GroupId": a["GroupIdx"],
        "FullName": a["FullName"],
        "EMailAddress": a["email"],
        "SecondaryGroups": a["secondary_groups"],
        "DatabaseContextIdentifier": t.context_identifier,
    }


def authenticate_username_password(t: Tenant, p: dict[str, Any]) -> dict[str, Any]:
    username, password = p.get("UserName") or "", p.get("Password") or ""
    associate_id: int | None = None
    if "AccessToken" in p:
        # SoPrincipal.AuthenticateWithAccessToken: a token the identity provider issued.
        associate_id = t.access_token_associate(p.get("AccessToken") or "")
    elif username == t.username and password == t.password:
        associate_id = t.login_associate_id
    elif username in t.usecs and not password:
        # A web panel's <usec> secret is accepted in place of the user name.
        associate_id = t.usecs[username]
    if associate_id is None:
        return {"AuthenticationSucceeded": False}
    ticket = t.issue_ticket(associate_id)
    return {
        "Response": _principal(t, associate_id),
        "Credentials": {"Ticket": ticket},
        "AuthenticationSucceeded": True,
    }


Handler = Callable[[Tenant, int, dict[str, Any]], dict[str, Any]]

HANDLERS: dict[tuple[str, str], Handler] = {
    ("Person", "GetPersonEntity"): get_person_entity,
    ("Person", "SavePersonEntity"): save_person_entity,
    ("Person", "GetConsentInfos"): get_consent_infos,
    ("Person", "SetConsent"): set_consent,
    ("Person", "RemoveConsent"): remove_consent,
    ("Contact", "SaveContactEntity"): save_contact_entity,
    ("Sale", "SaveSaleEntity"): save_sale_entity,
    ("Sale", "GetSalesFromPerson"): get_sales_from_person,
    ("Appointment", "SaveAppointmentEntity"): save_appointment_entity,
    ("Appointment", "GetPersonAppointments"): get_person_appointments,
    ("Selection", "AddContactSelectionMembers"): add_contact_selection_members,
    ("Selection", "RemoveContactSelectionMembers"): remove_contact_selection_members,
    ("Project", "AddProjectMembers"): add_project_members,
    ("Project", "DeleteProjectMemberByIds"): delete_project_member_by_ids,
    ("Archive", "GetArchiveListByColumns"): get_archive_list_by_columns,
    ("MDO", "GetList"): get_list,
    ("List", "GetLegalBases"): get_legal_bases,
    ("List", "GetConsentPurposes"): get_consent_purposes,
    ("Ticket", "SaveTicketEntity"): save_ticket_entity,
    ("CRMScript", "ExecuteScript"): execute_script,
    ("UserDefinedFieldInfo", "GetCustomFieldInfoList"): get_custom_field_info_list,
}
