"""Template filters for marketer pages: CRM errors and calls in plain words."""

from django import template

from crm.plain_words import (
    call_in_words,
    error_in_words,
    legal_basis_in_words,
    outcome_in_words,
)

register = template.Library()


@register.filter
def crm_error_words(text):
    return error_in_words(str(text or ""))


@register.filter
def crm_call_words(call):
    return call_in_words(agent=getattr(call, "agent", ""), operation=getattr(call, "operation", ""))


@register.filter
def crm_outcome_words(outcome):
    return outcome_in_words(str(outcome or ""))


@register.filter
def legal_basis_words(key):
    return legal_basis_in_words(str(key or ""))
