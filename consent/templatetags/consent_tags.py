"""`{% load consent_tags %}{% contact_consents contact %}`: the consent panel of a contact page."""

from django import template

from ..selectors import consent_history_for_contact, consent_state_for_contact

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
