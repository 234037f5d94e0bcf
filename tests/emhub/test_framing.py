import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_ordinary_pages_refuse_to_be_framed(marketer_client):
    response = marketer_client.get(reverse("emhub:home"))
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"


def test_the_sign_in_page_refuses_to_be_framed(client):
    response = client.get(reverse("emhub:login"))
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
