"""Writes for campaigns, contacts, tracked links, forms and events.

`events_ingest` is the one way an event gets in. The REST API, the hub's tracked
links, open pixel and form endpoint all call it, so every event is validated,
stored once per sender `event_id` and handed to the automations in the same
transaction, whatever door it came through.
"""

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, lru_cache
from operator import itemgetter
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import (
    BooleanField,
    Case,
    Count,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.base import ModelState
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Greatest, Least, Lower
from django.db.models.signals import post_init, pre_init
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from emhub.inputs import DATA_MAX_DEPTH, ID_MAX, datetime_problem, json_problem, text_problem
from emhub.models import Account

from .models import ENGAGED_EVENT_TYPES, Campaign, Contact, Event, EventType, Form, TrackedLink

logger = logging.getLogger(__name__)

EVENTS_BATCH_MAX = 1000
# The contact fields an event (or a form submission) may carry; blank values are ignored.
CONTACT_FIELDS = ("first_name", "last_name", "phone", "mobile", "title", "company_name")
CONTACT_FIELD_MAX = {name: Contact._meta.get_field(name).max_length for name in CONTACT_FIELDS}
EVENT_ID_MAX = Event._meta.get_field("external_id").max_length
EMAIL_MAX = Contact._meta.get_field("email").max_length
CLICK_TYPES = frozenset({EventType.LINK_CLICKED, EventType.SMS_LINK_CLICKED})
# How often a batch is tried again when a concurrent request stored one of its event ids
# (or contacts) between our check and our insert; the next try sees the other's rows.
INGEST_ATTEMPTS = 3


class _EmailValidator(EmailValidator):
    """Django's EmailValidator, remembering the domains it has found valid: the domain's
    check is a long regular expression (about 2 µs, a third of an event's validation),
    and a batch's addresses share a few domains. The check depends on the text only."""

    def validate_domain_part(self, domain_part):
        return _email_domain_valid(domain_part)


@lru_cache(maxsize=4096)
def _email_domain_valid(domain_part: str) -> bool:
    return EmailValidator.validate_domain_part(_email_validator, domain_part)


_email_validator = _EmailValidator(message="Enter a valid email address.")
_EVENT_TYPE_VALUES = frozenset(EventType.values)
_EVENT_TYPES = ", ".join(EventType.values)


def _too_long(limit: int) -> str:
    return f"Ensure this field has no more than {limit} characters."


# --- Contacts -------------------------------------------------------------------------


def email_normalize(email: str) -> str:
    """Contacts are keyed by the address lower-cased and stripped."""
    return (email or "").strip().lower()


def email_validate(email: str) -> str:
    """The normalised address, or ValidationError with the message the API shows."""
    email = email_normalize(email)
    if not email:
        raise ValidationError("This field is required.")
    if len(email) > EMAIL_MAX:
        raise ValidationError(_too_long(EMAIL_MAX))
    if text_problem(email):
        raise ValidationError(text_problem(email))
    _email_validator(email)
    return email


def _one_of(column: str, lookup: str, values) -> Q | RawSQL:
    """The filter `lookup__in=values`; on PostgreSQL as `column = ANY(%s)` with the values in
    one array parameter, as Django's IN writes and the driver adapts one placeholder per
    value, a few milliseconds of CPU for the 1,000 of a batch. `column` is SQL of the
    model's own table and column names only."""
    values = list(values)
    if connection.vendor == "postgresql":
        return RawSQL(f"{column} = ANY(%s)", [values], output_field=BooleanField())  # noqa: S611
    return Q(**{f"{lookup}__in": values})


def _column(model, name: str) -> str:
    quote = connection.ops.quote_name
    return f"{quote(model._meta.db_table)}.{quote(model._meta.get_field(name).column)}"


def _contacts_by_email(*, account: Account, emails) -> dict[str, Contact]:
    # Filter on lower(email) so the unique index (account, lower(email)) serves the lookup.
    qs = (
        Contact.objects.filter(account=account)
        .alias(email_lower=Lower("email"))
        .filter(_one_of(f"lower({_column(Contact, 'email')})", "email_lower", emails))
    )
    return {contact.email.lower(): contact for contact in qs}


def contact_upsert(*, account: Account, email: str, **fields: Any) -> Contact:
    """The account's contact for this address, created if new; non-blank `fields` are set.

    Accepts the CONTACT_FIELDS and `superoffice_person_id`. Setting a person id here does
    not resume an automation's waiting runs: matching goes through the automations app.
    """
    allowed = set(CONTACT_FIELDS) | {"superoffice_person_id"}
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"contact_upsert() got unexpected fields: {', '.join(sorted(unknown))}")
    try:
        email = email_validate(email)
    except ValidationError as exc:
        raise ValidationError({"email": exc.messages}) from exc
    wanted = {k: v for k, v in fields.items() if v not in (None, "")}
    for name, value in wanted.items():
        if name in CONTACT_FIELD_MAX:
            wanted[name] = str(value).strip()
            if len(wanted[name]) > CONTACT_FIELD_MAX[name]:
                raise ValidationError({name: [_too_long(CONTACT_FIELD_MAX[name])]})
    return _contacts_upsert(account=account, wanted={email: wanted})[email]


