"""The action registry: what each automation type does in SuperOffice for one run.

Every function gets the claimed run, the account's CRM client (correlated with the run's
key, so its calls show on the run's page) and the person id, and returns what it made.
Creates write the run's marker into the object's text in the same save call and, when
an earlier attempt may have got through, look for the marker first. Set operations check
membership first or are idempotent in SuperOffice.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from .models import AutomationType, Run

logger = logging.getLogger(__name__)


@dataclass
class ActionResult:
    object_type: str = ""
    object_id: int | None = None


# --- person resolution ------------------------------------------------------------------


def person_id_resolve(*, run: Run, client) -> int | None:
    """The contact's SuperOffice person; with the account's auto-match on, the one person
    whose email is the contact's, when there is exactly one."""
    from .models import AutomationSettings
    from .services import contact_person_set_automatically

    contact = run.contact
    if contact.superoffice_person_id:
        return contact.superoffice_person_id
    auto = AutomationSettings.objects.filter(
        account_id=run.account_id, auto_match_single_email=True
    ).exists()
    if not auto:
        return None
    persons = client.find_persons_by_email(contact.email)
    if len(persons) != 1:
        return None
    person_id = persons[0].person_id
    contact_person_set_automatically(contact=contact, person_id=person_id)
    return person_id


# --- descriptions -------------------------------------------------------------------------


