"""Merge fields: `{first_name}`, `{company|your team}`, … filled in per recipient.

One syntax for every text the hub fills in: a sendout's subject and body and an
automation's description (automations.actions.description_render). A field is a plain
name in braces, optionally with a fallback after `|` used when the value is empty:
`Hi {first_name|there},`. Anything else in braces (CSS rules, `{0}`, `{x.y}`) is text,
left as typed, so a template can never reach into objects and a stray brace breaks
nothing.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

# {name} or {name|fallback}; the fallback holds no braces or line breaks.
FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:\|([^{}\r\n]*))?\}")

# What each field of a contact is, for help texts and error messages.
CONTACT_FIELDS: dict[str, str] = {
    "first_name": "first name",
    "last_name": "last name",
    "name": "full name",
    "company": "company",
    "email": "e-mail address",
}
# A sendout's own field: the recipient's unsubscribe address (put it in a link's href).
UNSUBSCRIBE_FIELD = "unsubscribe"
SENDOUT_FIELDS: dict[str, str] = {**CONTACT_FIELDS, UNSUBSCRIBE_FIELD: "unsubscribe link"}


@dataclass(frozen=True)
class FieldUse:
    name: str
    fallback: str | None


def fields_used(text: str) -> list[FieldUse]:
    """Every field the text names, in order."""
    return [FieldUse(m.group(1), m.group(2)) for m in FIELD.finditer(text or "")]


def fields_unknown(text: str, *, known: Iterable[str]) -> list[str]:
    """The names in the text that are not fields, each once, in order."""
    known = set(known)
    seen: dict[str, None] = {}
    for use in fields_used(text):
        if use.name not in known:
            seen.setdefault(use.name, None)
    return list(seen)


def _listed(names: Iterable[str]) -> str:
    braced = [f"{{{name}}}" for name in names]
    return ", ".join(braced[:-1]) + f" and {braced[-1]}" if len(braced) > 1 else "".join(braced)


def unknown_fields_message(unknown: list[str], *, known: Mapping[str, str]) -> str:
    """What the marketer reads when a text names fields the hub cannot fill in."""
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
        parts.append(f"{{{name}}}" + (f" (did you mean {{{close[0]}}}?)" if close else ""))
    noun = "an unknown field" if len(unknown) == 1 else "unknown fields"
    return (
        f"The text has {noun}: {', '.join(parts)}. The fields are {_listed(known)}; "
        "give a fallback for an empty value with |, as in {first_name|there}."
    )


def fields_help(known: Mapping[str, str]) -> str:
    return (
        f"You can use {_listed(known)}: they are filled in for each contact. A fallback "
        "for an empty value goes after |, as in {first_name|there}."
    )


def render(
    text: str,
    *,
    facts: Mapping[str, str],
    escape: Callable[[str], str] | None = None,
) -> str:
    """The text with each known field replaced by its value (passed through `escape`,
    for HTML), or by its fallback where the value is empty. The fallback is part of
    the template and is not escaped. Unknown fields stay as typed."""

    def fill(match: re.Match) -> str:
        name, fallback = match.group(1), match.group(2)
        if name not in facts:
            return match.group(0)
        value = str(facts[name] or "").strip()
        if not value:
            return fallback or ""
        return escape(value) if escape else value

    return FIELD.sub(fill, text or "")


def contact_facts(contact) -> dict[str, str]:
    """The contact fields of `contact`, as the templates name them."""
    return {
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "name": contact.full_name,
        "company": contact.company_name,
        "email": contact.email,
    }
