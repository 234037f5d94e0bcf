"""The SuperOffice connection page and the CRM call log, for account admins."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from emhub.tenancy import admin_required

from .forms import ConnectionForm
from .models import CrmCall
from .selectors import connection_for, crm_calls_of
from .services import connection_save, connection_test


@admin_required
def connection_settings(request):
    connection = connection_for(account=request.account)
    if request.method == "POST":
        form = ConnectionForm(request.POST, connection=connection)
        if form.is_valid():
            try:
                connection_save(account=request.account, **form.cleaned_data)
            except ValidationError as exc:
                form.add_error("base_url", exc.messages[0])
            else:
                messages.success(request, "Connection saved. Use “Test connection” to check it.")
                return redirect("crm:connection")
    else:
        initial = {"auth_mode": "onsite"}
        if connection is not None:
            initial = {
                "base_url": connection.base_url,
                "auth_mode": connection.auth_mode,
                "username": connection.username,
                "context_identifier": connection.context_identifier,
                "use_tenant_wsdl": connection.use_tenant_wsdl,
                "allow_company_creation": connection.allow_company_creation,
                "legal_basis_sync_enabled": connection.legal_basis_sync_enabled,
            }
        form = ConnectionForm(initial=initial, connection=connection)
    stored = {
        f: bool(connection is not None and getattr(connection, f))
        for f in ("password", "application_token", "system_user_token", "private_key")
    }
    return render(
        request,
        "crm/connection_settings.html",
        {"form": form, "connection": connection, "stored": stored},
    )


@admin_required
@require_POST
def connection_test_view(request):
    if connection_for(account=request.account) is None:
        messages.error(request, "Save the connection first.")
        return redirect("crm:connection")
    result = connection_test(account=request.account)
    if result.ok:
        messages.success(request, result.message)
    else:
        messages.error(request, result.message)
    return redirect("crm:connection")


@admin_required
def call_list(request):
    outcome = request.GET.get("outcome", "")
    if outcome not in CrmCall.Outcome.values:
        outcome = ""
    calls = crm_calls_of(account=request.account, outcome=outcome)
    page = Paginator(calls, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "crm/call_list.html",
        {
            "page": page,
            "outcome": outcome,
            "outcomes": CrmCall.Outcome.choices,
            "query": f"outcome={outcome}" if outcome else "",
        },
    )
