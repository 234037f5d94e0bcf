"""Person and Contact agents: persons, companies, interests and person fields."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ..errors import NotFoundCrmError, PermanentCrmError
from ..types import Company, Interest, NewCompany, Person, PersonBrief, PersonMatch
from . import queries
from .archive import as_datetime
from .direct import BOOLEAN as _BOOLEAN
from .direct import DATETIME as _DATETIME
from .direct import INT as _INT
from .direct import STRING as _STRING
from .direct import LeftToZeep as _LeftToZeep
from .direct import fields as _fields
from .direct import items as _items
from .direct import response_fields
from .direct import value as _value
from .transport import elements


def person_from_entity(entity: Any) -> Person:
    emails = tuple(e.Value for e in elements(entity.Emails, "EntityElement") if e.Value)
    phones = [e.Value for e in elements(entity.OfficePhones, "EntityElement") if e.Value]
    mobiles = [e.Value for e in elements(entity.MobilePhones, "EntityElement") if e.Value]
    custom = {
        pair.Key: pair.Value or "" for pair in elements(entity.CustomFields, "StringKeyValuePair")
    }
    contact = entity.Contact
    return Person(
        id=entity.PersonId,
        first_name=entity.Firstname or "",
        last_name=entity.Lastname or "",
        title=entity.Title or "",
        email=emails[0] if emails else "",
        emails=emails,
        phone=phones[0] if phones else "",
        mobile=mobiles[0] if mobiles else "",
        company_id=(contact.ContactId or None) if contact is not None else None,
        company_name=(contact.Name or "") if contact is not None else "",
        company_owner_id=(contact.AssociateId or None) if contact is not None else None,
        country_id=entity.Country.CountryId if entity.Country is not None else None,
        no_mailing=bool(entity.NoMailing),
        created_at=entity.CreatedDate,
        updated_at=entity.UpdatedDate,
        interests=tuple(
            Interest(id=i.Id, name=i.Name or "", selected=bool(i.Selected))
            for i in elements(entity.Interests, "SelectableMDOListItem")
        ),
        custom_fields=custom,
    )


# -- a person read straight from the reply's XML ---------------------------------------------
#
# GetPersonEntity's reply (some 60 elements, of which the hub reads 17) is read as zeep
# reads it, by crm.client.direct's rules; tests/crm/test_person_reading.py compares both.


def person_from_reply(element: Any) -> Person | None:
    """The Person of a GetPersonEntityResponse element (None: no such person), read as
    ``person_from_entity`` reads zeep's object of it; _LeftToZeep where zeep must."""
    # The whole reply is checked: zeep fails on an xsi:type it does not know anywhere in it.
    wrapper = response_fields(element, "GetPersonEntity", whole=True)
    entity = _fields(wrapper["Response"]) if wrapper and "Response" in wrapper else None
    if entity is None or not _value(entity, "PersonId", _INT):
        return None

    def texts(name: str) -> list[str]:
        values = (_value(e, "Value", _STRING) for e in _items(entity, name, "EntityElement"))
        return [v for v in values if v]

    emails, phones, mobiles = tuple(texts("Emails")), texts("OfficePhones"), texts("MobilePhones")
    contact = _fields(entity["Contact"]) if "Contact" in entity else None
    country = _fields(entity["Country"]) if "Country" in entity else None
    return Person(
        id=_value(entity, "PersonId", _INT),
        first_name=_value(entity, "Firstname", _STRING) or "",
        last_name=_value(entity, "Lastname", _STRING) or "",
        title=_value(entity, "Title", _STRING) or "",
        email=emails[0] if emails else "",
        emails=emails,
        phone=phones[0] if phones else "",
        mobile=mobiles[0] if mobiles else "",
        company_id=_value(contact, "ContactId", _INT) or None,
        company_name=_value(contact, "Name", _STRING) or "",
        company_owner_id=_value(contact, "AssociateId", _INT) or None,
        country_id=_value(country, "CountryId", _INT),
        no_mailing=bool(_value(entity, "NoMailing", _BOOLEAN)),
        created_at=_value(entity, "CreatedDate", _DATETIME),
        updated_at=_value(entity, "UpdatedDate", _DATETIME),
        interests=tuple(
            Interest(
                id=_value(i, "Id", _INT),
                name=_value(i, "Name", _STRING) or "",
                selected=bool(_value(i, "Selected", _BOOLEAN)),
            )
            for i in _items(entity, "Interests", "SelectableMDOListItem")
        ),
        custom_fields={
            _value(pair, "Key", _STRING): _value(pair, "Value", _STRING) or ""
            for pair in _items(entity, "CustomFields", "StringKeyValuePair")
        },
    )


