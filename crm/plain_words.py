"""SuperOffice errors and calls in the words of a marketer.

The hub stores errors as ``"<ErrorClass>: <message>"`` and calls as ``agent.operation``;
both are for the admin's call log. Every marketer page shows them through here, so a
page never names an operation, an exception class or an internal key.
"""

from __future__ import annotations

import re

# What each call does, as the person reading a run would say it.
_OPERATION_WORDS = {
    "GetPersonEntity": "read the person",
    "SavePersonEntity": "saved the person",
    "CreateDefaultPersonEntity": "prepared a new person",
    "GetContactEntity": "read the company",
    "SaveContactEntity": "saved the company",
    "CreateDefaultContactEntity": "prepared a new company",
    "GetAppointmentEntity": "read the follow-up",
    "SaveAppointmentEntity": "saved the follow-up",
    "CreateDefaultAppointmentEntity": "prepared a follow-up",
    "GetSaleEntity": "read the sale",
    "SaveSaleEntity": "saved the sale",
    "CreateDefaultSaleEntity": "prepared a sale",
    "GetTicketEntity": "read the request",
    "SaveTicketEntity": "saved the request",
    "CreateDefaultTicketEntity": "prepared a request",
    "GetDocumentEntity": "read the document",
    "SaveDocumentEntity": "saved the document",
    "GetList": "read a list",
    "GetListItems": "read a list",
    "Find": "searched",
    "FindFromRestrictions": "searched",
    "FindFromRestrictionsColumns": "searched",
    "GetPrincipal": "signed in",
    "WhoAmI": "signed in",
}

_CLASS_PREFIX = re.compile(r"^\s*(?:[A-Za-z_][A-Za-z0-9_.]*)?(?:Crm)?(?:Error|Exception)\s*:\s*")
_OPERATION = re.compile(r"\b(?:[A-Z][A-Za-z]*Agent|[A-Z][a-z]+)\.([A-Z][A-Za-z]+)\b")
_NOT_FOUND = re.compile(
    r"^(Person|Contact|Company|Appointment|Sale|Ticket|Project)\s+(\d+)\s+does not exist"
)
_OBJECT_WORDS = {"Contact": "company", "Appointment": "follow-up", "Ticket": "request"}


def call_in_words(*, agent: str, operation: str) -> str:
    """``Person``/``GetPersonEntity`` → "read the person"; unknown ones in general terms."""
    words = _OPERATION_WORDS.get(operation)
    if words:
        return words
    if operation.startswith(("Get", "Find")):
        return "read from SuperOffice"
    if operation.startswith(("Save", "Create", "Set", "Add", "Update")):
        return "wrote to SuperOffice"
    if operation.startswith("Delete"):
        return "deleted in SuperOffice"
    return "asked SuperOffice"


def error_in_words(text: str) -> str:
    """A stored CRM error (or outcome) as one plain sentence about what happened."""
    if not text:
        return ""
    kind = ""
    head = text.split(":", 1)[0].strip()
    if head.endswith(("Error", "Exception")) and " " not in head:
        kind = head
    message = _CLASS_PREFIX.sub("", text, count=1).strip()
    found = _NOT_FOUND.match(message)
    if found:
        thing = _OBJECT_WORDS.get(found.group(1), found.group(1).lower())
        return f"SuperOffice has no {thing} {found.group(2)}."
    message = _OPERATION.sub("a SuperOffice request", message)
    message = re.sub(r"\bSOAP\b", "SuperOffice", message)
    message = re.sub(r"\b[A-Za-z]*CrmError\b", "error", message)
    if kind.startswith("Transient"):
        prefix = "SuperOffice could not be reached for now"
    elif kind.startswith("Configuration"):
        prefix = "SuperOffice refused the hub's connection"
    elif kind.startswith(("Permanent", "NotFound")):
        prefix = "SuperOffice refused it"
    elif kind:
        prefix = "Something went wrong in the hub"
    else:
        return message
    return f"{prefix}: {message}" if message else f"{prefix}."


def outcome_in_words(outcome: str) -> str:
    """A call's recorded outcome (``ok``, ``not_found``, ``timeout``…) for a marketer."""
    return {
        "ok": "done",
        "transient": "failed for now, tried again",
        "permanent": "refused",
        "not_found": "not found",
        "configuration": "connection refused",
        "ticket_refused": "sign-in renewed",
        "error": "failed",
    }.get(outcome, outcome.replace("_", " "))


# GDPR article 6(1) (a)-(f): the keys SuperOffice uses for its legal bases.
_LEGAL_BASIS_WORDS = {
    "61A": "consent",
    "61B": "contract",
    "61C": "legal obligation",
    "61D": "vital interests",
    "61E": "public interest",
    "61F": "legitimate interest",
    "WITHDRAWN": "withdrawn",
}


def legal_basis_in_words(key: str) -> str:
    """``61F`` → "legitimate interest"; a key the hub does not know stays as it is."""
    return _LEGAL_BASIS_WORDS.get((key or "").strip().upper(), key or "")