def _contacts_upsert(
    *,
    account: Account,
    wanted: dict[str, dict[str, Any]],
    known: dict[str, Contact] | None = None,
    update_existing: bool = True,
    engaged: dict[str, list] | None = None,
) -> dict[str, Contact]:
    """Bulk upsert: {email: fields} -> {email: contact}, in a handful of queries whatever the size.

    `known` are contacts the caller already holds (the tracking endpoints), not looked up again.
    Without `update_existing` the fields only go into contacts created here: a contact that
    exists keeps its name, phone and company whatever was sent. `engaged` ({email: [count,
    first at, last at]}) is added to the contacts' engaged events: a contact created here is
    inserted with it, one that exists gets it in the same UPDATE as its changed fields.
    """
    now = timezone.now()
    engaged = engaged or {}
    found = dict(known or {})
    created: dict[str, Contact] = {}
    to_find = [email for email in wanted if email not in found]
    if to_find:
        found.update(_contacts_by_email(account=account, emails=to_find))
        missing = [email for email in to_find if email not in found]
        if missing:
            created = _contacts_insert(
                account=account, wanted=wanted, emails=missing, engaged=engaged, now=now
            )
            found.update(created)
            lost = [email for email in missing if email not in created]
            if lost:
                # Another request created these at the same moment: theirs win, and they
                # are updated below like any contact that existed.
                found.update(_contacts_by_email(account=account, emails=lost))
    changes: dict[int, dict[str, Any]] = {}
    facts: dict[int, list] = {}
    for email, fields in wanted.items():
        if email in created:
            continue  # inserted with its fields and its engagement
        contact = found[email]
        if update_existing:
            dirty = {
                name: value for name, value in fields.items() if getattr(contact, name) != value
            }
            if dirty:
                for name, value in dirty.items():
                    setattr(contact, name, value)
                contact.updated_at = now
                changes[contact.pk] = dirty
        if email in engaged:
            facts[contact.pk] = engaged[email]
    if changes or facts:
        _contacts_update(changes=changes, facts=facts, found=found, now=now)
    return found


# A contact's engaged events when a batch brings none: [count, first at, last at].
_NO_FACT = (0, None, None)


def _json_rows(rows: list[dict]) -> str:
    """A batch's rows as one JSON array, for json_to_recordset: one parameter however many
    rows, and no per-value adaptation by Django or the driver (the cost of bulk_create).

    Times go in as ISO 8601 text (`_iso`). No other conversion: an event's data that is
    no JSON fails as it does through the JSONField."""
    # ASCII escapes: the encoder is several times faster than with ensure_ascii=False.
    return json.dumps(rows, separators=(",", ":"))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _contacts_insert(
    *,
    account: Account,
    wanted: dict[str, dict[str, Any]],
    emails: list[str],
    engaged: dict[str, list],
    now: datetime,
) -> dict[str, Contact]:
    """Insert the contacts of `emails`, with their fields and engaged events; the ones this
    call created, by email. One another request created first is left out (the caller reads
    it back): ON CONFLICT DO NOTHING, so the race costs no savepoint and no error."""
    # In email order, so two batches creating the same contacts wait on each other in the
    # same order instead of deadlocking.
    rows = []
    for email in sorted(emails):
        count, first_at, last_at = engaged.get(email, _NO_FACT)
        rows.append(
            {
                "email": email,
                "engaged_count": count,
                "engaged_first_at": first_at,
                "engaged_last_at": last_at,
                **wanted[email],
            }
        )
    if connection.vendor == "postgresql":
        return _contacts_insert_postgresql(account=account, rows=rows, now=now)
    made = [Contact(account=account, created_at=now, updated_at=now, **row) for row in rows]
    try:
        # SQLite returns the new ids too; a writer holds the database's lock from BEGIN, so
        # no other request creates one of these contacts meanwhile.
        with transaction.atomic():
            Contact.objects.bulk_create(made)
        if any(contact.pk is None for contact in made):
            raise IntegrityError("no ids returned")
        return {contact.email: contact for contact in made}
    except IntegrityError:
        # Where it happens anyway: insert past the conflicts without the engagement, and
        # let the caller read every one back and add the engagement by UPDATE.
        for contact in made:
            contact.pk = None
            contact._state.adding = True
            contact.engaged_count, contact.engaged_first_at, contact.engaged_last_at = _NO_FACT
        Contact.objects.bulk_create(made, ignore_conflicts=True)
        return {}


def _contacts_insert_postgresql(
    *, account: Account, rows: list[dict[str, Any]], now: datetime
) -> dict[str, Contact]:
    table = connection.ops.quote_name(Contact._meta.db_table)
    text_fields = ", ".join(f"{name} text" for name in CONTACT_FIELDS)
    fields = ", ".join(CONTACT_FIELDS)
    # Blank text fields are '' (NOT NULL); the json leaves out what was not sent.
    values = ", ".join(f"coalesce(r.{name}, '')" for name in CONTACT_FIELDS)
    # Only the model's own table and column names are put into the text.
    sql = (
        f"INSERT INTO {table} (account_id, email, {fields}, superoffice_person_id,"  # noqa: S608
        " created_at, updated_at, engaged_count, engaged_first_at, engaged_last_at)"
        f" SELECT %s, r.email, {values}, r.superoffice_person_id, %s, %s,"
        " r.engaged_count, r.engaged_first_at, r.engaged_last_at"
        f" FROM json_to_recordset(%s::json) AS r (email text, {text_fields},"
        " superoffice_person_id bigint, engaged_count integer,"
        " engaged_first_at timestamptz, engaged_last_at timestamptz)"
        " ON CONFLICT DO NOTHING RETURNING id, email"
    )
    # The JSON row is also the instance's values: the times go in as ISO text and are put
    # back as the datetimes they were once the ids are known.
    times = []
    for row in rows:
        times.append((row["engaged_first_at"], row["engaged_last_at"]))
        row["engaged_first_at"] = _iso(row["engaged_first_at"])
        row["engaged_last_at"] = _iso(row["engaged_last_at"])
    with connection.cursor() as cursor:
        cursor.execute(sql, [account.pk, now, now, _json_rows(rows)])
        ids = dict((email, pk) for pk, email in cursor.fetchall())
    blank = {
        **dict.fromkeys(CONTACT_FIELDS, ""),
        "superoffice_person_id": None,
        "account_id": account.pk,
        "created_at": now,
        "updated_at": now,
    }
    created = {}
    related = {"account": account}
    for row, (first_at, last_at) in zip(rows, times, strict=True):
        pk = ids.get(row["email"])
        if pk is None:
            continue  # another request created it first: the caller reads it back
        values = {**blank, **row}
        values["id"] = pk
        values["engaged_first_at"], values["engaged_last_at"] = first_at, last_at
        created[row["email"]] = _loaded(Contact, values, related)
    return created


