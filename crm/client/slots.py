"""The cap on concurrent calls to one SuperOffice tenant: a call takes a slot before it
leaves and gives it back when its reply is in.

Two kinds, chosen by settings (``crm.services.call_slots_for``):

- ``ProcessSlots``: a semaphore of this process. The embedded default runs one worker
  process and no Redis, so the cap of that process is the cap.
- ``SharedSlots``: a sorted set in Redis per tenant, holding one member per call in
  flight, scored by the time its lease ends (Redis' own clock, so the machines' clocks
  need not agree). Taking a slot is one Lua script: drop the leases that ended, then add
  the caller if fewer than the limit remain. So the cap holds across every worker
  process and machine, and a worker killed while holding slots gives them back when
  their leases end. The lease is longer than a call can last (its deadline), so a live
  call never loses its slot; it is given back in a ``finally`` as soon as the call ends.

When Redis cannot be reached, a shared cap falls back to this process's semaphore for
a few seconds at a time rather than stopping the account's work: the broker is down
too then, so little else is running.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
import uuid
from typing import Any, Protocol

logger = logging.getLogger(__name__)

# Pauses between tries while every slot is taken: short first, so a slot given back
# is taken again within a few milliseconds, then no more than this often.
_FIRST_PAUSE = 0.005
_LONGEST_PAUSE = 0.05
# After Redis failed, this long on the process's semaphore before trying Redis again.
_FALLBACK_SECONDS = 5.0

_TAKE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
    redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[3])
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
return 0
"""


class CallSlots(Protocol):
    # How long after a slot was taken one more call may go out under it (see
    # NetServerClient.one_slot); 0: it is given back after every call.
    reuse_seconds: float

    def acquire(self, *, timeout: float) -> Any | None:
        """A token for one slot, or None when none came free within ``timeout`` s."""

    def release(self, token: Any) -> None:
        """Give the slot back; never raises."""


class ProcessSlots:
    """The cap within this process only."""

    # A slot of a semaphore has no lease: a run may keep it for all of its calls.
    reuse_seconds = float("inf")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._semaphore = threading.BoundedSemaphore(limit)
        self._held = 0

    def holders(self) -> int:
        """Slots held now: for tests and the operator."""
        return self._held

    def acquire(self, *, timeout: float) -> Any | None:
        if not self._semaphore.acquire(timeout=timeout):
            return None
        with _lock:
            self._held += 1
        return self

    def release(self, token: Any) -> None:
        with _lock:
            self._held -= 1
        self._semaphore.release()


class SharedSlots:
    """The cap across processes and machines, in Redis, with a lease per slot."""

    def __init__(
        self,
        *,
        redis_client: Any,
        tenant: str,
        limit: int,
        lease_seconds: float,
        fallback: ProcessSlots,
        reuse_seconds: float = 0.0,
    ) -> None:
        self.redis = redis_client
        self.key = key_of(tenant)
        self.limit = limit
        self.lease_ms = max(1, int(lease_seconds * 1000))
        # How long after taking a slot it may still carry one more call: its lease less
        # the longest a call can last, so a kept slot never ends under a live call.
        self.reuse_seconds = reuse_seconds
        self.fallback = fallback
        self._take = redis_client.register_script(_TAKE)

    def holders(self) -> int:
        """Slots held now (leases not yet ended): for tests and the operator."""
        now_s, now_us = self.redis.time()
        return self.redis.zcount(self.key, f"({now_s * 1000 + now_us // 1000}", "+inf")

    def acquire(self, *, timeout: float) -> Any | None:
        if _redis_down_until.get(id(self.redis), 0.0) > time.monotonic():
            return self.fallback.acquire(timeout=timeout)
        holder = uuid.uuid4().hex
        deadline = time.monotonic() + timeout
        pause = _FIRST_PAUSE
        try:
            while True:
                if self._take(keys=[self.key], args=[self.limit, self.lease_ms, holder]):
                    return holder
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                time.sleep(min(left, pause * random.uniform(0.5, 1.5)))
                pause = min(pause * 2, _LONGEST_PAUSE)
        except Exception as exc:  # redis-py's errors; the cap must not stop the call
            _redis_down_until[id(self.redis)] = time.monotonic() + _FALLBACK_SECONDS
            logger.warning(
                "The shared cap on SuperOffice calls is unreachable (%s); this process "
                "caps its own calls for %.0f s",
                type(exc).__name__,
                _FALLBACK_SECONDS,
            )
            left = max(0.0, deadline - time.monotonic())
            return self.fallback.acquire(timeout=left)

    def release(self, token: Any) -> None:
        if token is self.fallback:
            self.fallback.release(token)
            return
        try:
            self.redis.zrem(self.key, token)
        except Exception as exc:
            # The lease ends on its own: the slot comes back then.
            logger.warning(
                "Could not give back a SuperOffice call slot (%s); its lease ends it",
                type(exc).__name__,
            )


