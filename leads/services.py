"""Writes of the panels: panel settings, matching, dismissing, approving and rejecting leads.

Matching and resuming go through the automation engine's services
(``automations.services.contact_person_set`` / ``runs_dismiss_for_contact``); the person
and company are created through ``crm``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from automations import services as automation_services
from campaigns.models import Contact
from crm.types import NewCompany, Person, PersonMatch
from emhub.models import Account

from . import selectors
from .models import BulkMatch, LeadDecision, Panel, PanelSession, PanelSettings


def panel_settings_update(
    *,
    settings: PanelSettings,
    context_identifier: str,
    frame_ancestors: list[str],
    oidc_issuer: str,
    oidc_client_id: str,
    oidc_client_secret: str | None,
    usec_enabled: bool,
    panel_groups: dict[str, list[int]],
    flag_after_days: int,
) -> PanelSettings:
    """Save the admin's panel settings. A blank client secret keeps the stored one."""
    settings.context_identifier = context_identifier.strip()
    settings.frame_ancestors = " ".join(frame_ancestors)
    settings.oidc_issuer = oidc_issuer.strip().rstrip("/")
    settings.oidc_client_id = oidc_client_id.strip()
    if oidc_client_secret:
        settings.oidc_client_secret = oidc_client_secret
    settings.usec_enabled = usec_enabled
    settings.panel_groups = {
        panel: sorted({int(g) for g in panel_groups.get(panel, [])}) for panel in Panel.values
    }
    settings.flag_after_days = flag_after_days
    settings.updated_at = timezone.now()
    settings.save()
    return settings


def panel_settings_oidc_error_set(*, settings: PanelSettings, error: str) -> None:
    """Keep (or with "" clear) why sign-in with SuperOffice cannot work as set."""
    if settings.oidc_error == error:
        return
    settings.oidc_error = error[:1000]
    settings.oidc_error_at = timezone.now() if error else None
    PanelSettings.objects.filter(pk=settings.pk).update(
        oidc_error=settings.oidc_error, oidc_error_at=settings.oidc_error_at
    )


def panel_session_revoke(*, account: Account, session_id: int, by: str) -> bool:
    """End one panel session of the account at once. False when there is none to end."""
    return bool(
        PanelSession.objects.filter(account=account, pk=session_id, revoked_at__isnull=True).update(
            revoked_at=timezone.now(), revoked_by=by[:200]
        )
    )


def panel_sessions_revoke_all(*, account: Account, by: str) -> int:
    """End every live panel session of the account; returns how many."""
    return PanelSession.objects.filter(
        account=account, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).update(revoked_at=timezone.now(), revoked_by=by[:200])


# -- candidates -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    person: PersonMatch
    score: int
    reasons: tuple[str, ...]


def _domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def candidates_rank(*, contact: Contact, persons: list[PersonMatch]) -> list[Candidate]:
    """Rank SuperOffice persons as the contact's match, each with the reasons."""
    ranked: dict[int, Candidate] = {}
    for person in persons:
        score, reasons = 0, []
        if person.email and person.email.lower() == contact.email.lower():
            score += 100
            reasons.append("Same email")
        elif person.email and _domain(person.email) == _domain(contact.email):
            score += 30
            reasons.append("Same company domain")
        contact_name = _norm(contact.full_name)
        person_name = _norm(f"{person.first_name} {person.last_name}")
        if contact_name and contact_name == person_name:
            score += 40
            reasons.append("Same name")
        elif contact.last_name and _norm(contact.last_name) == _norm(person.last_name):
            score += 15
            reasons.append("Similar name")
        if score and (person.id not in ranked or ranked[person.id].score < score):
            ranked[person.id] = Candidate(person=person, score=score, reasons=tuple(reasons))
    # Among equals the oldest person wins, as the consent rule counts the oldest.
    return sorted(ranked.values(), key=lambda c: (-c.score, c.person.id))


# Mail services shared by many people: the same domain says nothing about the company.
FREE_MAIL_DOMAINS = {
    "gmail.com",
    "googlemail.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "yahoo.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "gmx.com",
    "gmx.de",
    "proton.me",
    "protonmail.com",
    "online.no",
    "hotmail.no",
    "live.no",
}