def _read_person(element: Any, zeep_body: Any) -> Any:
    """The Person, None for no person, or zeep's entity where zeep is left to read it (for
    ``person_from_entity`` after the call, as without the direct reading)."""
    try:
        return person_from_reply(element)
    except _LeftToZeep:
        entity = zeep_body().Response
        return None if entity is None or not entity.PersonId else entity


# -- persons in one call ---------------------------------------------------------------------


def _briefs_of_carriers(body: Any) -> dict[int, PersonBrief]:
    """The persons in zeep's body of a GetPersonList reply, by id."""
    briefs = (
        PersonBrief(
            id=p.PersonId,
            first_name=p.Firstname or "",
            last_name=p.Lastname or "",
            email=p.Email or "",
            company_id=p.ContactId or None,
            company_name=p.ContactName or "",
        )
        for p in elements(body.Response, "Person")
    )
    return {brief.id: brief for brief in briefs if brief.id}


def _briefs_read(element: Any) -> dict[int, PersonBrief]:
    """The persons of a GetPersonList reply, read as ``_briefs_of_carriers`` reads zeep's
    body of it."""
    reply = response_fields(element, "GetPersonList", whole=True)
    briefs = (
        PersonBrief(
            id=_value(p, "PersonId", _INT),
            first_name=_value(p, "Firstname", _STRING) or "",
            last_name=_value(p, "Lastname", _STRING) or "",
            email=_value(p, "Email", _STRING) or "",
            company_id=_value(p, "ContactId", _INT) or None,
            company_name=_value(p, "ContactName", _STRING) or "",
        )
        for p in _items(reply, "Response", "Person")
    )
    return {brief.id: brief for brief in briefs if brief.id}


