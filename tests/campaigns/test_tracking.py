"""The recipients' endpoints: tracked links, the open pixel and public forms."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone

from campaigns.models import Contact, Event, EventType, RawClick
from campaigns.services import (
    contact_ref_make,
    form_action_url,
    open_pixel_url,
    tracking_url_for_link,
)
from campaigns.tasks import drain_clicks
from campaigns.views import PIXEL_GIF

from .factories import CampaignFactory, ContactFactory, FormFactory, TrackedLinkFactory

pytestmark = [pytest.mark.django_db, pytest.mark.both_databases]


@pytest.fixture
def campaign(account):
    return CampaignFactory(account=account)


@pytest.fixture
def link(campaign):
    return TrackedLinkFactory(campaign=campaign, url="https://www.example.com/pricing?plan=pro")


@pytest.fixture
def contact(account):
    return ContactFactory(account=account, email="anna@example.com")


@pytest.fixture
def visitor():
    """A recipient: signed in to nothing, with CSRF checks on as in a real browser."""
    return Client(enforce_csrf_checks=True, HTTP_USER_AGENT="Mail/1.0")


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# --- tracked links -----------------------------------------------------------------------


@override_settings(EMHUB_PUBLIC_URL="https://hub.example.com/")
def test_the_tracking_url_is_absolute_and_names_the_contact(link, contact):
    url = tracking_url_for_link(link=link, contact=contact)
    assert url.startswith(f"https://hub.example.com/t/{link.token}/?c=")


def test_a_click_records_the_event_and_redirects_to_the_link(visitor, link, contact):
    response = visitor.get(path_of(tracking_url_for_link(link=link, contact=contact)))

    assert response.status_code == 302
    assert response["Location"] == "https://www.example.com/pricing?plan=pro"
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"]
    # Answered before the event is stored: the click waits as one raw row for the drain.
    assert RawClick.objects.count() == 1 and not Event.objects.exists()

    assert drain_clicks() == 1
    assert not RawClick.objects.exists()
    event = Event.objects.get()
    assert (event.type, event.contact, event.link, event.campaign_id) == (
        EventType.LINK_CLICKED,
        contact,
        link,
        link.campaign_id,
    )
    assert (event.source, event.account_id, event.data) == (
        Event.Source.TRACKED_LINK,
        contact.account_id,
        {"user_agent": "Mail/1.0"},
    )


def test_every_click_is_an_event(visitor, link, contact):
    url = path_of(tracking_url_for_link(link=link, contact=contact))
    visitor.get(url)
    visitor.get(url)
    drain_clicks()
    drain_clicks()  # a second drain (a duplicate wake-up, the sweep) finds nothing left
    assert Event.objects.filter(type=EventType.LINK_CLICKED).count() == 2


def test_a_click_goes_to_the_automations(visitor, link, contact, monkeypatch):
    handed = []
    monkeypatch.setattr(
        "automations.services.runs_create_for_events",
        lambda *, account, events, events_are_new: handed.extend(events) or [],
    )
    visitor.get(path_of(tracking_url_for_link(link=link, contact=contact)))
    drain_clicks()
    assert [e.type for e in handed] == [EventType.LINK_CLICKED]


@pytest.mark.parametrize(
    "damage",
    [
        lambda ref, other: ref.replace(ref.split(":")[0], str(other.pk)),  # forged
        lambda ref, other: ref[:-4],  # cut short by a mail client
        lambda ref, other: "garbage",
        lambda ref, other: ref + "\x00",
        lambda ref, other: "9" * 40 + ":" + ref.split(":")[1],
    ],
    ids=["forged", "cut", "garbage", "nul", "huge-id"],
)
def test_a_damaged_contact_reference_still_reaches_the_destination_unrecorded(
    visitor, link, contact, damage
):
    other = ContactFactory(account=contact.account)
    response = visitor.get(
        f"/t/{link.token}/", {"c": damage(contact_ref_make(contact=contact), other)}
    )
    assert response.status_code == 302
    assert response["Location"] == link.url
    assert "no-store" in response["Cache-Control"]
    drain_clicks()
    assert not Event.objects.exists()


def test_a_reference_to_another_accounts_contact_records_nothing(visitor, link, other_account):
    stranger = ContactFactory(account=other_account)
    response = visitor.get(path_of(tracking_url_for_link(link=link, contact=stranger)))
    assert (response.status_code, response["Location"]) == (302, link.url)
    assert drain_clicks() == 1  # taken, and dropped: the contact is not the link's account's
    assert not Event.objects.exists() and not RawClick.objects.exists()


@pytest.mark.parametrize("sendout", [77, "77", "not-a-sendout", None])
def test_a_click_after_the_campaigns_email_was_sent_names_its_sendout(
    visitor, link, contact, sendout
):
    """The last send's sendout is read from a JSON key through a subquery: SQLite hands
    back an integer there, PostgreSQL JSON; both must give the sendout's id, and a value
    that is no id (an email_sent event posted through the API) must not break the click."""
    Event.objects.create(
        account=contact.account,
        campaign=link.campaign,
        contact=contact,
        type=EventType.EMAIL_SENT,
        occurred_at=timezone.now() - timedelta(hours=2),
        data={} if sendout is None else {"sendout": sendout},
    )
    response = visitor.get(path_of(tracking_url_for_link(link=link, contact=contact)))
    assert response.status_code == 302
    drain_clicks()
    click = Event.objects.get(type=EventType.LINK_CLICKED)
    expected = 77 if sendout in (77, "77") else None
    assert click.data.get("sendout") == expected


def test_an_unknown_token_is_404(visitor, contact):
    response = visitor.get(f"/t/no-such-token/?c={contact_ref_make(contact=contact)}")
    assert response.status_code == 404
    assert not Event.objects.exists()


def test_a_link_without_a_contact_still_works_but_records_nothing(visitor, link):
    response = visitor.get(f"/t/{link.token}/")
    assert response.status_code == 302 and response["Location"] == link.url
    assert not Event.objects.exists()


def test_a_head_request_from_a_link_scanner_is_recorded_as_a_filtered_click(visitor, link, contact):
    response = visitor.head(path_of(tracking_url_for_link(link=link, contact=contact)))
    assert response.status_code == 302
    drain_clicks()
    event = Event.objects.get()
    assert event.data["filtered"] == "head"


def test_a_click_takes_one_query_once_its_link_is_cached(
    visitor, link, contact, django_assert_num_queries
):
    url = path_of(tracking_url_for_link(link=link, contact=contact))
    with django_assert_num_queries(2):  # the link, the raw click
        visitor.get(url)
    with django_assert_num_queries(1):  # the raw click: the link comes from the cache
        visitor.get(url)


def test_a_changed_or_deleted_link_is_not_served_from_the_cache(visitor, link, contact):
    url = path_of(tracking_url_for_link(link=link, contact=contact))
    assert visitor.get(url)["Location"] == link.url
    link.url = "https://www.example.com/moved"
    link.save()
    assert visitor.get(url)["Location"] == "https://www.example.com/moved"
    link.delete()
    assert visitor.get(url).status_code == 404
    drain_clicks()  # the two clicks on the link before it was deleted name no link now
    assert not Event.objects.exists() and not RawClick.objects.exists()


def test_the_drain_takes_a_batch_of_clicks_in_the_same_queries_whatever_its_size(
    visitor, campaign, link, account
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    other = TrackedLinkFactory(campaign=campaign)

    def click_and_drain(readers) -> int:
        for reader in readers:
            visitor.get(path_of(tracking_url_for_link(link=link, contact=reader)))
            visitor.get(path_of(tracking_url_for_link(link=other, contact=reader)))
        with CaptureQueriesContext(connection) as queries:
            assert drain_clicks() == 2 * len(readers)
        return len(queries)

    few = click_and_drain([ContactFactory(account=account) for _ in range(2)])
    readers = [ContactFactory(account=account) for _ in range(20)]
    assert click_and_drain(readers) == few
    assert Event.objects.filter(type=EventType.LINK_CLICKED).count() == 44
    assert {(r.pk, lnk.pk) for r in readers for lnk in (link, other)} <= set(
        Event.objects.values_list("contact", "link")
    )
    readers[0].refresh_from_db()
    assert readers[0].engaged_count == 2


def test_a_click_whose_wake_up_was_never_published_is_taken_by_the_sweep(
    visitor, link, contact, django_capture_on_commit_callbacks
):
    """As if the broker was down or the process died between the insert and the publish:
    the click is stored, and the sweep (beat's run of the same drain) takes it."""
    from django.conf import settings

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = visitor.get(path_of(tracking_url_for_link(link=link, contact=contact)))
    assert response.status_code == 302 and len(callbacks) == 1  # the wake-up, not run
    schedule = settings.CELERY_BEAT_SCHEDULE["campaigns-drain-clicks"]
    assert schedule["task"] == drain_clicks.name
    drain_clicks()
    assert Event.objects.get().contact == contact


def test_a_burst_of_clicks_wakes_the_drain_once(
    visitor, link, contact, django_capture_on_commit_callbacks
):
    from emhub.celery import app
    from tests.automations.conftest import purge_broker, queued_messages

    purge_broker(app)
    url = path_of(tracking_url_for_link(link=link, contact=contact))
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            assert visitor.get(url).status_code == 302
    assert queued_messages(app) == [("campaigns.drain_clicks", [])]
    assert drain_clicks() == 3
    # The drain that started lets the next click wake the next drain.
    with django_capture_on_commit_callbacks(execute=True):
        visitor.get(url)
    assert queued_messages(app) == [("campaigns.drain_clicks", [])]
    assert drain_clicks() == 1 and Event.objects.count() == 4


@override_settings(CAMPAIGNS_CLICK_DRAIN_DELAY_SECONDS=4)
def test_a_burst_asks_the_cache_once_and_a_click_past_half_the_window_asks_again(
    visitor, link, contact, django_capture_on_commit_callbacks, monkeypatch
):
    """The process remembers the wake-up for half the window: a burst's later clicks make
    no cache round trip. A drain that ran elsewhere meanwhile (the key gone) leaves those
    clicks to the sweep, and the first click past the half window publishes the next."""
    import time

    from django.core.cache import cache

    from campaigns.clicks import WAKE_KEY
    from emhub.celery import app
    from tests.automations.conftest import purge_broker, queued_messages

    adds = []
    real_add = cache.add
    monkeypatch.setattr(cache, "add", lambda *a, **k: adds.append(a[0]) or real_add(*a, **k))
    purge_broker(app)
    url = path_of(tracking_url_for_link(link=link, contact=contact))
    for _ in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            assert visitor.get(url).status_code == 302
    assert adds == [WAKE_KEY] and queued_messages(app) == [("campaigns.drain_clicks", [])]

    purge_broker(app)
    cache.delete(WAKE_KEY)  # a drain started in a worker
    with django_capture_on_commit_callbacks(execute=True):
        visitor.get(url)
    assert queued_messages(app) == [] and RawClick.objects.count() == 6
    time.sleep(2.1)
    with django_capture_on_commit_callbacks(execute=True):
        visitor.get(url)
    assert adds == [WAKE_KEY] * 2
    assert queued_messages(app) == [("campaigns.drain_clicks", [])]
    assert drain_clicks() == 7 and Event.objects.count() == 7


def test_a_drain_that_fails_leaves_its_clicks_for_the_next(visitor, link, contact, monkeypatch):
    visitor.get(path_of(tracking_url_for_link(link=link, contact=contact)))

    def failing(**kwargs):
        raise RuntimeError("the worker died")

    with monkeypatch.context() as patched:
        patched.setattr("automations.services.runs_create_for_events", failing)
        with pytest.raises(RuntimeError):
            drain_clicks()
    assert RawClick.objects.count() == 1 and not Event.objects.exists()

    assert drain_clicks() == 1
    assert Event.objects.count() == 1 and not RawClick.objects.exists()


@pytest.mark.postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_drains_at_once_take_different_clicks_and_each_click_once(visitor, link, account):
    """The first drain's batch waits inside its transaction (another connection holds its
    contact's row); a second drain skips the rows the first claimed and takes the others."""
    import threading

    from django.db import connection, connections, transaction

    from campaigns.clicks import raw_clicks_drain

    held, other = ContactFactory(account=account), ContactFactory(account=account)
    for reader in (held, held, other, other):
        visitor.get(path_of(tracking_url_for_link(link=link, contact=reader)))
    hold, release, taken = threading.Event(), threading.Event(), {}

    def holder():
        try:
            with transaction.atomic():
                list(Contact.objects.select_for_update().filter(pk=held.pk))
                hold.set()
                release.wait(30)
        finally:
            connections.close_all()

    def first_drain():
        try:
            taken["first"] = raw_clicks_drain(batch_size=2)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=holder), threading.Thread(target=first_drain)]
    threads[0].start()
    assert hold.wait(10)
    threads[1].start()
    with connection.cursor() as cursor:  # until the first drain waits for the held row
        for _ in range(200):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                break
            threading.Event().wait(0.05)
        else:
            raise AssertionError("the first drain never waited")
    taken["second"] = raw_clicks_drain()
    release.set()
    for thread in threads:
        thread.join(30)

    assert taken == {"first": 2, "second": 2}
    assert sorted(Event.objects.values_list("contact", flat=True)) == sorted(
        [held.pk, held.pk, other.pk, other.pk]
    )
    assert not RawClick.objects.exists()