def _contacts_update(
    *,
    changes: dict[int, dict[str, Any]],
    facts: dict[int, list],
    found: dict[str, Contact],
    now: datetime,
) -> None:
    """Write existing contacts' changed fields (`changes`, {id: {field: value}}) and add
    their new engaged events (`facts`, {id: [count, first at, last at]}), in id order so two
    batches touching the same contacts lock them in the same order."""
    ids = sorted(changes.keys() | facts.keys())
    if connection.vendor == "postgresql":
        _contacts_update_postgresql(ids=ids, changes=changes, facts=facts, now=now)
        return
    if changes:
        by_id = {contact.pk: contact for contact in found.values()}
        names = set().union(*changes.values())
        Contact.objects.bulk_update(
            [by_id[pk] for pk in sorted(changes)], fields=sorted(names | {"updated_at"})
        )
    if facts:
        _contacts_engagement_add_portable(facts=facts)


def _contacts_update_postgresql(
    *, ids: list[int], changes: dict[int, dict[str, Any]], facts: dict[int, list], now: datetime
) -> None:
    # One UPDATE joined to the batch's rows: a field is set where the row's `changes` has it;
    # LEAST and GREATEST skip the nulls of a contact's first engaged event.
    table = connection.ops.quote_name(Contact._meta.db_table)
    names = sorted(set().union(*changes.values())) if changes else []
    sets = [
        f"{connection.ops.quote_name(Contact._meta.get_field(name).column)} ="
        f" CASE WHEN v.changes ? '{name}'"
        f" THEN (v.changes ->> '{name}')::{_cast_type(name)}"
        f" ELSE c.{connection.ops.quote_name(Contact._meta.get_field(name).column)} END"
        for name in names
    ]
    sets += [
        "updated_at = CASE WHEN v.changes IS NULL THEN c.updated_at ELSE %s END",
        "engaged_count = c.engaged_count + coalesce(v.n, 0)",
        "engaged_first_at = LEAST(c.engaged_first_at, v.first_at)",
        "engaged_last_at = GREATEST(c.engaged_last_at, v.last_at)",
    ]
    payload = _json_rows(
        [
            {
                "id": pk,
                "changes": changes.get(pk),
                "n": n,
                "first_at": _iso(first_at),
                "last_at": _iso(last_at),
            }
            for pk in ids
            for n, first_at, last_at in [facts.get(pk, _NO_FACT)]
        ]
    )
    # Only the model's own table, column and field names are put into the text.
    sql = (
        f"UPDATE {table} AS c SET {', '.join(sets)}"  # noqa: S608
        " FROM json_to_recordset(%s::json) AS v"
        " (id bigint, changes jsonb, n integer, first_at timestamptz, last_at timestamptz)"
        " WHERE c.id = v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, payload])


def _cast_type(name: str) -> str:
    # The column's type without its length (varchar, bigint), as Django's UNNEST insert does.
    return Contact._meta.get_field(name).db_type(connection).split("(")[0]


# --- Campaigns, links and forms ----------------------------------------------------------


def _clean_and_save(obj, *, update_fields: list[str] | None = None):
    # The account and campaign come from the caller's scoped rows, not from input.
    obj.full_clean(exclude=["account", "campaign"])
    obj.save(update_fields=update_fields)
    return obj


def campaign_create(*, account: Account, name: str, description: str = "") -> Campaign:
    campaign = Campaign(account=account, name=name.strip(), description=description.strip())
    return _clean_and_save(campaign)


def campaign_update(
    *,
    campaign: Campaign,
    name: str | None = None,
    description: str | None = None,
    is_archived: bool | None = None,
) -> Campaign:
    changes = {"name": name, "description": description, "is_archived": is_archived}
    fields = []
    for attr, value in changes.items():
        if value is None:
            continue
        setattr(campaign, attr, value.strip() if isinstance(value, str) else value)
        fields.append(attr)
    if fields:
        _clean_and_save(campaign, update_fields=fields)
    return campaign


def tracked_link_create(*, campaign: Campaign, name: str, url: str) -> TrackedLink:
    link = TrackedLink(
        account_id=campaign.account_id, campaign=campaign, name=name.strip(), url=url.strip()
    )
    return _clean_and_save(link)


def tracked_link_update(
    *, link: TrackedLink, name: str | None = None, url: str | None = None
) -> TrackedLink:
    fields = []
    if name is not None:
        link.name, fields = name.strip(), [*fields, "name"]
    if url is not None:
        link.url, fields = url.strip(), [*fields, "url"]
    if fields:
        _clean_and_save(link, update_fields=fields)
    return link


def form_create(
    *, campaign: Campaign, name: str, success_url: str = "", published: bool = False
) -> Form:
    form = Form(
        account_id=campaign.account_id,
        campaign=campaign,
        name=name.strip(),
        success_url=success_url.strip(),
        published=published,
    )
    return _clean_and_save(form)


def form_update(
    *,
    form: Form,
    name: str | None = None,
    success_url: str | None = None,
    published: bool | None = None,
) -> Form:
    fields = []
    if name is not None:
        form.name, fields = name.strip(), [*fields, "name"]
    if success_url is not None:
        form.success_url, fields = success_url.strip(), [*fields, "success_url"]
    if published is not None:
        form.published, fields = published, [*fields, "published"]
    if fields:
        _clean_and_save(form, update_fields=fields)
    return form


def form_page_update(
    *,
    form: Form,
    intro: str = "",
    field_names: list[str],
    consent_boxes: dict[str, dict[str, str]],
    button_label: str = "",
    thanks_message: str = "",
) -> Form:
    """What the page the hub serves for the form asks and says."""
    from consent.models import Purpose

    from .models import FORM_FIELDS

    errors: dict[str, list[str]] = {}
    unknown = [name for name in field_names if name not in FORM_FIELDS]
    if unknown:
        errors["field_names"] = [f"Not a contact field: {', '.join(unknown)}."]
    boxes = {}
    for purpose, box in consent_boxes.items():
        text = str(box.get("text", "")).strip()
        basis = str(box.get("legal_basis", "")).strip().upper()
        if purpose not in Purpose.values or not text or not basis or basis == "WITHDRAWN":
            errors["consent_boxes"] = ["Each consent box needs its purpose, text and basis."]
            continue
        boxes[purpose] = {"text": text[:500], "legal_basis": basis[:40]}
    if errors:
        raise ValidationError(errors)
    # The e-mail address names the contact: always asked, always first.
    form.field_names = ["email", *[n for n in FORM_FIELDS if n in field_names and n != "email"]]
    form.consent_boxes = boxes
    form.intro = intro.strip()
    form.button_label = button_label.strip()[:60]
    form.thanks_message = thanks_message.strip()
    return _clean_and_save(
        form,
        update_fields=["field_names", "consent_boxes", "intro", "button_label", "thanks_message"],
    )


# --- Events ------------------------------------------------------------------------------


class EventsInvalid(Exception):
    """A batch that cannot be stored; nothing of it was.

    `errors` maps an event's index in the batch to {field: [messages]}; `batch_errors`
    are about the batch itself (empty, too large).
    """

    def __init__(self, errors: dict[int, dict[str, list[str]]] | None = None, batch_errors=None):
        self.errors = errors or {}
        self.batch_errors = list(batch_errors or [])
        super().__init__(self.batch_errors or self.errors)


@dataclass(frozen=True)
class IngestedEvent:
    event_id: str | None
    id: int
    duplicate: bool


@dataclass
class IngestResult:
    events: list[IngestedEvent]  # one per event sent, in the order sent
    stored: list[Event]  # the newly stored events, as handed to the automations
    runs: list = field(default_factory=list)  # what the automations hook created

    @property
    def duplicates(self) -> int:
        return sum(1 for e in self.events if e.duplicate)


@dataclass
class _Clean:
    event_id: str | None
    type: str
    campaign: Campaign
    email: str
    contact: Contact | None
    contact_fields: dict[str, str]
    occurred_at: datetime
    link: TrackedLink | None
    form: Form | None
    data: dict


def _id_or_instance(value, model):
    """Events name related rows by id (the API) or hand over the row itself (the hub's views)."""
    if isinstance(value, model):
        return value
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdecimal():
        value = int(value) if len(value.strip()) <= 19 else ID_MAX + 1
    if isinstance(value, int):
        # SQLite cannot even be asked for an id beyond 64 bits (OverflowError).
        if not 1 <= value <= ID_MAX:
            raise ValueError
        return value
    raise ValueError


def _occurred_at(value, now: datetime) -> datetime:
    if value in (None, ""):
        return now
    if isinstance(value, str):
        parsed = parse_datetime(value.strip())
        if parsed is None:
            raise ValueError
        value = parsed
    if not isinstance(value, datetime):
        raise ValueError
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_default_timezone())
    if datetime_problem(value):
        raise ValueError
    return value


