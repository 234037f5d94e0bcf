from django.urls import path

from . import company_views, views

app_name = "leads"

panel = "panels/<str:panel_key>/"

# Pages SuperOffice frames: authorised by the panel sign-in (a verified SuperOffice user of
# the account the panel key names), not by a hub session, so the hub-session isolation
# sweep does not apply; tests/leads/test_panel_security.py covers them.
PANEL_URL_NAMES = [
    "panel_sign_in",
    "panel_sign_in_done",
    "panel_sign_out",
    "queue",
    "queue_bulk_match",
    "queue_bulk_match_progress",
    "queue_candidates",
    "queue_match",
    "queue_match_preview",
    "queue_match_undo",
    "queue_match_release",
    "queue_dismiss",
    "lead_report",
    "lead_approve",
    "lead_candidates",
    "lead_merge",
    "lead_reject",
    "lead_reject_undo",
    "company_search",
    "company_pick",
    "timeline",
    "event_details",
]

urlpatterns = [
    path("settings/panels/", views.panel_settings, name="panel_settings"),
    path(panel + "sign-in/", views.panel_sign_in, name="panel_sign_in"),
    path(panel + "sign-in/done/", views.panel_sign_in_done, name="panel_sign_in_done"),
    path(panel + "sign-out/", views.panel_sign_out, name="panel_sign_out"),
    path(
        "settings/panels/sessions/<int:panel_session_id>/revoke/",
        views.panel_session_revoke,
        name="panel_session_revoke",
    ),
    path(
        "settings/panels/sessions/revoke-all/",
        views.panel_sessions_revoke_all,
        name="panel_sessions_revoke_all",
    ),
    path(panel + "queue/", views.queue, name="queue"),
    path(panel + "queue/bulk-match/", views.queue_bulk_match, name="queue_bulk_match"),
    path(
        panel + "queue/bulk-match/<int:bulk_match_id>/",
        views.queue_bulk_match_progress,
        name="queue_bulk_match_progress",
    ),
    path(
        panel + "queue/<int:contact_id>/candidates/",
        views.queue_candidates,
        name="queue_candidates",
    ),
    path(panel + "queue/<int:contact_id>/match/", views.queue_match, name="queue_match"),
    path(
        panel + "queue/<int:contact_id>/match/preview/",
        views.queue_match_preview,
        name="queue_match_preview",
    ),
    path(panel + "queue/<int:contact_id>/undo/", views.queue_match_undo, name="queue_match_undo"),
    path(
        panel + "queue/<int:contact_id>/release/",
        views.queue_match_release,
        name="queue_match_release",
    ),
    path(panel + "queue/<int:contact_id>/dismiss/", views.queue_dismiss, name="queue_dismiss"),
    path(panel + "leads/", views.lead_report, name="lead_report"),
    path(panel + "leads/<int:contact_id>/approve/", views.lead_approve, name="lead_approve"),
    path(
        panel + "leads/<int:contact_id>/candidates/",
        views.lead_candidates,
        name="lead_candidates",
    ),
    path(panel + "leads/<int:contact_id>/merge/", views.lead_merge, name="lead_merge"),
    path(panel + "leads/<int:contact_id>/reject/", views.lead_reject, name="lead_reject"),
    path(
        panel + "leads/<int:contact_id>/reject/undo/",
        views.lead_reject_undo,
        name="lead_reject_undo",
    ),
    path(panel + "companies/", company_views.company_search, name="company_search"),
    path(panel + "companies/pick/", company_views.company_pick, name="company_pick"),
    path(panel + "timeline/", views.timeline, name="timeline"),
    path(panel + "event/", views.event_details, name="event_details"),
]
