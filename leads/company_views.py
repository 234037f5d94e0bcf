"""The company picker of the Lead Report's approve form: a rep types part of a company's
name, the hub asks SuperOffice for the companies whose name holds it, and the rep picks one
by name. The chosen company's id travels in a hidden field and is checked again with
SuperOffice when the form is sent, so a changed or stale id is a form error."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from crm.errors import CrmError, NotFoundCrmError
from crm.plain_words import error_in_words
from crm.services import crm_companies_search, crm_company_get
from crm.types import Company

from .models import Panel
from .panel import panel_context, panel_view

SEARCH_MIN_LENGTH = 2
SEARCH_LIMIT = 15


def _in_words(exc: CrmError) -> str:
    return error_in_words(f"{type(exc).__name__}: {exc.message}")


def _company_id(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() and 0 < len(value) < 11 and int(value) < 2**31 else None


def company_checked(*, account, company_id: int) -> tuple[Company | None, str]:
    """The SuperOffice company ``company_id`` and "", or None and what to tell the rep."""
    try:
        return crm_company_get(account=account, company_id=company_id), ""
    except NotFoundCrmError:
        return None, f"SuperOffice has no company {company_id}. Choose one by name."
    except CrmError as exc:
        return None, _in_words(exc)


def _picker(request, *, company=None, error="", search=""):
    return render(
        request,
        "leads/_company_picker.html",
        panel_context(request, company=company, company_error=error, search=search),
    )


@require_GET
@panel_view(Panel.LEADS)
def company_search(request, panel_key: str):
    """The companies whose name holds what the rep typed, each a button that picks it."""
    text = request.GET.get("company_search", "").strip()[:100]
    companies, error = [], ""
    if len(text) >= SEARCH_MIN_LENGTH:
        try:
            companies = crm_companies_search(account=request.account, text=text, limit=SEARCH_LIMIT)
        except CrmError as exc:
            error = _in_words(exc)
    return render(
        request,
        "leads/_company_matches.html",
        panel_context(
            request,
            companies=companies,
            search=text,
            too_short=len(text) < SEARCH_MIN_LENGTH,
            error=error,
            limit=SEARCH_LIMIT,
        ),
    )


@require_GET
@panel_view(Panel.LEADS)
def company_pick(request, panel_key: str):
    """The picker with the company chosen (its name shown, its id in the hidden field), or
    empty again when no id is given (Change)."""
    raw = request.GET.get("company_id", "")
    if not raw.strip():
        return _picker(request)
    company_id = _company_id(raw)
    if company_id is None:
        raise Http404("No such company")
    company, error = company_checked(account=request.account, company_id=company_id)
    return _picker(request, company=company, error=error)


def approve_company_chosen(request, form) -> Company | None:
    """Validate the approve form and check its chosen company with SuperOffice: the company
    (its name shown again if the form comes back), or None with a field error when
    SuperOffice has no such company. A new company to create is not checked here."""
    form.is_valid()
    data = getattr(form, "cleaned_data", {})
    company_id = data.get("company_id")
    if not company_id or data.get("create_company"):
        return None
    company, error = company_checked(account=request.account, company_id=company_id)
    if error:
        form.add_error("company_id", error)
    return company
