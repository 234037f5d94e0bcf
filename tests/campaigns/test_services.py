"""Contacts by email, campaigns, links, forms, and the bulk event ingest."""

import logging
import threading
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext

from campaigns.models import Contact, Event, EventType
from campaigns.services import (
    EVENTS_BATCH_MAX,
    EventsInvalid,
    campaign_create,
    campaign_update,
    contact_upsert,
    contacts_engagement_recount,
    events_ingest,
    form_create,
    tracked_link_create,
)

from ..databases import per_database
from .factories import CampaignFactory, ContactFactory, FormFactory, TrackedLinkFactory

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]


@pytest.fixture
def campaign(account):
    return CampaignFactory(account=account, name="Spring webinar")


def event(of_campaign, n=1, **extra):
    return {
        "event_id": f"evt-{n}",
        "type": EventType.EMAIL_OPENED,
        "campaign": of_campaign.pk,
        "email": f"reader{n}@example.com",
        **extra,
    }


# --- contacts ---------------------------------------------------------------------------


def test_contact_upsert_keys_contacts_by_email_case_insensitively(account):
    first = contact_upsert(account=account, email="  Anna.Berg@Example.COM ", first_name="Anna")
    again = contact_upsert(account=account, email="anna.berg@example.com", last_name="Berg")

    assert again.pk == first.pk
    assert Contact.objects.filter(account=account).count() == 1
    again.refresh_from_db()
    assert (again.email, again.first_name, again.last_name) == (
        "anna.berg@example.com",
        "Anna",
        "Berg",
    )


def test_contact_upsert_leaves_fields_alone_when_given_blank(account):
    contact_upsert(account=account, email="a@example.com", first_name="Anna", title="CEO")
    contact = contact_upsert(account=account, email="A@example.com", first_name="", title=None)
    assert (contact.first_name, contact.title) == ("Anna", "CEO")


def test_the_same_address_in_two_accounts_is_two_contacts(account, other_account):
    mine = contact_upsert(account=account, email="a@example.com")
    theirs = contact_upsert(account=other_account, email="A@example.com")
    assert mine.pk != theirs.pk


def test_contact_upsert_refuses_a_bad_address(account):
    with pytest.raises(ValidationError) as exc:
        contact_upsert(account=account, email="not-an-address")
    assert exc.value.message_dict == {"email": ["Enter a valid email address."]}
    assert not Contact.objects.exists()


def test_the_database_refuses_a_second_contact_differing_only_in_case(account):
    ContactFactory(account=account, email="a@example.com")
    with pytest.raises(Exception, match="contact_unique_account_email"):
        ContactFactory(account=account, email="A@EXAMPLE.com")


# --- campaigns, links, forms ------------------------------------------------------------


def test_campaign_create_and_update(account):
    campaign = campaign_create(account=account, name="  May newsletter ", description="Launch")
    assert campaign.name == "May newsletter"
    campaign_update(campaign=campaign, name="May newsletter (final)", is_archived=True)
    campaign.refresh_from_db()
    assert (campaign.name, campaign.is_archived) == ("May newsletter (final)", True)


def test_campaign_create_needs_a_name(account):
    with pytest.raises(ValidationError) as exc:
        campaign_create(account=account, name="  ")
    assert "name" in exc.value.message_dict


def test_tracked_link_and_form_belong_to_the_campaigns_account(campaign):
    link = tracked_link_create(campaign=campaign, name="Pricing", url="https://example.com/pricing")
    form = form_create(campaign=campaign, name="Demo request")
    assert link.account_id == form.account_id == campaign.account_id
    assert len(link.token) >= 16


def test_tracked_link_create_refuses_a_url_that_is_not_one(campaign):
    with pytest.raises(ValidationError) as exc:
        tracked_link_create(campaign=campaign, name="Bad", url="javascript:alert(1)")
    assert "url" in exc.value.message_dict


# --- events_ingest ----------------------------------------------------------------------


def test_ingest_stores_events_and_creates_their_contacts(account, campaign):
    result = events_ingest(
        account=account,
        events=[
            event(campaign, 1, first_name="Anna"),
            event(campaign, 2, email="READER1@example.com"),
        ],
    )

    assert len(result.stored) == 2 and result.duplicates == 0
    assert [e.event_id for e in result.events] == ["evt-1", "evt-2"]
    assert Contact.objects.filter(account=account).count() == 1
    contact = Contact.objects.get(account=account)
    assert (contact.email, contact.first_name) == ("reader1@example.com", "Anna")
    stored = Event.objects.get(external_id="evt-1")
    assert (stored.account_id, stored.campaign_id, stored.contact_id) == (
        account.pk,
        campaign.pk,
        contact.pk,
    )
    assert stored.source == Event.Source.API


