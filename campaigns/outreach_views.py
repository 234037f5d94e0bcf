"""Pages for imports from SuperOffice, recipient lists and sendouts.

Account-scoped like every page: objects are read through the selectors with
`request.account`, so another account's id is a 404.
"""

from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from crm.errors import CrmError
from crm.services import crm_list_items
from emhub.tenancy import account_required

from . import imports, selectors, sendouts
from .forms import (
    ImportForm,
    MessageFilterForm,
    RecipientListNameForm,
    SendoutConfirmForm,
    SendoutForm,
    SourceSearchForm,
)
from .models import ContactImport, Sendout
from .views import PER_PAGE, _apply_errors

MESSAGES_PER_PAGE = 50
EXCLUDED_SHOWN = 20


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
    return render(request, "campaigns/sendout_form.html", {"form": form})


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
    else:
        figures = sendouts.sendout_checklist_run(sendout=sendout)
    excluded = {
        kind: selectors.sendout_checklist_contacts(sendout=sendout, kind=kind)[:EXCLUDED_SHOWN]
        for kind in ("no_legal_basis", "no_address")
    }
    return render(
        request,
        "campaigns/sendout_checklist.html",
        {"sendout": sendout, "figures": figures, "excluded": excluded, "form": form},
    )


@account_required
def sendout_detail(request, sendout_id: int):
    sendout = selectors.sendout_get(account=request.account, sendout_id=sendout_id)
    filter_form = MessageFilterForm(request.GET or None)
    status = filter_form.cleaned_data["status"] if filter_form.is_valid() else ""
    page = Paginator(
        selectors.sendout_messages(sendout=sendout, status=status), MESSAGES_PER_PAGE
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/sendout_detail.html",
        {
            "sendout": sendout,
            "counts": selectors.sendout_message_counts(sendout=sendout),
            "filter_form": filter_form,
            "page": page,
            "query": urlencode({"status": status}) if status else "",
            "now": timezone.now(),
        },
    )


@account_required
@require_POST
def sendout_cancel(request, sendout_id: int):
    sendout = selectors.sendout_get(account=request.account, sendout_id=sendout_id)
    if sendouts.sendout_cancel(sendout=sendout):
        messages.success(request, "Sendout cancelled.")
    else:
        messages.error(request, "The sendout has started and can no longer be cancelled.")
    return redirect("campaigns:sendout_detail", sendout_id=sendout.pk)
