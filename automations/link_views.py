"""A tracked link's page: what a click shows (the response), what it does in SuperOffice
(its actions: automations triggered by `link_clicked` on this link, and the campaign's
automations that fire on any link), its clicks and the runs they caused. The action form
is the automation form, fixed to this link."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from campaigns import link_responses
from campaigns import services as campaign_services
from campaigns.link_forms import LinkResponseForm
from campaigns.models import EventType
from campaigns.scanners import REASONS
from emhub.tenancy import account_required

from . import link_selectors, link_services, services
from .forms import AutomationForm
from .models import AutomationType
from .picklists import picklists_load

PER_PAGE = 20


def _response_initial(link) -> dict:
    return {
        "response_kind": link.response_kind,
        "response_url": link.response_url,
        "response_title": link.response_title,
        "response_html": link.response_html,
    }


@account_required
def link_detail(request, link_id: int):
    link = link_selectors.link_get(account=request.account, link_id=link_id)
    form = LinkResponseForm(request.POST or None, initial=_response_initial(link))
    if request.method == "POST" and form.is_valid():
        try:
            link_responses.tracked_link_response_set(
                link=link,
                kind=form.cleaned_data["response_kind"],
                url=form.cleaned_data["response_url"],
                title=form.cleaned_data["response_title"],
                html=form.cleaned_data["response_html"],
            )
        except ValidationError as exc:
            form.add_error(None, exc.messages)
        else:
            messages.success(request, "What the recipient sees after a click is saved.")
            return redirect("automations:link_detail", link_id=link.id)
    actions = list(link_selectors.link_actions(account=request.account, link=link))
    any_link = list(
        link_selectors.campaign_any_link_automations(account=request.account, link=link)
    )
    summary = link_selectors.link_summaries(account=request.account, links=[link])[link.id]
    clicks = Paginator(
        link_selectors.link_clicks(account=request.account, link=link), PER_PAGE
    ).get_page(request.GET.get("clicks"))
    runs = Paginator(
        link_selectors.link_runs(account=request.account, link=link), PER_PAGE
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "automations/link_detail.html",
        {
            "campaign": link.campaign,
            "tab": "links",
            "link": link,
            "public_url": campaign_services.link_public_url(link=link),
            "form": form,
            "actions": actions,
            "any_link": any_link,
            "once": bool(actions) and all(a.once_per_contact for a in actions),
            "summary": summary,
            "clicks": clicks,
            "page": runs,
            "reasons": REASONS,
        },
    )


@account_required
@require_POST
def link_once(request, link_id: int):
    link = link_selectors.link_get(account=request.account, link_id=link_id)
    once = request.POST.get("once") == "1"
    link_services.link_actions_once_set(account=request.account, link=link, once=once)
    messages.success(
        request, "The link acts once per recipient." if once else "The link acts on every click."
    )
    return redirect("automations:link_detail", link_id=link.id)


def _action_form_page(request, *, link, automation=None):
    campaign = link.campaign
    refresh = request.method == "POST" and "refresh_lists" in request.POST
    lists, lists_error = picklists_load(account=request.account, refresh=refresh)
    if request.method == "POST" and not refresh:
        data = request.POST.copy()
        # The trigger is this link's click, whatever the page sent.
        data["trigger_event_type"] = EventType.LINK_CLICKED
        data["trigger_link"] = str(link.pk)
        data["trigger_form"] = ""
        if not data.get("name", "").strip() and data.get("type") in AutomationType.values:
            data["name"] = f"{AutomationType(data['type']).label} · {link.name}"[:200]
        form = AutomationForm(data, campaign=campaign, lists=lists)
        if form.is_valid():
            kwargs = form.service_kwargs()
            if automation is None:
                automation = services.automation_create(
                    account=request.account, campaign=campaign, **kwargs
                )
                messages.success(request, f"Action “{automation.name}” added.")
            else:
                services.automation_update(automation=automation, **kwargs)
                messages.success(request, f"Action “{automation.name}” saved.")
            return redirect("automations:link_detail", link_id=link.id)
    else:
        if automation is not None:
            initial = AutomationForm.initial_from(automation)
        else:
            existing = list(link_selectors.link_actions(account=request.account, link=link))
            initial = {
                "is_enabled": True,
                "once_per_contact": bool(existing) and all(a.once_per_contact for a in existing),
            }
        if refresh:
            initial = {k: request.POST.get(k) for k in request.POST if k != "csrfmiddlewaretoken"}
            initial["interest_ids"] = request.POST.getlist("interest_ids")
        initial.update({"trigger_event_type": EventType.LINK_CLICKED, "trigger_link": link.pk})
        form = AutomationForm(initial=initial, campaign=campaign, lists=lists)
    return render(
        request,
        "automations/link_action_form.html",
        {
            "campaign": campaign,
            "tab": "links",
            "link": link,
            "automation": automation,
            "form": form,
            "lists_error": lists_error,
        },
    )


@account_required
def link_action_create(request, link_id: int):
    link = link_selectors.link_get(account=request.account, link_id=link_id)
    return _action_form_page(request, link=link)


@account_required
def link_action_edit(request, link_id: int, automation_id: int):
    link = link_selectors.link_get(account=request.account, link_id=link_id)
    automation = link_selectors.link_action_get(
        account=request.account, link=link, automation_id=automation_id
    )
    return _action_form_page(request, link=link, automation=automation)


@account_required
@require_POST
def link_action_delete(request, link_id: int, automation_id: int):
    link = link_selectors.link_get(account=request.account, link_id=link_id)
    automation = link_selectors.link_action_get(
        account=request.account, link=link, automation_id=automation_id
    )
    services.automation_delete(automation=automation)
    messages.success(request, f"Action “{automation.name}” removed. Its run history stays.")
    return redirect("automations:link_detail", link_id=link.id)