def test_a_resent_event_is_stored_once_and_reported_as_a_duplicate(account, campaign):
    first = events_ingest(account=account, events=[event(campaign, 1)])
    again = events_ingest(account=account, events=[event(campaign, 1), event(campaign, 2)])

    assert Event.objects.filter(external_id="evt-1").count() == 1
    assert [(e.event_id, e.duplicate) for e in again.events] == [("evt-1", True), ("evt-2", False)]
    assert again.events[0].id == first.events[0].id
    assert [e.external_id for e in again.stored] == ["evt-2"]


def test_the_same_event_id_twice_in_one_batch_is_stored_once(account, campaign):
    result = events_ingest(account=account, events=[event(campaign, 1), event(campaign, 1)])
    assert Event.objects.count() == 1
    assert [e.duplicate for e in result.events] == [False, True]
    assert result.events[0].id == result.events[1].id


def test_event_ids_are_per_account(account, other_account, campaign):
    theirs = CampaignFactory(account=other_account)
    events_ingest(account=account, events=[event(campaign, 1)])
    result = events_ingest(account=other_account, events=[event(theirs, 1)])
    assert result.duplicates == 0
    assert Event.objects.filter(external_id="evt-1").count() == 2


def test_a_resent_batch_changes_no_contact(account, campaign):
    events_ingest(account=account, events=[event(campaign, 1, first_name="Anna")])
    events_ingest(account=account, events=[event(campaign, 1, first_name="Changed")])
    assert Contact.objects.get().first_name == "Anna"


def _engagement(email):
    contact = Contact.objects.get(email=email)
    return contact.engaged_count, contact.engaged_first_at, contact.engaged_last_at


def test_ingest_keeps_each_contacts_engaged_events_counted(account, campaign):
    link = TrackedLinkFactory(campaign=campaign)
    form = FormFactory(campaign=campaign)
    kari = {"email": "kari@example.com"}
    click = {"type": EventType.LINK_CLICKED, "link": link.pk}
    events_ingest(
        account=account,
        events=[
            event(campaign, 1, occurred_at="2025-05-02T10:00:00Z", **click, **kari),
            event(
                campaign,
                2,
                occurred_at="2025-05-01T09:00:00Z",
                type=EventType.FORM_SUBMITTED,
                form=form.pk,
                **kari,
            ),
            # An open is not engagement, however late.
            event(campaign, 3, occurred_at="2025-09-01T09:00:00Z", **kari),
            event(campaign, 4, occurred_at="2025-05-03T09:00:00Z", **click),
            event(campaign, 5, occurred_at="2025-05-03T09:00:00Z", email="opener@example.com"),
            # A mail scanner's click is kept but shows no person's interest.
            event(
                campaign,
                7,
                occurred_at="2025-06-01T09:00:00Z",
                data={"filtered": "scanner"},
                **click,
                **kari,
            ),
        ],
    )
    later = event(
        campaign, 6, occurred_at="2025-04-01T08:00:00Z", type=EventType.LANDING_PAGE_VISITED, **kari
    )
    events_ingest(
        account=account,
        events=[
            # Re-sent with another time: a duplicate, neither counted nor moving the dates.
            event(campaign, 1, occurred_at="2025-08-01T10:00:00Z", **click, **kari),
            later,
            later,
        ],
    )

    assert _engagement("kari@example.com") == (
        3,
        datetime(2025, 4, 1, 8, tzinfo=UTC),
        datetime(2025, 5, 2, 10, tzinfo=UTC),
    )
    assert _engagement("reader4@example.com") == (
        1,
        datetime(2025, 5, 3, 9, tzinfo=UTC),
        datetime(2025, 5, 3, 9, tzinfo=UTC),
    )
    assert _engagement("opener@example.com") == (0, None, None)

    # A recount from the stored events finds what ingest kept.
    kept = {c.email: _engagement(c.email) for c in Contact.objects.all()}
    Contact.objects.update(engaged_count=0, engaged_first_at=None, engaged_last_at=None)
    assert contacts_engagement_recount(account=account) == 3
    assert {c.email: _engagement(c.email) for c in Contact.objects.all()} == kept


def test_ingest_keeps_the_time_it_happened_and_the_data(account, campaign):
    link = TrackedLinkFactory(campaign=campaign)
    events_ingest(
        account=account,
        events=[
            event(
                campaign,
                1,
                type=EventType.LINK_CLICKED,
                link=link.pk,
                occurred_at="2025-05-01T09:30:00Z",
                data={"utm": "mail"},
            )
        ],
    )
    stored = Event.objects.get()
    assert stored.occurred_at == datetime(2025, 5, 1, 9, 30, tzinfo=UTC)
    assert (stored.link_id, stored.data) == (link.pk, {"utm": "mail"})


