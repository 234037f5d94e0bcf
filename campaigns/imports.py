"""Writes for imports of contacts from SuperOffice selections and projects, and for
recipient lists.

An import reads the members page by page and writes each page in bulk, keyed by the
primary email lower-cased: an existing contact is updated, otherwise one is created.
Persons sharing an email become one contact linked to the oldest of them (earliest
registered, then lowest id), also when they sit on different pages: the import keeps
one `ContactImportRow` per contact with the person it chose, so memory stays one page
whatever the size. Running the same import again updates the same contacts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from automations.services import runs_resume_for_contacts
from emhub.models import Account

from .models import (
    Contact,
    ContactImport,
    ContactImportRow,
    RecipientList,
    RecipientListMember,
)
from .services import CONTACT_FIELD_MAX, _contacts_by_email, _contacts_upsert, email_validate

logger = logging.getLogger(__name__)

LIST_NAMES = {
    ContactImport.SourceType.SELECTION: "selections",
    ContactImport.SourceType.PROJECT: "projects",
}
# Persons without a registration date sort after every dated one.
_FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


def import_page_size() -> int:
    # NetServer's archive documentation asks for at most 1000 rows a page.
    return max(1, min(1000, int(getattr(settings, "CAMPAIGNS_IMPORT_PAGE_SIZE", 500))))


def import_lease() -> timedelta:
    return timedelta(seconds=getattr(settings, "CAMPAIGNS_IMPORT_LEASE_SECONDS", 300))


# --- Starting an import ---------------------------------------------------------------


def contact_import_create(
    *,
    account: Account,
    source_type: str,
    source_id: int,
    only_emarketing: bool = False,
    source_name: str = "",
    user=None,
    enqueue: bool = True,
) -> ContactImport:
    """Record an import and hand it to a worker once the row is committed.

    `source_name` is the selection's or project's name as the picker showed it.
    """
    if source_type not in ContactImport.SourceType.values:
        raise ValidationError({"source_type": ["Choose a selection or a project."]})
    contact_import = ContactImport.objects.create(
        account=account,
        source_type=source_type,
        source_id=source_id,
        source_name=source_name[:200],
        only_emarketing=only_emarketing,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    if enqueue:
        from .tasks import run_import

        transaction.on_commit(lambda: run_import.delay(contact_import.pk))
    return contact_import


def contact_import_again(*, contact_import: ContactImport, user=None) -> ContactImport:
    """A new import with the same source and filter (re-running is safe: same contacts)."""
    return contact_import_create(
        account=contact_import.account,
        source_type=contact_import.source_type,
        source_id=contact_import.source_id,
        only_emarketing=contact_import.only_emarketing,
        source_name=contact_import.source_name,
        user=user,
    )


# --- Running it ------------------------------------------------------------------------


def _claim(*, import_id: int) -> ContactImport | None:
    """Take the import with one conditional UPDATE (PostgreSQL and SQLite alike): a
    pending one, or a running one whose worker's lease ran out."""
    now = timezone.now()
    claimed = ContactImport.objects.filter(
        Q(status=ContactImport.Status.PENDING)
        | Q(status=ContactImport.Status.RUNNING, lease_expires_at__lt=now),
        pk=import_id,
    ).update(status=ContactImport.Status.RUNNING, lease_expires_at=now + import_lease())
    if not claimed:
        return None
    contact_import = ContactImport.objects.select_related("account").get(pk=import_id)
    if contact_import.started_at is None:
        contact_import.started_at = now
        contact_import.save(update_fields=["started_at"])
    return contact_import


@dataclass
class _Pick:
    email: str
    fields: dict
    person_id: int
    registered_at: datetime | None

    @property
    def age(self) -> tuple:
        return (self.registered_at or _FAR_FUTURE, self.person_id)


_COUNTERS = (
    "processed",
    "created",
    "updated",
    "skipped_no_email",
    "skipped_invalid_email",
    "skipped_duplicate",
    "skipped_switch_off",
)


def _fields_of(member) -> dict:
    values = {
        "first_name": member.first_name,
        "last_name": member.last_name,
        "phone": member.phone,
        "mobile": member.mobile,
        "title": member.title,
        "company_name": member.company_name,
    }
    fields = {
        name: value.strip()[: CONTACT_FIELD_MAX[name]]
        for name, value in values.items()
        if value and value.strip()
    }
    fields["superoffice_person_id"] = member.person_id
    return fields


