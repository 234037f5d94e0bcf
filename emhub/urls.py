from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import api, views

account_urlpatterns = [
    path("", views.home, name="home"),
    path("sign-in/", views.SignInView.as_view(), name="login"),
    path("sign-out/", views.SignOutView.as_view(), name="logout"),
    path("accounts/pick/", views.account_pick, name="account_pick"),
    path("settings/api-keys/", views.api_key_list, name="api_keys"),
    path(
        "settings/api-keys/<int:key_id>/revoke/", views.api_key_revoke_view, name="api_key_revoke"
    ),
    path("settings/sign-in-lockouts/", views.sign_in_lockouts, name="sign_in_lockouts"),
    path("api/v1/api-keys/", api.ApiKeyListApi.as_view(), name="api_key_list_api"),
    path("api/v1/api-keys/<int:key_id>/", api.ApiKeyDetailApi.as_view(), name="api_key_detail_api"),
    path("api/v1/whoami/", api.WhoAmIApi.as_view(), name="whoami_api"),
]

urlpatterns = [
    path("", include((account_urlpatterns, "emhub"))),
    path("settings/superoffice/", include("crm.urls")),
    path("", include("campaigns.urls")),
    path("", include("automations.urls")),
    path("", include("consent.urls")),
    path("", include("leads.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    # Swagger UI with its start script served as a file of its own (the CSP runs no inline
    # script). Redoc is not offered: it needs inline styles.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api_schema"), name="api_docs"),
    path("admin/", admin.site.urls),
]
