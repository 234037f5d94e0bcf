"""Reads of the consent app. Every function takes the account (or an object of it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from campaigns.models import Contact
from campaigns.services import email_normalize
from emhub.models import Account

from .models import ConsentChange, ConsentDecision, ConsentSyncCycle, CurrentConsent, Purpose

# The beat schedule runs the incremental cycle (consent.sync_all_accounts) at minute
# 0 and 30 of every hour; the pages show the next of those.
CYCLE_MINUTES = (0, 30)


# The legal-base keys SuperOffice documents: "legalBase e.g. '61A', '61B', '61F'"
# (SuperOfficeDocs docs/api-reference Services88/Person/SetConsent.md) and the key of a
# withdrawn consent, "mark its legalbase as 'WITHDRAWN'" (PersonEntity docs). A tenant may
# name others: with a SuperOffice connection its own list (List.GetLegalBases) decides.
DOCUMENTED_LEGAL_BASES = frozenset({"61A", "61B", "61F", "WITHDRAWN"})


def legal_basis_keys(*, account: Account) -> frozenset[str]:
    """The legal-base keys a consent of the account may carry: the tenant's own, from the
    cached SuperOffice list, where the account has a connection; else the documented ones.
    When SuperOffice cannot be asked, the last list read is used (or the documented keys)."""
    from crm.errors import CrmError
    from crm.models import CrmListCache, SuperOfficeConnection
    from crm.services import crm_list_items

    if not SuperOfficeConnection.objects.filter(account=account).exists():
        return DOCUMENTED_LEGAL_BASES
    try:
        items = crm_list_items(account=account, list_name="legal_bases")
        keys = {item.key.upper() for item in items if item.key}
    except CrmError:
        cached = CrmListCache.objects.filter(account=account, list_name="legal_bases").first()
        keys = {str(i.get("key", "")).upper() for i in (cached.items if cached else [])}
        keys.discard("")
    # A withdrawal is always a withdrawal, whatever the list holds.
    return frozenset(keys | {"WITHDRAWN"}) if keys else DOCUMENTED_LEGAL_BASES


# The legal base a ticked consent box stands for: SuperOffice's list names it "Consent"
# (SuperOfficeDocs docs/netserver/mdo-providers/reference/legalbase.md, item 1); its key
# is 61A in the documented examples (GDPR Art. 6(1)(a)).
CONSENT_LEGAL_BASE_NAME = "consent"
CONSENT_LEGAL_BASE_KEY = "61A"


def consent_legal_basis_key(*, account: Account) -> str:
    """The account's key for the legal base "Consent": from the tenant's list where it has
    one and SuperOffice can be asked, else 61A."""
    from crm.errors import CrmError
    from crm.models import SuperOfficeConnection
    from crm.services import crm_list_items

    if SuperOfficeConnection.objects.filter(account=account).exists():
        try:
            items = crm_list_items(account=account, list_name="legal_bases")
        except CrmError:
            items = []
        for item in items:
            if item.key and (item.name or "").strip().casefold() == CONSENT_LEGAL_BASE_NAME:
                return item.key.upper()
    return CONSENT_LEGAL_BASE_KEY


def consent_sync_enabled(*, account: Account) -> bool:
    """The admin's legal-basis-sync switch on the account's SuperOffice connection.
    Read on every cycle, so turning it off or on takes effect at the next one."""
    from crm.models import SuperOfficeConnection

    return SuperOfficeConnection.objects.filter(
        account=account, legal_basis_sync_enabled=True
    ).exists()


def consent_sync_last_watermark(*, account: Account) -> datetime | None:
    """Where the next incremental cycle starts reading SuperOffice's changes."""
    cycle = (
        ConsentSyncCycle.objects.filter(account=account, watermark__isnull=False)
        .order_by("-watermark")
        .first()
    )
    return cycle.watermark if cycle else None


@dataclass(frozen=True)
class PurposeState:
    purpose: str
    label: str
    current: CurrentConsent | None

    @property
    def is_granted(self) -> bool:
        return self.current is not None and not self.current.is_withdrawn


def consent_state_for_contact(*, contact: Contact) -> list[PurposeState]:
    """The contact's current legal basis per purpose (None where none was ever recorded)."""
    rows = {
        row.purpose: row
        for row in CurrentConsent.objects.filter(account_id=contact.account_id, contact=contact)
    }
    return [PurposeState(value, label, rows.get(value)) for value, label in Purpose.choices]


def consent_history_for_contact(*, contact: Contact) -> QuerySet[ConsentChange]:
    """Every change of the contact, newest first (paginate it)."""
    return ConsentChange.objects.filter(account_id=contact.account_id, contact=contact).order_by(
        "-changed_at", "-id"
    )


def consent_decisions_for_contact(*, contact: Contact) -> QuerySet[ConsentDecision]:
    return ConsentDecision.objects.filter(account_id=contact.account_id, contact=contact).order_by(
        "-decided_at", "-id"
    )


