"""The simulator's in-memory NetServer tenant: seeded demo data and its rules."""

from __future__ import annotations

import random
import secrets
import threading
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import webhooks

FIRST_NAMES = [
    "Anna",
    "Bjørn",
    "Camille",
    "David",
    "Elif",
    "Finn",
    "Grete",
    "Hugo",
    "Ingrid",
    "Jonas",
    "Kari",
    "Lars",
    "Maja",
    "Nils",
    "Olivia",
    "Per",
    "Rania",
    "Sofie",
    "Tobias",
    "Ulla",
    "Vera",
    "William",
    "Yusuf",
    "Zofia",
]
LAST_NAMES = [
    "Andersen",
    "Berg",
    "Christensen",
    "Dahl",
    "Eriksen",
    "Fischer",
    "Hansen",
    "Iversen",
    "Johansen",
    "Karlsen",
    "Larsen",
    "Moen",
    "Nilsen",
    "Olsen",
    "Pedersen",
    "Rasmussen",
    "Solberg",
    "Thorsen",
    "Vik",
    "Wolff",
]
COMPANY_WORDS = [
    "Nordic",
    "Fjord",
    "Aurora",
    "Granite",
    "Harbour",
    "Polar",
    "Birch",
    "Summit",
    "Lumen",
    "Tidewater",
    "Copper",
    "Falcon",
]
COMPANY_KINDS = ["Consulting", "Logistics", "Software", "Foods", "Energy", "Design", "Marine"]

DUPLICATE_EMAIL = "duplicate@example.com"
ASSIGN_BY_CATEGORY = 2147483647
BIG_SELECTION_ID = 100
# Person ids of the users (associates), apart from the contact persons'.
ASSOCIATE_PERSON_BASE = 1_000_000


@dataclass
class Control:
    mode: str = "normal"  # normal | down | slow | fail_ratio | throttle | entity_bomb | truncated
    delay: float = 0.0
    ratio: float = 0.0
    retry_after: float | None = 1.0
    operations: set[str] = field(default_factory=set)  # empty = all
    refuse_tickets: bool = False
    # Answer as a NetServer newer than the hub's WSDL (11.13 and later): elements it does
    # not name, and the operations only newer versions have (Person.UpdateInterests).
    newer_version: bool = False
    # How the system user's token comes back from the ticket exchange: "valid", or
    # "forged", "wrong_issuer", "wrong_audience", "expired" for tests of its validation.
    system_user_jwt: str = "valid"
    calls_seen: int = 0
    # Webhook deliveries (see webhooks.py): seconds before an event's first attempt; each
    # event sent twice; events held in groups of N and sent newest first; the share of
    # events lost (never sent); the documented retry delays (1 s, 4 s) scaled by this;
    # failed attempts in a row that disable a webhook; a secret to sign with instead of
    # the webhook's own (a receiver then refuses every delivery).
    webhook_delay: float = 0.0
    webhook_duplicate: bool = False
    webhook_reorder: int = 0
    webhook_drop: float = 0.0
    webhook_retry_scale: float = 1.0
    webhook_failures_to_disable: int = webhooks.FAILURES_TO_DISABLE
    webhook_sign_with: str = ""
    # How many deliveries are sent at once (1 keeps them in order; more only grow).
    webhook_senders: int = 1


class OrderedIds:
    """A set of ids kept in ascending order as well: membership in O(1), a write in
    O(log n) (plus a short list move), and a page of members is a slice, not a sort."""

    __slots__ = ("_members", "_order")

    def __init__(self, ids: Iterable[int] = ()) -> None:
        self._members = set(ids)
        self._order = sorted(self._members)

    def add(self, value: int) -> None:
        if value not in self._members:
            self._members.add(value)
            insort(self._order, value)

    def discard(self, value: int) -> None:
        if value in self._members:
            self._members.remove(value)
            del self._order[bisect_left(self._order, value)]

    def __contains__(self, value: object) -> bool:
        return value in self._members

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[int]:
        return iter(self._order)

    def ordered(self) -> list[int]:
        """The members in ascending order (the index itself: read, never modify)."""
        return self._order


