from django.contrib import admin

from .models import Campaign, Contact, Event, Form, TrackedLink


class TrackedLinkInline(admin.TabularInline):
    model = TrackedLink
    extra = 0
    fields = ["name", "url", "token"]
    readonly_fields = ["token"]


class FormInline(admin.TabularInline):
    model = Form
    extra = 0
    fields = ["name", "success_url"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "created_at", "is_archived"]
    list_filter = ["account", "is_archived"]
    search_fields = ["name"]
    inlines = [TrackedLinkInline, FormInline]

    def save_formset(self, request, form, formset, change):
        # Links and forms belong to the campaign's account.
        for obj in formset.save(commit=False):
            obj.account_id = form.instance.account_id
            obj.save()
        for obj in formset.deleted_objects:
            obj.delete()


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = [
        "email",
        "first_name",
        "last_name",
        "company_name",
        "account",
        "superoffice_person_id",
    ]
    list_filter = ["account"]
    search_fields = ["email", "first_name", "last_name", "company_name"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(TrackedLink)
class TrackedLinkAdmin(admin.ModelAdmin):
    list_display = ["name", "campaign", "account", "url", "token"]
    list_filter = ["account"]
    search_fields = ["name", "url", "token"]
    list_select_related = ["campaign", "account"]
    readonly_fields = ["token"]


@admin.register(Form)
class FormAdmin(admin.ModelAdmin):
    list_display = ["name", "campaign", "account"]
    list_filter = ["account"]
    search_fields = ["name"]
    list_select_related = ["campaign", "account"]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = [
        "occurred_at",
        "type",
        "contact",
        "campaign",
        "source",
        "external_id",
        "account",
    ]
    list_filter = ["account", "type", "source"]
    search_fields = ["external_id", "contact__email"]
    list_select_related = ["contact", "campaign", "account"]
    raw_id_fields = ["contact", "campaign", "link", "form"]
    date_hierarchy = "occurred_at"
    # Events are facts the hub received; the admin reads them, it does not make them up.
    readonly_fields = [f.name for f in Event._meta.fields]

    def has_add_permission(self, request):
        return False
