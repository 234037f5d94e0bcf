from django.urls import path

from . import views

app_name = "crm"

urlpatterns = [
    path("", views.connection_settings, name="connection"),
    path("test/", views.connection_test_view, name="connection_test"),
    path("calls/", views.call_list, name="call_list"),
]