# --- open pixel ---------------------------------------------------------------------------


def test_the_open_pixel_records_an_open_and_answers_a_gif(visitor, campaign, contact):
    response = visitor.get(path_of(open_pixel_url(campaign=campaign, contact=contact)))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content == PIXEL_GIF and PIXEL_GIF.startswith(b"GIF89a")
    assert "no-cache" in response["Cache-Control"] and "no-store" in response["Cache-Control"]
    drain_clicks()
    event = Event.objects.get()
    assert (event.type, event.contact, event.campaign, event.source) == (
        EventType.EMAIL_OPENED,
        contact,
        campaign,
        Event.Source.PIXEL,
    )


def test_a_forged_pixel_records_nothing(visitor, campaign, contact, other_account):
    url = path_of(open_pixel_url(campaign=campaign, contact=contact))
    assert visitor.get(url.replace(f"/o/{campaign.pk}.", "/o/999999.")).status_code == 404
    assert visitor.get("/o/garbage.gif").status_code == 404
    # A genuine reference whose campaign is of another account than the contact's.
    theirs = CampaignFactory(account=other_account)
    assert visitor.get(path_of(open_pixel_url(campaign=theirs, contact=contact))).status_code == 404
    drain_clicks()
    assert not Event.objects.exists() and not RawClick.objects.exists()


