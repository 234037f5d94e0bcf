"""Pages for imports from SuperOffice, recipient lists and sendouts.

Account-scoped like every page: objects are read through the selectors with
`request.account`, so another account's id is a 404.
"""

from urllib.parse import urlencode

from csp.constants import NONE
from csp.decorators import csp_replace
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from crm.errors import CrmError
from crm.services import crm_list_items
from emhub.tenancy import account_required

from . import imports, selectors, sendout_selectors, sendouts
from .forms import (
    EmailSenderForm,
    ImportForm,
    MessageFilterForm,
    PreviewRecipientForm,
    RecipientListNameForm,
    SendoutConfirmForm,
    SendoutForm,
    SourceSearchForm,
)
from .models import Channel, ContactImport, EmailSender, Sendout
from .sendout_mail import Mode, links_by_url, mail_parts, sender_of
from .views import PER_PAGE, _apply_errors

MESSAGES_PER_PAGE = 50
EXCLUDED_SHOWN = 20
PREVIEW_CHOICES = 20
RUNS_SHOWN = 10


# --- Imports -------------------------------------------------------------------------------


@account_required
def import_list(request):
    page = Paginator(selectors.imports_of(account=request.account), PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "campaigns/import_list.html", {"page": page})


def _sources(account, *, query: str = "", refresh: bool = False):
    """SuperOffice's selections and projects (cached pick lists), narrowed by `query`."""
    lists = {}
    for kind, list_name in imports.LIST_NAMES.items():
        items = crm_list_items(account=account, list_name=list_name, refresh=refresh)
        words = query.lower().split()
        lists[kind] = [i for i in items if all(w in f"{i.name} {i.id}".lower() for w in words)]
    return lists[ContactImport.SourceType.SELECTION], lists[ContactImport.SourceType.PROJECT]