def candidates_for(*, account: Account, contact: Contact, search: str = "") -> list[Candidate]:
    """Persons in SuperOffice that may be this contact, ranked, with the reasons.

    Looked up by the same email, by the company domain of the email (not for free-mail
    domains) and by the contact's name; a search term is looked up as an email when it
    has an @, else as part of a person's or a company's name.
    """
    from crm.services import client_for_account

    client = client_for_account(account, correlation=f"panel:candidates:{contact.pk}")
    found: dict[int, PersonMatch] = {}

    def add(persons) -> None:
        for person in persons:
            found.setdefault(person.id, person)

    add(client.find_persons_by_email(email=contact.email))
    domain = _domain(contact.email)
    if domain and domain not in FREE_MAIL_DOMAINS:
        add(client.search_persons(text="@" + domain, field="email"))
    if contact.last_name.strip():
        add(client.search_persons(text=contact.last_name.strip(), field="name"))
    ranked = candidates_rank(contact=contact, persons=list(found.values()))
    term = search.strip()
    if not term:
        return ranked
    if "@" in term:
        results = client.find_persons_by_email(email=term)
    else:
        results = client.search_persons(text=term, field="name")
        results += client.search_persons(text=term, field="company")
    known = {c.person.id for c in ranked}
    extra: list[Candidate] = []
    for person in results:
        if person.id not in known:
            known.add(person.id)
            extra.append(Candidate(person=person, score=1, reasons=("Search result",)))
    return ranked + extra


# -- queue ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchPreview:
    """The SuperOffice person a rep is about to match, and how it differs from the contact."""

    person: Person
    differences: tuple[str, ...]

    @property
    def needs_confirmation(self) -> bool:
        return bool(self.differences)


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def match_preview(*, account: Account, contact: Contact, person_id: int) -> MatchPreview:
    """Read the person from SuperOffice before a match (raises NotFoundCrmError when there
    is none), and say where its name or e-mail differ from the contact's."""
    from crm.services import client_for_account

    client = client_for_account(account, correlation=f"panel:match-preview:{contact.pk}")
    person = client.get_person(person_id=person_id)
    differences = []
    contact_name = f"{contact.first_name} {contact.last_name}"
    person_name = f"{person.first_name} {person.last_name}"
    if contact_name.strip() and not _same_text(contact_name, person_name):
        differences.append(f"The name differs: “{person_name.strip()}” in SuperOffice.")
    emails = [e for e in (person.emails or (person.email,)) if e]
    if not any(_same_text(contact.email, e) for e in emails):
        shown = ", ".join(emails) or "no e-mail"
        differences.append(f"The e-mail differs: {shown} in SuperOffice.")
    return MatchPreview(person=person, differences=tuple(differences))


def contact_match(
    *, account: Account, contact: Contact, person_id: int, associate_id: int | None
) -> int:
    """The contact is this SuperOffice person: set it and resume every waiting run at once."""
    if contact.account_id != account.id:
        raise ValueError("Contact of another account")
    from django.conf import settings

    with transaction.atomic():
        resumed = automation_services.contact_person_set(
            contact=contact,
            person_id=person_id,
            hold_seconds=settings.AUTOMATIONS_MATCH_UNDO_SECONDS,
        )
        LeadDecision.objects.create(
            account=account,
            contact=contact,
            outcome=LeadDecision.Outcome.MATCHED,
            person_id=person_id,
            associate_id=associate_id,
        )
    return resumed


def contact_match_undo(*, account: Account, contact: Contact) -> int | None:
    """Undo a rep's match while its runs are held; None when it is too late."""
    if contact.account_id != account.id:
        raise ValueError("Contact of another account")
    with transaction.atomic():
        back = automation_services.contact_match_undo(contact=contact)
        if back is not None:
            # The match did not happen: its decision goes with it.
            decision = (
                LeadDecision.objects.filter(
                    account=account, contact=contact, outcome=LeadDecision.Outcome.MATCHED
                )
                .order_by("-id")
                .first()
            )
            if decision is not None:
                decision.delete()
    return back


def contact_match_release(*, account: Account, contact: Contact) -> int:
    """Let the runs a match holds act now, before the undo window ends."""
    if contact.account_id != account.id:
        raise ValueError("Contact of another account")
    return automation_services.contact_match_release(contact=contact)


def contact_dismiss(
    *, account: Account, contact: Contact, reason: str, associate_id: int | None
) -> int:
    """Nobody in SuperOffice is this contact: cancel its waiting runs, keep the reason."""
    if contact.account_id != account.id:
        raise ValueError("Contact of another account")
    with transaction.atomic():
        cancelled = automation_services.runs_dismiss_for_contact(
            contact=contact, reason=reason or "Dismissed"
        )
        LeadDecision.objects.create(
            account=account,
            contact=contact,
            outcome=LeadDecision.Outcome.DISMISSED,
            reason=reason[:300],
            associate_id=associate_id,
        )
    return cancelled


# A bulk match claimed this long ago and not finished lost its worker: the next delivery
# takes it over and goes on from the last contact it checked.
BULK_MATCH_STALE_AFTER = timedelta(minutes=10)


def bulk_match_start(
    *, account: Account, contact_ids: list[int], associate_id: int | None
) -> BulkMatch:
    """Record a rep's "Match selected" and hand it to a worker once the row is committed."""
    from .tasks import run_bulk_match

    bulk = BulkMatch.objects.create(
        account=account, associate_id=associate_id, contact_ids=list(contact_ids)
    )
    transaction.on_commit(lambda: run_bulk_match.delay(bulk.pk))
    return bulk