# --- forms --------------------------------------------------------------------------------


@pytest.fixture
def form(campaign):
    return FormFactory(campaign=campaign, name="Demo request")


def test_a_form_posted_with_an_email_records_the_fields_and_creates_the_contact(visitor, form):
    response = visitor.post(
        path_of(form_action_url(form=form)),
        {"email": "New.Person@Example.com", "first_name": "Nina", "interest": ["CRM", "Email"]},
    )

    assert response.status_code == 200
    assert b"Thank you" in response.content
    contact = Contact.objects.get()
    assert (contact.email, contact.first_name, contact.account_id) == (
        "new.person@example.com",
        "Nina",
        form.account_id,
    )
    event = Event.objects.get()
    assert (event.type, event.form, event.campaign_id, event.source) == (
        EventType.FORM_SUBMITTED,
        form,
        form.campaign_id,
        Event.Source.FORM,
    )
    assert event.data["fields"] == {
        "email": "New.Person@Example.com",
        "first_name": "Nina",
        "interest": ["CRM", "Email"],
    }


def test_a_form_posted_with_a_signed_reference_is_the_referenced_contact(visitor, form, contact):
    response = visitor.post(
        f"/f/{form.token}/", {"c": contact_ref_make(contact=contact), "company_name": "Acme AB"}
    )
    assert response.status_code == 200
    event = Event.objects.get()
    assert event.contact == contact and "c" not in event.data["fields"]
    # The details sent stay on the submission; the contact keeps its own.
    assert event.data["fields"] == {"company_name": "Acme AB"}
    company = contact.company_name
    contact.refresh_from_db()
    assert contact.company_name == company