def _event_parse(raw: dict, *, account: Account, now: datetime, refs: dict[type, set[int]]):
    """One event's fields checked and normalised: (item, {field: [messages]}).

    Related rows sent by id are collected in `refs` and resolved for the whole batch later.
    """
    bad: dict[str, list[str]] = {}
    item: dict[str, Any] = {}

    event_id = raw.get("event_id")
    if event_id is not None:
        event_id = str(event_id).strip() if isinstance(event_id, str | int) else None
        if not event_id:
            bad["event_id"] = ["Send a non-empty string."]
        elif len(event_id) > EVENT_ID_MAX:
            bad["event_id"] = [_too_long(EVENT_ID_MAX)]
        elif text_problem(event_id):
            bad["event_id"] = [text_problem(event_id)]
    item["event_id"] = event_id

    event_type = raw.get("type")
    if event_type in (None, ""):
        bad["type"] = ["This field is required."]
    elif event_type not in _EVENT_TYPE_VALUES:
        bad["type"] = [f"“{event_type}” is not a valid event type. Use one of: {_EVENT_TYPES}."]
    item["type"] = event_type

    for name, model, required in (
        ("campaign", Campaign, True),
        ("link", TrackedLink, False),
        ("form", Form, False),
    ):
        value = raw.get(name)
        item[name] = None
        if value in (None, ""):
            if required:
                bad[name] = ["This field is required."]
            continue
        try:
            value = _id_or_instance(value, model)
        except ValueError:
            bad[name] = [f"Send the {name}'s id as an integer from 1 to {ID_MAX}."]
            continue
        if isinstance(value, int):
            refs[model].add(value)
        elif value.account_id != account.pk:
            bad[name] = [f"Unknown {name}."]
        item[name] = value

    contact = raw.get("contact")
    if contact is not None:
        if not isinstance(contact, Contact) or contact.account_id != account.pk:
            bad["contact"] = ["Unknown contact."]
        item["contact"] = contact
        item["email"] = email_normalize(getattr(contact, "email", ""))
    else:
        email = raw.get("email")
        try:
            item["email"] = email_validate(email if isinstance(email, str) else "")
        except ValidationError as exc:
            bad["email"] = exc.messages

    fields = {}
    for name in CONTACT_FIELDS:
        value = raw.get(name)
        if value in (None, ""):
            continue
        if not isinstance(value, str):
            bad[name] = ["Send a string."]
            continue
        value = value.strip()
        if len(value) > CONTACT_FIELD_MAX[name]:
            bad[name] = [_too_long(CONTACT_FIELD_MAX[name])]
        elif text_problem(value):
            bad[name] = [text_problem(value)]
        elif value:
            fields[name] = value
    item["contact_fields"] = fields

    try:
        item["occurred_at"] = _occurred_at(raw.get("occurred_at"), now)
    except (ValueError, OverflowError):
        bad["occurred_at"] = [
            "Send a date and time in ISO 8601 between 1970 and one day from now, "
            "for example 2025-05-01T09:30:00Z."
        ]

    data = raw.get("data")
    item["data"] = {} if data is None else data
    if not isinstance(item["data"], dict):
        bad["data"] = ["Send an object."]
    else:
        problem = json_problem(item["data"], max_depth=DATA_MAX_DEPTH)
        if problem:
            bad["data"] = [problem]
    return item, bad