class _SafeFacts(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def description_render(*, template: str, run: Run) -> str:
    """Fill `{campaign}`, `{link}`, `{form}`, `{time}`, `{email}`, `{name}` from the event.

    Only plain names are substituted; anything else (`{0}`, `{x.y}`, `{x[0]}`, format
    specs) stays as typed, so a template can never reach into objects.
    """
    event = run.event
    facts = _SafeFacts(
        campaign=event.campaign.name if event.campaign_id else "",
        link=(event.link.name if event.link_id else "") or "",
        url=(event.link.url if event.link_id else "") or "",
        form=(event.form.name if event.form_id else "") or "",
        time=timezone.localtime(event.occurred_at).strftime("%Y-%m-%d %H:%M"),
        email=run.contact.email,
        name=run.contact.full_name,
        event=event.get_type_display(),
    )
    out: list[str] = []
    for literal, field, spec, conversion in string.Formatter().parse(template or ""):
        out.append(literal)
        if field is None:
            continue
        if field.isidentifier() and not spec and not conversion:
            out.append(str(facts[field]))
        else:
            out.append("{" + field + (f"!{conversion}" if conversion else "")
                       + (f":{spec}" if spec else "") + "}")
    return "".join(out)


def _text_with_marker(text: str, run: Run) -> str:
    return f"{text}\n\n{run.marker}" if text else run.marker


# --- owner ------------------------------------------------------------------------------


def _owner_id(*, run: Run, person) -> int | None:
    owner = run.automation.settings.get("owner_id")
    if owner:
        return int(owner)
    return getattr(person, "company_owner_id", None)


# --- the nine actions -------------------------------------------------------------------


def _create_sale(*, run: Run, client, person_id: int) -> ActionResult:
    s = run.automation.settings
    if run.attempts > 1:
        found = client.find_sale_by_marker(person_id=person_id, marker=run.marker)
        if found is not None:
            _sale_extras(run=run, client=client, person_id=person_id, person=None)
            return ActionResult("sale", found.sale_id)
    person = client.get_person(person_id)
    text = description_render(template=s.get("description", ""), run=run)
    sale = client.create_sale(
        person_id=person_id,
        contact_id=getattr(person, "contact_id", None),
        owner_id=_owner_id(run=run, person=person),
        heading=(s.get("heading") or text.splitlines()[0] if text else run.automation.name)[:200],
        text=_text_with_marker(text, run),
        source_id=s.get("source_id"),
        rating_id=s.get("rating_id"),
    )
    _sale_extras(run=run, client=client, person_id=person_id, person=person)
    return ActionResult("sale", sale.sale_id)


def _sale_extras(*, run: Run, client, person_id: int, person) -> None:
    s = run.automation.settings
    if s.get("extra_selection_id"):
        _add_to_selection(client=client, selection_id=int(s["extra_selection_id"]),
                          person_id=person_id, person=person)
    if s.get("extra_project_id"):
        _add_to_project(client=client, project_id=int(s["extra_project_id"]), person_id=person_id,
                        person=person)


def _appointment(*, run: Run, client, person_id: int, completed: bool) -> ActionResult:
    s = run.automation.settings
    if run.attempts > 1:
        found = client.find_appointment_by_marker(person_id=person_id, marker=run.marker)
        if found is not None:
            return ActionResult("appointment", found.appointment_id)
    person = client.get_person(person_id)
    text = description_render(template=s.get("description", ""), run=run)
    now = timezone.now()
    appointment = client.create_appointment(
        person_id=person_id,
        contact_id=getattr(person, "contact_id", None),
        owner_id=_owner_id(run=run, person=person),
        activity_type_id=s.get("activity_type_id"),
        description=_text_with_marker(text, run),
        completed=completed,
        start=now,
        end=now + timedelta(minutes=30),
    )
    return ActionResult("appointment", appointment.appointment_id)


def _create_task(*, run: Run, client, person_id: int) -> ActionResult:
    return _appointment(run=run, client=client, person_id=person_id, completed=False)


def _notify_sales_rep(*, run: Run, client, person_id: int) -> ActionResult:
    return _appointment(run=run, client=client, person_id=person_id, completed=True)


def _interest_ids(run: Run) -> list[int]:
    return [int(i) for i in run.automation.settings.get("interest_ids") or []]


def _set_interest(*, run: Run, client, person_id: int) -> ActionResult:
    client.set_person_interests(person_id, add=_interest_ids(run), remove=[])
    return ActionResult("person", person_id)


def _unset_interest(*, run: Run, client, person_id: int) -> ActionResult:
    client.set_person_interests(person_id, add=[], remove=_interest_ids(run))
    return ActionResult("person", person_id)


def _add_to_project(*, client, project_id: int, person_id: int, person=None) -> None:
    if client.is_project_member(project_id=project_id, person_id=person_id):
        return
    if person is None:
        person = client.get_person(person_id)
    client.add_project_member(project_id=project_id, person_id=person_id,
                              contact_id=getattr(person, "contact_id", None))


def _add_to_selection(*, client, selection_id: int, person_id: int, person=None) -> None:
    if client.is_selection_member(selection_id=selection_id, person_id=person_id):
        return
    if person is None:
        person = client.get_person(person_id)
    client.add_selection_member(selection_id=selection_id, person_id=person_id,
                                contact_id=getattr(person, "contact_id", None))


def _add_to_project_action(*, run: Run, client, person_id: int) -> ActionResult:
    project_id = int(run.automation.settings["project_id"])
    _add_to_project(client=client, project_id=project_id, person_id=person_id)
    return ActionResult("project", project_id)


def _remove_from_project(*, run: Run, client, person_id: int) -> ActionResult:
    project_id = int(run.automation.settings["project_id"])
    client.remove_project_member(project_id=project_id, person_id=person_id)
    return ActionResult("project", project_id)


def _add_to_selection_action(*, run: Run, client, person_id: int) -> ActionResult:
    selection_id = int(run.automation.settings["selection_id"])
    _add_to_selection(client=client, selection_id=selection_id, person_id=person_id)
    return ActionResult("selection", selection_id)


def _remove_from_selection(*, run: Run, client, person_id: int) -> ActionResult:
    selection_id = int(run.automation.settings["selection_id"])
    client.remove_selection_member(selection_id=selection_id, person_id=person_id)
    return ActionResult("selection", selection_id)


ACTIONS: dict[str, Callable[..., ActionResult]] = {
    AutomationType.CREATE_SALE: _create_sale,
    AutomationType.CREATE_TASK: _create_task,
    AutomationType.NOTIFY_SALES_REP: _notify_sales_rep,
    AutomationType.SET_INTEREST: _set_interest,
    AutomationType.UNSET_INTEREST: _unset_interest,
    AutomationType.ADD_TO_PROJECT: _add_to_project_action,
    AutomationType.REMOVE_FROM_PROJECT: _remove_from_project,
    AutomationType.ADD_TO_SELECTION: _add_to_selection_action,
    AutomationType.REMOVE_FROM_SELECTION: _remove_from_selection,
}


def perform(*, run: Run, client, person_id: int) -> ActionResult:
    return ACTIONS[run.automation.type](run=run, client=client, person_id=person_id)
