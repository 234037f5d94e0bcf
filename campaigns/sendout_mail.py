"""A sendout's message as one recipient gets it: merge fields filled in, links tracked,
an unsubscribe link and the List-Unsubscribe headers, the open pixel.

The same function builds the message that is sent, the test message the marketer
sends to their own address and the preview on the page, so what the marketer checks is
what the recipient gets. A test or a preview records nothing: its links are followed
without a contact, it has no open pixel, and its unsubscribe link unsubscribes nobody.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from email.utils import formataddr
from enum import StrEnum

from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.utils.html import strip_tags

from . import merge_fields
from .models import Channel, Contact, EmailSender, Sendout, TrackedLink
from .services import link_public_url, open_pixel_url, tracking_url_for_link
from .unsubscribe import unsubscribe_url

_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_BARE_URL = re.compile(r"""https?://[^\s<>"']+""")
_ANCHOR = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*(["'])(.*?)\1[^>]*>(.*?)</a>""", re.I | re.S)
_BREAKS = re.compile(r"[\r\n]+")


class Mode(StrEnum):
    SEND = "send"
    TEST = "test"
    PREVIEW = "preview"


@dataclass(frozen=True)
class Sender:
    name: str
    email: str
    reply_to: str = ""

    @property
    def from_header(self) -> str:
        return formataddr((self.name, self.email))


@dataclass(frozen=True)
class MailParts:
    sender: Sender | None
    to: str
    subject: str
    html: str
    text: str
    headers: dict[str, str] = field(default_factory=dict)
    unsubscribe_url: str = ""


def sender_of(sendout: Sendout) -> Sender | None:
    """The sendout's sender once confirmed, until then the account's current one."""
    if sendout.from_email:
        return Sender(sendout.from_name, sendout.from_email, sendout.reply_to)
    account_sender = EmailSender.objects.filter(account_id=sendout.account_id).first()
    if account_sender is None:
        return None
    return Sender(account_sender.from_name, account_sender.from_email, account_sender.reply_to)


# --- Links ---------------------------------------------------------------------------------


def urls_in(*, body: str, channel: str) -> list[str]:
    """The web addresses the message links to, each once, in order."""
    if channel == Channel.EMAIL:
        found = [html.unescape(m.group(3)).strip() for m in _HREF.finditer(body)]
    else:
        found = [m.group(0).rstrip(".,;:!?)") for m in _BARE_URL.finditer(body)]
    seen: dict[str, None] = {}
    for url in found:
        if url.lower().startswith(("http://", "https://")):
            seen.setdefault(url, None)
    return list(seen)


def links_by_url(*, sendout: Sendout) -> dict[str, TrackedLink]:
    """The campaign's tracked links by their destination and by their tracking address."""
    links = {
        link.url: link
        for link in TrackedLink.objects.filter(
            account=sendout.account_id, campaign=sendout.campaign_id
        )
    }
    links.update({link_public_url(link=link): link for link in list(links.values())})
    return links


def _swap_links(*, body: str, channel: str, swap) -> str:
    """Every link whose address `swap` knows replaced by what it returns."""
    if channel == Channel.EMAIL:

        def swap_href(match: re.Match) -> str:
            url = swap(html.unescape(match.group(3)).strip())
            if url is None:
                return match.group(0)
            return f"{match.group(1)}{match.group(2)}{html.escape(url)}{match.group(2)}"

        return _HREF.sub(swap_href, body)

    def swap_bare(match: re.Match) -> str:
        raw = match.group(0)
        url = raw.rstrip(".,;:!?)")
        new = swap(url)
        return raw if new is None else new + raw[len(url) :]

    return _BARE_URL.sub(swap_bare, body)


# --- The parts of an e-mail -------------------------------------------------------------


def _with_pixel(*, body: str, pixel_url: str) -> str:
    pixel = f'<img src="{html.escape(pixel_url)}" width="1" height="1" alt="" style="border:0">'
    return _before_body_end(body, pixel)


def _before_body_end(body: str, addition: str) -> str:
    index = body.lower().rfind("</body>")
    return body[:index] + addition + body[index:] if index >= 0 else body + addition


def _unsubscribe_footer(*, url: str, sender: Sender | None) -> str:
    who = html.escape(sender.name) if sender and sender.name else "us"
    return (
        '<p style="margin-top:24px;font-size:12px;color:#666666">'
        f"You receive this e-mail from {who}. "
        f'<a href="{html.escape(url)}" style="color:#666666">Unsubscribe</a></p>'
    )


def plain_text(body: str) -> str:
    """The text part of an e-mail: links kept as "text (url)", tags dropped."""
    text = _ANCHOR.sub(lambda m: f"{strip_tags(m.group(3))} ({html.unescape(m.group(2))})", body)
    text = re.sub(r"<(br|/p|/div|/h\d|/li)\b[^>]*>", "\n", text, flags=re.I)
    return html.unescape(strip_tags(text)).strip()


def _facts(contact: Contact, unsubscribe: str) -> dict[str, str]:
    return {**merge_fields.contact_facts(contact), merge_fields.UNSUBSCRIBE_FIELD: unsubscribe}


def mail_parts(
    *,
    sendout: Sendout,
    contact: Contact,
    links: dict[str, TrackedLink],
    mode: Mode = Mode.SEND,
    sender: Sender | None = None,
    to: str = "",
) -> MailParts:
    """The message `contact` gets from the sendout (an SMS: its text in `text`)."""
    test = mode != Mode.SEND
    unsubscribe = unsubscribe_url(sendout=sendout, contact=contact, test=test)

    def tracked(url: str) -> str | None:
        link = links.get(url) or links.get(url.split("?", 1)[0])
        if link is None:
            return None
        # A test's or a preview's click is followed, not recorded as the contact's.
        return (
            link_public_url(link=link)
            if test
            else tracking_url_for_link(link=link, contact=contact)
        )

    facts = _facts(contact, unsubscribe)
    body = _swap_links(body=sendout.body, channel=sendout.channel, swap=tracked)
    if sendout.channel == Channel.SMS:
        text = merge_fields.render(body, facts=facts)
        return MailParts(
            sender=None,
            to=to or contact.mobile or contact.phone,
            subject="",
            html="",
            text=text,
            unsubscribe_url=unsubscribe,
        )

    sender = sender or sender_of(sendout)
    uses_link = any(
        use.name == merge_fields.UNSUBSCRIBE_FIELD for use in merge_fields.fields_used(body)
    )
    body = merge_fields.render(body, facts=facts, escape=html.escape)
    if not uses_link:
        # Every marketing e-mail carries a way out, where the marketer put none.
        body = _before_body_end(body, _unsubscribe_footer(url=unsubscribe, sender=sender))
    text = plain_text(body)
    if mode == Mode.SEND:
        body = _with_pixel(
            body=body,
            pixel_url=open_pixel_url(campaign=sendout.campaign, contact=contact, sendout=sendout),
        )
    subject_facts = {name: _BREAKS.sub(" ", value or "") for name, value in facts.items()}
    subject = merge_fields.render(sendout.subject, facts=subject_facts)
    if mode == Mode.TEST:
        subject = f"[Test] {subject}"
    headers = {
        # RFC 2369 and RFC 8058: the mail program offers an unsubscribe button that POSTs
        # List-Unsubscribe=One-Click to this address.
        "List-Unsubscribe": f"<{unsubscribe}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "X-Emhub-Sendout": str(sendout.pk),
    }
    return MailParts(
        sender=sender,
        to=to or contact.email,
        subject=subject,
        html=body,
        text=text,
        headers=headers,
        unsubscribe_url=unsubscribe,
    )


def email_message(parts: MailParts, *, connection=None) -> EmailMultiAlternatives:
    if parts.sender is None:
        raise ValidationError("Set the sender's name and address before sending e-mail.")
    message = EmailMultiAlternatives(
        subject=parts.subject,
        body=parts.text,
        from_email=parts.sender.from_header,
        to=[parts.to],
        reply_to=[parts.sender.reply_to] if parts.sender.reply_to else None,
        connection=connection,
        headers=parts.headers,
    )
    message.attach_alternative(parts.html, "text/html")
    return message