class SlotHold:
    """Slots kept between calls that follow one another: a run's calls, and the runs a
    worker executes one after another. ``take`` gives the slot it keeps for those slots
    again while its lease outlasts one more call (``reuse_seconds``), else gives it back
    and takes a new one; ``release_all`` gives back every slot kept. Not for calls made
    by several threads at once."""

    def __init__(self) -> None:
        self._kept: dict[int, tuple[CallSlots, Any, float]] = {}

    def take(self, slots: CallSlots, *, timeout: float) -> Any | None:
        kept = self._kept.get(id(slots))
        if kept is not None:
            if time.monotonic() - kept[2] < slots.reuse_seconds:
                return kept[1]
            del self._kept[id(slots)]
            slots.release(kept[1])
        token = slots.acquire(timeout=timeout)
        if token is not None:
            self._kept[id(slots)] = (slots, token, time.monotonic())
        return token

    def release_all(self) -> None:
        kept, self._kept = self._kept, {}
        for slots, token, _ in kept.values():
            slots.release(token)


def key_of(tenant: str) -> str:
    """The Redis key of a tenant's slots (its address hashed: no URL in key listings)."""
    return f"emhub:crm-slots:{hashlib.sha256(tenant.encode()).hexdigest()[:24]}"


# -- one of each per process --------------------------------------------------------------

_lock = threading.RLock()
_process_slots: dict[tuple[str, int], ProcessSlots] = {}
_shared_slots: dict[tuple[str, str, int, float, float], SharedSlots] = {}
_redis_clients: dict[str, Any] = {}
_redis_down_until: dict[int, float] = {}


def process_slots(tenant: str, limit: int) -> ProcessSlots:
    key = (tenant, limit)
    slots = _process_slots.get(key)
    if slots is None:
        with _lock:
            slots = _process_slots.setdefault(key, ProcessSlots(limit))
    return slots


def _redis_client(url: str) -> Any:
    client = _redis_clients.get(url)
    if client is None:
        import redis

        with _lock:
            client = _redis_clients.get(url)
            if client is None:
                # Short timeouts: a slot is taken before every call, and a Redis that
                # does not answer must not hold the call up for long (see the fallback).
                client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
                _redis_clients[url] = client
    return client


def shared_slots(
    tenant: str, limit: int, *, url: str, lease_seconds: float, longest_call_seconds: float = 0.0
) -> SharedSlots:
    key = (url, tenant, limit, lease_seconds, longest_call_seconds)
    slots = _shared_slots.get(key)
    if slots is None:
        client = _redis_client(url)
        with _lock:
            slots = _shared_slots.get(key)
            if slots is None:
                slots = SharedSlots(
                    redis_client=client,
                    tenant=tenant,
                    limit=limit,
                    lease_seconds=lease_seconds,
                    fallback=process_slots(tenant, limit),
                    reuse_seconds=max(0.0, lease_seconds - longest_call_seconds),
                )
                _shared_slots[key] = slots
    return slots