def _events_clean(*, account: Account, events: list[dict]) -> list[_Clean]:
    """Validate every event, resolving campaigns, links and forms in one query each."""
    if not isinstance(events, list | tuple):
        raise EventsInvalid(batch_errors=["Send a list of events."])
    if not events:
        raise EventsInvalid(batch_errors=["Send at least one event."])
    if len(events) > EVENTS_BATCH_MAX:
        raise EventsInvalid(
            batch_errors=[
                f"Send at most {EVENTS_BATCH_MAX} events in one batch; this one has {len(events)}."
            ]
        )
    errors: dict[int, dict[str, list[str]]] = {}
    refs: dict[type, set[int]] = {Campaign: set(), TrackedLink: set(), Form: set()}
    parsed: list[dict] = []
    now = timezone.now()
    for index, raw in enumerate(events):
        if not isinstance(raw, dict):
            errors[index] = {"non_field_errors": ["Send each event as an object."]}
            parsed.append({})
            continue
        item, bad = _event_parse(raw, account=account, now=now, refs=refs)
        if bad:
            errors[index] = bad
        parsed.append(item)

    def resolve(model):
        ids = refs[model]
        if not ids:
            return {}
        qs = model.objects.filter(account=account, pk__in=ids)
        return {obj.pk: obj for obj in qs}

    by_model = {model: resolve(model) for model in refs}

    cleaned: list[_Clean] = []
    for index, item in enumerate(parsed):
        if index in errors and "non_field_errors" in errors[index]:
            continue
        bad = errors.setdefault(index, {})
        for name, model in (("campaign", Campaign), ("link", TrackedLink), ("form", Form)):
            value = item.get(name)
            if isinstance(value, int):
                item[name] = by_model[model].get(value)
                if item[name] is None:
                    bad.setdefault(name, [f"Unknown {name}: no {name} {value} in this account."])
        campaign, link, form = item.get("campaign"), item.get("link"), item.get("form")
        event_type = item.get("type")
        known_type = event_type in _EVENT_TYPE_VALUES
        if link is not None and known_type and "link" not in bad:
            if event_type not in CLICK_TYPES:
                bad["link"] = ["Only link click events name a link."]
            elif campaign is not None and link.campaign_id != campaign.pk:
                bad["link"] = ["This link belongs to another campaign."]
        if form is not None and known_type and "form" not in bad:
            if event_type != EventType.FORM_SUBMITTED:
                bad["form"] = ["Only form submissions name a form."]
            elif campaign is not None and form.campaign_id != campaign.pk:
                bad["form"] = ["This form belongs to another campaign."]
        if not bad:
            del errors[index]
            cleaned.append(
                _Clean(
                    event_id=item["event_id"],
                    type=event_type,
                    campaign=campaign,
                    email=item["email"],
                    contact=item.get("contact"),
                    contact_fields=item["contact_fields"],
                    occurred_at=item["occurred_at"],
                    link=link,
                    form=form,
                    data=item["data"],
                )
            )
    if errors:
        raise EventsInvalid(errors=errors)
    return cleaned


def _automation_runs_create(*, account: Account, events: list[Event]) -> list:
    """Hand the newly stored events to the automations, inside the ingest transaction.

    `runs_create_for_events` writes one ledger row per matching automation and
    dispatches after commit. Imported here because automations imports campaigns.
    """
    # A click marked filtered (a scanner's, a preview's: campaigns.scanners) is kept for
    # the marketer to see but must not act in SuperOffice.
    events = [e for e in events if not (isinstance(e.data, dict) and e.data.get("filtered"))]
    if not events:
        return []
    from automations.services import runs_create_for_events

    # The events were stored by this transaction: no run for them exists yet.
    return list(runs_create_for_events(account=account, events=events, events_are_new=True))


