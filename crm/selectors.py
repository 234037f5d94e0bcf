"""Reads of the crm app: connections, the call log, cached pick lists."""

from __future__ import annotations

from django.db.models import QuerySet

from emhub.models import Account

from .models import CrmCall, SuperOfficeConnection


def connection_for(*, account: Account) -> SuperOfficeConnection | None:
    return SuperOfficeConnection.objects.filter(account=account).first()


def crm_ready(*, account: Account) -> bool:
    """True when the account has a connection without a standing configuration error."""
    connection = connection_for(account=account)
    return connection is not None and not connection.config_error


def crm_calls_of(*, account: Account, outcome: str = "") -> QuerySet[CrmCall]:
    calls = CrmCall.objects.filter(account=account)
    if outcome:
        calls = calls.filter(outcome=outcome)
    return calls.order_by("-started_at", "-id")