@account_required
def import_create(request):
    search = SourceSearchForm(request.GET or None)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    refresh = bool(search.is_valid() and search.cleaned_data["refresh"])
    crm_error = ""
    try:
        # A POST is checked against the full lists, not the narrowed ones.
        selections, projects = _sources(
            request.account, query="" if request.method == "POST" else query, refresh=refresh
        )
    except CrmError as exc:
        selections, projects, crm_error = [], [], str(exc)
    form = ImportForm(request.POST or None, selections=selections, projects=projects)
    if request.method == "POST" and not crm_error and form.is_valid():
        try:
            started = imports.contact_import_create(
                account=request.account,
                only_emarketing=form.cleaned_data["only_emarketing"],
                user=request.user,
                **form.cleaned_data["source"],
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            return redirect("campaigns:import_detail", import_id=started.pk)
    template = (
        "campaigns/_import_source_field.html"
        if request.headers.get("HX-Request") and request.method == "GET"
        else "campaigns/import_form.html"
    )
    return render(
        request, template, {"form": form, "search": search, "q": query, "crm_error": crm_error}
    )


@account_required
def import_detail(request, import_id: int):
    contact_import = selectors.import_get(account=request.account, import_id=import_id)
    return render(
        request,
        "campaigns/import_detail.html",
        {"imp": contact_import, "list_form": RecipientListNameForm()},
    )


@account_required
def import_progress(request, import_id: int):
    """The progress card alone, polled by the detail page until the import finishes."""
    contact_import = selectors.import_get(account=request.account, import_id=import_id)
    return render(request, "campaigns/_import_progress.html", {"imp": contact_import})


@account_required
@require_POST
def import_again(request, import_id: int):
    contact_import = selectors.import_get(account=request.account, import_id=import_id)
    started = imports.contact_import_again(contact_import=contact_import, user=request.user)
    messages.success(request, "The import runs again; contacts already imported are updated.")
    return redirect("campaigns:import_detail", import_id=started.pk)


@account_required
@require_POST
def import_save_list(request, import_id: int):
    contact_import = selectors.import_get(account=request.account, import_id=import_id)
    form = RecipientListNameForm(request.POST)
    name = form.cleaned_data["name"] if form.is_valid() else ""
    try:
        saved = imports.recipient_list_from_import(contact_import=contact_import, name=name)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("campaigns:import_detail", import_id=contact_import.pk)
    messages.success(request, f"Recipient list “{saved.name}” saved.")
    return redirect("campaigns:list_detail", list_id=saved.pk)


# --- Recipient lists ---------------------------------------------------------------------------


@account_required
def list_list(request):
    page = Paginator(selectors.recipient_lists_of(account=request.account), PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "campaigns/list_list.html", {"page": page})


@account_required
def list_detail(request, list_id: int):
    recipient_list = selectors.recipient_list_get(account=request.account, list_id=list_id)
    contacts = selectors.recipient_list_contacts(recipient_list=recipient_list)
    page = Paginator(contacts, PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request, "campaigns/list_detail.html", {"recipient_list": recipient_list, "page": page}
    )


# --- Sendouts ------------------------------------------------------------------------------------


@account_required
def sendout_list(request):
    page = Paginator(selectors.sendouts_of(account=request.account), PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "campaigns/sendout_list.html", {"page": page})


@account_required
def sendout_create(request):
    initial = {}
    if list_id := request.GET.get("list", ""):
        initial["recipient_list"] = list_id if list_id.isdigit() else None
    form = SendoutForm(request.POST or None, account=request.account, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            sendout = sendouts.sendout_create(
                account=request.account, user=request.user, **form.cleaned_data
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            return redirect("campaigns:sendout_checklist", sendout_id=sendout.pk)
    return render(request, "campaigns/sendout_form.html", {"form": form, "sendout": None})


@account_required
def sendout_edit(request, sendout_id: int):
    """Change a draft's message or recipients; the checklist runs again after it."""
    sendout = selectors.sendout_get(account=request.account, sendout_id=sendout_id)
    if sendout.status != Sendout.Status.DRAFT:
        messages.error(request, "Only a draft can be changed.")
        return redirect("campaigns:sendout_detail", sendout_id=sendout.pk)
    initial = {
        "campaign": sendout.campaign_id,
        "recipient_list": sendout.recipient_list_id,
        "channel": sendout.channel,
        "subject": sendout.subject,
        "body": sendout.body,
    }
    form = SendoutForm(request.POST or None, account=request.account, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            sendouts.sendout_update(sendout=sendout, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            return redirect("campaigns:sendout_checklist", sendout_id=sendout.pk)
    return render(request, "campaigns/sendout_form.html", {"form": form, "sendout": sendout})


@account_required
def email_sender(request):
    """The name and address the account's marketing e-mail comes from."""
    current = EmailSender.objects.filter(account=request.account).first()
    initial = (
        {
            "from_name": current.from_name,
            "from_email": current.from_email,
            "reply_to": current.reply_to,
        }
        if current
        else {"from_name": request.account.name}
    )
    form = EmailSenderForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            sendouts.email_sender_save(account=request.account, **form.cleaned_data)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, "Sender saved. Sendouts confirmed from now on use it.")
            back = request.GET.get("next", "")
            if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
                back = reverse("campaigns:email_sender")
            return redirect(back)
    return render(
        request, "campaigns/email_sender.html", {"form": form, "sender": current, "tab": "sender"}
    )


@account_required
def sendout_checklist(request, sendout_id: int):
    """The Checklist step: run on every visit (it syncs the recipients' legal basis when
    sync is on), then confirm for now or a time."""
    sendout = selectors.sendout_get(account=request.account, sendout_id=sendout_id)
    if sendout.status != Sendout.Status.DRAFT:
        return redirect("campaigns:sendout_detail", sendout_id=sendout.pk)
    form = SendoutConfirmForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            when = (
                form.cleaned_data["scheduled_at"] if form.cleaned_data["when"] == "later" else None
            )
            try:
                confirmed = sendouts.sendout_confirm(sendout=sendout, scheduled_at=when)
            except ValidationError as exc:
                _apply_errors(form, exc)
            else:
                if confirmed:
                    messages.success(
                        request,
                        "Sending now." if when is None else f"Scheduled for {when:%Y-%m-%d %H:%M}.",
                    )
                return redirect("campaigns:sendout_detail", sendout_id=sendout.pk)
        figures = sendout.checklist
        if not figures:
            figures = sendouts.sendout_checklist_run(sendout=sendout)
    else:
        figures = sendouts.sendout_checklist_run(sendout=sendout)
    excluded = {
        kind: selectors.sendout_checklist_contacts(sendout=sendout, kind=kind)[:EXCLUDED_SHOWN]
        for kind in ("no_legal_basis", "no_address")
    }
    problems = sendouts.sendout_problems(sendout=sendout)
    will_send = figures.get("will_send", 0)
    return render(
        request,
        "campaigns/sendout_checklist.html",
        {
            "sendout": sendout,
            "figures": figures,
            "excluded_total": figures.get("recipients", 0) - will_send,
            "excluded": excluded,
            "form": form,
            "problems": problems,
            "sender": sender_of(sendout) if sendout.channel == Channel.EMAIL else None,
            "can_confirm": bool(will_send) and not problems,
        },
    )


def _sendout_page_context(request, sendout: Sendout) -> dict:
    filter_form = MessageFilterForm(request.GET or None)
    status = filter_form.cleaned_data["status"] if filter_form.is_valid() else ""
    page = Paginator(
        selectors.sendout_messages(sendout=sendout, status=status), MESSAGES_PER_PAGE
    ).get_page(request.GET.get("page"))
    now = timezone.now()
    working = sendout.status == Sendout.Status.SENDING or (
        sendout.status == Sendout.Status.SCHEDULED and sendout.scheduled_at <= now
    )
    poll = (
        "every 2s"
        if working
        else ("every 30s" if sendout.status == Sendout.Status.SCHEDULED else "")
    )
    context = {
        "sendout": sendout,
        "counts": selectors.sendout_message_counts(sendout=sendout),
        "filter_form": filter_form,
        "page": page,
        "query": urlencode({"status": status}) if status else "",
        "now": now,
        "poll": poll,
        "live_url": reverse("campaigns:sendout_live", kwargs={"sendout_id": sendout.pk})
        + (f"?{request.GET.urlencode()}" if request.GET else ""),
    }
    if sendout.prepared_at is not None:
        timeline = sendout_selectors.sendout_timeline(sendout=sendout, now=now)
        figures = sendout_selectors.sendout_figures(sendout=sendout)
        context.update(
            {
                "figures": figures,
                "links": sendout_selectors.sendout_link_figures(
                    sendout=sendout, delivered=figures.delivered
                ),
                "timeline": timeline,
                "chart": timeline.chart(),
                "run_counts": sendout_selectors.sendout_run_counts(sendout=sendout),
                "runs": sendout_selectors.sendout_runs(sendout=sendout)[:RUNS_SHOWN],
            }
        )
    return context


@account_required
def sendout_detail(request, sendout_id: int):
    sendout = selectors.sendout_get(account=request.account, sendout_id=sendout_id)
    return render(request, "campaigns/sendout_detail.html", _sendout_page_context(request, sendout))


@account_required
def sendout_live(request, sendout_id: int):
    """The sendout page's content alone, polled by the page while the send runs."""
    sendout = selectors.sendout_get(account=request.account, sendout_id=sendout_id)
    return render(request, "campaigns/_sendout_live.html", _sendout_page_context(request, sendout))


def _preview_contact(request, sendout: Sendout):
    contact = selectors.sendout_preview_contact(
        sendout=sendout, contact_id=request.GET.get("contact") or request.POST.get("contact")
    )
    if contact is None and (request.GET.get("contact") or request.POST.get("contact")):
        raise Http404("No such recipient")
    return contact or selectors.sendout_preview_contacts(sendout=sendout).first()


@account_required
def sendout_preview(request, sendout_id: int):
    """The message as one recipient of the list gets it (chosen on the page), with a
    button that sends that message to the marketer's own address as a test."""
    sendout = selectors.sendout_get(account=request.account, sendout_id=sendout_id)
    search = PreviewRecipientForm(request.GET or None)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    contact = _preview_contact(request, sendout)
    choices = list(
        selectors.sendout_preview_contacts(sendout=sendout, query=query)[:PREVIEW_CHOICES]
    )
    parts = None
    if contact is not None:
        parts = mail_parts(
            sendout=sendout, contact=contact, links=links_by_url(sendout=sendout), mode=Mode.PREVIEW
        )
    return render(
        request,
        "campaigns/sendout_preview.html",
        {
            "sendout": sendout,
            "contact": contact,
            "choices": choices,
            "search": search,
            "q": query,
            "parts": parts,
            "problems": sendouts.sendout_problems(sendout=sendout),
            "test_to": request.user.email,
        },
    )


# The message's own HTML, shown in a sandboxed frame of the preview page: it may carry the
# inline styles e-mail needs and pictures from anywhere, and runs no script at all.
PREVIEW_POLICY = {
    "default-src": [NONE],
    "script-src": None,
    "connect-src": None,
    "style-src": ["'unsafe-inline'"],
    "img-src": ["https:", "http:", "data:"],
    "font-src": ["https:"],
    "form-action": [NONE],
    "sandbox": True,
}


@account_required
@xframe_options_sameorigin
@csp_replace(PREVIEW_POLICY)
def sendout_preview_body(request, sendout_id: int):
    sendout = selectors.sendout_get(account=request.account, sendout_id=sendout_id)
    contact = _preview_contact(request, sendout)
    if contact is None or sendout.channel != Channel.EMAIL:
        raise Http404("Nothing to preview")
    parts = mail_parts(
        sendout=sendout, contact=contact, links=links_by_url(sendout=sendout), mode=Mode.PREVIEW
    )
    response = HttpResponse(parts.html, content_type="text/html; charset=utf-8")
    response.frame_ancestors = ["'self'"]
    response["Cache-Control"] = "no-store"
    return response


@account_required
@require_POST
def sendout_test_send(request, sendout_id: int):
    sendout = selectors.sendout_get(account=request.account, sendout_id=sendout_id)
    contact = _preview_contact(request, sendout)
    if contact is None:
        raise Http404("No recipient")
    try:
        sendouts.sendout_test_send(sendout=sendout, contact=contact, to=request.user.email)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request, f"Test sent to {request.user.email}, as {contact.email} would get it."
        )
    url = reverse("campaigns:sendout_preview", kwargs={"sendout_id": sendout.pk})
    return redirect(f"{url}?{urlencode({'contact': contact.pk})}")


@account_required
@require_POST
def sendout_cancel(request, sendout_id: int):
    sendout = selectors.sendout_get(account=request.account, sendout_id=sendout_id)
    if sendouts.sendout_cancel(sendout=sendout):
        messages.success(request, "Sendout cancelled.")
    else:
        messages.error(request, "The sendout has started and can no longer be cancelled.")
    return redirect("campaigns:sendout_detail", sendout_id=sendout.pk)
