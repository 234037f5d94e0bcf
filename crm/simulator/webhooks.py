"""The simulator's webhooks: NetServer's Webhook agent and its deliveries.

What it does, from SuperOfficeDocs (docs/en/automation/webhook/...):
- ``dev/register.md``: a save first POSTs a ``test`` event to TargetUrl and fails unless
  the target answers 200 OK; targets are https (``dev/index.md``: a valid certificate,
  no self-signed one). A plain-http loopback target is accepted only when the simulator
  was started to allow it (the tests and the embedded default reach the hub that way).
- ``reference/person-events.md``: ``person.consented`` (a consent added or changed; its
  Changes name ConsentPerson columns), ``person.unconsented`` (removed or withdrawn;
  empty Changes), ``person.changed``; PrimaryKey is the person id; FieldValues hold
  the person row's non-sensitive columns, never the consent itself.
- ``dev/notification.md``: the payload fields and the X-SuperOffice-* headers; three
  attempts per event (the second 1 s and the third 4 s after the one before), then the
  event is dropped; nine failed attempts in a row set the state to TooManyErrors.
- ``reference/state-events.md``: an HTTP 410 Gone disables the webhook at once.
- ``dev/security.md``: X-SuperOffice-Signature is the base64 HMAC-SHA256 of the raw
  body, keyed with the webhook's Secret (only when a Secret is set).
- ``reference/test-event.md``: the test event has Event ``test``, Entity ``test``,
  PrimaryKey 0 and the header ``X-Hook-Test: true``.

Deliveries leave from one background thread, never under the tenant lock. Tests can
delay, duplicate, reorder and drop them through ``/_sim/control`` (see ``Control``).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from .errors import SimFault

if TYPE_CHECKING:
    from .state import Tenant

USER_AGENT = "NetServer-Webhook/10.0.2"
# The documented retry delays of one event's second and third attempt.
RETRY_DELAYS = (1.0, 4.0)
ATTEMPTS_PER_EVENT = 3
FAILURES_TO_DISABLE = 9
POST_TIMEOUT = 5.0

# Event names SuperOffice documents, by entity (docs/en/automation/webhook/reference/*.md,
# dev/event-details.md). A save naming any other event is refused.
DOCUMENTED_EVENTS = frozenset(
    [f"person.{e}" for e in ("created", "changed", "softdeleted", "deleted")]
    + ["person.consented", "person.unconsented"]
    + [f"contact.{e}" for e in ("created", "changed", "softdeleted", "deleted")]
    + [f"sale.{e}" for e in ("created", "changed", "deleted", "sold", "lost", "completed")]
    + [f"activity.{e}" for e in ("created", "changed", "deleted")]
    + [f"projectmember.{e}" for e in ("created", "changed", "deleted")]
    + [f"project.{e}" for e in ("created", "changed", "deleted")]
    + [f"ticket.{e}" for e in ("created", "changed", "deleted")]
)
# ConsentPerson columns a person.consented event lists (reference/person-events.md).
CONSENTED_CHANGES = (
    "consentperson_id",
    "comment",
    "updated_associate_id",
    "consentSource_id",
    "updated",
    "legalBase_id",
)
PERSON_CHANGED_CHANGES = ("person_id", "title", "updated", "updated_associate_id", "updatedCount")


def signature(secret: str, body: bytes) -> str:
    """X-SuperOffice-Signature: base64 of HMAC-SHA256(secret, raw body) (dev/security.md)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    delivery: dict[str, Any] = field(compare=False)