class Tenant:
    """One SuperOffice tenant. All access goes through ``lock``.

    Besides the rows (``persons``, ``consents``, ``sales``...) the tenant keeps indexes so
    that a call costs the same with 300 persons as with 100,000: persons by lower-cased
    email, consents by person and by update time, sales and appointments by person, and
    project members by person. Every write goes through the methods below, which keep
    them in step with the rows.
    """

    def __init__(
        self,
        *,
        username: str,
        password: str,
        app_token: str,
        persons: int,
        seed: int,
        system_user_token: str,
        context_identifier: str,
        ticket_ttl: float,
        big_selection: int = 0,
        oidc_client_id: str = "emhub-panels",
        allow_http_webhooks: bool = False,
    ) -> None:
        self.lock = threading.RLock()
        self.username = username
        self.password = password
        self.app_token = app_token
        self.system_user_token = system_user_token
        self.context_identifier = context_identifier
        self.ticket_ttl = ticket_ttl
        self.oidc_client_id = oidc_client_id
        # The tenant database's serial: the system user token's audience is spn:<serial>.
        self.serial = "4242"
        self.person_count = persons
        # Size of an extra selection (id BIG_SELECTION_ID) of the first N persons, for
        # import benchmarks; 0 leaves the seeded data as it is.
        self.big_selection = min(big_selection, persons)
        self.seed = seed
        # A real NetServer delivers to https targets only; the tests and the embedded
        # default run the hub on plain-http loopback.
        self.allow_http_webhooks = allow_http_webhooks
        self.control = Control()
        self._dispatcher: webhooks.Dispatcher | None = None
        # SOAP calls being answered now (kept across resets: they are still running).
        self.in_flight = 0
        self.reset()

    @contextmanager
    def call_in_flight(self) -> Iterator[Callable[[], None]]:
        """Count a SOAP call as answered now until the function it yields is called (once its
        reply is ready, before it is written: a client that has read the reply may start its
        next call at once) or, at the latest, until the block ends."""
        with self.lock:
            self.in_flight += 1
            self.counters["most_in_flight"] = max(self.counters["most_in_flight"], self.in_flight)
        ended = False

        def end() -> None:
            nonlocal ended
            with self.lock:
                if not ended:
                    ended = True
                    self.in_flight -= 1

        try:
            yield end
        finally:
            end()

    # -- seeding -------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.control = Control()
            # most_in_flight: the most SOAP calls answered at once (the hub's cap seen
            # from SuperOffice's side).
            self.counters: dict[str, int] = {
                "authentications": 0,
                "wsdl_loads": 0,
                "calls": 0,
                "most_in_flight": 0,
            }
            self.op_counts: dict[str, int] = {}
            self.tickets: dict[str, tuple[int, datetime]] = {}
            self.access_tokens: dict[str, tuple[int, datetime]] = {}
            # Every archive query answered (provider, columns, restrictions...), in order.
            self.archive_log: list[dict[str, Any]] = []
            self.list_log: list[str] = []
            # Webhook id -> the webhook as saved; every delivery attempt, in order; saves.
            self.webhooks: dict[int, dict[str, Any]] = {}
            self.webhook_log: list[dict[str, Any]] = []
            self.webhook_saves: list[dict[str, Any]] = []
            self.webhook_events_seen = 0
            if self._dispatcher is not None:
                self._dispatcher.clear()
            self._seed_data()

    def _seed_data(self) -> None:
        rng = random.Random(self.seed)
        base = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
        self.usergroups = {1: "Sales", 2: "Marketing", 3: "Support", 4: "Management"}
        self.associates: dict[int, dict[str, Any]] = {}
        staff = [
            ("ADM", "Ada Admin", 4, [1, 2]),
            ("SAL1", "Sam Seller", 1, []),
            ("SAL2", "Siri Seller", 1, [2]),
            ("MKT", "Mia Marketer", 2, []),
            ("SUP1", "Sven Support", 3, []),
            ("SUP2", "Selma Support", 3, [1]),
            ("MGR", "Magnus Manager", 4, []),
            ("SYS", "System User", 4, []),
        ]
        for index, (name, full, group, secondary) in enumerate(staff, start=1):
            self.associates[index] = {
                "AssociateId": index,
                "Name": name,
                "FullName": full,
                "GroupIdx": group,
                "secondary_groups": secondary,
                "email": f"{name.lower()}@tenant.example",
                # A user is a person of the tenant's own company; their diary is theirs.
                "PersonId": ASSOCIATE_PERSON_BASE + index,
            }
        self.login_associate_id = 1
        self.system_associate_id = 8
        self.lists: dict[str, list[tuple[int, str]]] = {
            "source": [(1, "Web form"), (2, "Trade fair"), (3, "E-marketing"), (4, "Referral")],
            "prob": [(1, "Hot"), (2, "Warm"), (3, "Cold")],
            "task": [(1, "Phone call"), (2, "Meeting"), (3, "Follow-up"), (4, "Email")],
            "persint": [(1, "Newsletter"), (2, "Webinars"), (3, "Product news"), (4, "Events")],
            "category": [(1, "Customer"), (2, "Prospect"), (3, "Partner")],
            "business": [(1, "IT"), (2, "Retail"), (3, "Manufacturing"), (4, "Finance")],
            "country": [
                (47, "Norway"),
                (46, "Sweden"),
                (45, "Denmark"),
                (49, "Germany"),
                (44, "United Kingdom"),
            ],
            "ticketpriority": [(1, "Low"), (2, "Medium"), (3, "High"), (4, "Critical")],
        }
        # ejcategory: id -> (name, default owner associate id or 0)
        self.ticket_categories = {1: ("Sales enquiry", 2), 2: ("Support", 5), 3: ("General", 0)}
        self.legal_bases = [
            (1, "Consent", "61A"),
            (2, "Contract", "61B"),
            (3, "Required by law", "61C"),
            (4, "Protect vital interests", "61D"),
            (5, "Public interest", "61E"),
            (6, "Legitimate interest", "61F"),
            (7, "Withdrawn", "WITHDRAWN"),
        ]
        self.consent_purposes = [
            (1, "Sales and service", "STORE"),
            (2, "E-marketing", "EMARKETING"),
        ]
        self.consent_sources = {
            "USER": (1, "Created by user"),
            "WEBFORM": (2, "Web form"),
            "API": (3, "Other integration"),
        }
        self.scripts = {1: "echo", 2: "lead-router"}
        # Person fields a link action can set: (key, label, CustomFieldType).
        self.custom_fields = {
            "person": [
                ("SuperOffice:1", "Newsletter topic", "ShortText"),
                ("SuperOffice:2", "Lead score", "Integer"),
                ("SuperOffice:3", "Last webinar", "Date"),
                ("SuperOffice:4", "Wants a call", "Checkbox"),
                ("SuperOffice:5", "Preferred channel", "MdoList"),
                ("x_campaign_note", "Campaign note", "LongText"),
                ("x_budget", "Budget", "Decimal"),
            ],
        }
        self.usecs: dict[str, int] = {"usec-ada-0001": 1, "usec-sam-0002": 2, "usec-mia-0004": 4}

        self.companies: dict[int, dict[str, Any]] = {}
        company_total = max(3, self.person_count // 4)
        for cid in range(1, company_total + 1):
            self.companies[cid] = {
                "ContactId": cid,
                "Name": f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)} {cid}",
                "AssociateId": rng.choice([2, 3, 7]),
                "CountryId": rng.choice([47, 46, 45, 49, 44]),
                "CategoryId": rng.choice([1, 2, 3]),
                "BusinessId": rng.choice([1, 2, 3, 4]),
                # The company's own address: on a selection it is email/emailAddress.
                "Email": f"post@company{cid}.example",
            }
        self.persons: dict[int, dict[str, Any]] = {}
        self.persons_by_email: dict[str, set[int]] = {}
        self._person_email_keys: dict[int, frozenset[str]] = {}
        for pid in range(1, self.person_count + 1):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            registered = base + timedelta(days=rng.randint(0, 600), minutes=rng.randint(0, 600))
            email = f"{first.lower()}.{last.lower()}.{pid}@example.com".replace("ø", "o")
            self.persons[pid] = self._new_person_row(
                pid=pid,
                first=first,
                last=last,
                email=email,
                company_id=rng.randint(1, company_total),
                registered=registered,
            )
            self.persons[pid]["Interests"] = {i for i in (1, 2, 3, 4) if rng.random() < 0.25}
        # A few persons share one email; the oldest must be recognisable as such.
        for offset, pid in enumerate(range(2, min(self.person_count, 8) + 1, 3)):
            self.persons[pid]["Emails"] = [DUPLICATE_EMAIL]
            self.persons[pid]["Registered"] = base + timedelta(days=10 * offset)
        for pid in self.persons:
            self.index_person(pid)
        self.next_ids = {
            "person": self.person_count + 1,
            "company": company_total + 1,
            "sale": 1,
            "appointment": 1,
            "ticket": 1,
            "projectmember": 1,
            "consent": 1,
            "webhook": 1,
        }
        self.selections: dict[int, dict[str, Any]] = {}
        for sid, name in enumerate(
            ["Newsletter Q1", "Event invitees", "Key accounts", "Webinar leads", "Dormant"], start=1
        ):
            members = OrderedIds(p for p in self.persons if rng.random() < 0.1)
            self.selections[sid] = {"name": name, "members": members}
        if self.big_selection:
            self.selections[BIG_SELECTION_ID] = {
                "name": f"Everyone ({self.big_selection})",
                "members": OrderedIds(range(1, self.big_selection + 1)),
            }
        self.projects: dict[int, dict[str, Any]] = {}
        for prid, name in enumerate(
            ["Spring campaign", "Partner summit", "Onboarding 2025", "Trade fair Oslo"], start=1
        ):
            # members: member id -> person id; by_person: person id -> member id;
            # order: the member ids, ascending.
            self.projects[prid] = {
                "name": name,
                "members": {},
                "by_person": {},
                "order": OrderedIds(),
            }
            for pid in self.persons:
                if rng.random() < 0.08:
                    self._add_project_member(prid, pid)
        self.sales: dict[int, dict[str, Any]] = {}
        self.sales_by_person: dict[int, list[int]] = {}
        self.appointments: dict[int, dict[str, Any]] = {}
        self.appointments_by_person: dict[int, list[int]] = {}
        self.service_tickets: dict[int, dict[str, Any]] = {}
        self.consents: dict[tuple[int, str], dict[str, Any]] = {}
        # person id -> purpose -> the row of ``consents`` (the same dict object).
        self.consents_by_person: dict[int, dict[str, dict[str, Any]]] = {}
        # (updated, person id, purpose) of every consent, ascending; sorted once after
        # seeding rather than kept in order through it.
        self._consent_times: list[tuple[datetime, int, str]] | None = None
        for pid in self.persons:
            if rng.random() < 0.5:
                when = self.persons[pid]["Registered"] + timedelta(days=1)
                self._write_consent(pid, "STORE", "61F", "USER", "", when)
            if rng.random() < 0.3:
                when = self.persons[pid]["Registered"] + timedelta(days=2)
                self._write_consent(pid, "EMARKETING", "61A", "WEBFORM", "", when)
        self._consent_times = sorted(
            (row["updated"], pid, purpose) for (pid, purpose), row in self.consents.items()
        )

    def _new_person_row(
        self, *, pid: int, first: str, last: str, email: str, company_id: int, registered: datetime
    ) -> dict[str, Any]:
        return {
            "PersonId": pid,
            "Firstname": first,
            "Lastname": last,
            "Title": "",
            "Emails": [email] if email else [],
            "OfficePhones": [],
            "MobilePhones": [],
            "ContactId": company_id,
            "CountryId": 47,
            "NoMailing": False,
            "Registered": registered,
            "Updated": registered,
            "Interests": set(),
            "CustomFields": {},
            "UserDefinedFields": {},
            "ExtraFields": {},
            "More": _person_details(pid) if first or last else {},
        }

    # -- writes (each keeps the indexes in step) --------------------------------

    def index_person(self, person_id: int) -> None:
        """(Re)index one person's emails; call after creating or changing a person, or
        after removing one from ``persons``."""
        old = self._person_email_keys.pop(person_id, frozenset())
        person = self.persons.get(person_id)
        new = frozenset(e.lower() for e in person["Emails"]) if person else frozenset()
        for key in old - new:
            holders = self.persons_by_email.get(key)
            if holders is not None:
                holders.discard(person_id)
                if not holders:
                    del self.persons_by_email[key]
        for key in new - old:
            self.persons_by_email.setdefault(key, set()).add(person_id)
        if new:
            self._person_email_keys[person_id] = new

    @staticmethod
    def _put(rows: dict, by_person: dict, key: str, row: dict[str, Any]) -> None:
        """Store a new or changed row, and keep the person index in step."""
        old = rows.get(row[key])
        if old is not None:
            by_person[old["PersonId"]].remove(row[key])
        rows[row[key]] = row
        by_person.setdefault(row["PersonId"], []).append(row[key])

    def add_sale(self, row: dict[str, Any]) -> None:
        self._put(self.sales, self.sales_by_person, "SaleId", row)

    def add_appointment(self, row: dict[str, Any]) -> None:
        self._put(self.appointments, self.appointments_by_person, "AppointmentId", row)

    def _add_project_member(self, project_id: int, person_id: int) -> int:
        project = self.projects[project_id]
        member_id = project["by_person"].get(person_id)
        if member_id is not None:
            return member_id
        member_id = self.next_ids["projectmember"]
        self.next_ids["projectmember"] += 1
        project["members"][member_id] = person_id
        project["by_person"][person_id] = member_id
        project["order"].add(member_id)
        return member_id

    def remove_project_member(self, member_id: int) -> None:
        for project in self.projects.values():
            person_id = project["members"].pop(member_id, None)
            if person_id is not None:
                if project["by_person"].get(person_id) == member_id:
                    del project["by_person"][person_id]
                project["order"].discard(member_id)

    def _write_consent(
        self,
        person_id: int,
        purpose: str,
        legal_base: str,
        source: str,
        comment: str,
        when: datetime,
        associate_id: int | None = None,
    ) -> None:
        """Write a consent as the associate (the ticket's user; the login user when None)."""
        who = associate_id or self.login_associate_id
        key = (person_id, purpose)
        row = self.consents.get(key)
        if row is None:
            row = {
                "id": self.next_ids["consent"],
                "registered": when,
                "registered_by": who,
            }
            self.next_ids["consent"] += 1
            self.consents[key] = row
            self.consents_by_person.setdefault(person_id, {})[purpose] = row
        elif self._consent_times is not None:
            times = self._consent_times
            del times[bisect_left(times, (row["updated"], person_id, purpose))]
        if self._consent_times is not None:
            insort(self._consent_times, (when, person_id, purpose))
        row.update(
            {
                "legal_base": legal_base,
                "source": source,
                "comment": comment,
                "updated": when,
                "updated_by": who,
            }
        )
        withdrawn = legal_base == "WITHDRAWN"
        webhooks.notify(
            self,
            event="person.unconsented" if withdrawn else "person.consented",
            person_id=person_id,
            changes=() if withdrawn else webhooks.CONSENTED_CHANGES,
            associate_id=who,
        )

    def dispatcher(self) -> webhooks.Dispatcher:
        """The webhook delivery queue, started with the first delivery."""
        if self._dispatcher is None:
            self._dispatcher = webhooks.Dispatcher(self)
        return self._dispatcher

    # -- auth ----------------------------------------------------------------

    def issue_ticket(self, associate_id: int) -> str:
        ticket = f"7T:{secrets.token_urlsafe(24)};{associate_id}"
        expires = datetime.now(UTC) + timedelta(seconds=self.ticket_ttl)
        self.tickets[ticket] = (associate_id, expires)
        self.counters["authentications"] += 1
        return ticket

    def associate_for_ticket(self, ticket: str | None) -> int | None:
        if not ticket or self.control.refuse_tickets:
            return None
        entry = self.tickets.get(ticket)
        if entry is None or entry[1] < datetime.now(UTC):
            return None
        return entry[0]

    def expire_tickets(self) -> None:
        self.tickets.clear()

    def issue_access_token(self, associate_id: int, ttl: float) -> str:
        """An access token of a user signed in through the identity provider (idp)."""
        token = f"8A:{self.context_identifier}.{secrets.token_urlsafe(24)}"
        with self.lock:
            self.access_tokens[token] = (associate_id, datetime.now(UTC) + timedelta(seconds=ttl))
        return token

    def access_token_associate(self, token: str) -> int | None:
        entry = self.access_tokens.get(token)
        if entry is None or entry[1] < datetime.now(UTC):
            return None
        return entry[0]

    # -- helpers used by the handlers -----------------------------------------

    def new_id(self, kind: str) -> int:
        value = self.next_ids[kind]
        self.next_ids[kind] += 1
        return value

    def persons_with_email(self, lowered: str) -> list[int]:
        """Ids of the persons with an email whose lower-case form is ``lowered``, ascending."""
        return sorted(self.persons_by_email.get(lowered, ()))

    def consent_person_ids_since(self, since: datetime) -> list[int]:
        """Ids of the persons with a consent updated at or after ``since``, ascending."""
        times = self._consent_times or []
        start = bisect_left(times, (since,))
        return sorted({person_id for _, person_id, _ in times[start:]})

    def consents_updated_since(self, since: datetime) -> set[tuple[int, str]]:
        """(person id, purpose) of the consents updated at or after ``since``."""
        times = self._consent_times or []
        start = bisect_left(times, (since,))
        return {(person_id, purpose) for _, person_id, purpose in times[start:]}

    def associate_of_person(self, person_id: int) -> int | None:
        """The user (associate) whose person this is, or None for a contact person."""
        for associate_id, associate in self.associates.items():
            if associate["PersonId"] == person_id:
                return associate_id
        return None

    def list_name(self, list_id_kind: str, item_id: int | None) -> str | None:
        if not item_id:
            return None
        return dict(self.lists.get(list_id_kind, [])).get(item_id)