def test_ingest_hands_exactly_the_new_events_to_the_automations(account, campaign, monkeypatch):
    handed = []

    def fake_runs_create_for_events(*, account, events, events_are_new):
        handed.append((account, [e.external_id for e in events], all(e.pk for e in events)))
        assert events_are_new  # stored by this very transaction
        return ["run"] * len(events)

    monkeypatch.setattr("automations.services.runs_create_for_events", fake_runs_create_for_events)
    events_ingest(account=account, events=[event(campaign, 1)])
    result = events_ingest(account=account, events=[event(campaign, 1), event(campaign, 2)])

    assert handed == [(account, ["evt-1"], True), (account, ["evt-2"], True)]
    assert result.runs == ["run"]


def test_when_the_automations_fail_no_event_is_stored(account, campaign, monkeypatch):
    def broken(*, account, events, events_are_new):
        raise RuntimeError("ledger down")

    monkeypatch.setattr("automations.services.runs_create_for_events", broken)
    with pytest.raises(RuntimeError):
        events_ingest(account=account, events=[event(campaign, 1)])
    assert not Event.objects.exists() and not Contact.objects.exists()


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"email": "nope"}, "email", "Enter a valid email address."),
        ({"email": ""}, "email", "This field is required."),
        ({"type": "email_bounced"}, "type", "“email_bounced” is not a valid event type"),
        ({"campaign": None}, "campaign", "This field is required."),
        ({"campaign": 999999}, "campaign", "Unknown campaign"),
        ({"occurred_at": "yesterday"}, "occurred_at", "ISO 8601"),
        ({"data": ["a"]}, "data", "Send an object."),
        ({"first_name": "x" * 101}, "first_name", "no more than 100 characters"),
        ({"event_id": "x" * 201}, "event_id", "no more than 200 characters"),
    ],
)
def test_a_bad_event_rejects_the_whole_batch(account, campaign, change, field, message):
    batch = [event(campaign, 1), event(campaign, 2), event(campaign, 3, **change)]
    with pytest.raises(EventsInvalid) as exc:
        events_ingest(account=account, events=batch)

    assert list(exc.value.errors) == [2]
    assert message in " ".join(exc.value.errors[2][field])
    assert not Event.objects.exists() and not Contact.objects.exists()


def test_another_accounts_campaign_link_and_form_are_unknown(account, other_account, campaign):
    theirs = CampaignFactory(account=other_account)
    their_link = TrackedLinkFactory(campaign=theirs)
    their_form = FormFactory(campaign=theirs)
    batch = [
        event(campaign, 1, campaign=theirs.pk),
        event(campaign, 2, type=EventType.LINK_CLICKED, link=their_link.pk),
        event(campaign, 3, type=EventType.FORM_SUBMITTED, form=their_form.pk),
    ]
    with pytest.raises(EventsInvalid) as exc:
        events_ingest(account=account, events=batch)
    assert {i: list(fields) for i, fields in exc.value.errors.items()} == {
        0: ["campaign"],
        1: ["link"],
        2: ["form"],
    }
    assert not Event.objects.exists()


def test_a_link_of_another_campaign_or_on_a_non_click_is_refused(account, campaign):
    other_campaign = CampaignFactory(account=account)
    link = TrackedLinkFactory(campaign=other_campaign)
    own_link = TrackedLinkFactory(campaign=campaign)
    own_form = FormFactory(campaign=campaign)
    batch = [
        event(campaign, 1, type=EventType.LINK_CLICKED, link=link.pk),
        event(campaign, 2, type=EventType.EMAIL_OPENED, link=own_link.pk),
        event(campaign, 3, type=EventType.LINK_CLICKED, form=own_form.pk),
    ]
    with pytest.raises(EventsInvalid) as exc:
        events_ingest(account=account, events=batch)
    assert exc.value.errors[0]["link"] == ["This link belongs to another campaign."]
    assert exc.value.errors[1]["link"] == ["Only link click events name a link."]
    assert exc.value.errors[2]["form"] == ["Only form submissions name a form."]