class Dispatcher:
    """The tenant's delivery queue and the one thread that sends it."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self._heap: list[_Due] = []
        self._held: list[dict[str, Any]] = []  # waiting to be reordered
        self._held_since = 0.0
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._generation = 0
        self._sending = 0
        self._local = threading.local()
        # Senders: one keeps deliveries in the order they were queued; more send side by
        # side, as a busy NetServer does (control webhook_senders).
        self._threads: list[threading.Thread] = []
        self._ensure_senders()

    def _ensure_senders(self) -> None:
        wanted = max(1, self.tenant.control.webhook_senders)
        while len(self._threads) < wanted:
            thread = threading.Thread(
                target=self._run, args=(len(self._threads),), name="sim-webhooks", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    # -- queueing ------------------------------------------------------------------

    def clear(self) -> None:
        with self._wake:
            self._heap.clear()
            self._held.clear()
            self._generation += 1

    def idle(self) -> bool:
        with self._wake:
            return not self._heap and not self._held and not self._sending

    def enqueue(self, delivery: dict[str, Any]) -> None:
        control = self.tenant.control
        delivery["generation"] = self._generation
        copies = 2 if control.webhook_duplicate else 1
        self._ensure_senders()
        with self._wake:
            for _ in range(copies):
                item = dict(delivery)
                if control.webhook_reorder > 1:
                    if not self._held:
                        self._held_since = time.monotonic()
                    self._held.append(item)
                    if len(self._held) >= control.webhook_reorder:
                        self._release_held()
                else:
                    self._push(item, time.monotonic() + control.webhook_delay)
            self._wake.notify()

    def _push(self, delivery: dict[str, Any], at: float) -> None:
        heapq.heappush(self._heap, _Due(at, next(self._seq), delivery))

    def _release_held(self) -> None:
        # Newest first: the receiver sees the group in the opposite order of the changes.
        base = time.monotonic() + self.tenant.control.webhook_delay
        for offset, item in enumerate(reversed(self._held)):
            self._push(item, base + offset * 0.001)
        self._held.clear()

    # -- sending -----------------------------------------------------------------------

    def _run(self, index: int) -> None:
        while True:
            with self._wake:
                while True:
                    now = time.monotonic()
                    if self._held and now - self._held_since > 0.5:
                        # A group that never fills is sent reordered after half a second.
                        self._release_held()
                    # Senders beyond the count asked for (a test asked for fewer) rest.
                    active = index < max(1, self.tenant.control.webhook_senders)
                    if active and self._heap and self._heap[0].at <= now:
                        due = heapq.heappop(self._heap)
                        self._sending += 1
                        break
                    timeout = 0.5
                    if self._heap:
                        timeout = min(timeout, self._heap[0].at - now)
                    self._wake.wait(max(timeout, 0.001))
            try:
                self._attempt(due.delivery)
            finally:
                with self._wake:
                    self._sending -= 1

    def _attempt(self, delivery: dict[str, Any]) -> None:
        t = self.tenant
        with t.lock:
            hook = t.webhooks.get(delivery["webhook_id"])
            if (
                hook is None
                or hook["State"] != "Active"
                or delivery["generation"] != self._generation
            ):
                return
            secret = t.control.webhook_sign_with or hook.get("Secret") or ""
            target = hook["TargetUrl"]
            extra_headers = dict(hook.get("Headers") or {})
        body = delivery["body"]
        headers = {
            **{k: str(v) for k, v in extra_headers.items() if k},
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "X-SuperOffice-Event": delivery["event"],
            "X-SuperOffice-EventId": delivery["event_id"],
            "X-SuperOffice-Retry": str(delivery["attempt"]),
        }
        if secret:
            headers["X-SuperOffice-Signature"] = signature(secret, body)
        status: int | None = None
        error = ""
        try:
            response = self._session().post(
                target, data=body, headers=headers, timeout=POST_TIMEOUT
            )
            status = response.status_code
            response.close()
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status == 200
        with t.lock:
            t.webhook_log.append(
                {
                    "webhook_id": delivery["webhook_id"],
                    "event": delivery["event"],
                    "event_id": delivery["event_id"],
                    "primary_key": delivery["primary_key"],
                    "attempt": delivery["attempt"],
                    "status": status,
                    "error": error,
                    "at": datetime.now(UTC).isoformat(),
                }
            )
            hook = t.webhooks.get(delivery["webhook_id"])
            if hook is None:
                return
            hook["TotalCalls"] += 1
            if ok:
                hook["ConsecutiveErrors"] = 0
                return
            hook["TotalErrors"] += 1
            hook["ConsecutiveErrors"] += 1
            hook["LastError"] = error or f"HTTP {status} from {target}"
            if status == 410 or hook["ConsecutiveErrors"] >= t.control.webhook_failures_to_disable:
                hook["State"] = "TooManyErrors"
                hook["Updated"] = datetime.now(UTC)
                return
        if delivery["attempt"] + 1 < ATTEMPTS_PER_EVENT:
            delay = RETRY_DELAYS[delivery["attempt"]] * t.control.webhook_retry_scale
            with self._wake:
                self._push(
                    {**delivery, "attempt": delivery["attempt"] + 1}, time.monotonic() + delay
                )
                self._wake.notify()


# -- what a consent or person write raises -----------------------------------------------


def notify(
    t: Tenant, *, event: str, person_id: int, changes: tuple[str, ...], associate_id: int
) -> None:
    """Queue ``event`` for every active webhook listening to it. Called under the lock."""
    hooks = [h for h in t.webhooks.values() if h["State"] == "Active" and event in h["Events"]]
    if not hooks:
        return
    person = t.persons.get(person_id) or {}
    now = datetime.now(UTC)
    for hook in hooks:
        t.webhook_events_seen += 1
        n = t.webhook_events_seen
        ratio = t.control.webhook_drop
        if ratio and int(n * ratio) != int((n - 1) * ratio):
            # Lost on the way, as SuperOffice guarantees nothing: logged, never sent.
            t.webhook_log.append(
                {
                    "webhook_id": hook["WebhookId"],
                    "event": event,
                    "primary_key": person_id,
                    "dropped": True,
                    "at": now.isoformat(),
                }
            )
            continue
        event_id = str(uuid.uuid4())
        payload = {
            "EventId": event_id,
            "Timestamp": _iso(now),
            "Changes": list(changes),
            "Event": event,
            "PrimaryKey": person_id,
            "Entity": "person",
            "ContextIdentifier": t.context_identifier,
            "ChangedByAssociateId": associate_id,
            "WebhookName": hook["Name"],
            "FieldValues": _person_field_values(person, now),
        }
        t.dispatcher().enqueue(
            {
                "webhook_id": hook["WebhookId"],
                "event": event,
                "event_id": event_id,
                "primary_key": person_id,
                "attempt": 0,
                "body": json.dumps(payload).encode(),
            }
        )


def _person_field_values(person: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The person row's non-sensitive columns (reference/person-events.md): no name, no
    e-mail, no consent."""
    registered = person.get("Registered")
    return {
        "activeInterests": len(person.get("Interests") or ()),
        "associate_id": 0,
        "business_idx": 0,
        "category_idx": 0,
        "contact_id": person.get("ContactId") or 0,
        "country_id": person.get("CountryId") or 0,
        "DeletedDate": "0001-01-01T00:00:00",
        "group_id": 0,
        "person_id": person.get("PersonId") or 0,
        "position_idx": 0,
        "registered": registered.strftime("%Y-%m-%dT%H:%M:%S") if registered else None,
        "registered_associate_id": 1,
        "retired": 0,
        "source": 0,
        "updated": now.isoformat(),
        "updated_associate_id": 1,
        "userdef2_id": 0,
        "userdef_id": 0,
    }