def _import_page(*, contact_import: ContactImport, members) -> dict[str, int]:
    """Write one page of members; returns the page's counts."""
    counts = dict.fromkeys(_COUNTERS, 0)
    counts["processed"] = len(members)
    picks: dict[str, _Pick] = {}
    for member in members:
        if not (member.email or "").strip():
            counts["skipped_no_email"] += 1
            continue
        if contact_import.only_emarketing and not member.emarketing_switch_on:
            counts["skipped_switch_off"] += 1
            continue
        try:
            email = email_validate(member.email)
        except ValidationError:
            counts["skipped_invalid_email"] += 1
            continue
        pick = _Pick(email, _fields_of(member), member.person_id, member.registered_at)
        held = picks.get(email)
        counts["skipped_duplicate"] += held is not None
        if held is None or pick.age < held.age:
            picks[email] = pick
    if not picks:
        return counts

    account = contact_import.account
    with transaction.atomic():
        # Contacts this import already wrote from an earlier page, with their person.
        earlier = {
            row.contact.email.lower(): row
            for row in ContactImportRow.objects.filter(
                contact_import=contact_import,
                contact__in=Contact.objects.filter(account=account)
                .alias(email_lower=Lower("email"))
                .filter(email_lower__in=list(picks)),
            ).select_related("contact")
        }
        wanted: dict[str, dict] = {}
        moved_rows: list[ContactImportRow] = []
        for email, pick in picks.items():
            row = earlier.get(email)
            if row is None:
                wanted[email] = pick.fields
                continue
            counts["skipped_duplicate"] += 1
            if pick.age < (row.person_registered_at or _FAR_FUTURE, row.person_id):
                # An older person with this email: the contact follows that one.
                wanted[email] = pick.fields
                row.person_id, row.person_registered_at = pick.person_id, pick.registered_at
                moved_rows.append(row)
        if not wanted:
            return counts
        new_emails = [e for e in wanted if e not in earlier]
        existing = _contacts_by_email(account=account, emails=new_emails) if new_emails else {}
        known = {**existing, **{e: earlier[e].contact for e in wanted if e in earlier}}
        contacts = _contacts_upsert(account=account, wanted=wanted, known=known)
        # A contact that was waiting in the Manage Automations Queue is now linked to
        # its SuperOffice person: its paused runs go on, as after a rep's match.
        runs_resume_for_contacts(
            account_id=account.pk, contact_ids=[contacts[email].pk for email in wanted]
        )
        counts["updated"] += len(existing)
        counts["created"] += len(new_emails) - len(existing)
        ContactImportRow.objects.bulk_create(
            [
                ContactImportRow(
                    account=account,
                    contact_import=contact_import,
                    contact=contacts[email],
                    person_id=picks[email].person_id,
                    person_registered_at=picks[email].registered_at,
                )
                for email in new_emails
            ],
            ignore_conflicts=True,
        )
        if moved_rows:
            ContactImportRow.objects.bulk_update(
                moved_rows, fields=["person_id", "person_registered_at"]
            )
    return counts


def _members_reader(client, contact_import: ContactImport):
    if contact_import.source_type == ContactImport.SourceType.SELECTION:

        def read(page: int, size: int):
            return client.selection_members(
                selection_id=contact_import.source_id, page=page, page_size=size
            )

        count = lambda: client.selection_member_count(  # noqa: E731
            selection_id=contact_import.source_id
        )
    else:

        def read(page: int, size: int):
            return client.project_members(
                project_id=contact_import.source_id, page=page, page_size=size
            )

        count = lambda: client.project_member_count(project_id=contact_import.source_id)  # noqa: E731
    return count, read


def contact_import_run(
    *, import_id: int, progress: Callable[[ContactImport], None] | None = None
) -> ContactImport | None:
    """Run the import: count, then read page by page and write each page in bulk.

    Returns None when another worker holds it (a second delivery of the task) or it
    has finished. `progress` is called after the count and after every page.
    A CRM error stops the import as failed, with the error shown; running it again is
    safe, since contacts are keyed by email.
    """
    from crm.errors import CrmError
    from crm.services import client_for_account

    contact_import = _claim(import_id=import_id)
    if contact_import is None:
        return None
    size = import_page_size()
    try:
        client = client_for_account(
            contact_import.account, correlation=f"contact-import-{contact_import.pk}"
        )
        count, read = _members_reader(client, contact_import)
        if not contact_import.source_name:
            _source_name_fill(contact_import)
        if contact_import.total is None:
            contact_import.total = count()
            contact_import.save(update_fields=["total"])
        if progress:
            progress(contact_import)
        # A resumed import (its first worker died) starts again from the first page:
        # pages already written are written again to the same contacts, and the
        # counters start over with them.
        for name in _COUNTERS:
            setattr(contact_import, name, 0)
        page = 0
        while True:
            batch = read(page, size)
            counts = _import_page(contact_import=contact_import, members=batch.members)
            for name, value in counts.items():
                setattr(contact_import, name, getattr(contact_import, name) + value)
            # Progress and the lease move together, in one small UPDATE per page.
            contact_import.lease_expires_at = timezone.now() + import_lease()
            contact_import.save(update_fields=[*_COUNTERS, "lease_expires_at"])
            if progress:
                progress(contact_import)
            if not batch.has_more:
                break
            page += 1
    except CrmError as exc:
        logger.warning("Contact import %s failed: %s", contact_import.pk, exc)
        _finish(contact_import, status=ContactImport.Status.FAILED, error=str(exc))
        if progress:
            progress(contact_import)
        return contact_import
    except Exception as exc:
        logger.exception("Contact import %s crashed", contact_import.pk)
        _finish(
            contact_import, status=ContactImport.Status.FAILED, error=f"Unexpected error: {exc}"
        )
        raise
    if contact_import.total is not None and contact_import.processed > contact_import.total:
        # Members were added while the import ran: the bar ends at 100%, not beyond.
        contact_import.total = contact_import.processed
    _finish(contact_import, status=ContactImport.Status.DONE)
    if progress:
        progress(contact_import)
    return contact_import


