"""What the recipient's browser gets after a click: a redirect, or a text page the hub
serves. The page's rich text is sanitised when the marketer saves it, and again when it
is served (nh3 takes microseconds), so HTML that reached the row another way (the admin,
a data migration) is never served unsanitised.
"""

from __future__ import annotations

from dataclasses import dataclass

import nh3

from .models import LinkResponse, TrackedLink

# Rich text a marketer may use on a link's page: formatting, lists, links, images and
# simple tables. No scripts, styles, forms, frames or event handlers; links get
# rel="noopener noreferrer" so the opened page cannot reach back.
ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "strong",
    "b",
    "em",
    "i",
    "u",
    "s",
    "small",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "img",
    "span",
    "div",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "code",
    "pre",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto", "tel"}


def html_sanitize(html: str) -> str:
    """Rich text reduced to safe HTML (nh3, the Rust ammonia sanitiser)."""
    return nh3.clean(
        html or "",
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer",
    )


@dataclass(frozen=True)
class Response:
    kind: str
    url: str = ""
    title: str = ""
    html: str = ""


def response_for_link(*, link: TrackedLink) -> Response:
    if link.response_kind == LinkResponse.TEXT:
        return Response(
            kind=LinkResponse.TEXT,
            title=link.response_title or link.name,
            html=html_sanitize(link.response_html),
        )
    return Response(kind=LinkResponse.REDIRECT, url=link.response_url or link.url)


def tracked_link_response_set(
    *, link: TrackedLink, kind: str, url: str = "", title: str = "", html: str = ""
) -> TrackedLink:
    """Save what a click shows; the text is sanitised here, before it is stored."""
    if kind not in LinkResponse.values:
        raise ValueError(f"Unknown response kind {kind!r}")
    link.response_kind = kind
    link.response_url = (url or "").strip() if kind == LinkResponse.REDIRECT else ""
    link.response_title = (title or "").strip() if kind == LinkResponse.TEXT else ""
    link.response_html = html_sanitize(html) if kind == LinkResponse.TEXT else ""
    link.full_clean(exclude=["account", "campaign"])
    link.save(update_fields=["response_kind", "response_url", "response_title", "response_html"])
    return link
