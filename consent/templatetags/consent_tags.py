"""Consent pieces other apps' pages include.

`{% load consent_tags %}{% contact_consents contact %}`: a contact's consents and history.
`{% load consent_tags %}{% consent_sync_summary account %}`: last cycles and the next one.
"""

from django import template

from ..selectors import (
    consent_cycles,
    consent_history_for_contact,
    consent_next_cycle_at,
    consent_state_for_contact,
    consent_sync_enabled,
    consent_sync_running,
)

register = template.Library()

PANEL_HISTORY_ROWS = 10


@register.inclusion_tag("consent/_contact_consents.html")
def contact_consents(contact):
    history = consent_history_for_contact(contact=contact)
    return {
        "contact": contact,
        "consent_states": consent_state_for_contact(contact=contact),
        "consent_history": history[:PANEL_HISTORY_ROWS],
        "consent_history_more": history.count() > PANEL_HISTORY_ROWS,
    }


@register.inclusion_tag("consent/_sync_summary.html")
def consent_sync_summary(account, count=5):
    """The last cycles and the next one, for the SuperOffice connection page."""
    enabled = consent_sync_enabled(account=account)
    return {
        "sync_enabled": enabled,
        "running": consent_sync_running(account=account),
        "next_cycle_at": consent_next_cycle_at() if enabled else None,
        "cycles": list(consent_cycles(account=account)[:count]),
    }


@register.inclusion_tag("consent/_push_summary.html", takes_context=True)
def consent_push_summary(context, account):
    """The webhook's state and the outbox, for the SuperOffice connection page."""
    from ..selectors import consent_push_summary as summary

    return {
        "summary": summary(account=account),
        "sync_enabled": consent_sync_enabled(account=account),
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
    }