def test_batch_limits(account, campaign):
    with pytest.raises(EventsInvalid) as exc:
        events_ingest(account=account, events=[])
    assert exc.value.batch_errors == ["Send at least one event."]

    too_many = [event(campaign, n) for n in range(EVENTS_BATCH_MAX + 1)]
    with pytest.raises(EventsInvalid) as exc:
        events_ingest(account=account, events=too_many)
    assert "at most 1000 events" in exc.value.batch_errors[0]

    result = events_ingest(account=account, events=too_many[:EVENTS_BATCH_MAX])
    assert len(result.stored) == EVENTS_BATCH_MAX
    assert Contact.objects.filter(account=account).count() == EVENTS_BATCH_MAX


def test_a_full_batch_takes_a_handful_of_queries_not_one_per_event(account, campaign):
    link = TrackedLinkFactory(campaign=campaign)
    ContactFactory(account=account, email="reader1@example.com", first_name="Old")
    batch = [
        event(campaign, n, type=EventType.LINK_CLICKED, link=link.pk, first_name=f"Reader {n}")
        for n in range(EVENTS_BATCH_MAX)
    ]
    with CaptureQueriesContext(connection) as queries:
        events_ingest(account=account, events=batch)
    # campaigns, links, known ids, contacts (find, insert, one update of the known one's
    # fields and engagement), events, the automations hook, the savepoint: no query per
    # event. On PostgreSQL each insert is one statement however many rows.
    assert len(queries) <= per_database(postgresql=10, sqlite=40), [q["sql"][:80] for q in queries]
    assert Event.objects.count() == EVENTS_BATCH_MAX
    assert Contact.objects.get(email="reader1@example.com").first_name == "Reader 1"


def test_a_batch_of_new_contacts_writes_each_contact_once(account, campaign):
    """New contacts are inserted with their engaged events: no UPDATE follows the insert."""
    link = TrackedLinkFactory(campaign=campaign)
    batch = [
        event(campaign, n, type=EventType.LINK_CLICKED, link=link.pk, first_name=f"Reader {n}")
        for n in range(50)
    ]
    batch.append(
        event(campaign, 50, type=EventType.LINK_CLICKED, link=link.pk, email="reader0@example.com")
    )
    with CaptureQueriesContext(connection) as queries:
        events_ingest(account=account, events=batch)

    contact_writes = [
        q["sql"][:60]
        for q in queries
        if "campaigns_contact" in q["sql"].split(" WHERE ")[0]
        and not q["sql"].lstrip().startswith("SELECT")
    ]
    assert len(contact_writes) == 1 and contact_writes[0].startswith("INSERT"), contact_writes
    assert _engagement("reader0@example.com")[0] == 2
    assert _engagement("reader7@example.com")[0] == 1
    assert Contact.objects.get(email="reader7@example.com").first_name == "Reader 7"


def test_an_existing_contact_gets_its_changes_and_engagement_in_one_update(account, campaign):
    link = TrackedLinkFactory(campaign=campaign)
    changed = ContactFactory(account=account, email="reader1@example.com", first_name="Old")
    same = ContactFactory(account=account, email="reader2@example.com", first_name="Same")
    before = Contact.objects.get(pk=same.pk).updated_at
    click = {"type": EventType.LINK_CLICKED, "link": link.pk}
    with CaptureQueriesContext(connection) as queries:
        events_ingest(
            account=account,
            events=[
                event(campaign, 1, first_name="New", occurred_at="2025-05-02T10:00:00Z", **click),
                event(campaign, 2, first_name="Same", occurred_at="2025-05-03T10:00:00Z", **click),
                event(campaign, 3, first_name="Third", **click),
            ],
        )

    updates = [q["sql"] for q in queries if q["sql"].lstrip().startswith("UPDATE")]
    assert len(updates) == per_database(postgresql=1, sqlite=2), updates
    changed.refresh_from_db()
    same.refresh_from_db()
    assert (changed.first_name, changed.engaged_count) == ("New", 1)
    assert changed.engaged_last_at == datetime(2025, 5, 2, 10, tzinfo=UTC)
    assert changed.updated_at > before
    # Only its engagement changed: it keeps the time its fields were last written.
    assert (same.first_name, same.engaged_count, same.updated_at) == ("Same", 1, before)
    assert same.engaged_first_at == datetime(2025, 5, 3, 10, tzinfo=UTC)


