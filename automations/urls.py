from django.urls import path

from . import link_views, views

app_name = "automations"

urlpatterns = [
    path(
        "campaigns/<int:campaign_id>/automations/",
        views.campaign_automations,
        name="campaign_automations",
    ),
    path(
        "campaigns/<int:campaign_id>/automations/new/",
        views.automation_create,
        name="automation_create",
    ),
    path(
        "campaigns/<int:campaign_id>/automations/runs/", views.campaign_runs, name="campaign_runs"
    ),
    path("automations/", views.run_list, name="run_list"),
    path("automations/<int:automation_id>/edit/", views.automation_edit, name="automation_edit"),
    path(
        "automations/<int:automation_id>/toggle/", views.automation_toggle, name="automation_toggle"
    ),
    path(
        "automations/<int:automation_id>/delete/", views.automation_delete, name="automation_delete"
    ),
    path("automations/<int:automation_id>/runs/", views.automation_runs, name="automation_runs"),
    path("automations/runs/<int:run_id>/", views.run_detail, name="run_detail"),
    path("automations/runs/<int:run_id>/retry/", views.run_retry, name="run_retry"),
    path("automations/runs/<int:run_id>/rematch/", views.run_rematch, name="run_rematch"),
    path("contacts/<int:contact_id>/runs/", views.contact_runs, name="contact_runs"),
    path("links/<int:link_id>/", link_views.link_detail, name="link_detail"),
    path("links/<int:link_id>/once/", link_views.link_once, name="link_once"),
    path(
        "links/<int:link_id>/actions/new/", link_views.link_action_create, name="link_action_create"
    ),
    path(
        "links/<int:link_id>/actions/<int:automation_id>/edit/",
        link_views.link_action_edit,
        name="link_action_edit",
    ),
    path(
        "links/<int:link_id>/actions/<int:automation_id>/delete/",
        link_views.link_action_delete,
        name="link_action_delete",
    ),
    path("queue/", views.queue, name="queue"),
    path("settings/automations/", views.automation_settings, name="settings"),
]
