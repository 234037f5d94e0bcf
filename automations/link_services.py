"""Writes for link actions that are not single automations: a link's "act once per
recipient" switch, which is the `once_per_contact` of every action of the link."""

from __future__ import annotations

from django.utils import timezone

from campaigns.models import TrackedLink

from .models import Automation


def link_actions_once_set(*, account, link: TrackedLink, once: bool) -> int:
    """Set once-per-recipient on all of the link's actions; returns how many changed.

    Runs already written stay as they are: "once" counts from the first run stored
    with it on (its once key), so a recipient who clicked before may act once more.
    """
    return (
        Automation.objects.filter(account=account, trigger_link=link, deleted_at__isnull=True)
        .exclude(once_per_contact=once)
        .update(once_per_contact=once, updated_at=timezone.now())
    )
