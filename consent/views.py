"""Pages of the consent app: sync history, a cycle's decisions, a contact's consents; the
receiver of SuperOffice's webhook and the admin's webhook buttons."""

import logging

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from campaigns.models import Contact
from crm.webhooks import SIGNATURE_HEADER
from emhub.tenancy import account_required, admin_required

from .models import ConsentDecision, ConsentSyncCycle
from .selectors import (
    consent_cycle_chart,
    consent_cycle_decisions,
    consent_cycle_get,
    consent_cycles,
    consent_decisions_for_contact,
    consent_history_for_contact,
    consent_next_cycle_at,
    consent_state_for_contact,
    consent_sync_enabled,
    consent_sync_running,
)

logger = logging.getLogger(__name__)

CYCLES_PER_PAGE = 25
DECISIONS_PER_PAGE = 50
CHANGES_PER_PAGE = 50


def _sync_page_context(request) -> dict:
    """What the sync page shows, and whether it keeps following a cycle (htmx polling).

    ``after`` is the newest cycle when an admin pressed Sync now: the page follows until a
    newer cycle has finished, so nobody has to reload to see the result.
    """
    account = request.account
    cycles = consent_cycles(account=account)
    page = Paginator(cycles, CYCLES_PER_PAGE).get_page(request.GET.get("page"))
    enabled = consent_sync_enabled(account=account)
    running = consent_sync_running(account=account)
    after = _cycle_id_param(request.GET.get("after"))
    following = after is not None
    waiting_for_ours = (
        following and not cycles.filter(id__gt=after, finished_at__isnull=False).exists()
    )
    poll = enabled and (running or waiting_for_ours)
    query = request.GET.copy()
    return {
        "page": page,
        "sync_enabled": enabled,
        "running": running,
        "following": following,
        "poll": poll,
        "live_url": f"{reverse('consent:sync_live')}?{query.urlencode()}",
        "next_cycle_at": consent_next_cycle_at() if enabled else None,
        "last_cycle": cycles.first(),
    }


def _cycle_id_param(value) -> int | None:
    try:
        return max(int(value), 0) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


@account_required
def sync_history(request):
    context = _sync_page_context(request)
    context["chart_data"] = consent_cycle_chart(account=request.account)
    return render(request, "consent/sync_history.html", context)


@account_required
def sync_live(request):
    """The part of the sync page that changes while a cycle runs (polled by htmx)."""
    return render(request, "consent/_sync_live.html", _sync_page_context(request))


@account_required
def sync_cycle_detail(request, cycle_id: int):
    cycle = consent_cycle_get(account=request.account, cycle_id=cycle_id)
    if cycle is None:
        raise Http404("No such cycle")
    decisions = consent_cycle_decisions(cycle=cycle)
    action = request.GET.get("action", "")
    if action in ConsentDecision.Action.values:
        decisions = decisions.filter(action=action)
    elif action == "failed":
        decisions = decisions.filter(outcome=ConsentDecision.Outcome.FAILED)
    elif action == "conflict":
        decisions = decisions.filter(conflict=True)
    else:
        action = ""
    page = Paginator(decisions, DECISIONS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "consent/cycle_detail.html",
        {
            "cycle": cycle,
            "page": page,
            "action": action,
            "query": f"action={action}" if action else "",
            "actions": ConsentDecision.Action.choices,
        },
    )


@admin_required
@require_POST
def sync_run(request):
    """Queue a cycle now (the lease still makes it wait its turn behind a running one)."""
    from .tasks import sync_account

    kind = request.POST.get("kind", ConsentSyncCycle.Kind.INCREMENTAL)
    if kind not in (ConsentSyncCycle.Kind.INCREMENTAL, ConsentSyncCycle.Kind.FULL):
        kind = ConsentSyncCycle.Kind.INCREMENTAL
    if not consent_sync_enabled(account=request.account):
        messages.error(request, "Legal-basis sync is off for this account.")
        return redirect("consent:sync_history")
    try:
        sync_account.delay(request.account.pk, kind)
    except Exception:
        # The broker is down: say so rather than pretend the cycle was queued.
        logger.exception("Could not queue a consent cycle for account %s", request.account.pk)
        messages.error(request, "The cycle could not be queued. Try again in a minute.")
    else:
        label = ConsentSyncCycle.Kind(kind).label.lower()
        messages.success(request, f"Cycle queued ({label}); this page follows it until it is done.")
        newest = (
            consent_cycles(account=request.account)
            .order_by("-id")
            .values_list("id", flat=True)
            .first()
        )
        return redirect(f"{reverse('consent:sync_history')}?after={newest or 0}")
    return redirect("consent:sync_history")


@account_required
def contact_consents(request, contact_id: int):
    contact = get_object_or_404(Contact, account=request.account, pk=contact_id)
    page = Paginator(consent_history_for_contact(contact=contact), CHANGES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "consent/contact_consents.html",
        {
            "contact": contact,
            "states": consent_state_for_contact(contact=contact),
            "page": page,
            "decisions": consent_decisions_for_contact(contact=contact).select_related("cycle")[
                :10
            ],
        },
    )


@csrf_exempt
@require_POST
def superoffice_webhook(request, token: str):
    """SuperOffice's deliveries for one account. No session or CSRF: the signature proves
    the sender. Answers at once; the work happens in a worker."""
    from .push import superoffice_event_receive

    received = superoffice_event_receive(
        token=token, body=request.body, signature=request.headers.get(SIGNATURE_HEADER)
    )
    return HttpResponse(received.message, status=received.status, content_type="text/plain")


@admin_required
@require_POST
def webhook_register(request):
    """Register the account's webhook again (after SuperOffice disabled it, say)."""
    from .webhooks import consent_webhook_ensure

    if not consent_sync_enabled(account=request.account):
        messages.error(request, "Turn legal-basis sync on first.")
        return redirect("crm:connection")
    row = consent_webhook_ensure(account=request.account, force=True)
    if row is not None and row.state == row.State.ACTIVE:
        messages.success(request, "SuperOffice pushes consent changes to the hub again.")
    else:
        messages.error(request, (row.error if row else "") or "The webhook was not registered.")
    return redirect("crm:connection")


@admin_required
@require_POST
def webhook_check(request):
    """Read the webhook's state from SuperOffice now."""
    from .webhooks import consent_webhook_check

    row = consent_webhook_check(account=request.account)
    if row is None:
        messages.error(request, "There is no webhook to check.")
    else:
        messages.success(request, f"Webhook: {row.get_state_display().lower()}.")
    return redirect("crm:connection")