# -- the Webhook agent ----------------------------------------------------------------


def _check_target(t: Tenant, url: str) -> None:
    parts = urlsplit(url or "")
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and loopback and t.allow_http_webhooks:
        return
    raise SimFault(
        f"The webhook target {url!r} is not an https address", exception_type="SoException"
    )


def _test_post(t: Tenant, hook: dict[str, Any]) -> None:
    """The test event NetServer sends before it saves (reference/test-event.md)."""
    event_id = str(uuid.uuid4())
    body = json.dumps(
        {
            "EventId": event_id,
            "Timestamp": _iso(datetime.now(UTC)),
            "Changes": [],
            "Event": "test",
            "PrimaryKey": 0,
            "Entity": "test",
            "ContextIdentifier": t.context_identifier,
            "ChangedByAssociateId": 0,
            "WebhookName": hook["Name"],
        }
    ).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-SuperOffice-Event": "test",
        "X-SuperOffice-EventId": event_id,
        "X-Hook-Test": "true",
    }
    if hook.get("Secret"):
        headers["X-SuperOffice-Signature"] = signature(hook["Secret"], body)
    try:
        response = requests.post(
            hook["TargetUrl"], data=body, headers=headers, timeout=POST_TIMEOUT
        )
        status = response.status_code
    except requests.RequestException as exc:
        raise SimFault(
            f"The webhook target did not answer the test event: {type(exc).__name__}",
            exception_type="SoException",
        ) from exc
    t.webhook_log.append(
        {
            "webhook_id": hook["WebhookId"],
            "event": "test",
            "event_id": event_id,
            "status": status,
            "at": datetime.now(UTC).isoformat(),
        }
    )
    if status != 200:
        raise SimFault(
            f"The webhook target answered the test event with HTTP {status}, not 200 OK",
            exception_type="SoException",
        )


# Elements of the carrier only a newer NetServer has (ErrorsEmail: 10.2.7; the others:
# 12.0.342), served only when the simulator answers as a newer version.
NEWER_CARRIER = ("ErrorsEmail", "ConsecutiveErrors", "LastError", "TotalCalls", "TotalErrors")
KEPT_FROM_REQUEST = ("ErrorsEmail",)


