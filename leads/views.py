"""The panels SuperOffice frames, their pop-up sign-in, and the admin's panel settings page."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.conf import settings as django_settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from campaigns.models import EventType
from crm.errors import CrmError, NotFoundCrmError
from crm.types import NewCompany
from emhub.tenancy import admin_required

from . import auth, selectors, services
from .company_views import approve_company_chosen
from .forms import (
    ApproveForm,
    BulkMatchForm,
    MatchForm,
    PanelSettingsForm,
    ReasonForm,
    RequiredReasonForm,
)
from .models import Panel
from .panel import COOKIE_NAME, panel_context, panel_view

logger = logging.getLogger(__name__)

FLOW_COOKIE = "emhub_panel_flow"


def _int(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() and len(value) < 12 else None


def _crm_message(exc: CrmError) -> str:
    return f"SuperOffice could not be reached or refused: {exc.message}"


def _fragment(request, template: str, **context) -> HttpResponse:
    return render(request, template, panel_context(request, **context))


# -- sign-in pop-up ---------------------------------------------------------------------------


@require_GET
def panel_sign_in(request, panel_key: str):
    """Start OpenID Connect in the pop-up: to SuperOffice's authorize endpoint."""
    settings = selectors.panel_settings_by_key(panel_key=panel_key)
    if settings is None:
        raise Http404("No such panel")
    redirect_uri = request.build_absolute_uri(
        reverse("leads:panel_sign_in_done", kwargs={"panel_key": panel_key})
    )
    try:
        url, flow = auth.oidc_begin(
            settings=settings,
            redirect_uri=redirect_uri,
            login_hint=request.GET.get("login_hint", "")[:200],
        )
    except auth.ProviderMisconfigured as exc:
        # The admin must change the settings: shown on their page too.
        services.panel_settings_oidc_error_set(settings=settings, error=str(exc))
        return _popup(request, error=str(exc), status=403)
    except auth.PanelAuthError as exc:
        return _popup(request, error=str(exc), status=403)
    services.panel_settings_oidc_error_set(settings=settings, error="")
    response = redirect(url)
    response.set_signed_cookie(
        FLOW_COOKIE,
        flow,
        salt=FLOW_COOKIE,
        max_age=auth.FLOW_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
        path=reverse("leads:panel_sign_in_done", kwargs={"panel_key": panel_key}),
    )
    response["Cross-Origin-Opener-Policy"] = "unsafe-none"
    return response


@require_GET
def panel_sign_in_done(request, panel_key: str):
    """The identity provider's redirect back: validate, then hand the panel token to the
    frame that opened the pop-up (postMessage to the hub's own origin only)."""
    settings = selectors.panel_settings_by_key(panel_key=panel_key)
    if settings is None:
        raise Http404("No such panel")
    if request.GET.get("error"):
        return _popup(request, error="SuperOffice did not sign you in.", status=403)
    redirect_uri = request.build_absolute_uri(request.path)
    flow = request.get_signed_cookie(FLOW_COOKIE, default="", salt=FLOW_COOKIE)
    try:
        user = auth.oidc_complete(
            settings=settings,
            flow=flow,
            code=request.GET.get("code", ""),
            state=request.GET.get("state", ""),
            redirect_uri=redirect_uri,
        )
    except auth.PanelAuthError as exc:
        if isinstance(exc, auth.ProviderMisconfigured):
            services.panel_settings_oidc_error_set(settings=settings, error=str(exc))
        logger.info("Panel sign-in refused for account %s: %s", settings.account_id, exc)
        return _popup(request, error=str(exc), status=403)
    response = _popup(request, token=auth.panel_token_issue(user=user), user=user)
    response.delete_cookie(FLOW_COOKIE, path=request.path)
    return response


def _popup(request, *, error: str = "", token: str = "", user=None, status: int = 200):
    response = render(
        request,
        "leads/panel_sign_in_done.html",
        {"error": error, "token": token, "user": user},
        status=status,
    )
    # The pop-up must keep its opener (the panel frame inside SuperOffice); the default
    # same-origin opener policy would cut it off.
    response["Cross-Origin-Opener-Policy"] = "unsafe-none"
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response


