"""The hub's URLs and `/static-redirect/`: a redirect that touches neither the database
nor the broker, the floor bench/clicks.py measures `/t/` against."""

from django.http import HttpResponseRedirect
from django.urls import include, path


def static_redirect(request):
    return HttpResponseRedirect("https://example.com/signup")


urlpatterns = [
    path("static-redirect/", static_redirect),
    path("", include("emhub.urls")),
]
