"""The per-account cap on concurrent SuperOffice calls, as the settings have it: shared in
Redis across every worker process and machine where CRM_CALL_SLOTS_URL names a Redis,
else a semaphore of this process (the embedded default). See crm.client.slots."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

from .client import slots


def cap_limit() -> int:
    return int(getattr(settings, "CRM_MAX_CONCURRENT_CALLS_PER_ACCOUNT", 4))


def call_slots_for(*, base_url: str) -> slots.CallSlots:
    url = getattr(settings, "CRM_CALL_SLOTS_URL", "")
    if not url:
        return slots.process_slots(base_url, cap_limit())
    return slots.shared_slots(
        base_url,
        cap_limit(),
        url=url,
        lease_seconds=settings.CRM_CALL_SLOT_LEASE_SECONDS,
        # A call ends by its deadline at the latest (crm.http); a slot a run keeps for its
        # next call must outlast that call.
        longest_call_seconds=max(settings.CRM_TIMEOUT_SECONDS, settings.CRM_DEADLINE_SECONDS),
    )


@checks.register()
def check_call_slot_lease(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A lease shorter than a call would let a slow call's slot go to another call."""
    if not getattr(settings, "CRM_CALL_SLOTS_URL", ""):
        return []
    lease = settings.CRM_CALL_SLOT_LEASE_SECONDS
    if lease <= settings.CRM_TIMEOUT_SECONDS:
        return [
            checks.Error(
                f"CRM_CALL_SLOT_LEASE_SECONDS ({lease:g}) must be longer than "
                f"CRM_TIMEOUT_SECONDS ({settings.CRM_TIMEOUT_SECONDS:g})",
                hint="A call could outlast its slot's lease and break the cap.",
                id="crm.E001",
            )
        ]
    if lease <= settings.CRM_DEADLINE_SECONDS:
        return [
            checks.Warning(
                f"CRM_CALL_SLOT_LEASE_SECONDS ({lease:g}) is not longer than "
                f"CRM_DEADLINE_SECONDS ({settings.CRM_DEADLINE_SECONDS:g})",
                hint="A reply that trickles in until the deadline could outlast its lease.",
                id="crm.W001",
            )
        ]
    return []