@panel_view("")
@require_POST
def panel_sign_out(request, panel_key: str):
    """End this panel session: its token is refused from now on, in every frame."""
    auth.panel_session_end(token=request.panel_token, by="signed out")
    response = render(
        request,
        "leads/panel_sign_in.html",
        {
            "panel_settings": request.panel_settings,
            "message": "You are signed out.",
            "signed_out": True,
            "sign_in_url": reverse("leads:panel_sign_in", kwargs={"panel_key": panel_key}),
            "oidc_ready": request.panel_settings.oidc_configured,
        },
    )
    response.delete_cookie(COOKIE_NAME, path="/panels/", samesite="None")
    return response


# -- Manage Automations Queue -----------------------------------------------------------------


@panel_view(Panel.QUEUE)
def queue(request, panel_key: str):
    search = request.GET.get("q", "").strip()[:100]
    page = selectors.queue_page(
        account=request.account, page=request.GET.get("page"), search=search
    )
    query = urlencode({k: v for k, v in {"q": search}.items() if v})
    return _fragment(
        request, "leads/queue.html", page=page, search=search, query=query, panel=Panel.QUEUE
    )


def _queue_contact(request, contact_id: int):
    contact = selectors.queue_contact(account=request.account, contact_id=contact_id)
    if contact is None:
        raise Http404("No such contact")
    return contact


def _candidates_fragment(request, contact, **extra):
    """The SuperOffice persons a contact may be matched to (Queue) or merged into (Lead Report)."""
    search = request.GET.get("q", "").strip()[:200]
    error, candidates = "", []
    try:
        candidates = services.candidates_for(
            account=request.account, contact=contact, search=search
        )
    except CrmError as exc:
        error = _crm_message(exc)
    return _fragment(
        request,
        "leads/_candidates.html",
        contact=contact,
        candidates=candidates,
        search=search,
        error=error,
        **extra,
    )


def _match_fragment(request, contact, *, done: str):
    """Link a contact to the picked SuperOffice person; `done` starts the line said after."""
    form = MatchForm(request.POST)
    if not form.is_valid():
        return _fragment(request, "leads/_done.html", contact=contact, error="Pick a person.")
    resumed = services.contact_match(
        account=request.account,
        contact=contact,
        person_id=form.cleaned_data["person_id"],
        associate_id=request.panel_user.associate_id,
    )
    hold = django_settings.AUTOMATIONS_MATCH_UNDO_SECONDS
    return _fragment(
        request,
        "leads/_done.html",
        contact=contact,
        message=f"{done} SuperOffice person {form.cleaned_data['person_id']}; "
        f"{resumed} waiting run(s) resumed.",
        undo_seconds=hold if resumed and done == "Matched to" else 0,
    )


@panel_view(Panel.QUEUE)
@require_GET
def queue_candidates(request, panel_key: str, contact_id: int):
    return _candidates_fragment(request, _queue_contact(request, contact_id))


def _match_preview_or_error(request, contact, person_id: int):
    """(preview, "") when SuperOffice has the person, else (None, what to tell the rep)."""
    try:
        return services.match_preview(
            account=request.account, contact=contact, person_id=person_id
        ), ""
    except NotFoundCrmError:
        return None, f"SuperOffice has no person {person_id}."
    except CrmError as exc:
        return None, _crm_message(exc)


@panel_view(Panel.QUEUE)
@require_GET
def queue_match_preview(request, panel_key: str, contact_id: int):
    """Who the rep is about to match: the person as SuperOffice has it, what differs from
    the contact, and the waiting runs that resume."""
    contact = _queue_contact(request, contact_id)
    form = MatchForm(request.GET)
    if not form.is_valid():
        preview, error = None, "Enter a SuperOffice person number."
    else:
        preview, error = _match_preview_or_error(request, contact, form.cleaned_data["person_id"])
    return _fragment(
        request,
        "leads/_match_preview.html",
        contact=contact,
        preview=preview,
        error=error,
        runs=selectors.waiting_runs_for(account=request.account, contact=contact),
    )


@panel_view(Panel.QUEUE)
@require_POST
def queue_match(request, panel_key: str, contact_id: int):
    contact = _queue_contact(request, contact_id)
    form = MatchForm(request.POST)
    if form.is_valid():
        # Checked again here: a match never goes to a person SuperOffice does not have,
        # nor to a differing one without the rep's confirmation.
        preview, error = _match_preview_or_error(request, contact, form.cleaned_data["person_id"])
        if preview is None:
            return _fragment(request, "leads/_done.html", contact=contact, error=error)
        if preview.needs_confirmation and not form.cleaned_data["confirmed"]:
            return _fragment(
                request,
                "leads/_done.html",
                contact=contact,
                error="The name or e-mail differ: confirm it is the same person.",
            )
    return _match_fragment(request, contact, done="Matched to")


