"""The SuperOffice lists a marketer picks automation settings from.

They come from the crm app's cached pick-list service (one SuperOffice round trip per
list and cache lifetime); `refresh` asks it to fetch them again.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

# Our name -> the crm pick-list name.
LISTS = {
    "sources": "sources",
    "ratings": "ratings",
    "activity_types": "activity_types",
    "interests": "interests",
    "projects": "projects",
    "selections": "selections",
    "associates": "associates",
    "ticket_priorities": "ticket_priorities",
    "ticket_categories": "ticket_categories",
    "scripts": "scripts",
    "person_fields": "person_fields",
}


Choices = dict[str, list[tuple[int, str]]]


def picklists_load(*, account, refresh: bool = False) -> tuple[Choices, str]:
    """All lists as (id, name) choices, and an error text ("" when all loaded)."""
    from crm import services as crm_services
    from crm.errors import CrmError

    lists: Choices = {name: [] for name in LISTS}
    try:
        for ours, theirs in LISTS.items():
            items = crm_services.crm_list_items(account=account, list_name=theirs, refresh=refresh)
            if ours == "person_fields":
                # Picked by key ("SuperOffice:3", "x_score"); the type decides the value.
                lists[ours] = [(i.key, f"{i.name} ({i.type})") for i in items]
                lists["person_field_types"] = [(i.key, i.type) for i in items]
                continue
            lists[ours] = [(item.id, item.name) for item in items]
    except CrmError as exc:
        logger.info("Pick lists of account %s not loaded: %s", account.pk, exc)
        return lists, f"SuperOffice's lists could not be loaded: {exc}"
    return lists, ""
