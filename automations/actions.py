"""The action registry: what each automation type does in SuperOffice for one run.

Every function gets the claimed run, the account's CRM client (correlated with the run's
key, so its calls show on the run's page) and the person id, and returns what it made.
Creates write the run's marker into the object's text in the same save call and, when
an earlier attempt may have got through, look for the marker first. Set operations check
membership first or are idempotent in SuperOffice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from campaigns import merge_fields

from .models import AutomationType, Run

logger = logging.getLogger(__name__)


@dataclass
class ActionResult:
    object_type: str = ""
    object_id: int | None = None
    # What SuperOffice answered, kept on the run (a CRMScript's printed output).
    output: str = ""


# --- person resolution ------------------------------------------------------------------


def person_id_resolve(*, run: Run, client) -> int | None:
    """The contact's SuperOffice person; with the account's auto-match on, the one person
    whose email is the contact's, when there is exactly one."""
    from .models import AutomationSettings
    from .services import contact_person_set_automatically

    contact = run.contact
    if contact.superoffice_person_id:
        return contact.superoffice_person_id
    try:
        # Loaded with the claimed run (automations.services.run_claim), else one query.
        loaded = run.account.automation_settings
        auto = loaded.auto_match_single_email
    except AutomationSettings.DoesNotExist:
        auto = False
    if not auto:
        return None
    persons = client.find_persons_by_email(email=contact.email)
    if len(persons) != 1:
        return None
    person_id = persons[0].id
    contact_person_set_automatically(contact=contact, person_id=person_id)
    return person_id


# --- descriptions -------------------------------------------------------------------------


# The event's own fields, besides the contact's (campaigns.merge_fields.CONTACT_FIELDS).
EVENT_FIELDS: dict[str, str] = {
    "campaign": "campaign",
    "link": "link name",
    "url": "link address",
    "form": "form name",
    "time": "time of the event",
    "event": "kind of event",
}
DESCRIPTION_FIELDS: dict[str, str] = {**EVENT_FIELDS, **merge_fields.CONTACT_FIELDS}


def description_render(*, template: str, run: Run) -> str:
    """The template with its merge fields filled in from the run's event and contact, in
    the syntax sendouts use (campaigns.merge_fields): `{campaign}`, `{link}`, `{url}`,
    `{form}`, `{time}`, `{event}`, the contact's `{first_name}`, `{last_name}`, `{name}`,
    `{company}`, `{email}`, and a fallback after `|`. Anything else stays as typed."""
    event = run.event
    facts = {
        "campaign": event.campaign.name if event.campaign_id else "",
        "link": (event.link.name if event.link_id else "") or "",
        "url": (event.link.url if event.link_id else "") or "",
        "form": (event.form.name if event.form_id else "") or "",
        "time": timezone.localtime(event.occurred_at).strftime("%Y-%m-%d %H:%M"),
        "event": event.get_type_display(),
        **merge_fields.contact_facts(run.contact),
    }
    return merge_fields.render(template, facts=facts)


def _text_with_marker(text: str, run: Run) -> str:
    return f"{text}\n\n{run.marker}" if text else run.marker


# --- owner ------------------------------------------------------------------------------

# The hub's own SuperOffice user per account, the last-resort owner (see _owner_id).
_default_owner: dict[int, tuple[float, int]] = {}
_DEFAULT_OWNER_TTL = 3600.0


def _owner_id(*, run: Run, client, person) -> int:
    """The automation's owner, else the owner of the person's company.

    When SuperOffice does not tell the company's owner (the client's Person has no
    `company_owner_id`), the hub's own SuperOffice user owns it, looked up once an hour.
    """
    owner = run.automation.settings.get("owner_id")
    if owner:
        return int(owner)
    company_owner = getattr(person, "company_owner_id", None)
    if company_owner:
        return int(company_owner)
    cached = _default_owner.get(run.account_id)
    if cached and time.monotonic() - cached[0] < _DEFAULT_OWNER_TTL:
        return cached[1]
    associate_id = client.whoami().associate_id
    _default_owner[run.account_id] = (time.monotonic(), associate_id)
    return associate_id