@panel_view(Panel.QUEUE)
@require_POST
def queue_match_undo(request, panel_key: str, contact_id: int):
    contact = _queue_contact(request, contact_id)
    back = services.contact_match_undo(account=request.account, contact=contact)
    if back is None:
        return _fragment(
            request,
            "leads/_done.html",
            contact=contact,
            error="Too late to undo: the runs have already gone on.",
        )
    return _fragment(
        request,
        "leads/_done.html",
        contact=contact,
        message=f"Match undone; {back} run(s) wait for a match again, back in the queue.",
    )


@panel_view(Panel.QUEUE)
@require_POST
def queue_match_release(request, panel_key: str, contact_id: int):
    contact = _queue_contact(request, contact_id)
    released = services.contact_match_release(account=request.account, contact=contact)
    return _fragment(
        request,
        "leads/_done.html",
        contact=contact,
        message=f"{released} run(s) going on now.",
    )


@panel_view(Panel.QUEUE)
@require_POST
def queue_dismiss(request, panel_key: str, contact_id: int):
    contact = _queue_contact(request, contact_id)
    form = RequiredReasonForm(request.POST)
    if not form.is_valid():
        return _fragment(
            request, "leads/_done.html", contact=contact, error="Say why you dismiss it."
        )
    cancelled = services.contact_dismiss(
        account=request.account,
        contact=contact,
        reason=form.cleaned_data["reason"],
        associate_id=request.panel_user.associate_id,
    )
    return _fragment(
        request,
        "leads/_done.html",
        contact=contact,
        message=f"Dismissed; {cancelled} waiting run(s) cancelled.",
    )


@panel_view(Panel.QUEUE)
@require_POST
def queue_bulk_match(request, panel_key: str):
    """ "Match selected": a worker matches the ticked contacts by exact e-mail; the answer is
    the progress, which follows the work in place until it is done."""
    ids = [i for i in (_int(v) for v in request.POST.getlist("contact_ids")) if i][:100]
    form = BulkMatchForm(request.POST, contact_ids=ids)
    contacts = []
    if form.is_valid():
        contacts = selectors.queue_contacts_on_page(
            account=request.account, contact_ids=form.cleaned_data["contact_ids"]
        )
    if not contacts:
        return _fragment(request, "leads/_bulk_progress.html", error="Tick the contacts to match.")
    # In the order the rep saw them.
    order = {contact_id: n for n, contact_id in enumerate(ids)}
    bulk = services.bulk_match_start(
        account=request.account,
        contact_ids=sorted((c.pk for c in contacts), key=order.__getitem__),
        associate_id=request.panel_user.associate_id,
    )
    if not request.headers.get("HX-Request"):
        # Without JavaScript: back to the queue, where the matched contacts have left.
        return redirect("leads:queue", panel_key=panel_key)
    return _bulk_progress(request, bulk)


def _bulk_progress(request, bulk):
    matched = []
    if bulk.finished:
        hold = django_settings.AUTOMATIONS_MATCH_UNDO_SECONDS
        matched = [
            (
                contact,
                f"Matched by exact e-mail to SuperOffice person #{person_id}; "
                f"{resumed} waiting run(s) resumed.",
                hold if resumed else 0,
            )
            for contact, person_id, resumed in selectors.bulk_match_contacts(
                account=request.account, bulk=bulk
            )
        ]
    return _fragment(request, "leads/_bulk_progress.html", bulk=bulk, matched=matched)


@panel_view(Panel.QUEUE)
@require_GET
def queue_bulk_match_progress(request, panel_key: str, bulk_match_id: int):
    """The progress of a bulk match (polled by htmx until it is done)."""
    bulk = selectors.bulk_match_get(account=request.account, bulk_match_id=bulk_match_id)
    if bulk is None:
        raise Http404("No such bulk match")
    return _bulk_progress(request, bulk)


# -- Lead Report ----------------------------------------------------------------------------


def _report_place(data) -> tuple[int, bool]:
    """The page of the report and its filter a form came from (to come back to the same place)."""
    page = _int(data.get("page")) or 1
    return page, data.get("flagged") == "1"