def _source_name_fill(contact_import: ContactImport) -> None:
    """The selection's or project's name from SuperOffice's (cached) list, for the pages;
    an import started from the command line knows only the id."""
    from crm.services import crm_list_items

    items = crm_list_items(
        account=contact_import.account, list_name=LIST_NAMES[contact_import.source_type]
    )
    name = next((i.name for i in items if i.id == contact_import.source_id), "")
    if name:
        contact_import.source_name = name[:200]
        contact_import.save(update_fields=["source_name"])


def _finish(contact_import: ContactImport, *, status: str, error: str = "") -> ContactImport:
    contact_import.status = status
    contact_import.error = error[:2000]
    contact_import.finished_at = timezone.now()
    contact_import.lease_expires_at = None
    contact_import.save(
        update_fields=["status", "error", "finished_at", "lease_expires_at", "total"]
    )
    return contact_import


# --- Recipient lists -------------------------------------------------------------------


def recipient_list_create(*, account: Account, name: str) -> RecipientList:
    name = name.strip()
    if not name:
        raise ValidationError({"name": ["Give the list a name."]})
    return RecipientList.objects.create(account=account, name=name[:200])


def recipient_list_from_import(*, contact_import: ContactImport, name: str = "") -> RecipientList:
    """Save the contacts a finished import wrote as a recipient list."""
    if contact_import.status != ContactImport.Status.DONE:
        raise ValidationError("Only a finished import can be saved as a list.")
    default = f"{contact_import.get_source_type_display()} {contact_import.source_name}".strip()
    recipient_list = recipient_list_create(
        account=contact_import.account, name=name or f"{default} ({timezone.now():%Y-%m-%d})"
    )
    recipient_list.source_import = contact_import
    recipient_list.save(update_fields=["source_import"])
    contact_ids = ContactImportRow.objects.filter(contact_import=contact_import).values_list(
        "contact_id", flat=True
    )
    recipient_list_add_contacts(recipient_list=recipient_list, contact_ids=contact_ids)
    return recipient_list


def recipient_list_add_contacts(*, recipient_list: RecipientList, contact_ids) -> int:
    """Add the account's contacts among `contact_ids` (ids or a values_list queryset),
    in chunks so a large import stays flat in memory; returns how many were new."""
    ids = contact_ids.iterator(chunk_size=2000) if hasattr(contact_ids, "iterator") else contact_ids
    added = 0
    chunk: list[int] = []
    for contact_id in ids:
        chunk.append(int(contact_id))
        if len(chunk) >= 2000:
            added += _list_members_add(recipient_list, chunk)
            chunk = []
    if chunk:
        added += _list_members_add(recipient_list, chunk)
    return added


def _list_members_add(recipient_list: RecipientList, contact_ids: list[int]) -> int:
    # Only contacts of the list's own account: ids from elsewhere are dropped.
    own = Contact.objects.filter(account_id=recipient_list.account_id, pk__in=contact_ids)
    present = set(
        RecipientListMember.objects.filter(
            recipient_list=recipient_list, contact_id__in=contact_ids
        ).values_list("contact_id", flat=True)
    )
    rows = [
        RecipientListMember(
            account_id=recipient_list.account_id, recipient_list=recipient_list, contact_id=pk
        )
        for pk in own.values_list("pk", flat=True)
        if pk not in present
    ]
    RecipientListMember.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def imports_resume_stalled() -> int:
    """The beat's job: wake a worker for imports whose message was lost (still waiting
    a minute after they were started) or whose worker died (lease run out)."""
    from .tasks import run_import

    now = timezone.now()
    ids = list(
        ContactImport.objects.filter(
            Q(status=ContactImport.Status.PENDING, created_at__lt=now - timedelta(minutes=1))
            | Q(status=ContactImport.Status.RUNNING, lease_expires_at__lt=now)
        ).values_list("pk", flat=True)[:100]
    )
    for import_id in ids:
        run_import.delay(import_id)
    return len(ids)