def contact_by_email(*, account: Account, email: str) -> Contact | None:
    # Contacts keep their address lower-cased (campaigns.services.email_normalize); the
    # unique index (account, lower(email)) answers, and SQLite's ASCII-only case folding
    # of iexact never comes into it.
    return (
        Contact.objects.filter(account=account)
        .alias(email_lower=Lower("email"))
        .filter(email_lower=email_normalize(email))
        .first()
    )


def consent_cycles(*, account: Account) -> QuerySet[ConsentSyncCycle]:
    return ConsentSyncCycle.objects.filter(account=account).order_by("-started_at", "-id")


def consent_cycle_get(*, account: Account, cycle_id: int) -> ConsentSyncCycle | None:
    return ConsentSyncCycle.objects.filter(account=account, pk=cycle_id).first()


def consent_cycle_decisions(*, cycle: ConsentSyncCycle) -> QuerySet[ConsentDecision]:
    return (
        ConsentDecision.objects.filter(account_id=cycle.account_id, cycle=cycle)
        .select_related("contact")
        .order_by("id")
    )


def consent_next_cycle_at(*, now: datetime | None = None) -> datetime:
    """The next scheduled incremental cycle (minute 0 or 30 of the hour)."""
    now = now or timezone.now()
    base = now.replace(second=0, microsecond=0)
    for minute in CYCLE_MINUTES:
        candidate = base.replace(minute=minute)
        if candidate > now:
            return candidate
    return base.replace(minute=CYCLE_MINUTES[0]) + timedelta(hours=1)


def consent_cycle_chart(*, account: Account, limit: int = 48) -> dict:
    """The last cycles' figures, oldest first, for the shared chart partial."""
    cycles = list(consent_cycles(account=account)[:limit])[::-1]
    return {
        "labels": [timezone.localtime(c.started_at).strftime("%d %b %H:%M") for c in cycles],
        "datasets": [
            {"label": "Checked", "data": [c.contacts_checked for c in cycles]},
            {"label": "Written to SuperOffice", "data": [c.written_to_superoffice for c in cycles]},
            {"label": "Written to the hub", "data": [c.written_to_hub for c in cycles]},
            {"label": "Conflicts", "data": [c.conflicts for c in cycles]},
            {"label": "Errors", "data": [c.errors for c in cycles]},
        ],
    }


def consent_sync_accounts() -> list[Account]:
    """Accounts whose admin turned legal-basis sync on."""
    from crm.models import SuperOfficeConnection

    account_ids = SuperOfficeConnection.objects.filter(legal_basis_sync_enabled=True).values(
        "account_id"
    )
    return list(Account.objects.filter(pk__in=account_ids).order_by("pk"))


def consent_sync_running(*, account: Account) -> bool:
    from .models import ConsentSyncLease

    return (
        ConsentSyncLease.objects.filter(account=account, expires_at__gt=timezone.now())
        .exclude(holder="")
        .exists()
    )


def consent_granted_contact_ids(
    *, account: Account, contact_ids, purpose: str = Purpose.EMARKETING
) -> set[int]:
    """Which of the contacts hold a legal basis for the purpose that is not withdrawn
    (the send checklist asks this after `consent_sync_for_contacts`)."""
    from .models import WITHDRAWN

    return set(
        CurrentConsent.objects.filter(
            account=account, contact_id__in=list(contact_ids), purpose=purpose
        )
        .exclude(legal_basis=WITHDRAWN)
        .values_list("contact_id", flat=True)
    )


@dataclass(frozen=True)
class PushSummary:
    """The pushes between cycles, for the connection page."""

    webhook: object  # SuperOfficeWebhook | None
    public_base: str | None
    why_no_webhook: str
    waiting_to_superoffice: int
    oldest_waiting_at: datetime | None
    failed_to_superoffice: int
    waiting_from_superoffice: int
    last_push_decision_at: datetime | None


def consent_push_summary(*, account: Account) -> PushSummary:
    from django.db.models import Min

    from .models import ConsentPush, PushStatus, SuperOfficeEvent, SuperOfficeWebhook
    from .webhooks import webhook_public_base

    base, why_not = webhook_public_base()
    waiting = ConsentPush.objects.filter(account=account, status=PushStatus.PENDING).aggregate(
        n=Count("id"), oldest=Min("created_at")
    )
    last = (
        ConsentDecision.objects.filter(account=account, cycle__isnull=True)
        .order_by("-decided_at")
        .values_list("decided_at", flat=True)
        .first()
    )
    return PushSummary(
        webhook=SuperOfficeWebhook.objects.filter(account=account).first(),
        public_base=base,
        why_no_webhook=why_not,
        waiting_to_superoffice=waiting["n"],
        oldest_waiting_at=waiting["oldest"],
        failed_to_superoffice=ConsentPush.objects.filter(
            account=account, status=PushStatus.FAILED
        ).count(),
        waiting_from_superoffice=SuperOfficeEvent.objects.filter(
            account=account, status=PushStatus.PENDING
        ).count(),
        last_push_decision_at=last,
    )
