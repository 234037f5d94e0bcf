"""Recording changes: the append-only history and its current state."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.template import Context, Template
from django.utils import timezone

from consent.models import WITHDRAWN, ConsentChange, CurrentConsent, Origin, Purpose
from consent.selectors import (
    consent_history_for_contact,
    consent_next_cycle_at,
    consent_state_for_contact,
)
from consent.services import consent_record

from .factories import ContactFactory


@pytest.fixture
def contact(account):
    return ContactFactory(account=account, email="ola@example.com")


def test_every_change_is_kept_and_the_newest_is_the_current_state(account, contact):
    start = timezone.now() - timedelta(days=3)
    for offset, basis in enumerate(["61A", WITHDRAWN, "61F"]):
        consent_record(
            account=account,
            contact=contact,
            purpose=Purpose.STORE,
            legal_basis=basis,
            changed_at=start + timedelta(days=offset),
        )
    states = {s.purpose: s for s in consent_state_for_contact(contact=contact)}
    assert states[Purpose.STORE].current.legal_basis == "61F"
    assert states[Purpose.STORE].is_granted
    assert states[Purpose.EMARKETING].current is None
    assert [c.legal_basis for c in consent_history_for_contact(contact=contact)] == [
        "61F",
        WITHDRAWN,
        "61A",
    ]


def test_a_change_older_than_the_current_one_is_history_only(account, contact):
    now = timezone.now()
    consent_record(
        account=account,
        contact=contact,
        purpose=Purpose.EMARKETING,
        legal_basis=WITHDRAWN,
        changed_at=now,
    )
    consent_record(
        account=account,
        contact=contact,
        purpose=Purpose.EMARKETING,
        legal_basis="61A",
        changed_at=now - timedelta(minutes=1),
    )
    assert CurrentConsent.objects.get(contact=contact).legal_basis == WITHDRAWN
    assert ConsentChange.objects.filter(contact=contact).count() == 2


def test_a_withdrawal_at_the_same_time_as_a_grant_wins_whichever_arrives_first(account):
    when = timezone.now()
    for order in (["61A", WITHDRAWN], [WITHDRAWN, "61A"]):
        contact = ContactFactory(account=account)
        for basis in order:
            consent_record(
                account=account,
                contact=contact,
                purpose=Purpose.STORE,
                legal_basis=basis,
                changed_at=when,
            )
        assert CurrentConsent.objects.get(contact=contact).legal_basis == WITHDRAWN


def test_a_contact_of_another_account_cannot_be_written(account, other_account):
    stranger = ContactFactory(account=other_account)
    with pytest.raises(ValidationError) as error:
        consent_record(account=account, contact=stranger, purpose=Purpose.STORE, legal_basis="61A")
    assert "contact" in error.value.message_dict
    assert not ConsentChange.objects.exists()


def test_bad_values_are_refused_with_field_messages(account, contact):
    with pytest.raises(ValidationError) as error:
        consent_record(
            account=account,
            contact=contact,
            purpose="SPAM",
            legal_basis=" ",
            origin="mars",
            changed_at=timezone.now().replace(tzinfo=None),
        )
    assert set(error.value.message_dict) == {"purpose", "legal_basis", "origin", "changed_at"}


def test_the_contact_panel_shows_each_purpose_and_the_latest_changes(account, contact):
    consent_record(
        account=account,
        contact=contact,
        purpose=Purpose.EMARKETING,
        legal_basis=WITHDRAWN,
        origin=Origin.FORM,
        reason="Unsubscribed in the footer link.",
    )
    html = Template("{% load consent_tags %}{% contact_consents contact %}").render(
        Context({"contact": contact})
    )
    assert "Store and process" in html and "No legal basis recorded" in html
    assert "Marketing sendouts" in html and "withdrawn" in html
    assert "Unsubscribed in the footer link." in html
    assert f"/consent/contacts/{contact.pk}/" in html


def test_the_next_cycle_is_at_the_next_half_hour():
    at = timezone.now().replace(hour=10, minute=12, second=5)
    assert consent_next_cycle_at(now=at) == at.replace(minute=30, second=0, microsecond=0)
    at = at.replace(minute=47)
    assert consent_next_cycle_at(now=at) == at.replace(hour=11, minute=0, second=0, microsecond=0)


def test_a_bulk_merge_keeps_every_row_and_moves_the_current_state_by_the_same_rule(
    account, other_account
):
    from consent.services import BulkChange, consent_bulk_record

    now = timezone.now()
    held = ContactFactory(account=account)
    consent_record(
        account=account, contact=held, purpose=Purpose.STORE, legal_basis=WITHDRAWN, changed_at=now
    )
    fresh = ContactFactory(account=account)
    stranger = ContactFactory(account=other_account)
    changes = [
        # Older than the withdrawal held: history only.
        BulkChange(held.pk, Purpose.STORE, "61A", now - timedelta(hours=1)),
        # A new contact: three changes, a grant and a withdrawal tie at the newest time.
        BulkChange(fresh.pk, Purpose.EMARKETING, "61A", now - timedelta(days=1)),
        BulkChange(fresh.pk, Purpose.EMARKETING, "61f", now),
        BulkChange(fresh.pk, Purpose.EMARKETING, WITHDRAWN, now),
        # Refused: another account's contact, an unknown purpose, a naive time.
        BulkChange(stranger.pk, Purpose.STORE, "61A", now),
        BulkChange(fresh.pk, "SPAM", "61A", now),
        BulkChange(fresh.pk, Purpose.STORE, "61A", now.replace(tzinfo=None)),
    ]

    result = consent_bulk_record(account=account, changes=changes, origin=Origin.IMPORT)

    assert (result.recorded, result.refused, result.current_moved) == (4, 3, 1)
    assert CurrentConsent.objects.get(contact=held).legal_basis == WITHDRAWN
    assert CurrentConsent.objects.get(contact=fresh).legal_basis == WITHDRAWN
    assert ConsentChange.objects.filter(contact=fresh, origin=Origin.IMPORT).count() == 3
    assert not ConsentChange.objects.filter(account=other_account).exists()


def test_the_send_checklist_learns_which_contacts_may_receive_marketing(account, other_account):
    from consent.selectors import consent_granted_contact_ids

    granted, withdrawn, silent = (ContactFactory(account=account) for _ in range(3))
    stranger = ContactFactory(account=other_account)
    consent_record(account=account, contact=granted, purpose=Purpose.EMARKETING, legal_basis="61A")
    consent_record(
        account=account, contact=withdrawn, purpose=Purpose.EMARKETING, legal_basis=WITHDRAWN
    )
    consent_record(account=account, contact=silent, purpose=Purpose.STORE, legal_basis="61A")
    consent_record(
        account=other_account, contact=stranger, purpose=Purpose.EMARKETING, legal_basis="61A"
    )

    allowed = consent_granted_contact_ids(
        account=account, contact_ids=[granted.pk, withdrawn.pk, silent.pk, stranger.pk]
    )

    assert allowed == {granted.pk}
