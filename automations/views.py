"""Pages: a campaign's Automations tab, run history, run detail, the paused queue."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from emhub.tenancy import account_required, admin_required

from . import selectors, services
from .forms import AutomationForm, AutomationSettingsForm, RunFilterForm, RunRematchForm
from .models import RunStatus
from .picklists import picklists_load

RUNS_PER_PAGE = 25


def _runs_page(request, qs):
    form = RunFilterForm(request.GET or None)
    status = ""
    if form.is_valid():
        status = form.cleaned_data["status"]
    if status:
        qs = qs.filter(status=status)
    page = Paginator(qs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    calls = selectors.crm_calls_for_runs(account=request.account, runs=page.object_list)
    for run in page.object_list:
        run.crm_calls = calls.get(run.key, [])
    return {
        "page": page,
        "filter_form": form,
        "status": status,
        "query": urlencode({"status": status}) if status else "",
    }


@account_required
def campaign_automations(request, campaign_id: int):
    campaign = selectors.campaign_get(account=request.account, campaign_id=campaign_id)
    automations = selectors.automations_of_campaign(account=request.account, campaign=campaign)
    return render(
        request,
        "automations/automation_list.html",
        {
            "campaign": campaign,
            "automations": automations,
            "tab": "automations",
        },
    )


def _form_page(request, *, campaign, automation=None):
    refresh = request.method == "POST" and "refresh_lists" in request.POST
    lists, lists_error = picklists_load(account=request.account, refresh=refresh)
    if request.method == "POST" and not refresh:
        form = AutomationForm(request.POST, campaign=campaign, lists=lists)
        if form.is_valid():
            if automation is None:
                automation = services.automation_create(
                    account=request.account, campaign=campaign, **form.service_kwargs()
                )
                messages.success(request, f"Automation “{automation.name}” created.")
            else:
                services.automation_update(automation=automation, **form.service_kwargs())
                messages.success(request, f"Automation “{automation.name}” saved.")
            return redirect("automations:campaign_automations", campaign_id=campaign.id)
    elif refresh:
        # Keep what the marketer typed; only the lists are new.
        form = AutomationForm(
            initial=_initial_from_post(request.POST), campaign=campaign, lists=lists
        )
        if not lists_error:
            messages.success(request, "SuperOffice lists refreshed.")
    else:
        initial = AutomationForm.initial_from(automation) if automation else {"is_enabled": True}
        form = AutomationForm(initial=initial, campaign=campaign, lists=lists)
    return render(
        request,
        "automations/automation_form.html",
        {
            "campaign": campaign,
            "automation": automation,
            "form": form,
            "lists_error": lists_error,
            "tab": "automations",
        },
    )


def _initial_from_post(post) -> dict:
    initial = {}
    for name in AutomationForm.base_fields:
        if name == "interest_ids":
            initial[name] = post.getlist(name)
        elif name in ("once_per_contact", "is_enabled"):
            initial[name] = bool(post.get(name))
        elif name in post:
            initial[name] = post.get(name)
    return initial


@account_required
def automation_create(request, campaign_id: int):
    campaign = selectors.campaign_get(account=request.account, campaign_id=campaign_id)
    return _form_page(request, campaign=campaign)


@account_required
def automation_edit(request, automation_id: int):
    automation = selectors.automation_get(account=request.account, automation_id=automation_id)
    return _form_page(request, campaign=automation.campaign, automation=automation)


@account_required
@require_POST
def automation_toggle(request, automation_id: int):
    automation = selectors.automation_get(account=request.account, automation_id=automation_id)
    services.automation_set_enabled(automation=automation, is_enabled=not automation.is_enabled)
    state = "enabled" if automation.is_enabled else "disabled"
    messages.success(request, f"Automation “{automation.name}” {state}.")
    return redirect("automations:campaign_automations", campaign_id=automation.campaign_id)


@account_required
@require_POST
def automation_delete(request, automation_id: int):
    automation = selectors.automation_get(account=request.account, automation_id=automation_id)
    services.automation_delete(automation=automation)
    messages.success(request, f"Automation “{automation.name}” deleted. Its run history stays.")
    return redirect("automations:campaign_automations", campaign_id=automation.campaign_id)


def _counts(by_status: dict[str, int]) -> list[tuple[str, str, int]]:
    return [(value, label, by_status.get(value, 0)) for value, label in RunStatus.choices]


@account_required
def run_list(request):
    qs = selectors.runs_list(account=request.account)
    ctx = _runs_page(request, qs)
    ctx.update(
        {
            "title": "Automation runs",
            "counts": _counts(selectors.run_status_counts(account=request.account)),
            "settings_row": selectors.automation_settings_of(account=request.account),
        }
    )
    return render(request, "automations/run_list.html", ctx)


@account_required
def campaign_runs(request, campaign_id: int):
    campaign = selectors.campaign_get(account=request.account, campaign_id=campaign_id)
    ctx = _runs_page(request, selectors.runs_list(account=request.account, campaign=campaign))
    ctx.update({"title": f"Runs of {campaign.name}", "campaign": campaign, "tab": "runs"})
    return render(request, "automations/run_list.html", ctx)


@account_required
def automation_runs(request, automation_id: int):
    automation = selectors.automation_get(
        account=request.account, automation_id=automation_id, include_deleted=True
    )
    ctx = _runs_page(request, selectors.runs_list(account=request.account, automation=automation))
    ctx.update(
        {
            "title": f"Runs of “{automation.name}”",
            "automation": automation,
            "campaign": automation.campaign,
            "tab": "automations",
        }
    )
    return render(request, "automations/run_list.html", ctx)


@account_required
def contact_runs(request, contact_id: int):
    contact = selectors.contact_get(account=request.account, contact_id=contact_id)
    ctx = _runs_page(request, selectors.runs_list(account=request.account, contact=contact))
    ctx.update({"title": f"Runs for {contact.email}", "contact": contact})
    return render(request, "automations/run_list.html", ctx)


def _rematchable(run) -> bool:
    return run.status == RunStatus.FAILED and run.contact.superoffice_person_id is not None


def _rematch_preview(request, run, person_id: int):
    """(preview, "") when SuperOffice has the person, else (None, what to tell the marketer)."""
    from crm.errors import CrmError, NotFoundCrmError
    from leads.services import match_preview

    if person_id == run.contact.superoffice_person_id:
        return None, f"The contact is already SuperOffice person #{person_id}."
    try:
        return match_preview(account=request.account, contact=run.contact, person_id=person_id), ""
    except NotFoundCrmError:
        return None, f"SuperOffice has no person {person_id}."
    except CrmError as exc:
        return None, f"SuperOffice could not be reached or refused: {exc.message}"


@account_required
def run_detail(request, run_id: int):
    run = selectors.run_get(account=request.account, run_id=run_id)
    calls = selectors.crm_calls_for_runs(account=request.account, runs=[run]).get(run.key, [])
    context = {"run": run, "calls": calls, "rematchable": _rematchable(run)}
    if context["rematchable"]:
        # "Match to another person": looked up in SuperOffice and shown before the match.
        form = RunRematchForm(request.GET if "person_id" in request.GET else None)
        context["rematch_form"] = form
        if form.is_valid():
            preview, error = _rematch_preview(request, run, form.cleaned_data["person_id"])
            context.update(preview=preview, rematch_error=error)
    return render(request, "automations/run_detail.html", context)


@account_required
@require_POST
def run_rematch(request, run_id: int):
    run = selectors.run_get(account=request.account, run_id=run_id)
    detail = reverse("automations:run_detail", kwargs={"run_id": run.id})
    if not _rematchable(run):
        messages.error(request, "Only a failed run of a matched contact can be matched again.")
        return redirect(detail)
    form = RunRematchForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter a SuperOffice person number.")
        return redirect(detail)
    person_id = form.cleaned_data["person_id"]
    again = f"{detail}?{urlencode({'person_id': person_id})}#rematch"
    # Checked again here: never to a person SuperOffice does not have, nor to a differing
    # one without the marketer's confirmation.
    preview, error = _rematch_preview(request, run, person_id)
    if preview is None:
        messages.error(request, error)
        return redirect(again)
    if preview.needs_confirmation and not form.cleaned_data["confirmed"]:
        messages.error(request, "The name or e-mail differ: confirm it is the same person.")
        return redirect(again)
    try:
        services.run_contact_rematch(run=run, person_id=person_id, by=request.user.get_username())
    except services.RunNotRematchable:
        messages.error(request, "Only a failed run of a matched contact can be matched again.")
        return redirect(detail)
    name = f"{preview.person.first_name} {preview.person.last_name}".strip()
    messages.success(
        request,
        f"{run.contact.email} is now SuperOffice person #{person_id}"
        f"{f' ({name})' if name else ''}. Retry the run to act for this person.",
    )
    return redirect(detail)


@account_required
@require_POST
def run_retry(request, run_id: int):
    run = selectors.run_get(account=request.account, run_id=run_id)
    if run.status != RunStatus.FAILED:
        messages.error(request, "Only a failed run can be retried.")
    else:
        services.run_retry(run=run)
        messages.success(request, "The run will be tried again.")
    return redirect("automations:run_detail", run_id=run.id)


@account_required
def queue(request):
    qs = selectors.queue_contacts(account=request.account)
    page = Paginator(qs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    waiting = selectors.waiting_runs_of_contacts(account=request.account, contacts=page.object_list)
    for contact in page.object_list:
        contact.waiting = waiting.get(contact.id, [])
    from leads.selectors import panel_settings_for

    # Matching is the sales reps' work, in the SuperOffice panel: link there.
    panel = panel_settings_for(account=request.account)
    panel_url = reverse("leads:queue", kwargs={"panel_key": panel.panel_key})
    return render(request, "automations/queue.html", {"page": page, "panel_url": panel_url})


@admin_required
def automation_settings(request):
    current = selectors.automation_settings_of(account=request.account)
    if request.method == "POST" and "resume" in request.POST:
        resumed = services.account_crm_resume(account=request.account)
        messages.success(request, f"SuperOffice work resumed; {resumed} held run(s) continue.")
        return redirect("automations:settings")
    if request.method == "POST":
        form = AutomationSettingsForm(request.POST)
        if form.is_valid():
            services.automation_settings_update(
                account=request.account,
                auto_match_single_email=form.cleaned_data["auto_match_single_email"],
            )
            messages.success(request, "Automation settings saved.")
            return redirect("automations:settings")
    else:
        form = AutomationSettingsForm(
            initial={
                "auto_match_single_email": bool(current and current.auto_match_single_email),
            }
        )
    return render(request, "automations/settings.html", {"form": form, "settings_row": current})