@panel_view(Panel.LEADS)
def lead_report(request, panel_key: str):
    settings = request.panel_settings
    number, flagged_only = _report_place(request.GET)
    page = selectors.lead_report_page(
        account=request.account,
        flag_after_days=settings.flag_after_days,
        page=number,
        flagged_only=flagged_only,
    )
    # Back from a rejection posted without JavaScript: the rejected lead's card, with Undo.
    rejected = _int(request.GET.get("rejected"))
    rejected_lead = (
        selectors.lead_rejected(account=request.account, contact_id=rejected) if rejected else None
    )
    return _fragment(
        request,
        "leads/lead_report.html",
        page=page,
        flagged_only=flagged_only,
        query="flagged=1" if flagged_only else "",
        panel=Panel.LEADS,
        back_page=page.number,
        back_flagged=flagged_only,
        rejected_lead=rejected_lead,
        rejected_message=_rejected_words(rejected_lead.rejection) if rejected_lead else "",
    )


def _lead(request, contact_id: int):
    contact = selectors.lead_contact(account=request.account, contact_id=contact_id)
    if contact is None:
        raise Http404("No such lead")
    return contact


def _rejected_words(decision) -> str:
    return "Rejected" + (f": {decision.reason}" if decision.reason else "") + "."


def _lead_card(request, lead, *, state: str = "", message: str = "", error: str = "", **extra):
    """The lead's card in its new state: swapped in place of the old one by htmx; without
    JavaScript, back to the report at the same page (and the card, when it is still there)."""
    if not request.headers.get("HX-Request"):
        number, flagged = _report_place(request.POST)
        query = {"page": number if number > 1 else "", "flagged": "1" if flagged else ""}
        if state == "rejected":
            query["rejected"] = lead.id
        query = urlencode({k: v for k, v in query.items() if v})
        url = reverse("leads:lead_report", kwargs={"panel_key": request.panel_settings.panel_key})
        return redirect(f"{url}{'?' + query if query else ''}#lead-{lead.id}")
    if not state:
        lead = selectors.lead_card(
            account=request.account,
            contact=lead,
            flag_after_days=request.panel_settings.flag_after_days,
        )
    number, flagged = _report_place(request.POST)
    return _fragment(
        request,
        "leads/_lead_card.html",
        lead=lead,
        state=state,
        message=message,
        error=error,
        back_page=number,
        back_flagged=flagged,
        **extra,
    )


def _approve_form(request, contact, data=None) -> tuple[ApproveForm, str]:
    from crm.models import SuperOfficeConnection
    from crm.services import crm_list_items

    connection = SuperOfficeConnection.objects.filter(account=request.account).first()
    allow = bool(connection and connection.allow_company_creation)
    lists, error = {}, ""
    if allow:
        try:
            lists = {
                "country": crm_list_items(account=request.account, list_name="countries"),
                "category": crm_list_items(account=request.account, list_name="categories"),
                "business": crm_list_items(account=request.account, list_name="businesses"),
            }
        except CrmError as exc:
            error = _crm_message(exc)
    initial = {
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "email": contact.email,
        "phone": contact.phone,
        "mobile": contact.mobile,
        "title": contact.title,
        "company_name": contact.company_name,
        "create_company": allow and bool(contact.company_name),
    }
    form = ApproveForm(data, initial=initial, allow_company_creation=allow, lists=lists)
    return form, error


@panel_view(Panel.LEADS)
def lead_approve(request, panel_key: str, contact_id: int):
    contact = _lead(request, contact_id)
    if request.method != "POST":
        form, error = _approve_form(request, contact)
        return _fragment(
            request, "leads/_approve_form.html", contact=contact, form=form, error=error
        )
    form, error = _approve_form(request, contact, request.POST)
    chosen = approve_company_chosen(request, form)
    if not form.is_valid():
        return _fragment(
            request,
            "leads/_approve_form.html",
            contact=contact,
            form=form,
            error=error,
            company=chosen,
        )
    data = form.cleaned_data
    company = None
    if data.get("create_company"):
        company = NewCompany(
            name=data["company_name"],
            country_id=data.get("country_id"),
            category_id=data.get("category_id"),
            business_id=data.get("business_id"),
        )
    waiting = len(selectors.waiting_runs_for(account=request.account, contact=contact))
    try:
        person_id = services.lead_approve(
            account=request.account,
            contact=contact,
            person=services.NewPerson(
                first_name=data["first_name"],
                last_name=data["last_name"],
                email=data["email"],
                phone=data["phone"],
                mobile=data["mobile"],
                title=data["title"],
                company_id=data.get("company_id"),
                company=company,
            ),
            associate_id=request.panel_user.associate_id,
        )
    except CrmError as exc:
        return _fragment(
            request,
            "leads/_approve_form.html",
            contact=contact,
            form=form,
            error=_crm_message(exc),
            company=chosen,
        )
    response = _lead_card(
        request,
        contact,
        state="approved",
        message=f"Approved — SuperOffice person #{person_id} created"
        f"{' with company ' + data['company_name'] if company else ''}"
        f"{f'; {waiting} waiting run(s) resumed' if waiting else ''}.",
    )
    # The form sat in the card's lower part; the answer is the whole card in its new state.
    response["HX-Retarget"] = "closest .entry"
    response["HX-Reswap"] = "outerHTML"
    return response