# --- the nine actions -------------------------------------------------------------------


def _outcome_unknown(run: Run) -> bool:
    # attempts counts claims: a run claimed before may have created its object already
    # (timeout after the save was sent, worker killed, lease expired).
    return run.attempts > 1


# --- persons read ahead ----------------------------------------------------------------

# The actions of this module that read the person only for the company to file the
# object under, when the automation names the owner (without one, the owner is the
# company's, which only the PersonEntity tells): for these, one Person.GetPersonList of
# the persons of several runs can stand in for a Person.GetPersonEntity each
# (automations.services._persons_read_ahead). The link actions read their persons
# themselves.
_READ_PERSON_FOR_COMPANY = {
    AutomationType.CREATE_SALE,
    AutomationType.CREATE_TASK,
    AutomationType.NOTIFY_SALES_REP,
}


def persons_to_read_ahead(runs: list[Run]) -> list[int]:
    """The SuperOffice person of each of ``runs`` whose action reads a person only for
    its company (see _READ_PERSON_FOR_COMPANY), in the order of the runs; a person of
    several runs comes once for each."""
    return [
        run.contact.superoffice_person_id
        for run in runs
        if run.contact.superoffice_person_id
        and run.automation.type in _READ_PERSON_FOR_COMPANY
        and run.automation.settings.get("owner_id")
        and run.automation.deleted_at is None
    ]


def _person_for_company(*, run: Run, client, person_id: int, read_ahead):
    """The person as the action reads it for its company: read ahead with other runs'
    persons where the automation names the owner, else Person.GetPersonEntity. (The
    owner check matters: the same person may be read ahead for another automation that
    names one, and a person read ahead does not tell its company's owner.)"""
    if read_ahead and run.automation.settings.get("owner_id"):
        brief = read_ahead.get(person_id)
        if brief is not None:
            return brief
    return client.get_person(person_id=person_id)


def _create_sale(*, run: Run, client, person_id: int, read_ahead=None) -> ActionResult:
    s = run.automation.settings
    person = None
    sale_id = None
    if _outcome_unknown(run):
        sale_id = client.find_sale_by_marker(person_id=person_id, marker=run.marker)
    if sale_id is None:
        person = _person_for_company(
            run=run, client=client, person_id=person_id, read_ahead=read_ahead
        )
        text = description_render(template=s.get("description", ""), run=run)
        heading = (text.splitlines()[0] if text else "") or run.automation.name
        sale_id = client.create_sale(
            heading=heading[:200],
            text=_text_with_marker(text, run),
            person_id=person_id,
            owner_id=_owner_id(run=run, client=client, person=person),
            company_id=person.company_id,
            source_id=_int(s.get("source_id")),
            rating_id=_int(s.get("rating_id")),
        )
    company_id = person.company_id if person is not None else None
    if s.get("extra_selection_id"):
        _add_to_selection(
            client=client,
            selection_id=int(s["extra_selection_id"]),
            person_id=person_id,
            company_id=company_id,
        )
    if s.get("extra_project_id"):
        _add_to_project(
            client=client,
            project_id=int(s["extra_project_id"]),
            person_id=person_id,
            company_id=company_id,
        )
    return ActionResult("sale", sale_id)


def _int(value) -> int | None:
    return int(value) if value not in (None, "") else None


