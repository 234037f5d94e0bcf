"""Page forms: they parse and check input; the services write."""

from django import forms

from .models import Campaign, EventType, Form, TrackedLink


class CampaignForm(forms.Form):
    name = forms.CharField(label="Name", max_length=Campaign._meta.get_field("name").max_length)
    description = forms.CharField(
        label="Description",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the campaign is for; only people in the hub see it.",
    )

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the campaign a name.")
        return name


class CampaignEditForm(CampaignForm):
    is_archived = forms.BooleanField(
        label="Archived",
        required=False,
        help_text="Archived campaigns still record events; they move down the list.",
    )


class TrackedLinkForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=TrackedLink._meta.get_field("name").max_length,
        help_text="How the link shows in triggers and reports, for example 'Pricing page'.",
    )
    url = forms.URLField(
        label="Goes to",
        max_length=TrackedLink._meta.get_field("url").max_length,
        assume_scheme="https",
        help_text="Where a click takes the recipient, after the hub has recorded it.",
    )


class CampaignFormForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=Form._meta.get_field("name").max_length,
        help_text="For example 'Demo request'.",
    )
    success_url = forms.URLField(
        label="After sending, go to",
        required=False,
        max_length=Form._meta.get_field("success_url").max_length,
        assume_scheme="https",
        help_text="Your thank-you page. Left empty, the hub shows a short thank-you note.",
    )


class EventFilterForm(forms.Form):
    type = forms.ChoiceField(
        label="Type", required=False, choices=[("", "All types"), *EventType.choices]
    )


class ContactSearchForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200)