@panel_view(Panel.LEADS)
@require_GET
def lead_candidates(request, panel_key: str, contact_id: int):
    """Merge into an existing person: the queue's candidates, matched the same way."""
    return _candidates_fragment(request, _lead(request, contact_id), merge=True)


@panel_view(Panel.LEADS)
@require_POST
def lead_merge(request, panel_key: str, contact_id: int):
    contact = _lead(request, contact_id)
    form = MatchForm(request.POST)
    if not form.is_valid():
        return _lead_card(request, contact, error="Pick a person.")
    person_id = form.cleaned_data["person_id"]
    # As a match: never to a person SuperOffice does not have.
    preview, error = _match_preview_or_error(request, contact, person_id)
    if preview is None:
        return _lead_card(request, contact, error=error)
    if preview.needs_confirmation and not form.cleaned_data["confirmed"]:
        # A person whose name or e-mail differ: shown on the card, merged once confirmed.
        return _lead_card(request, contact, merge_preview=preview)
    resumed = services.contact_match(
        account=request.account,
        contact=contact,
        person_id=person_id,
        associate_id=request.panel_user.associate_id,
    )
    name = f"{preview.person.first_name} {preview.person.last_name}".strip()
    return _lead_card(
        request,
        contact,
        state="merged",
        message=f"Merged into SuperOffice person #{person_id}{f' ({name})' if name else ''}; "
        f"{resumed} waiting run(s) resumed.",
    )


@panel_view(Panel.LEADS)
@require_POST
def lead_reject(request, panel_key: str, contact_id: int):
    contact = _lead(request, contact_id)
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    decision = services.lead_reject(
        account=request.account,
        contact=contact,
        reason=reason,
        associate_id=request.panel_user.associate_id,
    )
    return _lead_card(request, contact, state="rejected", message=_rejected_words(decision))


@panel_view(Panel.LEADS)
@require_POST
def lead_reject_undo(request, panel_key: str, contact_id: int):
    contact = _lead(request, contact_id)
    undone = services.lead_reject_undo(
        account=request.account, contact=contact, associate_id=request.panel_user.associate_id
    )
    if not undone:
        return _lead_card(request, contact, error="This lead was not rejected; nothing to undo.")
    return _lead_card(request, contact, message="Rejection undone: the lead waits for a decision.")


# -- Timeline and Event details ----------------------------------------------------------------


@panel_view(Panel.TIMELINE)
@require_GET
def timeline(request, panel_key: str):
    person_id = _int(request.GET.get("atid"))
    event_type = request.GET.get("type", "")
    event_type = event_type if event_type in EventType.values else ""
    page = chart = None
    if person_id:
        page, chart = selectors.timeline_page(
            account=request.account,
            person_id=person_id,
            page=request.GET.get("page"),
            event_type=event_type,
        )
    query = urlencode({k: v for k, v in {"atid": person_id or "", "type": event_type}.items() if v})
    return _fragment(
        request,
        "leads/timeline.html",
        person_id=person_id,
        page=page,
        chart=chart,
        event_type=event_type,
        event_types=EventType.choices,
        query=query,
        panel=Panel.TIMELINE,
    )


@panel_view(Panel.EVENT)
@require_GET
def event_details(request, panel_key: str):
    # On a follow-up's card SuperOffice fills <baid> (the table of its variables); <apid>
    # stands among the document and system variables: either names the appointment.
    appointment_id = _int(request.GET.get("baid")) or _int(request.GET.get("apid"))
    sale_id = _int(request.GET.get("said"))
    runs = []
    if sale_id:
        runs = selectors.runs_for_crm_object(
            account=request.account, object_type="sale", object_id=sale_id
        )
    elif appointment_id:
        runs = selectors.runs_for_crm_object(
            account=request.account, object_type="appointment", object_id=appointment_id
        )
    return _fragment(
        request,
        "leads/event_details.html",
        runs=runs,
        sale_id=sale_id,
        appointment_id=appointment_id,
        panel=Panel.EVENT,
    )


