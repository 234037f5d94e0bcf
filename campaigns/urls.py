from django.urls import path

from . import api, outreach_views, views

app_name = "campaigns"

urlpatterns = [
    path("campaigns/", views.campaign_list, name="campaign_list"),
    path("campaigns/new/", views.campaign_create, name="campaign_create"),
    path("campaigns/<int:campaign_id>/", views.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:campaign_id>/edit/", views.campaign_edit, name="campaign_edit"),
    path("campaigns/<int:campaign_id>/links/", views.campaign_links, name="campaign_links"),
    path("campaigns/<int:campaign_id>/links/<int:link_id>/", views.link_edit, name="link_edit"),
    path("campaigns/<int:campaign_id>/forms/", views.campaign_forms, name="campaign_forms"),
    path("campaigns/<int:campaign_id>/forms/<int:form_id>/", views.form_detail, name="form_detail"),
    path("campaigns/<int:campaign_id>/events/", views.campaign_events, name="campaign_events"),
    path("events/<int:event_id>/", views.event_detail, name="event_detail"),
    path("contacts/", views.contact_list, name="contact_list"),
    path("contacts/<int:contact_id>/", views.contact_detail, name="contact_detail"),
    path("imports/", outreach_views.import_list, name="import_list"),
    path("imports/new/", outreach_views.import_create, name="import_create"),
    path("imports/<int:import_id>/", outreach_views.import_detail, name="import_detail"),
    path(
        "imports/<int:import_id>/progress/",
        outreach_views.import_progress,
        name="import_progress",
    ),
    path("imports/<int:import_id>/again/", outreach_views.import_again, name="import_again"),
    path(
        "imports/<int:import_id>/save-list/",
        outreach_views.import_save_list,
        name="import_save_list",
    ),
    path("lists/", outreach_views.list_list, name="list_list"),
    path("lists/<int:list_id>/", outreach_views.list_detail, name="list_detail"),
    path("sendouts/", outreach_views.sendout_list, name="sendout_list"),
    path("sendouts/new/", outreach_views.sendout_create, name="sendout_create"),
    path("sendouts/sender/", outreach_views.email_sender, name="email_sender"),
    path("sendouts/<int:sendout_id>/", outreach_views.sendout_detail, name="sendout_detail"),
    path("sendouts/<int:sendout_id>/live/", outreach_views.sendout_live, name="sendout_live"),
    path("sendouts/<int:sendout_id>/edit/", outreach_views.sendout_edit, name="sendout_edit"),
    path(
        "sendouts/<int:sendout_id>/preview/",
        outreach_views.sendout_preview,
        name="sendout_preview",
    ),
    path(
        "sendouts/<int:sendout_id>/preview/body/",
        outreach_views.sendout_preview_body,
        name="sendout_preview_body",
    ),
    path(
        "sendouts/<int:sendout_id>/test/",
        outreach_views.sendout_test_send,
        name="sendout_test_send",
    ),
    path(
        "sendouts/<int:sendout_id>/checklist/",
        outreach_views.sendout_checklist,
        name="sendout_checklist",
    ),
    path(
        "sendouts/<int:sendout_id>/cancel/",
        outreach_views.sendout_cancel,
        name="sendout_cancel",
    ),
    path("api/v1/events/", api.EventIngestApi.as_view(), name="events_api"),
    # Public: recipients of a campaign reach these from emails and landing pages.
    path("t/<str:token>/", views.link_click, name="link_click"),
    path("o/<str:ref>.gif", views.open_pixel, name="open_pixel"),
    path("f/<str:form_token>/", views.form_submit, name="form_submit"),
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
]

# Reached by anyone on the internet, authorised by a signed reference or the form's
# publication rather than by a signed-in account (see tests/test_account_isolation.py).
PUBLIC_URL_NAMES = ("link_click", "open_pixel", "form_submit", "unsubscribe")