def _events_store(*, account: Account, events: list[dict], source: str) -> IngestResult:
    cleaned = _events_clean(account=account, events=events)
    now = timezone.now()

    sent_ids = {c.event_id for c in cleaned if c.event_id is not None}
    existing: dict[str, int] = {}
    if sent_ids:
        existing = dict(
            Event.objects.filter(account=account)
            .filter(_one_of(_column(Event, "external_id"), "external_id", sent_ids))
            .values_list("external_id", "id")
        )

    # The first event of each id not stored yet is new; every other one is a duplicate.
    is_new: list[bool] = []
    seen: set[str] = set()
    for c in cleaned:
        fresh = c.event_id is None or (c.event_id not in existing and c.event_id not in seen)
        is_new.append(fresh)
        if fresh and c.event_id is not None:
            seen.add(c.event_id)
    new = [c for c, fresh in zip(cleaned, is_new, strict=True) if fresh]

    # Contacts of new events only: a re-sent batch writes nothing at all.
    wanted: dict[str, dict[str, str]] = {}
    known: dict[str, Contact] = {}
    for c in new:
        wanted.setdefault(c.email, {}).update(c.contact_fields)
        if c.contact is not None:
            known[c.email] = c.contact
    # Anyone on the internet can post a public form: what it says about a contact that
    # exists is kept on the event only, never written over the contact (which may be linked
    # to a SuperOffice person). New contacts are made from it.
    contacts = (
        _contacts_upsert(
            account=account,
            wanted=wanted,
            known=known,
            update_existing=source != Event.Source.FORM,
            engaged=_engagement_by_email(new),
        )
        if wanted
        else {}
    )

    stored = (
        _events_insert(account=account, new=new, contacts=contacts, source=source, now=now)
        if new
        else []
    )
    new_ids = {
        c.event_id: row.pk for c, row in zip(new, stored, strict=True) if c.event_id is not None
    }

    results: list[IngestedEvent] = []
    stored_iter = iter(stored)
    for c, fresh in zip(cleaned, is_new, strict=True):
        if fresh:
            results.append(
                IngestedEvent(event_id=c.event_id, id=next(stored_iter).pk, duplicate=False)
            )
        else:
            first_id = existing.get(c.event_id) or new_ids[c.event_id]
            results.append(IngestedEvent(event_id=c.event_id, id=first_id, duplicate=True))

    runs = _automation_runs_create(account=account, events=stored)
    return IngestResult(events=results, stored=stored, runs=runs)


def _is_engaged(event_type: str, data) -> bool:
    # A scanner's or a link preview's click is no sign of a person's interest.
    return event_type in ENGAGED_EVENT_TYPES and not (
        isinstance(data, dict) and data.get("filtered")
    )


def _engagement_by_email(new: list[_Clean]) -> dict[str, list]:
    """The engaged events among a batch's new ones, per contact email: [count, first at,
    last at], added to the contacts as they are upserted (a new contact is inserted with
    them, an existing one gets them in the UPDATE of its fields).

    Only new events get here, so a re-sent event id is not counted twice.
    """
    facts: dict[str, list] = {}
    for c in new:
        if not _is_engaged(c.type, c.data):
            continue
        fact = facts.get(c.email)
        if fact is None:
            facts[c.email] = [1, c.occurred_at, c.occurred_at]
        else:
            fact[0] += 1
            fact[1] = min(fact[1], c.occurred_at)
            fact[2] = max(fact[2], c.occurred_at)
    return facts


def _contacts_engagement_add_portable(*, facts: dict[int, list]) -> None:
    """Add {contact id: [count, first at, last at]} to the contacts' engaged events in one
    portable UPDATE (SQLite, the embedded default). MIN and MAX of SQLite are null when an
    argument is, hence the Coalesce."""
    rows = sorted(facts.items())

    def per_contact(index: int, output_field):
        whens = [When(pk=contact_id, then=Value(fact[index])) for contact_id, fact in rows]
        return Case(*whens, output_field=output_field)

    first = per_contact(1, Contact._meta.get_field("engaged_first_at"))
    last = per_contact(2, Contact._meta.get_field("engaged_last_at"))
    Contact.objects.filter(pk__in=facts).update(
        engaged_count=F("engaged_count") + per_contact(0, IntegerField()),
        engaged_first_at=Least(Coalesce("engaged_first_at", first), first),
        engaged_last_at=Greatest(Coalesce("engaged_last_at", last), last),
    )


def _loaded(model, values: dict[str, Any], related: dict[str, Any]):
    """An instance of a row just written with these values (by attname), as if read back:
    no query, and with its related rows in the cache, so reading them takes none either.

    Built as Model.from_db would leave it (every concrete attname set, `_state` not adding,
    on this database), but without Model.__init__, which costs about 5 µs an instance,
    10 ms for a batch's events and contacts. __init__ only sends pre_init and post_init
    around that: with a receiver for this model, from_db is used, so one still runs."""
    names, values_of = _concrete_attnames(model)
    if pre_init.has_listeners(model) or post_init.has_listeners(model):
        obj = model.from_db(connection.alias, names, values_of(values))
        for name, value in related.items():
            if value is not None:
                model._meta.get_field(name).set_cached_value(obj, value)
        return obj
    obj = model.__new__(model)
    state = ModelState()
    state.adding = False
    state.db = connection.alias
    # What set_cached_value writes: the related row under the field's name.
    state.fields_cache = {name: value for name, value in related.items() if value is not None}
    attrs = obj.__dict__
    attrs["_state"] = state
    attrs.update(zip(names, values_of(values), strict=True))
    return obj


@cache
def _concrete_attnames(model):
    # The concrete fields' attnames in the order Model.from_db takes the values, and a
    # getter of those values from a dict.
    names = [f.attname for f in model._meta.concrete_fields]
    return names, itemgetter(*names)