# -- the admin's settings page ----------------------------------------------------------------


def _group_choices(account, stored: dict) -> tuple[list[tuple[int, str]], str]:
    from crm.services import crm_list_items

    known = {int(g) for groups in (stored or {}).values() for g in groups}
    try:
        items = crm_list_items(account=account, list_name="user_groups")
        choices = [(i.id, i.name) for i in items]
        error = ""
    except CrmError as exc:
        choices, error = [], _crm_message(exc)
    listed = {c[0] for c in choices}
    choices += [(g, f"Group {g}") for g in sorted(known - listed)]
    return choices, error


def panel_urls(request, settings) -> list[tuple[str, str]]:
    base = django_settings.EMHUB_PUBLIC_URL.rstrip("/")
    usec = "&usec=<usec>" if settings.usec_enabled else ""
    common = f"usid=<usid>&uctx=<uctx>{usec}"

    def url(name: str, extra: str = "") -> str:
        path = reverse(name, kwargs={"panel_key": settings.panel_key})
        return f"{base}{path}?{extra}{common}"

    return [
        ("Manage Automations Queue (button or navigator panel)", url("leads:queue")),
        ("Lead Report (button or navigator panel)", url("leads:lead_report")),
        ("Timeline (person card)", url("leads:timeline", "atid=<atid>&")),
        ("Event details (sale card)", url("leads:event_details", "said=<said>&")),
        ("Event details (appointment card)", url("leads:event_details", "baid=<baid>&")),
    ]


@admin_required
def panel_settings(request):
    settings = selectors.panel_settings_for(account=request.account)
    choices, crm_error = _group_choices(request.account, settings.panel_groups)
    if request.method == "POST":
        form = PanelSettingsForm(request.POST, group_choices=choices)
        if form.is_valid():
            data = form.cleaned_data
            services.panel_settings_update(
                settings=settings,
                context_identifier=data["context_identifier"],
                frame_ancestors=data["frame_ancestors"],
                oidc_issuer=data["oidc_issuer"],
                oidc_client_id=data["oidc_client_id"],
                oidc_client_secret=data["oidc_client_secret"],
                usec_enabled=data["usec_enabled"],
                panel_groups=form.panel_groups(),
                flag_after_days=data["flag_after_days"],
            )
            messages.success(request, "Panel settings saved.")
            return redirect("leads:panel_settings")
    else:
        initial = {
            "context_identifier": settings.context_identifier or _connection_ctx(request.account),
            "frame_ancestors": "\n".join(settings.ancestors),
            "oidc_issuer": settings.oidc_issuer,
            "oidc_client_id": settings.oidc_client_id,
            "usec_enabled": settings.usec_enabled,
            "flag_after_days": settings.flag_after_days,
        }
        for panel in Panel.values:
            initial[f"groups_{panel}"] = settings.groups_for(panel)
        form = PanelSettingsForm(initial=initial, group_choices=choices)
    return render(
        request,
        "leads/panel_settings.html",
        {
            "form": form,
            "settings": settings,
            "crm_error": crm_error,
            "urls": panel_urls(request, settings),
            "secret_stored": bool(settings.oidc_client_secret),
            "group_fields": [form[f"groups_{p}"] for p in Panel.values],
            "panel_sessions": selectors.panel_sessions_live(account=request.account),
        },
    )


@admin_required
@require_POST
def panel_session_revoke(request, panel_session_id: int):
    if not selectors.panel_session_exists(account=request.account, session_id=panel_session_id):
        raise Http404("No such panel session")
    if services.panel_session_revoke(
        account=request.account, session_id=panel_session_id, by=request.user.get_username()
    ):
        messages.success(request, "Panel session ended: that sign-in no longer opens panels.")
    else:
        messages.info(request, "That panel session had already ended.")
    return redirect("leads:panel_settings")


@admin_required
@require_POST
def panel_sessions_revoke_all(request):
    count = services.panel_sessions_revoke_all(
        account=request.account, by=request.user.get_username()
    )
    messages.success(request, f"{count} panel session(s) ended: every rep signs in again.")
    return redirect("leads:panel_settings")


def _connection_ctx(account) -> str:
    from crm.models import SuperOfficeConnection

    connection = SuperOfficeConnection.objects.filter(account=account).first()
    return connection.context_identifier if connection else ""
