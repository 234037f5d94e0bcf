"""Navigation links that appear only once the page they point to exists."""

from django import template
from django.urls import NoReverseMatch, reverse

register = template.Library()


@register.inclusion_tag("_partials/nav_link.html", takes_context=True)
def nav_link(context, url_name: str, label: str, section: str = ""):
    try:
        url = reverse(url_name)
    except NoReverseMatch:
        return {"url": None}
    request = context.get("request")
    path = request.path if request else ""
    # A section may name several path prefixes, separated by spaces.
    active = path == url or any(path.startswith(prefix) for prefix in section.split())
    return {"url": url, "label": label, "active": active}
