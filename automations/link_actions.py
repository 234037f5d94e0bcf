"""The actions a tracked link's click can take in SuperOffice, beyond the nine of
automations.actions: set a person field, a follow-up, a request (ticket), a CRMScript.

They are automation types like the others (usually triggered by `link_clicked` on one
link), so they share the ledger, the claim, retries and the Manage Automations Queue.
Exactly once in effect, as in automations.actions:
- set field: setting a value is idempotent;
- follow-up: the run's marker goes into the appointment's description; a later
  attempt looks for it first;
- request: the marker goes into the ticket's title; a later attempt looks for it first
  (Archive provider Ticket, `title contains`);
- script: SuperOffice cannot tell whether a script ran. The script gets the run's key
  (`emhubRunKey`) so it can ignore a second call with the same key; the hub calls it
  again only when an earlier attempt's outcome is unknown.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.utils import timezone

from .actions import ActionResult, _outcome_unknown, _owner_id, description_render
from .models import AutomationType, Run

# --- set field ---------------------------------------------------------------------------

TEXT_TYPES = {"ShortText", "LongText", "ListText"}
INTEGER_TYPES = {"Integer", "MdoList", "RelationTo"}
SETTABLE_FIELD_TYPES = TEXT_TYPES | INTEGER_TYPES | {"Checkbox", "Date", "Decimal"}


class FieldValueInvalid(ValueError):
    pass


def field_value_encode(*, field_type: str, value) -> str:
    """A marketer's value as NetServer writes custom fields: `[I:n]` for numbers, list
    items and checkboxes, `[D:MM/DD/YYYY]` for dates, `[F:x]` for decimals, text as is.

    FieldValueInvalid when the value does not fit the type (the form shows it)."""
    raw = "" if value is None else str(value).strip()
    if field_type in TEXT_TYPES:
        return str(value or "")
    if field_type == "Checkbox":
        truthy = raw.lower() in {"1", "true", "on", "yes", "[i:1]"}
        falsy = raw.lower() in {"", "0", "false", "off", "no", "[i:0]"}
        if not (truthy or falsy):
            raise FieldValueInvalid("Tick or untick the box.")
        return f"[I:{1 if truthy else 0}]"
    if field_type in INTEGER_TYPES:
        try:
            return f"[I:{int(raw)}]"
        except ValueError as exc:
            raise FieldValueInvalid("Enter a whole number.") from exc
    if field_type == "Decimal":
        try:
            number = Decimal(raw.replace(",", "."))
        except InvalidOperation as exc:
            raise FieldValueInvalid("Enter a number.") from exc
        return f"[F:{number}]"
    if field_type == "Date":
        try:
            day = value if isinstance(value, date) else date.fromisoformat(raw)
        except ValueError as exc:
            raise FieldValueInvalid("Enter a date as YYYY-MM-DD.") from exc
        return f"[D:{day:%m/%d/%Y}]"
    raise FieldValueInvalid(f"Fields of type {field_type or 'unknown'} cannot be set here.")


def _set_field(*, run: Run, client, person_id: int) -> ActionResult:
    from crm.errors import PermanentCrmError

    s = run.automation.settings
    try:
        value = field_value_encode(field_type=s.get("field_type", ""), value=s.get("field_value"))
    except FieldValueInvalid as exc:
        # The settings are wrong, not SuperOffice: trying again cannot help.
        raise PermanentCrmError(f"{s.get('field_key')}: {exc}") from exc
    client.set_person_custom_field(person_id=person_id, field=s["field_key"], value=value)
    return ActionResult("person", person_id)


# --- follow-up --------------------------------------------------------------------------

MEETING = "meeting"
TASK = "task"


def follow_up_times(*, settings: dict, now: datetime) -> tuple[datetime, datetime]:
    """A meeting starts `due_in_days` days from now (next full hour) and lasts
    `duration_minutes`; a task is due `due_in_days` from now and takes no time."""
    start = (now + timedelta(days=int(settings.get("due_in_days") or 0))).replace(
        minute=0, second=0, microsecond=0
    ) + timedelta(hours=1)
    if settings.get("follow_up_kind") == TASK:
        return start, start
    return start, start + timedelta(minutes=int(settings.get("duration_minutes") or 30))


def _follow_up(*, run: Run, client, person_id: int) -> ActionResult:
    s = run.automation.settings
    if _outcome_unknown(run):
        found = client.find_appointment_by_marker(person_id=person_id, marker=run.marker)
        if found is not None:
            return ActionResult("appointment", found)
    person = client.get_person(person_id=person_id)
    text = description_render(template=s.get("description", ""), run=run)
    start, end = follow_up_times(settings=s, now=timezone.now())
    appointment_id = client.create_appointment(
        person_id=person_id,
        owner_id=_owner_id(run=run, client=client, person=person),
        task_id=int(s["activity_type_id"]),
        description=f"{text}\n\n{run.marker}" if text else run.marker,
        start=start,
        end=end,
        company_id=person.company_id,
        project_id=int(s["project_id"]) if s.get("project_id") else None,
        # A task lives in the checklist, a meeting in the diary.
        appointment_type="inChecklist" if s.get("follow_up_kind") == TASK else "inDiary",
    )
    return ActionResult("appointment", appointment_id)


# --- request (ticket) ---------------------------------------------------------------------

ASSIGN_OWNER = "owner"
ASSIGN_CATEGORY = "category"
ASSIGN_NONE = "unassigned"


def _create_request(*, run: Run, client, person_id: int) -> ActionResult:
    from crm.types import ASSIGN_BY_CATEGORY, UNASSIGNED

    s = run.automation.settings
    if _outcome_unknown(run):
        found = client.find_ticket_by_marker(person_id=person_id, marker=run.marker)
        if found is not None:
            return ActionResult("ticket", found)
    assign = s.get("request_assign") or ASSIGN_NONE
    if assign == ASSIGN_CATEGORY:
        owner = ASSIGN_BY_CATEGORY
    elif assign == ASSIGN_OWNER:
        owner = _owner_id(run=run, client=client, person=client.get_person(person_id=person_id))
    else:
        owner = UNASSIGNED
    title = description_render(template=s.get("request_title", ""), run=run).strip()
    title = (title or run.automation.name)[:180]
    ticket = client.create_ticket(
        title=f"{title} {run.marker}",
        person_id=person_id,
        priority_id=int(s["priority_id"]) if s.get("priority_id") else None,
        category_id=int(s["category_id"]) if s.get("category_id") else None,
        owner_id=owner,
    )
    return ActionResult("ticket", ticket.id)


# --- script -------------------------------------------------------------------------------


def link_hits(*, run: Run) -> int:
    """The contact's clicks on the event's link up to this one, scanners' not counted."""
    from campaigns.models import Event, EventType

    event = run.event
    if not event.link_id:
        return 0
    return (
        Event.objects.filter(
            account_id=run.account_id,
            contact_id=run.contact_id,
            link_id=event.link_id,
            type__in=[EventType.LINK_CLICKED, EventType.SMS_LINK_CLICKED],
            id__lte=event.id,
        )
        .exclude(data__has_key="filtered")
        .count()
    )


def script_parameters(*, run: Run, person_id: int) -> dict[str, str]:
    """The variables a CRMScript gets, named as SuperOffice Marketing's link actions
    name them."""
    from campaigns.link_responses import response_for_link

    event = run.event
    link = event.link
    data = event.data if isinstance(event.data, dict) else {}
    return {
        "custId": str(person_id),
        "linkId": str(link.pk) if link else "",
        "shipmentId": str(data.get("sendout") or ""),
        "linkUrl": link.url if link else "",
        "linkHits": str(link_hits(run=run)),
        "returnUrl": response_for_link(link=link).url if link else "",
        "emhubRunKey": run.key,
    }


def _run_script(*, run: Run, client, person_id: int) -> ActionResult:
    script_id = int(run.automation.settings["script_id"])
    output = client.execute_script(
        script_id=script_id, parameters=script_parameters(run=run, person_id=person_id)
    )
    return ActionResult("script", script_id, output=output or "")


LINK_ACTIONS = {
    AutomationType.SET_FIELD: _set_field,
    AutomationType.FOLLOW_UP: _follow_up,
    AutomationType.CREATE_REQUEST: _create_request,
    AutomationType.RUN_SCRIPT: _run_script,
}