class PersonOperations:
    """Person.* and Contact.* operations, and the person archive look-ups."""

    def _person_entity(self, person_id: int) -> Any:
        entity = self._call("Person", "GetPersonEntity", PersonEntityId=person_id).Response
        if entity is None or not entity.PersonId:
            raise NotFoundCrmError(f"Person {person_id} does not exist")
        return entity

    def get_person(self, *, person_id: int) -> Person:
        """Person.GetPersonEntity."""
        if not self.read_persons_directly:
            return person_from_entity(self._person_entity(person_id))
        person = self._call(
            "Person", "GetPersonEntity", read=_read_person, PersonEntityId=person_id
        )
        if person is None:
            raise NotFoundCrmError(f"Person {person_id} does not exist")
        return person if isinstance(person, Person) else person_from_entity(person)

    def get_persons(self, *, person_ids: Iterable[int]) -> dict[int, PersonBrief]:
        """Person.GetPersonList: the persons of ``person_ids`` that SuperOffice answers
        with, by id, from the light Person carrier (a person it does not answer with is
        not in the result). For a person's company without one call per person."""
        ids = sorted(set(person_ids))
        if not ids:
            return {}
        briefs = self._call_read(
            "Person",
            "GetPersonList",
            directly=_briefs_read,
            through_zeep=_briefs_of_carriers,
            PersonIds={"int": ids},
        )
        asked = set(ids)
        return {person_id: brief for person_id, brief in briefs.items() if person_id in asked}

    def _person_matches(self, query, values: dict, *, page_size: int) -> list[PersonMatch]:
        rows = self._query(query, values, page=0, page_size=page_size)
        return [
            PersonMatch(
                id=row["personId"] or key,
                first_name=row["firstName"] or "",
                last_name=row["lastName"] or "",
                email=row["email/emailAddress"] or "",
                company_id=row["contactId"] or None,
                registered_at=as_datetime(row["personRegisteredDate"]),
            )
            for key, row in rows
        ]

    def find_persons_by_email(self, *, email: str) -> list[PersonMatch]:
        """Archive.GetArchiveListByColumns on provider ``Person``, restriction
        ``email/emailAddress is <email>``; oldest registration first (the registration is
        a date: persons registered the same day come by id)."""
        matches = self._person_matches(
            queries.PERSONS_BY_EMAIL, {"email/emailAddress": email.strip()}, page_size=100
        )
        far_future = datetime.max.replace(tzinfo=UTC)
        return sorted(matches, key=lambda m: (m.registered_at or far_future, m.id))

    # What search_persons looks in (Archive provider Person, operator "contains").
    PERSON_SEARCHES = {
        "name": queries.PERSONS_BY_NAME,
        "company": queries.PERSONS_BY_COMPANY,
        "email": queries.PERSONS_BY_EMAIL_PART,
    }

    def search_persons(self, *, text: str, field: str, limit: int = 20) -> list[PersonMatch]:
        """Archive.GetArchiveListByColumns on provider ``Person``, restriction
        ``<column> contains <text>``: persons by part of their name, their company's name
        or their email (e.g. ``@example.com`` for a company domain); by id."""
        if field not in self.PERSON_SEARCHES or not text.strip():
            raise PermanentCrmError(f"Cannot search persons by {field!r}")
        query = self.PERSON_SEARCHES[field]
        [(column, _)] = query.restrictions
        return self._person_matches(
            query, {column: text.strip()}, page_size=max(1, min(limit, 100))
        )

    def _companies(self, query, values: dict, *, page_size: int) -> list[Company]:
        rows = self._query(query, values, page=0, page_size=page_size)
        return [
            Company(
                id=row["contactId"] or key,
                name=row["name"] or "",
                department=row["department"] or "",
            )
            for key, row in rows
        ]

    def search_companies(self, *, text: str, limit: int = 20) -> list[Company]:
        """Archive.GetArchiveListByColumns on provider ``Contact``, restriction
        ``name contains <text>``: companies by part of their name, by name."""
        if not text.strip():
            raise PermanentCrmError("Give part of the company's name")
        return self._companies(
            queries.COMPANIES_BY_NAME, {"name": text.strip()}, page_size=max(1, min(limit, 100))
        )

    def get_company(self, *, company_id: int) -> Company:
        """Archive.GetArchiveListByColumns on provider ``Contact``, restriction
        ``contactId equals <id>``; NotFoundCrmError when SuperOffice has no such company."""
        found = self._companies(queries.COMPANY_BY_ID, {"contactId": company_id}, page_size=1)
        if not found:
            raise NotFoundCrmError(f"SuperOffice has no company {company_id}")
        return found[0]

    def create_company(self, *, company: NewCompany) -> int:
        """Contact.SaveContactEntity with ContactId 0 (creates a company)."""
        entity: dict[str, Any] = {"ContactId": 0, "Name": company.name}
        if company.owner_id:
            entity["Associate"] = {"AssociateId": company.owner_id}
        if company.business_id:
            entity["Business"] = {"Id": company.business_id}
        if company.category_id:
            entity["Category"] = {"Id": company.category_id}
        if company.country_id:
            entity["Country"] = {"CountryId": company.country_id}
        saved = self._call("Contact", "SaveContactEntity", ContactEntity=entity).Response
        return saved.ContactId

    def create_person(
        self,
        *,
        first_name: str,
        last_name: str,
        email: str,
        phone: str = "",
        mobile: str = "",
        title: str = "",
        company_id: int | None = None,
        new_company: NewCompany | None = None,
    ) -> Person:
        """Person.SavePersonEntity with PersonId 0 under an existing company, or under a
        new one made first with Contact.SaveContactEntity."""
        if (company_id is None) == (new_company is None):
            raise PermanentCrmError("Give exactly one of company_id and new_company")
        if new_company is not None:
            company_id = self.create_company(company=new_company)
        entity: dict[str, Any] = {
            "PersonId": 0,
            "Firstname": first_name,
            "Lastname": last_name,
            "Title": title,
            "Emails": {"EntityElement": [{"Value": email}]} if email else None,
            "MobilePhones": {"EntityElement": [{"Value": mobile}]} if mobile else None,
            "OfficePhones": {"EntityElement": [{"Value": phone}]} if phone else None,
            "Contact": {"ContactId": company_id},
        }
        saved = self._call("Person", "SavePersonEntity", PersonEntity=entity).Response
        return person_from_entity(saved)

    def _save_person_entity(self, entity: Any) -> Person:
        # Read-modify-write of the whole entity as NetServer returned it, so fields
        # the hub does not know about are sent back unchanged.
        saved = self._call("Person", "SavePersonEntity", PersonEntity=entity).Response
        return person_from_entity(saved)

    def person_interests(self, *, person_id: int) -> list[Interest]:
        """Person.GetPersonEntity (its Interests: available and selected, MDO list persint)."""
        return list(self.get_person(person_id=person_id).interests)

    def set_person_interests(
        self, *, person_id: int, add_ids: Iterable[int] = (), remove_ids: Iterable[int] = ()
    ) -> list[Interest]:
        """Person.GetPersonEntity, then only what changes: Person.UpdateInterests where the
        tenant's WSDL offers it (NetServer 11.13 and later), else Interests[].Selected
        flipped and the whole person saved (Person.SavePersonEntity). An id in both
        ``add_ids`` and ``remove_ids`` is added."""
        add = set(add_ids)
        remove = set(remove_ids) - add
        entity = self._person_entity(person_id)
        items = elements(entity.Interests, "SelectableMDOListItem")
        unknown = (add | remove) - {item.Id for item in items}
        if unknown:
            raise NotFoundCrmError(f"Unknown interest ids {sorted(unknown)}")
        selected = {item.Id for item in items if item.Selected}
        enable, disable = add - selected, remove & selected
        if not enable and not disable:
            return list(person_from_entity(entity).interests)
        if self._offers("Person", "UpdateInterests"):
            self._call(
                "Person",
                "UpdateInterests",
                PersonId=person_id,
                EnableInterestIds={"int": sorted(enable)},
                DisableInterestIds={"int": sorted(disable)},
            )
            now_selected = (selected | enable) - disable
            return [
                Interest(id=item.Id, name=item.Name or "", selected=item.Id in now_selected)
                for item in items
            ]
        for item in items:
            item.Selected = item.Id in (selected | enable) - disable
        return list(self._save_person_entity(entity).interests)

    def get_no_mailing(self, *, person_id: int) -> bool:
        """Person.GetPersonEntity (NoMailing, "No Mailings": the direct-mail flag, "Do not
        send DM's"; the e-marketing switch is the EMARKETING consent, not this)."""
        return bool(self._person_entity(person_id).NoMailing)

    def set_no_mailing(self, *, person_id: int, no_mailing: bool) -> None:
        """Person.GetPersonEntity + Person.SavePersonEntity with NoMailing set."""
        entity = self._person_entity(person_id)
        if bool(entity.NoMailing) == no_mailing:
            return
        entity.NoMailing = no_mailing
        self._save_person_entity(entity)

    def set_person_custom_field(self, *, person_id: int, field: str, value: str) -> None:
        """Person.GetPersonEntity + Person.SavePersonEntity with CustomFields[field] = value.

        ``field`` is a user-defined field key ("SuperOffice:3") or an extra field name
        ("x_score"); ``value`` is NetServer-encoded ("[I:3]", plain text...)."""
        entity = self._person_entity(person_id)
        pairs = [
            {"Key": p.Key, "Value": p.Value}
            for p in elements(entity.CustomFields, "StringKeyValuePair")
            if p.Key != field
        ]
        pairs.append({"Key": field, "Value": value})
        entity.CustomFields = {"StringKeyValuePair": pairs}
        self._save_person_entity(entity)
