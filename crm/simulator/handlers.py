"""Operation handlers: NetServer semantics over the simulator's tenant state.

Each handler takes (tenant, associate id of the ticket, request fields) and
returns the response fields, or raises ``SimFault``. Handlers run under the
tenant lock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from crm.catalogue import catalogue

from . import webhooks
from .archive import get_archive_list_by_columns
from .errors import SimFault
from .state import ASSIGN_BY_CATEGORY, Tenant
from .xmlio import LATER_ELEMENT


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
    return (
        {
            "PersonId": person["PersonId"],
            "Firstname": person["Firstname"],
            "Lastname": person["Lastname"],
            "Title": person["Title"],
            "UpdatedDate": person["Updated"],
            "CreatedDate": person["Registered"],
            "Emails": [
                {"Value": e, "StrippedValue": e, "Description": ""} for e in person["Emails"]
            ],
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
        }
        | person["More"]
        | (
            # A newer NetServer answers with elements the hub's WSDL does not name.
            {LATER_ELEMENT: f"kept-{person['PersonId']}"} if t.control.newer_version else {}
        )
    )


# The PersonEntity elements the simulator acts on; it keeps every other one as given.
PERSON_MODELLED_FIELDS = frozenset(
    {
        "PersonId",
        "Firstname",
        "Lastname",
        "Title",
        "UpdatedDate",
        "CreatedDate",
        "Emails",
        "MobilePhones",
        "OfficePhones",
        "Contact",
        "Country",
        "Interests",
        "FullName",
        "NoMailing",
        "UserDefinedFields",
        "ExtraFields",
        "CustomFields",
    }
)


def _get_person(t: Tenant, person_id: int) -> dict[str, Any]:
    person = t.persons.get(person_id)
    if person is None:
        raise _not_found("Person", person_id)
    return person


def get_person_entity(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    # NetServer answers an unknown id with an empty (nil) Response.
    person = t.persons.get(p.get("PersonEntityId") or 0)
    return {"Response": _person_entity(t, person) if person else None}


def get_person_list(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    # The light Person carrier of each id the tenant has, in the order asked. What
    # NetServer answers for an unknown id is not documented: left out here; the client
    # also drops an empty carrier (PersonId 0) and reads any person not answered with
    # GetPersonEntity, which answers an unknown id with a nil Response.
    persons = []
    for person_id in p.get("PersonIds") or []:
        person = t.persons.get(person_id)
        if person is None:
            continue
        company = t.companies.get(person["ContactId"])
        persons.append(
            {
                "PersonId": person["PersonId"],
                "Firstname": person["Firstname"],
                "Lastname": person["Lastname"],
                "Email": person["Emails"][0] if person["Emails"] else "",
                "ContactId": company["ContactId"] if company else 0,
                "ContactName": company["Name"] if company else "",
            }
        )
    return {"Response": persons}


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
        if name not in PERSON_MODELLED_FIELDS
        and value is not None
        and (name != LATER_ELEMENT or t.control.newer_version)
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
    if entity.get("PersonId"):
        webhooks.notify(
            t,
            event="person.changed",
            person_id=person_id,
            changes=webhooks.PERSON_CHANGED_CHANGES,
            associate_id=who,
        )
    return {"Response": _person_entity(t, person)}


def update_interests(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    """Person.UpdateInterests (NetServer 11.13+): throws when an id is in both arrays."""
    person = _get_person(t, p.get("PersonId") or 0)
    enable, disable = set(p.get("EnableInterestIds") or []), set(p.get("DisableInterestIds") or [])
    if enable & disable:
        raise _invalid(f"Interests {sorted(enable & disable)} are both enabled and disabled")
    unknown = (enable | disable) - {iid for iid, _ in t.lists["persint"]}
    if unknown:
        raise _not_found("Interest", sorted(unknown))
    person["Interests"] = (person["Interests"] | enable) - disable
    person["Updated"] = _now()
    return {}


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
    t._write_consent(
        person_id, purpose, legal_base, source, p.get("Comment") or "", _now(), associate_id=who
    )
    return {}


def remove_consent(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    person_id = p.get("PersonId") or 0
    _get_person(t, person_id)
    purpose = _check_purpose(t, p.get("Purpose"))
    # Withdrawal keeps the row with the WITHDRAWN legal base, so it carries a time.
    row = t.consents.get((person_id, purpose))
    if row is not None:
        t._write_consent(
            person_id,
            purpose,
            "WITHDRAWN",
            row["source"],
            row["comment"],
            _now(),
            associate_id=who,
        )
    return {}


# -- companies, sales, appointments ---------------------------------------------


def _contact_entity(t: Tenant, company_id: int) -> dict[str, Any]:
    c = t.companies[company_id]
    associate = t.associates.get(c["AssociateId"], {})
    country_id = c["CountryId"]
    return {
        "ContactId": company_id,
        "Name": c["Name"],
        "Associate": {"AssociateId": c["AssociateId"], "Name": associate.get("Name")},
        "Business": {"Id": c["BusinessId"], "Value": t.list_name("business", c["BusinessId"])},
        "Category": {"Id": c["CategoryId"], "Value": t.list_name("category", c["CategoryId"])},
        "Country": {"CountryId": country_id, "Name": t.list_name("country", country_id)},
    }


def get_contact_entity(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    company_id = p.get("ContactEntityId") or 0
    return {"Response": _contact_entity(t, company_id) if company_id in t.companies else None}


def save_contact_entity(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    entity = p.get("ContactEntity") or {}
    if not (entity.get("Name") or "").strip():
        raise _invalid("A company needs a name")
    company_id = entity.get("ContactId") or 0
    if company_id and company_id not in t.companies:
        raise _not_found("Contact", company_id)
    existing = t.companies.get(company_id, {})
    company_id = company_id or t.new_id("company")
    t.companies[company_id] = {
        "ContactId": company_id,
        "Name": entity["Name"],
        "AssociateId": _ref_id(entity.get("Associate"), "AssociateId") or who,
        "CountryId": _ref_id(entity.get("Country"), "CountryId") or 47,
        "CategoryId": _ref_id(entity.get("Category"), "Id"),
        "BusinessId": _ref_id(entity.get("Business"), "Id"),
        # The hub's ContactEntity carries no e-mail: a save keeps the stored one.
        "Email": existing.get("Email", ""),
    }
    return {"Response": _contact_entity(t, company_id)}


def _check_associate(t: Tenant, associate_id: int) -> None:
    if associate_id and associate_id not in t.associates:
        raise _not_found("Associate", associate_id)


def _sale_entity(t: Tenant, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "Associate": {"AssociateId": row["AssociateId"]},
        "Contact": {"ContactId": row["ContactId"]},
        "SaleText": row["SaleText"],
        "Person": {"PersonId": row["PersonId"]},
        "Rating": {"Id": row["RatingId"], "Value": t.list_name("prob", row["RatingId"])},
        "Source": {"Id": row["SourceId"], "Value": t.list_name("source", row["SourceId"])},
        "Status": row["Status"],
        "Saledate": row["Saledate"],
        "SaleId": row["SaleId"],
        "Heading": row["Heading"],
    }


def get_sale_entity(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    row = t.sales.get(p.get("SaleEntityId") or 0)
    return {"Response": _sale_entity(t, row) if row else None}


def save_sale_entity(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    """Creates a sale when SaleId is 0, else updates that one (as NetServer does)."""
    entity = p.get("SaleEntity") or {}
    sale_id = entity.get("SaleId") or 0
    if sale_id and sale_id not in t.sales:
        raise _not_found("Sale", sale_id)
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
    row = {
        "SaleId": sale_id or t.new_id("sale"),
        "Heading": entity.get("Heading"),
        "SaleText": entity.get("SaleText") or "",
        "PersonId": person_id,
        "ContactId": company_id,
        "AssociateId": owner,
        "SourceId": _ref_id(entity.get("Source"), "Id"),
        "RatingId": _ref_id(entity.get("Rating"), "Id"),
        "Status": entity.get("Status") or "Open",
        "Saledate": entity.get("Saledate") or _now(),
        "Registered": t.sales[sale_id]["Registered"] if sale_id else _now(),
    }
    t.add_sale(row)
    return {"Response": _sale_entity(t, row)}


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


def _appointment_entity(t: Tenant, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "Associate": {"AssociateId": row["AssociateId"]},
        "Contact": {"ContactId": row["ContactId"]},
        "AppointmentId": row["AppointmentId"],
        "Description": row["Description"],
        "StartDate": row["StartDate"],
        "EndDate": row["EndDate"],
        "Person": {"PersonId": row["PersonId"]},
        "Project": {"ProjectId": row["ProjectId"]} if row["ProjectId"] else None,
        "Type": row["Type"],
        "Completed": row["Completed"],
        "Task": {"TaskListItemId": row["TaskId"], "Value": t.list_name("task", row["TaskId"])},
    }


def get_appointment_entity(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    row = t.appointments.get(p.get("AppointmentEntityId") or 0)
    return {"Response": _appointment_entity(t, row) if row else None}


def save_appointment_entity(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    """Creates a follow-up when AppointmentId is 0, else updates that one."""
    entity = p.get("AppointmentEntity") or {}
    appointment_id = entity.get("AppointmentId") or 0
    if appointment_id and appointment_id not in t.appointments:
        raise _not_found("Appointment", appointment_id)
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
    row = {
        "AppointmentId": appointment_id or t.new_id("appointment"),
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
    return {"Response": _appointment_entity(t, row)}


def get_person_appointments(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    """A SuperOffice user's own diary: PersonId is the user's person. NetServer refuses a
    contact person here (SuperOfficeDocs, REST reference of GetPersonAppointments)."""
    person_id = p.get("PersonId") or 0
    associate_id = t.associate_of_person(person_id)
    if associate_id is None:
        raise SimFault(
            f"Person {person_id} is not a SuperOffice user: GetPersonAppointments reads a "
            "user's own diary",
            exception_type="SoArgumentException",
        )
    start, end = p.get("StartTime"), p.get("EndTime")
    count = p.get("Count") or 0
    rows = [
        a
        for a in t.appointments.values()
        if a["AssociateId"] == associate_id
        and (start is None or a["StartDate"] >= start)
        and (end is None or a["StartDate"] <= end)
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


# -- lists -----------------------------------------------------------------------


def get_list(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    name = p.get("Name") or ""
    # Only the MDO list names SuperOffice documents (mdo-providers/reference/index.md).
    if name not in catalogue().mdo_lists:
        t.counters["list_refusals"] = t.counters.get("list_refusals", 0) + 1
        raise SimFault(f"Unknown MDO list {name!r}", exception_type="SoMdoListException")
    t.list_log.append(name)
    key = name.lower()
    if key == "associate":
        items = [(a["AssociateId"], a["FullName"]) for a in t.associates.values()]
    elif key == "usergroup":
        items = sorted(t.usergroups.items())
    elif key == "selection":
        items = [(sid, s["name"]) for sid, s in sorted(t.selections.items())]
    elif key == "project":
        items = [(prid, pr["name"]) for prid, pr in sorted(t.projects.items())]
    elif key == "crmscript":
        items = sorted(t.scripts.items())
    elif key == "ejcategory":
        items = [(cid, c[0]) for cid, c in sorted(t.ticket_categories.items())]
    elif key in t.lists:
        items = t.lists[key]
    else:
        raise SimFault(
            f"The simulator holds no items for MDO list {name!r}",
            exception_type="SimulatorLimitation",
        )
    return {"Response": [{"Id": i, "Name": n, "ToolTip": "", "Deleted": False} for i, n in items]}


def get_legal_bases(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    return {"Response": [{"LegalBaseId": i, "Name": n, "Key": k} for i, n, k in t.legal_bases]}


def get_consent_purposes(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    return {
        "Response": [{"ConsentPurposeId": i, "Name": n, "Key": k} for i, n, k in t.consent_purposes]
    }


# -- tickets and scripts -----------------------------------------------------------


def _ticket_entity(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "TicketId": row["TicketId"],
        "Title": row["Title"],
        "CreatedAt": row["CreatedAt"],
        "OwnedBy": {"AssociateId": row["OwnerId"]},
        "Category": {"TicketCategoryId": row["CategoryId"]},
        "Priority": {"TicketPriorityId": row["PriorityId"]},
        "Person": {"PersonId": row["PersonId"]},
    }


def get_ticket_entity(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    row = t.service_tickets.get(p.get("TicketEntityId") or 0)
    return {"Response": _ticket_entity(row) if row else None}


def save_ticket_entity(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    """Creates a request when TicketId is 0, else updates that one."""
    entity = p.get("TicketEntity") or {}
    ticket_id = entity.get("TicketId") or 0
    if ticket_id and ticket_id not in t.service_tickets:
        raise _not_found("Ticket", ticket_id)
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
    row = {
        "TicketId": ticket_id or t.new_id("ticket"),
        "Title": entity["Title"],
        "CreatedAt": t.service_tickets[ticket_id]["CreatedAt"] if ticket_id else _now(),
        "OwnerId": owner,
        "CategoryId": category_id,
        "PriorityId": priority_id,
        "PersonId": person_id,
    }
    t.service_tickets[row["TicketId"]] = row
    return {"Response": _ticket_entity(row)}


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
    ("Person", "GetPersonList"): get_person_list,
    ("Person", "SavePersonEntity"): save_person_entity,
    ("Person", "GetConsentInfos"): get_consent_infos,
    ("Person", "SetConsent"): set_consent,
    ("Person", "RemoveConsent"): remove_consent,
    ("Person", "UpdateInterests"): update_interests,
    ("Contact", "GetContactEntity"): get_contact_entity,
    ("Contact", "SaveContactEntity"): save_contact_entity,
    ("Sale", "GetSaleEntity"): get_sale_entity,
    ("Sale", "SaveSaleEntity"): save_sale_entity,
    ("Sale", "GetSalesFromPerson"): get_sales_from_person,
    ("Appointment", "GetAppointmentEntity"): get_appointment_entity,
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
    ("Ticket", "GetTicketEntity"): get_ticket_entity,
    ("Ticket", "SaveTicketEntity"): save_ticket_entity,
    ("CRMScript", "ExecuteScript"): execute_script,
    ("UserDefinedFieldInfo", "GetCustomFieldInfoList"): get_custom_field_info_list,
    ("Webhook", "SaveWebhook"): webhooks.save_webhook,
    ("Webhook", "GetWebhook"): webhooks.get_webhook,
    ("Webhook", "GetAllWebhooks"): webhooks.get_all_webhooks,
    ("Webhook", "DeleteWebhook"): webhooks.delete_webhook,
    ("Webhook", "GetLastError"): webhooks.get_last_error,
}
