"""Unsubscribing from a sendout's e-mail: the signed token in the link and the
`List-Unsubscribe` header, and the withdrawal it records.

The token names the sendout and the contact and is signed with the hub's secret key
(django.core.signing, HMAC-SHA256), so nobody can make one for another contact, nor
guess one. Opening the link (GET) only shows a page with a button: mail scanners
follow every link in a message, and a GET must not unsubscribe anyone. The button,
or a mail client's one-click unsubscribe (RFC 8058: a POST of
`List-Unsubscribe=One-Click` to the header's address), records an EMARKETING
withdrawal in the consent history at once: the next send excludes the contact, the
contact's messages still waiting in other sendouts are dropped, and consent_record
queues the withdrawal for SuperOffice (consent.push; the sync cycle is the backstop).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from .models import Contact, EmailSender, Sendout, SendoutMessage
from .services import TrackingRefInvalid, _public_url

UNSUBSCRIBE_SALT = "campaigns.unsubscribe"
# A test message (to the marketer) carries a token that unsubscribes nobody.
TEST_MARK = "test"


@dataclass(frozen=True)
class UnsubscribeTarget:
    sendout: Sendout
    contact: Contact
    test: bool

    @property
    def sender_name(self) -> str:
        """Whose e-mail the recipient leaves: the sendout's sender, else the account's."""
        if self.sendout.from_name:
            return self.sendout.from_name
        sender = EmailSender.objects.filter(account_id=self.sendout.account_id).first()
        return sender.from_name if sender else self.sendout.account.name


@dataclass(frozen=True)
class UnsubscribeResult:
    target: UnsubscribeTarget
    # The contact had withdrawn already: nothing new was recorded.
    already: bool


def unsubscribe_token_make(*, sendout: Sendout, contact: Contact, test: bool = False) -> str:
    value = f"{sendout.pk}.{contact.pk}" + (f".{TEST_MARK}" if test else "")
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign(value)


def unsubscribe_url(*, sendout: Sendout, contact: Contact, test: bool = False) -> str:
    """The absolute address of the recipient's unsubscribe page (and one-click target)."""
    token = unsubscribe_token_make(sendout=sendout, contact=contact, test=test)
    return _public_url(reverse("campaigns:unsubscribe", kwargs={"token": token}))


def unsubscribe_target(*, token: str) -> UnsubscribeTarget:
    """The sendout and contact a token names; TrackingRefInvalid when it is forged,
    damaged, or names rows that are gone."""
    try:
        value = signing.Signer(salt=UNSUBSCRIBE_SALT).unsign(token[:200])
    except signing.BadSignature as exc:
        raise TrackingRefInvalid(str(exc)) from exc
    parts = value.split(".")
    test = len(parts) == 3 and parts[2] == TEST_MARK
    if len(parts) not in (2, 3) or (len(parts) == 3 and not test):
        raise TrackingRefInvalid("Not an unsubscribe token")
    try:
        sendout_id, contact_id = int(parts[0]), int(parts[1])
        sendout = Sendout.objects.select_related("account").get(pk=sendout_id)
        contact = Contact.objects.get(pk=contact_id, account_id=sendout.account_id)
    except (ValueError, Sendout.DoesNotExist, Contact.DoesNotExist) as exc:
        raise TrackingRefInvalid(str(exc)) from exc
    return UnsubscribeTarget(sendout=sendout, contact=contact, test=test)


def contact_is_unsubscribed(*, contact: Contact) -> bool:
    from consent.models import CurrentConsent, Purpose
    from consent.rules import WITHDRAWN

    return CurrentConsent.objects.filter(
        contact=contact, purpose=Purpose.EMARKETING, legal_basis=WITHDRAWN
    ).exists()


def unsubscribe_record(*, target: UnsubscribeTarget, one_click: bool) -> UnsubscribeResult:
    """Withdraw the contact's EMARKETING consent, once: a second click records nothing.
    A test message's token records nothing either."""
    from consent.models import Origin, Purpose
    from consent.rules import WITHDRAWN
    from consent.services import consent_record

    if target.test:
        return UnsubscribeResult(target=target, already=False)
    sendout, contact = target.sendout, target.contact
    now = timezone.now()
    with transaction.atomic():
        if contact_is_unsubscribed(contact=contact):
            return UnsubscribeResult(target=target, already=True)
        how = "the mail program's unsubscribe button" if one_click else "the unsubscribe link"
        consent_record(
            account=sendout.account,
            contact=contact,
            purpose=Purpose.EMARKETING,
            legal_basis=WITHDRAWN,
            changed_at=now,
            origin=Origin.UNSUBSCRIBE,
            reason=f"Unsubscribed with {how} in the e-mail “{sendout}” (sendout {sendout.pk}).",
        )
        SendoutMessage.objects.filter(
            sendout=sendout, contact=contact, unsubscribed_at__isnull=True
        ).update(unsubscribed_at=now)
        # Messages of other sendouts still waiting for this contact are not sent; one a
        # worker holds already (status sending) goes out, as the mail server has it.
        SendoutMessage.objects.filter(
            account_id=sendout.account_id, contact=contact, status=SendoutMessage.Status.QUEUED
        ).update(
            status=SendoutMessage.Status.EXCLUDED,
            excluded_reason=SendoutMessage.Exclusion.NO_LEGAL_BASIS,
        )
    return UnsubscribeResult(target=target, already=False)