def carrier(t: Tenant, hook: dict[str, Any]) -> dict[str, Any]:
    values = {
        "WebhookId": hook["WebhookId"],
        "Name": hook["Name"],
        "Events": list(hook["Events"]),
        "TargetUrl": hook["TargetUrl"],
        # NetServer does not hand the secret back.
        "Secret": None,
        "State": hook["State"],
        "Type": hook["Type"],
        "Headers": dict(hook.get("Headers") or {}) or None,
        "Properties": dict(hook.get("Properties") or {}) or None,
        "Registered": hook["Registered"],
        "RegisteredAssociate": _associate(t, hook["RegisteredAssociateId"]),
        "Updated": hook["Updated"],
        "UpdatedAssociate": _associate(t, hook["UpdatedAssociateId"]),
    }
    if t.control.newer_version:
        values |= {name: hook.get(name) for name in NEWER_CARRIER if hook.get(name) is not None}
    return values


def _associate(t: Tenant, associate_id: int) -> dict[str, Any] | None:
    a = t.associates.get(associate_id)
    if a is None:
        return None
    return {"AssociateId": associate_id, "Name": a["Name"], "FullName": a["FullName"]}


def save_webhook(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    given = p.get("Webhook") or {}
    webhook_id = given.get("WebhookId") or 0
    existing = t.webhooks.get(webhook_id) if webhook_id else None
    if webhook_id and existing is None:
        raise SimFault(f"Webhook {webhook_id} does not exist", exception_type="SoNotFoundException")
    events = [e for e in (given.get("Events") or []) if e]
    unknown = sorted(set(events) - DOCUMENTED_EVENTS)
    if unknown:
        raise SimFault(f"Unknown webhook events {unknown}", exception_type="SoException")
    kind = given.get("Type") or "webhook"
    if kind != "webhook":
        raise SimFault(
            f"The simulator delivers webhooks of Type 'webhook' only, not {kind!r}",
            exception_type="SimulatorLimitation",
        )
    _check_target(t, given.get("TargetUrl") or "")
    now = datetime.now(UTC)
    hook = {
        "WebhookId": webhook_id or t.new_id("webhook"),
        "Name": given.get("Name") or "",
        "Events": events,
        "TargetUrl": given["TargetUrl"],
        "Secret": given.get("Secret") or "",
        "State": given.get("State") if given.get("State") not in (None, "Unknown") else "Active",
        "Type": kind,
        "Headers": given.get("Headers") or {},
        "Properties": given.get("Properties") or {},
        "Registered": existing["Registered"] if existing else now,
        "RegisteredAssociateId": existing["RegisteredAssociateId"] if existing else who,
        "Updated": now,
        "UpdatedAssociateId": who,
        "ConsecutiveErrors": 0,
        "LastError": existing["LastError"] if existing else "",
        "TotalCalls": existing["TotalCalls"] if existing else 0,
        "TotalErrors": existing["TotalErrors"] if existing else 0,
        "ErrorsEmail": existing.get("ErrorsEmail") if existing else None,
    }
    if t.control.newer_version:
        # As NetServer does, a save writes every element it knows: one the request leaves
        # out is blanked, so a client must send back what it read.
        for name in KEPT_FROM_REQUEST:
            hook[name] = given.get(name) or None
    # The test POST comes first: a target that does not answer 200 leaves nothing saved.
    _test_post(t, hook)
    t.webhooks[hook["WebhookId"]] = hook
    t.webhook_saves.append({"WebhookId": hook["WebhookId"], "State": hook["State"]})
    return {"Response": carrier(t, hook)}


def get_webhook(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    hook = t.webhooks.get(p.get("WebhookId") or 0)
    return {"Response": carrier(t, hook) if hook else None}


def get_all_webhooks(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    name, event = p.get("NameFilter"), p.get("EventFilter")
    state = p.get("StatusFilter") or "Unknown"
    hooks = [
        h
        for _, h in sorted(t.webhooks.items())
        if (not name or h["Name"] == name)
        and (not event or event in h["Events"])
        and (state == "Unknown" or h["State"] == state)
    ]
    return {"Response": [carrier(t, h) for h in hooks]}


def delete_webhook(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    webhook_id = p.get("WebhookId") or 0
    if t.webhooks.pop(webhook_id, None) is None:
        raise SimFault(f"Webhook {webhook_id} does not exist", exception_type="SoNotFoundException")
    return {}


def get_last_error(t: Tenant, who: int, p: dict[str, Any]) -> dict[str, Any]:
    hook = t.webhooks.get(p.get("WebhookId") or 0)
    return {"Response": hook["LastError"] if hook else ""}