# Shared by every seeded person (a save replaces them with what it sent, never edits them).
_POSITION = [["Id", "3"], ["Value", "Head of Marketing"], ["Tooltip", "Marketing lead"]]
# StructuredAddress children in the official order: Address1 ... City ... Zipcode.
_ADDRESS = [
    ["Street", [["Address1", "Storgata 1"], ["City", "Oslo"], ["Zipcode", "0155"]]],
    ["Formatted", "Storgata 1, 0155 Oslo"],
]
_BIRTH_DATE = datetime(1980, 5, 17, tzinfo=UTC)


def _person_details(pid: int) -> dict[str, Any]:
    """What a real person carries beyond what the simulator acts on: elements a client
    must send back unchanged when it saves the person (see handlers.save_person_entity)."""
    return {
        "MiddleName": "Q.",
        "Mrmrs": "Ms",
        "BirthDate": _BIRTH_DATE,
        "Description": f"Key contact {pid}; prefers calls before noon",
        "Position": _POSITION,
        "Urls": [
            {
                "Value": f"https://example.com/people/{pid}",
                "StrippedValue": f"example.com/people/{pid}",
                "Description": "Profile",
            }
        ],
        "PersonNumber": f"P-{pid}",
        "Address": _ADDRESS,
        "Associate": {"AssociateId": 4, "Name": "SAL", "FullName": "Sally Sales"},
        "Category": {"Id": 2, "Value": "Customer"},
        "Business": {"Id": 1, "Value": "IT"},
        "Salutation": "Dear Ms Q.",
    }
