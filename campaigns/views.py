"""Pages for campaigns and contacts, and the public tracking endpoints recipients hit.

Every page is account-scoped: objects are read through the selectors with
`request.account`, so another account's id is a 404.
"""

import json
from urllib.parse import urlencode

from django.conf import settings as django_settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe
from django_ratelimit.core import is_ratelimited
from django_ratelimit.decorators import ALL

from emhub.tenancy import account_required

from . import clicks, selectors, services
from . import unsubscribe as unsubscribe_service
from .forms import (
    CampaignEditForm,
    CampaignForm,
    CampaignFormForm,
    ContactSearchForm,
    EventFilterForm,
    HostedFormForm,
    TrackedLinkForm,
)
from .models import FORM_FIELDS, Form, LinkResponse
from .sendout_selectors import campaign_sendout_figures

PER_PAGE = 25
EVENTS_PER_PAGE = 50


def _apply_errors(form, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form, by field where the form has the field."""
    if hasattr(exc, "error_dict"):
        for name, errors in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


# --- Campaigns -----------------------------------------------------------------------------


@account_required
def campaign_list(request):
    page = Paginator(selectors.campaigns_of(account=request.account), PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "campaigns/campaign_list.html", {"page": page})


@account_required
def campaign_create(request):
    form = CampaignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = services.campaign_create(account=request.account, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Campaign “{campaign.name}” created.")
            return redirect("campaigns:campaign_detail", campaign_id=campaign.pk)
    return render(request, "campaigns/campaign_form.html", {"form": form, "campaign": None})


@account_required
def campaign_edit(request, campaign_id: int):
    campaign = selectors.campaign_get(account=request.account, campaign_id=campaign_id)
    initial = {
        "name": campaign.name,
        "description": campaign.description,
        "is_archived": campaign.is_archived,
    }
    form = CampaignEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.campaign_update(campaign=campaign, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, "Campaign saved.")
            return redirect("campaigns:campaign_detail", campaign_id=campaign.pk)
    return render(request, "campaigns/campaign_form.html", {"form": form, "campaign": campaign})


@account_required
def campaign_detail(request, campaign_id: int):
    """The Overview tab: event counts by type and events per day."""
    campaign = selectors.campaign_get(account=request.account, campaign_id=campaign_id)
    per_day = selectors.campaign_events_per_day(campaign=campaign, days=30)
    chart = {
        "labels": [day.strftime("%d %b") for day, _ in per_day],
        "datasets": [{"label": "Events", "data": [n for _, n in per_day]}],
    }
    return render(
        request,
        "campaigns/campaign_detail.html",
        {
            "campaign": campaign,
            "tab": "overview",
            "counts": selectors.campaign_event_counts(campaign=campaign),
            "chart": chart,
            "chart_total": sum(n for _, n in per_day),
            "recent_events": selectors.events_of_campaign(campaign=campaign)[:10],
            "sendouts": campaign_sendout_figures(campaign=campaign),
        },
    )


@account_required
def campaign_links(request, campaign_id: int):
    """The Links tab: the campaign's tracked links with their click counts, and a new one."""
    campaign = selectors.campaign_get(account=request.account, campaign_id=campaign_id)
    form = TrackedLinkForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            link = services.tracked_link_create(campaign=campaign, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Tracked link “{link.name}” created.")
            return redirect("campaigns:campaign_links", campaign_id=campaign.pk)
    return render(
        request,
        "campaigns/campaign_links.html",
        {
            "campaign": campaign,
            "tab": "links",
            "form": form,
            "links": _links_with_summaries(request.account, campaign),
        },
    )


def _links_with_summaries(account, campaign) -> list[tuple]:
    """(link, tracking URL, summary): the summary tells the link's actions, its clicks by
    people and filtered ones, and the runs they caused (automations.link_selectors)."""
    from automations.link_selectors import link_summaries

    links = list(selectors.links_of_campaign(campaign=campaign))
    summaries = link_summaries(account=account, links=links)
    return [(link, services.link_public_url(link=link), summaries[link.pk]) for link in links]


@account_required
def link_edit(request, campaign_id: int, link_id: int):
    campaign = selectors.campaign_get(account=request.account, campaign_id=campaign_id)
    link = selectors.link_get(account=request.account, campaign=campaign, link_id=link_id)
    form = TrackedLinkForm(request.POST or None, initial={"name": link.name, "url": link.url})
    if request.method == "POST" and form.is_valid():
        try:
            services.tracked_link_update(link=link, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Tracked link “{link.name}” saved.")
            return redirect("campaigns:campaign_links", campaign_id=campaign.pk)
    return render(
        request,
        "campaigns/link_form.html",
        {"campaign": campaign, "tab": "links", "link": link, "form": form},
    )


@account_required
def campaign_forms(request, campaign_id: int):
    """The Forms tab: the campaign's forms with their submission counts, and a new one."""
    campaign = selectors.campaign_get(account=request.account, campaign_id=campaign_id)
    form = CampaignFormForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = services.form_create(campaign=campaign, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Form “{created.name}” created. Put its code in your page.")
            return redirect("campaigns:form_detail", campaign_id=campaign.pk, form_id=created.pk)
    return render(
        request,
        "campaigns/campaign_forms.html",
        {
            "campaign": campaign,
            "tab": "forms",
            "form": form,
            "forms": selectors.forms_of_campaign(campaign=campaign),
        },
    )


@account_required
def form_detail(request, campaign_id: int, form_id: int):
    """One form: its settings, the page the hub serves for it, the HTML to embed
    elsewhere, and its latest submissions."""
    from consent.selectors import consent_legal_basis_key

    campaign = selectors.campaign_get(account=request.account, campaign_id=campaign_id)
    obj = selectors.form_get(account=request.account, campaign=campaign, form_id=form_id)
    posted = request.POST if request.method == "POST" else None
    part = posted.get("part") if posted else None
    form = CampaignFormForm(
        posted if part != "page" else None,
        initial={"name": obj.name, "success_url": obj.success_url, "published": obj.published},
    )
    page_form = HostedFormForm(
        posted if part == "page" else None,
        initial=HostedFormForm.initial_from(obj),
        consent_legal_basis=consent_legal_basis_key(account=request.account)
        if part == "page"
        else "61A",
    )
    if part == "page" and page_form.is_valid():
        try:
            services.form_page_update(form=obj, **page_form.service_kwargs())
        except ValidationError as exc:
            _apply_errors(page_form, exc)
        else:
            messages.success(request, f"The page of “{obj.name}” is saved.")
            return redirect("campaigns:form_detail", campaign_id=campaign.pk, form_id=obj.pk)
    elif posted is not None and part != "page" and form.is_valid():
        try:
            services.form_update(form=obj, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, f"Form “{obj.name}” saved.")
            return redirect("campaigns:form_detail", campaign_id=campaign.pk, form_id=obj.pk)
    page = Paginator(selectors.events_of_form(form=obj), PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/form_detail.html",
        {
            "campaign": campaign,
            "tab": "forms",
            "obj": obj,
            "form": form,
            "page_form": page_form,
            "page": page,
            "action_url": services.form_action_url(form=obj),
            "honeypot": services.FORM_HONEYPOT_FIELD,
        },
    )


@account_required
def campaign_events(request, campaign_id: int):
    campaign = selectors.campaign_get(account=request.account, campaign_id=campaign_id)
    filter_form = EventFilterForm(request.GET or None)
    event_type = filter_form.cleaned_data["type"] if filter_form.is_valid() else ""
    events = selectors.events_of_campaign(campaign=campaign, event_type=event_type)
    page = Paginator(events, EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/campaign_events.html",
        {
            "campaign": campaign,
            "tab": "events",
            "filter_form": filter_form,
            "page": page,
            "query": urlencode({"type": event_type}) if event_type else "",
        },
    )


@account_required
def event_detail(request, event_id: int):
    event = selectors.event_get(account=request.account, event_id=event_id)
    data_json = json.dumps(event.data, indent=2, ensure_ascii=False, sort_keys=True)
    return render(request, "campaigns/event_detail.html", {"event": event, "data_json": data_json})


# --- Contacts ------------------------------------------------------------------------------


@account_required
def contact_list(request):
    search = ContactSearchForm(request.GET or None)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    contacts = selectors.contacts_search(account=request.account, query=query)
    page = Paginator(contacts, PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/contact_list.html",
        {
            "search": search,
            "page": page,
            "q": query,
            "query": urlencode({"q": query}) if query else "",
        },
    )


@account_required
def contact_detail(request, contact_id: int):
    contact = selectors.contact_get(account=request.account, contact_id=contact_id)
    page = Paginator(selectors.events_of_contact(contact=contact), EVENTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "campaigns/contact_detail.html", {"contact": contact, "page": page})


# --- Public tracking endpoints -------------------------------------------------------------
# Recipients reach these from emails and landing pages, signed in to nothing. Each view
# parses the request, calls one service and responds; they stay thin so link actions can be
# added in the services without touching the views.

# The smallest transparent GIF: 1x1 pixel, 43 bytes.
PIXEL_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def _no_store(response: HttpResponse) -> HttpResponse:
    # Every click and open must reach the hub: no browser, proxy or mail client cache.
    response["Cache-Control"] = "no-cache, no-store, must-revalidate, private, max-age=0"
    response["Pragma"] = "no-cache"
    response["Expires"] = "0"
    return response


def _user_agent(request) -> str:
    return request.META.get("HTTP_USER_AGENT", "")


@require_safe
def link_click(request, token: str):
    """`/t/<token>/?c=<signed contact ref>`: take the click, then respond at once: a
    redirect, or the link's text page. The click's event is stored by a worker
    (campaigns.clicks). A HEAD (what link checkers send) is recorded as a filtered click."""
    target = clicks.click_take(
        token=token,
        contact_ref=request.GET.get("c"),
        user_agent=_user_agent(request),
        method=request.method,
    )
    if target is None:
        raise Http404("No such link")
    if target.response.kind == LinkResponse.TEXT:
        response = render(request, "campaigns/link_page.html", {"page": target.response})
    else:
        response = HttpResponseRedirect(target.response.url)
    # The tracking URL carries the contact's reference: keep it out of the next site's Referer.
    response["Referrer-Policy"] = "no-referrer"
    return _no_store(response)


@require_safe
def open_pixel(request, ref: str):
    """`/o/<signed ref>.gif`: take the open (its event is stored by a worker, as a
    click's); answer with a 1x1 GIF."""
    if request.method == "GET":
        try:
            clicks.open_take(ref=ref, user_agent=_user_agent(request))
        except services.TrackingRefInvalid as exc:
            raise Http404("No such image") from exc
    return _no_store(HttpResponse(PIXEL_GIF, content_type="image/gif"))


def _form_rate_key(group, request) -> str:
    from emhub.sign_in import client_ip

    return client_ip(request)


def _hosted_form_fields(form: Form, values=None, errors=None, known_contact=False) -> list[dict]:
    """The inputs of a form's hosted page, with what the visitor typed and the messages
    about it (after an error). A visitor the link names (`c`) need not give an address."""
    values = values or {}
    errors = errors or {}
    inputs = []
    for name in form.field_names or ["email"]:
        if name not in FORM_FIELDS:
            continue
        inputs.append(
            {
                "name": name,
                "label": FORM_FIELDS[name],
                "type": {"email": "email", "phone": "tel", "mobile": "tel"}.get(name, "text"),
                "autocomplete": FORM_AUTOCOMPLETE.get(name, "on"),
                "required": name == "email" and not known_contact,
                "value": values.get(name, ""),
                "errors": errors.get(name, []),
            }
        )
    return inputs


# The browser's autofill names of the contact fields (HTML's autocomplete tokens).
FORM_AUTOCOMPLETE = {
    "email": "email",
    "first_name": "given-name",
    "last_name": "family-name",
    "company_name": "organization",
    "title": "organization-title",
    "phone": "tel",
    "mobile": "tel",
}


def _hosted_form_page(request, form: Form, *, errors=None, status: int = 200):
    values = request.POST if request.method == "POST" else {}
    contact_ref = (request.POST.get("c") or request.GET.get("c") or "")[:200]
    boxes = [
        {
            "name": services.form_consent_field(purpose),
            "text": box["text"],
            "checked": bool(values.get(services.form_consent_field(purpose))),
        }
        for purpose, box in (form.consent_boxes or {}).items()
    ]
    response = render(
        request,
        "campaigns/form_page.html",
        {
            "form": form,
            "inputs": _hosted_form_fields(form, values, errors, known_contact=bool(contact_ref)),
            "boxes": boxes,
            "errors": errors or {},
            "honeypot": services.FORM_HONEYPOT_FIELD,
            "contact_ref": contact_ref,
        },
        status=status,
    )
    return _no_store(response)


@csrf_exempt  # a public form posted from the customer's own pages; it changes nothing of theirs
def form_submit(request, form_token: str):
    """`/f/<form token>/`: GET is the form's page the hub serves (published forms only);
    POST records the submission for the contact named by `c` or `email`.

    At most FORMS_SUBMISSIONS_RATE per address (all forms together), so nobody can flood
    the account's contacts and automations from one place."""
    if request.method != "POST":
        # An unknown form is a 404 whatever the method, so a stray link shows the plain page.
        try:
            form = selectors.form_published_get(token=form_token)
        except Form.DoesNotExist as exc:
            raise Http404("No such form") from exc
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD", "POST"])
        return _hosted_form_page(request, form)
    wants_json = "application/json" in request.headers.get("Accept", "")
    if is_ratelimited(
        request,
        group="campaigns.form_submit",
        key=_form_rate_key,
        rate=django_settings.FORMS_SUBMISSIONS_RATE,
        method=ALL,
        increment=True,
    ):
        message = "Too many forms were sent from your address. Wait a minute and send it again."
        if wants_json:
            return JsonResponse({"non_field_errors": [message]}, status=429)
        return render(
            request,
            "campaigns/form_thanks.html",
            {"errors": {"non_field_errors": [message]}, "failed": True},
            status=429,
        )
    fields = {name: request.POST.getlist(name) for name in request.POST}
    ref = request.POST.get("c") or request.GET.get("c")
    try:
        submission = services.form_submission_record(
            form_token=form_token, fields=fields, contact_ref=ref, user_agent=_user_agent(request)
        )
    except Form.DoesNotExist as exc:
        raise Http404("No such form") from exc
    except (services.TrackingRefInvalid, services.EventsInvalid) as exc:
        errors = exc.errors.get(0, {}) if isinstance(exc, services.EventsInvalid) else {}
        if wants_json:
            return JsonResponse(errors or {"c": ["This link is not valid."]}, status=400)
        if request.POST.get("hosted") and errors:
            # Sent from the hub's own page of the form: show it again with the messages.
            form = selectors.form_published_get(token=form_token)
            return _hosted_form_page(request, form, errors=errors, status=400)
        return render(
            request, "campaigns/form_thanks.html", {"errors": errors, "failed": True}, status=400
        )
    # A bot that filled in the hidden field is answered with success (nothing was stored).
    if wants_json:
        return JsonResponse(
            {"event": submission.event.pk if submission.event else None}, status=201
        )
    if submission.form.success_url:
        return HttpResponseRedirect(submission.form.success_url, status=303)
    return render(request, "campaigns/form_thanks.html", {"form": submission.form})


# --- Unsubscribing ---------------------------------------------------------------------------


@csrf_exempt  # mail programs POST the one-click unsubscribe (RFC 8058) without a token
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request, token: str):
    """`/u/<signed token>/`: GET shows a page with a button and changes nothing (mail
    scanners open every link); POST (the button, or the mail program's one-click
    `List-Unsubscribe=One-Click`) withdraws the contact's marketing consent."""
    try:
        target = unsubscribe_service.unsubscribe_target(token=token)
    except services.TrackingRefInvalid:
        return _no_store(render(request, "campaigns/unsubscribe_invalid.html", status=400))
    context = {"target": target, "sender_name": target.sender_name}
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        result = unsubscribe_service.unsubscribe_record(target=target, one_click=one_click)
        context.update({"done": True, "already": result.already})
    else:
        context["already"] = unsubscribe_service.contact_is_unsubscribed(contact=target.contact)
    response = render(request, "campaigns/unsubscribe.html", context)
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex"
    return _no_store(response)