def bulk_match_run(*, bulk_match_id: int) -> BulkMatch | None:
    """Match each selected contact whose best candidate has the same e-mail, keeping the
    progress on the row after each contact. None when another worker has it or it is done.

    Where several persons share the e-mail the oldest is taken, as elsewhere in the hub. A
    contact someone matched or dismissed meanwhile is left as it is (counted as left).
    """
    from crm.errors import CrmError
    from crm.services import client_for_account

    now = timezone.now()
    claimed = BulkMatch.objects.filter(
        Q(status=BulkMatch.Status.QUEUED)
        | Q(status=BulkMatch.Status.RUNNING, started_at__lt=now - BULK_MATCH_STALE_AFTER),
        pk=bulk_match_id,
    ).update(status=BulkMatch.Status.RUNNING, started_at=now)
    if not claimed:
        return None
    bulk = BulkMatch.objects.select_related("account").get(pk=bulk_match_id)
    account = bulk.account
    matched, skipped, checked = list(bulk.matched), bulk.skipped, bulk.checked
    try:
        client = client_for_account(account, correlation=f"panel:bulk-match:{bulk.pk}")
        for contact_id in bulk.contact_ids[checked:]:
            still_waiting = selectors.queue_contacts_on_page(
                account=account, contact_ids=[contact_id]
            )
            best = None
            if still_waiting:
                contact = still_waiting[0]
                persons = client.find_persons_by_email(email=contact.email)
                ranked = candidates_rank(contact=contact, persons=list(persons))
                if ranked and "Same email" in ranked[0].reasons:
                    best = ranked[0].person.id
            if best is None:
                skipped += 1
            else:
                resumed = contact_match(
                    account=account,
                    contact=contact,
                    person_id=best,
                    associate_id=bulk.associate_id,
                )
                matched.append([contact.pk, best, resumed])
            checked += 1
            BulkMatch.objects.filter(pk=bulk.pk).update(
                checked=checked, matched=matched, skipped=skipped
            )
    except CrmError as exc:
        BulkMatch.objects.filter(pk=bulk.pk).update(
            status=BulkMatch.Status.FAILED,
            error=f"SuperOffice could not be reached or refused: {exc.message}"[:500],
            finished_at=timezone.now(),
        )
    else:
        BulkMatch.objects.filter(pk=bulk.pk).update(
            status=BulkMatch.Status.DONE, finished_at=timezone.now()
        )
    bulk.refresh_from_db()
    return bulk


# -- Lead Report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewPerson:
    first_name: str
    last_name: str
    email: str
    phone: str = ""
    mobile: str = ""
    title: str = ""
    company_id: int | None = None
    company: NewCompany | None = None


def lead_approve(
    *, account: Account, contact: Contact, person: NewPerson, associate_id: int | None
) -> int:
    """Create the person (and company, where allowed) in SuperOffice, then match the contact
    to it so its waiting runs resume. Returns the new person id."""
    from crm.services import crm_person_create

    if contact.account_id != account.id:
        raise ValueError("Contact of another account")
    created = crm_person_create(
        account=account,
        first_name=person.first_name,
        last_name=person.last_name,
        email=person.email,
        phone=person.phone,
        mobile=person.mobile,
        title=person.title,
        company_id=person.company_id if person.company is None else None,
        new_company=person.company,
        correlation=f"panel:approve:{contact.pk}",
    )
    with transaction.atomic():
        automation_services.contact_person_set(contact=contact, person_id=created.id)
        LeadDecision.objects.create(
            account=account,
            contact=contact,
            outcome=LeadDecision.Outcome.APPROVED,
            person_id=created.id,
            company_id=created.company_id,
            associate_id=associate_id,
        )
    return created.id


def lead_reject(
    *, account: Account, contact: Contact, reason: str, associate_id: int | None
) -> LeadDecision:
    """Hide the lead from the report. Its waiting runs stay in the queue, where a rep can
    still match or dismiss them: a rejection is about the lead, not about lost work."""
    if contact.account_id != account.id:
        raise ValueError("Contact of another account")
    return LeadDecision.objects.create(
        account=account,
        contact=contact,
        outcome=LeadDecision.Outcome.REJECTED,
        reason=reason[:300],
        associate_id=associate_id,
    )


def lead_reject_undo(*, account: Account, contact: Contact, associate_id: int | None) -> bool:
    """Bring a rejected lead back to the report. The rejection is kept, marked undone (when,
    by whom), so the history still shows it; False when there is no rejection to undo."""
    if contact.account_id != account.id:
        raise ValueError("Contact of another account")
    return bool(
        LeadDecision.objects.filter(
            account=account,
            contact=contact,
            outcome=LeadDecision.Outcome.REJECTED,
            undone_at__isnull=True,
        ).update(undone_at=timezone.now(), undone_by_associate_id=associate_id)
    )