def _appointment(
    *, run: Run, client, person_id: int, completed: bool, read_ahead=None
) -> ActionResult:
    s = run.automation.settings
    if _outcome_unknown(run):
        found = client.find_appointment_by_marker(person_id=person_id, marker=run.marker)
        if found is not None:
            return ActionResult("appointment", found)
    person = _person_for_company(run=run, client=client, person_id=person_id, read_ahead=read_ahead)
    text = description_render(template=s.get("description", ""), run=run)
    start = timezone.now()
    appointment_id = client.create_appointment(
        person_id=person_id,
        owner_id=_owner_id(run=run, client=client, person=person),
        task_id=int(s["activity_type_id"]),
        description=_text_with_marker(text, run),
        start=start,
        end=start + timedelta(minutes=30),
        completed=completed,
        company_id=person.company_id,
    )
    return ActionResult("appointment", appointment_id)


def _create_task(*, run: Run, client, person_id: int, read_ahead=None) -> ActionResult:
    return _appointment(
        run=run, client=client, person_id=person_id, completed=False, read_ahead=read_ahead
    )


def _notify_sales_rep(*, run: Run, client, person_id: int, read_ahead=None) -> ActionResult:
    return _appointment(
        run=run, client=client, person_id=person_id, completed=True, read_ahead=read_ahead
    )


def _interest_ids(run: Run) -> list[int]:
    return [int(i) for i in run.automation.settings.get("interest_ids") or []]


def _set_interest(*, run: Run, client, person_id: int) -> ActionResult:
    # Idempotent: the client saves only when a Selected flag actually changes.
    client.set_person_interests(person_id=person_id, add_ids=_interest_ids(run))
    return ActionResult("person", person_id)


def _unset_interest(*, run: Run, client, person_id: int) -> ActionResult:
    client.set_person_interests(person_id=person_id, remove_ids=_interest_ids(run))
    return ActionResult("person", person_id)


def _add_to_project(*, client, project_id: int, person_id: int, company_id=None) -> None:
    # Membership is a set: check first, so a retried run does not add a second row.
    if client.project_has_person(project_id=project_id, person_id=person_id):
        return
    client.project_add_person(project_id=project_id, person_id=person_id, company_id=company_id)


def _add_to_selection(*, client, selection_id: int, person_id: int, company_id=None) -> None:
    if client.selection_has_person(selection_id=selection_id, person_id=person_id):
        return
    client.selection_add_person(
        selection_id=selection_id, person_id=person_id, company_id=company_id
    )


def _add_to_project_action(*, run: Run, client, person_id: int) -> ActionResult:
    project_id = int(run.automation.settings["project_id"])
    _add_to_project(client=client, project_id=project_id, person_id=person_id)
    return ActionResult("project", project_id)


def _remove_from_project(*, run: Run, client, person_id: int) -> ActionResult:
    project_id = int(run.automation.settings["project_id"])
    client.project_remove_person(project_id=project_id, person_id=person_id)
    return ActionResult("project", project_id)


def _add_to_selection_action(*, run: Run, client, person_id: int) -> ActionResult:
    selection_id = int(run.automation.settings["selection_id"])
    _add_to_selection(client=client, selection_id=selection_id, person_id=person_id)
    return ActionResult("selection", selection_id)


def _remove_from_selection(*, run: Run, client, person_id: int) -> ActionResult:
    selection_id = int(run.automation.settings["selection_id"])
    # Removing a person who is not a member is not an error in SuperOffice.
    client.selection_remove_person(selection_id=selection_id, person_id=person_id)
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


# The link actions (automations.link_actions) are added by AutomationsConfig.ready().


class UnknownActionError(Exception):
    """The automation's type has no action here: the run fails, it is not retried."""


def perform(*, run: Run, client, person_id: int, read_ahead=None) -> ActionResult:
    """Do the run's action for the person. ``read_ahead``: persons read with other runs'
    (crm.types.PersonBrief by id), for the actions that read a person only for its
    company."""
    action = ACTIONS.get(run.automation.type)
    if action is None:
        raise UnknownActionError(f"No action for automation type {run.automation.type!r}")
    if read_ahead and run.automation.type in _READ_PERSON_FOR_COMPANY:
        return action(run=run, client=client, person_id=person_id, read_ahead=read_ahead)
    return action(run=run, client=client, person_id=person_id)