def test_stored_events_come_back_in_the_order_sent_with_their_rows_loaded(account, campaign):
    link = TrackedLinkFactory(campaign=campaign)
    known = ContactFactory(account=account, email="known@example.com")
    batch = []
    for n in range(30):
        item = event(campaign, n, type=EventType.LINK_CLICKED, link=link.pk, data={"n": n})
        if n % 3 == 0:
            del item["event_id"]  # no id of the sender's: nothing but the order ties it back
        if n % 5 == 0:
            item["email"] = known.email
        batch.append(item)
    result = events_ingest(account=account, events=batch)

    assert [e.data["n"] for e in result.stored] == list(range(30))
    assert [e.id for e in result.events] == [e.pk for e in result.stored]
    in_db = {e.pk: e for e in Event.objects.filter(account=account)}
    for sent, stored in zip(batch, result.stored, strict=True):
        row = in_db[stored.pk]
        assert (row.data, row.external_id) == (sent["data"], sent.get("event_id"))
        assert (row.contact_id, row.campaign_id, row.link_id) == (
            stored.contact_id,
            campaign.pk,
            link.pk,
        )
        assert row.occurred_at == stored.occurred_at and row.received_at == stored.received_at
    with CaptureQueriesContext(connection) as reads:
        emails = [e.contact.email for e in result.stored]
        names = {(e.campaign.name, e.link.name, e.account.slug) for e in result.stored}
    assert len(reads) == 0
    assert emails[0] == known.email and emails[1] == "reader1@example.com"
    assert names == {(campaign.name, link.name, account.slug)}
    assert not result.stored[0]._state.adding


def test_stored_events_and_new_contacts_are_as_read_back_and_save_as_updates(account, campaign):
    result = events_ingest(account=account, events=[event(campaign, n) for n in range(3)])

    for stored in result.stored:
        read = Event.objects.get(pk=stored.pk)
        for obj, again in ((stored, read), (stored.contact, read.contact)):
            fields = type(obj)._meta.concrete_fields
            assert [getattr(obj, f.attname) for f in fields] == [
                getattr(again, f.attname) for f in fields
            ]
            assert (obj._state.adding, obj._state.db) == (False, again._state.db)
    # An instance built as read back is saved by UPDATE, not inserted a second time.
    stored = result.stored[0]
    stored.data = {"seen": True}
    stored.save(update_fields=["data"])
    stored.contact.first_name = "Ada"
    stored.contact.save(update_fields=["first_name"])
    assert Event.objects.get(pk=stored.pk).data == {"seen": True}
    assert Contact.objects.get(pk=stored.contact_id).first_name == "Ada"
    assert Event.objects.filter(account=account).count() == 3


def test_a_post_init_receiver_still_sees_the_stored_events_and_new_contacts(account, campaign):
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append((sender, instance))

    post_init.connect(receiver, sender=Event)
    post_init.connect(receiver, sender=Contact)
    try:
        result = events_ingest(account=account, events=[event(campaign, n) for n in range(2)])
    finally:
        post_init.disconnect(receiver, sender=Event)
        post_init.disconnect(receiver, sender=Contact)

    made = {id(instance) for _, instance in seen}
    assert all(id(e) in made and id(e.contact) in made for e in result.stored)
    assert result.stored[0].contact.email == "reader0@example.com"


# On SQLite a writer takes the database's lock at BEGIN (IMMEDIATE), so two batches never
# both check before either inserts: the race this test stages cannot happen there.
@pytest.mark.postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_requests_racing_with_the_same_events_store_them_once(monkeypatch, caplog):
    """Both check for known ids before either inserts: the loser tries again and sees duplicates."""
    from django.db import connections

    from campaigns import services
    from tests.factories import AccountFactory

    # Celery's worker tests reconfigure logging; listen on the service's logger itself.
    caplog.set_level(logging.INFO, logger="campaigns.services")
    account = AccountFactory(slug="race")
    campaign = CampaignFactory(account=account)
    link = TrackedLinkFactory(campaign=campaign)
    batch = [event(campaign, n, type=EventType.LINK_CLICKED, link=link.pk) for n in range(20)]
    barrier = threading.Barrier(2, timeout=10)
    waited = set()
    real_upsert = services._contacts_upsert

    def upsert_after_both_checked(**kwargs):
        if threading.get_ident() not in waited:
            waited.add(threading.get_ident())
            barrier.wait()
        return real_upsert(**kwargs)

    monkeypatch.setattr(services, "_contacts_upsert", upsert_after_both_checked)
    results, errors = [], []

    def ingest():
        try:
            results.append(events_ingest(account=account, events=batch))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ingest) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

    assert not errors
    assert "trying again" in caplog.text  # the loser hit the unique constraint and retried
    assert sorted(len(r.stored) for r in results) == [0, 20]
    assert sorted(r.duplicates for r in results) == [0, 20]
    assert Event.objects.filter(account=account).count() == 20
    assert Contact.objects.filter(account=account).count() == 20
    # The loser's contacts lost the insert to the winner's, were read back and counted in
    # its transaction, which rolled back: each click is counted once.
    assert (
        sorted(Contact.objects.filter(account=account).values_list("engaged_count", flat=True))
        == [1] * 20
    )
