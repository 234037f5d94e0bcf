from django.urls import path

from . import api, views

app_name = "consent"

# SuperOffice's webhook deliveries: authorised by their signature, not by a session, so not
# account-scoped by design (tests/consent/test_push.py covers the forgeries).
PUBLIC_URL_NAMES = {"superoffice_webhook"}

urlpatterns = [
    path("consent/", views.sync_history, name="sync_history"),
    path("consent/run/", views.sync_run, name="sync_run"),
    path("consent/live/", views.sync_live, name="sync_live"),
    path("consent/cycles/<int:cycle_id>/", views.sync_cycle_detail, name="sync_cycle_detail"),
    path("consent/contacts/<int:contact_id>/", views.contact_consents, name="contact_consents"),
    path("api/v1/consents/", api.ConsentApi.as_view(), name="consents_api"),
    path("consent/webhook/register/", views.webhook_register, name="webhook_register"),
    path("consent/webhook/check/", views.webhook_check, name="webhook_check"),
    # SuperOffice's deliveries: one address per account, named by a random token.
    path("hooks/superoffice/<str:token>/", views.superoffice_webhook, name="superoffice_webhook"),
]