def test_a_form_goes_to_its_success_page(visitor, campaign):
    form = FormFactory(campaign=campaign, success_url="https://www.example.com/thanks")
    response = visitor.post(f"/f/{form.token}/", {"email": "a@example.com"})
    assert response.status_code == 303 and response["Location"] == "https://www.example.com/thanks"


def test_a_form_can_answer_in_json(visitor, form):
    response = visitor.post(
        f"/f/{form.token}/", {"email": "a@example.com"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 201
    assert response.json() == {"event": Event.objects.get().pk}


def test_a_form_without_a_valid_email_or_reference_records_nothing(visitor, form, contact):
    assert visitor.post(f"/f/{form.token}/", {"email": "nope"}).status_code == 400
    assert visitor.post(f"/f/{form.token}/", {"first_name": "Nina"}).status_code == 400
    assert visitor.post(f"/f/{form.token}/", {"c": "forged:ref"}).status_code == 400
    response = visitor.post(f"/f/{form.token}/", {"email": "nope"}, HTTP_ACCEPT="application/json")
    assert response.json() == {"email": ["Enter a valid email address."]}
    assert not Event.objects.exists() and not Contact.objects.exclude(pk=contact.pk).exists()


def test_a_public_form_cannot_change_an_existing_contacts_details(visitor, form):
    linked = ContactFactory(
        account=form.account,
        email="ceo@example.com",
        first_name="Clara",
        last_name="Olsen",
        phone="+47 1",
        company_name="Real AS",
        superoffice_person_id=55,
    )

    response = visitor.post(
        f"/f/{form.token}/",
        {
            "email": "CEO@example.com",
            "first_name": "Mallory",
            "last_name": "Hacker",
            "phone": "+1 666",
            "company_name": "Evil Inc",
        },
    )

    assert response.status_code == 200
    linked.refresh_from_db()
    assert (linked.first_name, linked.last_name, linked.phone, linked.company_name) == (
        "Clara",
        "Olsen",
        "+47 1",
        "Real AS",
    )
    assert linked.superoffice_person_id == 55
    # What was sent is kept on the submission, for a person to look at.
    event = Event.objects.get()
    assert event.contact == linked
    assert event.data["fields"]["first_name"] == "Mallory"
    assert event.data["fields"]["company_name"] == "Evil Inc"


def test_a_form_is_addressed_by_its_token_not_its_id(visitor, form):
    assert len(form.token) >= 24
    assert visitor.post(f"/f/{form.pk}/", {"email": "a@example.com"}).status_code == 404
    other = FormFactory(campaign=form.campaign)
    assert other.token != form.token
    assert not Event.objects.exists()


def test_an_unpublished_form_takes_no_submission(visitor, form):
    form.published = False
    form.save()

    response = visitor.post(f"/f/{form.token}/", {"email": "a@example.com"})

    assert response.status_code == 404
    assert not Event.objects.exists() and not Contact.objects.exists()


def test_a_bot_that_fills_in_the_honeypot_is_thanked_and_nothing_is_recorded(visitor, form):
    response = visitor.post(
        f"/f/{form.token}/",
        {"email": "bot@example.com", "first_name": "Bot", "emhub_website": "http://spam.example"},
    )

    assert response.status_code == 200
    assert b"Thank you" in response.content
    assert not Event.objects.exists() and not Contact.objects.exists()


def test_submissions_are_rate_limited_per_address(visitor, form, settings):
    settings.FORMS_SUBMISSIONS_RATE = "3/m"
    for n in range(3):
        response = visitor.post(
            f"/f/{form.token}/", {"email": f"p{n}@example.com"}, REMOTE_ADDR="203.0.113.9"
        )
        assert response.status_code == 200, n

    refused = visitor.post(
        f"/f/{form.token}/", {"email": "p4@example.com"}, REMOTE_ADDR="203.0.113.9"
    )
    other_form = FormFactory(campaign=form.campaign)
    also_refused = visitor.post(
        f"/f/{other_form.token}/", {"email": "p5@example.com"}, REMOTE_ADDR="203.0.113.9"
    )
    elsewhere = visitor.post(
        f"/f/{form.token}/", {"email": "p6@example.com"}, REMOTE_ADDR="198.51.100.3"
    )

    assert refused.status_code == 429 and also_refused.status_code == 429
    assert b"Too many forms were sent from your address" in refused.content
    assert elsewhere.status_code == 200
    assert Event.objects.count() == 4


def test_an_unknown_form_is_404_and_get_shows_the_page_without_recording(visitor, form):
    assert visitor.post("/f/no-such-form/", {"email": "a@example.com"}).status_code == 404
    assert visitor.get("/f/no-such-form/").status_code == 404
    assert visitor.get(f"/f/{form.token}/").status_code == 200
    assert visitor.put(f"/f/{form.token}/").status_code == 405
    assert visitor.put("/f/no-such-form/").status_code == 404
    assert not Event.objects.exists()
