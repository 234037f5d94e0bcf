"""No marketer or rep page names SuperOffice's operations, the hub's exception classes or its keys.

Every HTML page a test renders (through Django's test client, or in Chromium during the
browser tests) is read as a person sees it (text, titles, placeholders) and checked
against ``FORBIDDEN``; a test after which a marketer page showed one of them fails.
The admin's SuperOffice pages (connection, call log) keep the technical detail.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

FORBIDDEN = {
    "a SuperOffice operation": re.compile(
        r"\b(?:Get|Save|Create(?:Default)?|Find|Delete)[A-Z][A-Za-z]*(?:Entity|Restrictions\w*)\b"
    ),
    "an agent name": re.compile(r"\b[A-Z][A-Za-z]*Agent\.|\bAgent\."),
    "an error class": re.compile(r"\b[A-Za-z]*CrmError\b|\b[A-Z][A-Za-z]+(?:Exception)\b"),
    "a run key": re.compile(r"\brun[ _]key\b", re.IGNORECASE),
    "the word SOAP": re.compile(r"\bSOAP\b"),
    "a legal-basis key": re.compile(r"\b61[A-F]\b"),
    "a consent purpose key": re.compile(r"\b(?:EMARKETING|STORE)\b"),
}

# Pages for admins and APIs are not marketer pages here; the panels are the reps' pages
# and are checked like the marketers'.
EXCLUDED_PREFIXES = ("/settings/", "/admin/", "/api/")
_SHOWN_ATTRIBUTES = {"title", "placeholder", "aria-label", "alt"}


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "template"):
            self._hidden += 1
        for name, value in attrs:
            if name in _SHOWN_ATTRIBUTES and value:
                self.parts.append(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style", "template") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _VisibleText()
    parser.feed(html)
    return " ".join(parser.parts)


def is_marketer_page(url: str) -> bool:
    path = urlsplit(url).path or "/"
    return not path.startswith(EXCLUDED_PREFIXES)


def internal_names_in(html: str) -> list[str]:
    """What of ``FORBIDDEN`` a page shows, as "<what>: <the text found>"."""
    text = visible_text(html)
    found = []
    for what, pattern in FORBIDDEN.items():
        for match in pattern.finditer(text):
            found.append(f"{what}: {match.group(0)!r}")
    return found


# Filled by both the test client and the browser; emptied per test.
SEEN_PAGES: list[tuple[str, str]] = []


def page_seen(url: str, html: str) -> None:
    if is_marketer_page(url):
        SEEN_PAGES.append((url, html))


@pytest.fixture(autouse=True)
def no_internal_names_on_marketer_pages(request, monkeypatch):
    from django.test.client import Client

    original = Client.request

    def request_and_remember(self, **environ):
        response = original(self, **environ)
        content_type = response.get("Content-Type", "") if hasattr(response, "get") else ""
        if content_type.startswith("text/html") and not getattr(response, "streaming", False):
            page_seen(environ.get("PATH_INFO", "/"), response.content.decode("utf-8", "replace"))
        return response

    monkeypatch.setattr(Client, "request", request_and_remember)
    SEEN_PAGES.clear()
    yield
    pages, SEEN_PAGES[:] = list(SEEN_PAGES), []
    if request.node.get_closest_marker("internal_names_expected"):
        return
    problems = []
    for url, html in pages:
        for found in internal_names_in(html):
            problems.append(f"{url}: {found}")
    if problems:
        pytest.fail("A marketer page shows internal names:\n" + "\n".join(sorted(set(problems))))