def _events_insert(
    *,
    account: Account,
    new: list[_Clean],
    contacts: dict[str, Contact],
    source: str,
    now: datetime,
) -> list[Event]:
    """Insert a batch's new events; they come back with their ids, in the order given.

    A plain INSERT, no ON CONFLICT: an event id another request stored since our check
    fails the batch with IntegrityError, and events_ingest tries it again from the start.
    """
    if connection.vendor != "postgresql":
        return Event.objects.bulk_create(
            [
                Event(
                    account=account,
                    campaign=c.campaign,
                    contact=contacts[c.email],
                    type=c.type,
                    occurred_at=c.occurred_at,
                    received_at=now,
                    external_id=c.event_id,
                    source=source,
                    link=c.link,
                    form=c.form,
                    data=c.data,
                )
                for c in new
            ]
        )
    # One dict a row for the JSON, built in one pass: the times as ISO text (`_json_rows`).
    rows = [
        {
            "i": i,
            "campaign_id": c.campaign.pk,
            "contact_id": contacts[c.email].pk,
            "type": c.type,
            "occurred_at": c.occurred_at.isoformat(),
            "external_id": c.event_id,
            "link_id": c.link.pk if c.link is not None else None,
            "form_id": c.form.pk if c.form is not None else None,
            "data": c.data,
        }
        for i, c in enumerate(new)
    ]
    table = connection.ops.quote_name(Event._meta.db_table)
    # Only the model's own table name is put into the text.
    sql = (
        f"INSERT INTO {table} (account_id, campaign_id, contact_id, type, occurred_at,"  # noqa: S608
        " received_at, external_id, source, link_id, form_id, data)"
        " SELECT %s, r.campaign_id, r.contact_id, r.type, r.occurred_at, %s, r.external_id,"
        " %s, r.link_id, r.form_id, r.data"
        " FROM json_to_recordset(%s::json) AS r (i integer, campaign_id bigint,"
        " contact_id bigint, type text, occurred_at timestamptz, external_id text,"
        " link_id bigint, form_id bigint, data jsonb)"
        " ORDER BY r.i RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [account.pk, now, source, _json_rows(rows)])
        # The rows are inserted in the batch's order and each takes the sequence's next
        # value as it is, so the ids in ascending order are the rows' in the batch's order,
        # whatever order RETURNING gives them in.
        ids = sorted(pk for (pk,) in cursor.fetchall())
    stored = []
    for pk, row, c in zip(ids, rows, new, strict=True):
        # The JSON row becomes the instance's values: the id, the columns the INSERT
        # set for every row, and the time back as the datetime it was.
        row["id"] = pk
        row["account_id"] = account.pk
        row["received_at"] = now
        row["source"] = source
        row["occurred_at"] = c.occurred_at
        contact = contacts[c.email]
        related = {"account": account, "campaign": c.campaign, "contact": contact}
        if c.link is not None:
            related["link"] = c.link
        if c.form is not None:
            related["form"] = c.form
        stored.append(_loaded(Event, row, related))
    return stored


def contacts_engagement_recount(*, account: Account) -> int:
    """Recount every contact's engaged events from the events themselves.

    For rows written past events_ingest (a bulk load, a repair after events were deleted
    with their campaign): events_ingest keeps the counts up to date as events come in.
    Returns the number of contacts updated.
    """
    engaged = (
        Event.objects.filter(account=account, contact=OuterRef("pk"), type__in=ENGAGED_EVENT_TYPES)
        .exclude(data__has_key="filtered")
        .order_by()
        .values("contact")
    )
    return Contact.objects.filter(account=account).update(
        engaged_count=Coalesce(Subquery(engaged.annotate(n=Count("id")).values("n")), 0),
        engaged_first_at=Subquery(engaged.annotate(at=Min("occurred_at")).values("at")),
        engaged_last_at=Subquery(engaged.annotate(at=Max("occurred_at")).values("at")),
    )


def events_ingest(
    *, account: Account, events: list[dict], source: str = Event.Source.API
) -> IngestResult:
    """Validate and store a batch of events in one transaction; all or nothing.

    Each event is a dict: `event_id` (the sender's id; a re-sent id is a duplicate and
    not stored again), `type` (EventType), `campaign` (id or Campaign), `email` or
    `contact` (a Contact of the account), optional contact fields (CONTACT_FIELDS),
    `occurred_at` (datetime or ISO 8601), `link` (id or TrackedLink, clicks only),
    `form` (id or Form, form submissions only) and `data` (a dict).

    Contacts are upserted by email in bulk; the newly stored events go to the
    automations hook in the same transaction. Raises EventsInvalid (nothing stored).
    """
    for attempt in range(1, INGEST_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return _events_store(account=account, events=events, source=source)
        except IntegrityError:
            # A concurrent batch stored one of these event ids first: look again.
            if attempt == INGEST_ATTEMPTS:
                raise
            logger.info("events_ingest: concurrent insert, trying again (attempt %s)", attempt)
        except OperationalError as exc:
            # Two batches updating the same contacts can deadlock on PostgreSQL; the
            # whole transaction rolled back, so the batch is simply tried again.
            if not _is_deadlock(exc) or attempt == INGEST_ATTEMPTS:
                raise
            logger.info("events_ingest: deadlock, trying again (attempt %s)", attempt)
    raise AssertionError("unreachable")


def _is_deadlock(exc: OperationalError) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) == "40P01"


# --- Tracking: signed contact references, tracked links, open pixel, forms --------------

CONTACT_REF_SALT = "campaigns.contact-ref"
OPEN_REF_SALT = "campaigns.open-ref"


def _public_url(path: str) -> str:
    return settings.EMHUB_PUBLIC_URL.rstrip("/") + path


def contact_ref_make(*, contact: Contact) -> str:
    """A reference to a contact that the recipient cannot change into another contact's."""
    return signing.Signer(salt=CONTACT_REF_SALT).sign(str(contact.pk))


def contact_ref_parse(*, ref: str) -> int:
    """The contact id in a reference; signing.BadSignature when forged or damaged."""
    value = signing.Signer(salt=CONTACT_REF_SALT).unsign(ref)
    if not value.isdigit():
        raise signing.BadSignature("Not a contact reference")
    return int(value)


def link_public_url(*, link: TrackedLink) -> str:
    """The link's tracking URL without a contact: it redirects, but records no click."""
    return _public_url(reverse("campaigns:link_click", kwargs={"token": link.token}))


def tracking_url_for_link(*, link: TrackedLink, contact: Contact) -> str:
    """The absolute URL to put in a message to `contact` in place of `link.url`."""
    return f"{link_public_url(link=link)}?{urlencode({'c': contact_ref_make(contact=contact)})}"


def open_pixel_url(*, campaign: Campaign, contact: Contact, sendout=None) -> str:
    """The absolute URL of the 1x1 image that records `contact` opening `campaign`'s email
    (and which sendout's, for its statistics)."""
    value = f"{campaign.pk}.{contact.pk}" + (f".{sendout.pk}" if sendout is not None else "")
    ref = signing.Signer(salt=OPEN_REF_SALT).sign(value)
    return _public_url(reverse("campaigns:open_pixel", kwargs={"ref": ref}))


def form_action_url(*, form: Form) -> str:
    return _public_url(reverse("campaigns:form_submit", kwargs={"form_token": form.token}))


class TrackingRefInvalid(Exception):
    """A forged, damaged or stale contact reference: nothing is recorded."""


def _meta_data(*, user_agent: str) -> dict:
    return {"user_agent": user_agent[:300]} if user_agent else {}


def _sendout_id(value) -> int | None:
    # Events sent through the API may carry any value under "sendout": only an id counts.
    text = str(value).strip() if value is not None else ""
    if text.isdecimal() and len(text) <= 18:
        return int(text)
    return None


def _contact_from_ref(*, ref: str, account_id: int) -> Contact:
    try:
        contact_id = contact_ref_parse(ref=ref)
        return Contact.objects.get(pk=contact_id, account_id=account_id)
    except (signing.BadSignature, Contact.DoesNotExist) as exc:
        raise TrackingRefInvalid(str(exc)) from exc


# A field people never see (hidden by the embed code's style) and bots fill in: a
# submission that has it is answered as usual and not recorded.
FORM_HONEYPOT_FIELD = "emhub_website"
FORM_RESERVED_FIELDS = frozenset({"c", "csrfmiddlewaretoken", FORM_HONEYPOT_FIELD})
FORM_MAX_FIELDS = 50
FORM_MAX_VALUE = 5000


@dataclass(frozen=True)
class FormSubmission:
    form: Form
    event: Event | None  # None for a bot's submission (the honeypot field was filled in)


def form_submission_record(
    *,
    form_token: str,
    fields: dict[str, list[str]],
    contact_ref: str | None = None,
    user_agent: str = "",
) -> FormSubmission:
    """Record `form_submitted` with the submitted fields, for the contact the reference or
    the `email` field names. The contact fields among them make a new contact; a contact
    that exists keeps its own (they stay on the event).

    A submission with the honeypot field filled in is a bot's: nothing is recorded and
    `event` is None. Form.DoesNotExist (also for a form that is not published),
    TrackingRefInvalid, or EventsInvalid for a bad email.
    """
    form = Form.objects.select_related("account", "campaign").get(
        token=form_token[:32], published=True
    )
    if any(str(v).strip() for v in fields.get(FORM_HONEYPOT_FIELD, [])):
        return FormSubmission(form=form, event=None)
    values: dict[str, Any] = {}
    refused: dict[str, list[str]] = {}
    for name, items in list(fields.items())[:FORM_MAX_FIELDS]:
        if name in FORM_RESERVED_FIELDS:
            continue
        items = [str(item)[:FORM_MAX_VALUE] for item in items]
        # A NUL (or a surrogate) is refused by the field's name, before anything is stored.
        if text_problem(name):
            refused["non_field_errors"] = [f"A field's name: {text_problem(name)}"]
            continue
        problem = next(filter(None, map(text_problem, items)), None)
        if problem:
            refused[name[:100]] = [problem]
            continue
        values[name[:100]] = items[0] if len(items) == 1 else items
    if refused:
        raise EventsInvalid(errors={0: refused})
    event: dict[str, Any] = {
        "type": EventType.FORM_SUBMITTED,
        "campaign": form.campaign,
        "form": form,
        "data": {"fields": values, **_meta_data(user_agent=user_agent)},
    }
    for name in CONTACT_FIELDS:
        value = values.get(name)
        if isinstance(value, str) and value.strip():
            event[name] = value.strip()[: CONTACT_FIELD_MAX[name]]
    if contact_ref:
        event["contact"] = _contact_from_ref(ref=contact_ref, account_id=form.account_id)
    else:
        email = values.get("email")
        event["email"] = email if isinstance(email, str) else ""
    with transaction.atomic():
        result = events_ingest(account=form.account, events=[event], source=Event.Source.FORM)
        stored = result.stored[0]
        _form_consents_record(form=form, values=values, event=stored)
    return FormSubmission(form=form, event=stored)


def form_consent_field(purpose: str) -> str:
    """The name of a hosted form's consent box for `purpose`."""
    return f"consent_{purpose.lower()}"


def _form_consents_record(*, form: Form, values: dict[str, Any], event: Event) -> None:
    """A ticked consent box is the visitor's consent: recorded for the contact with the
    form as its origin and the text the box showed, in the submission's transaction, and
    queued for SuperOffice by consent_record (consent.push). An unticked box records
    nothing."""
    from consent.models import Origin
    from consent.services import consent_record

    for purpose, box in (form.consent_boxes or {}).items():
        ticked = values.get(form_consent_field(purpose))
        if not (isinstance(ticked, str) and ticked.strip()):
            continue
        consent_record(
            account=form.account,
            contact=event.contact,
            purpose=purpose,
            legal_basis=box["legal_basis"],
            # The documented consent-source key for a web form (SuperOfficeDocs
            # Services88/Person/SetConsent.md: "e.g. 'USER', 'WEBFORM' or 'API'").
            source="WEBFORM",
            changed_at=event.occurred_at,
            origin=Origin.FORM,
            reason=f"Ticked on the form “{form.name}” (submission {event.pk}): “{box['text']}”",
        )
