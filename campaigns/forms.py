"""Page forms: they parse and check input; the services write."""

from django import forms
from django.utils import timezone

from . import merge_fields
from .models import (
    FORM_FIELDS,
    Campaign,
    Channel,
    EmailSender,
    EventType,
    Form,
    RecipientList,
    SendoutMessage,
    TrackedLink,
)


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
    published = forms.BooleanField(
        label="Published",
        required=False,
        help_text="Only a published form takes submissions; until then its address answers "
        "'not found'.",
    )


class EventFilterForm(forms.Form):
    type = forms.ChoiceField(
        label="Type", required=False, choices=[("", "All types"), *EventType.choices]
    )


class ContactSearchForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200)


# --- Imports, recipient lists, sendouts ---------------------------------------------------


class ImportForm(forms.Form):
    """`source` is "selection:<id>" or "project:<id>", from SuperOffice's lists."""

    source = forms.ChoiceField(label="Selection or project")
    only_emarketing = forms.BooleanField(
        label="Only persons with the e-marketing switch on",
        required=False,
        help_text="Persons whose “E-marketing” consent is active in SuperOffice (“No "
        "Mailings” is for direct mail and does not count here). Unticked, everyone in the "
        "selection or project is imported.",
    )

    def __init__(self, *args, selections=(), projects=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.names = {}
        groups = []
        for label, kind, items in (
            ("Selections", "selection", selections),
            ("Projects", "project", projects),
        ):
            options = []
            for item in items:
                value = f"{kind}:{item.id}"
                self.names[value] = item.name
                options.append((value, f"{item.name} (id {item.id})"))
            if options:
                groups.append((label, options))
        self.fields["source"].choices = [("", "Choose…"), *groups]

    def clean_source(self):
        value = self.cleaned_data["source"]
        kind, _, raw_id = value.partition(":")
        return {"source_type": kind, "source_id": int(raw_id), "source_name": self.names[value]}


class SourceSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=100)
    refresh = forms.BooleanField(required=False)


class RecipientListNameForm(forms.Form):
    name = forms.CharField(label="List name", max_length=200, required=False)


class SendoutForm(forms.Form):
    campaign = forms.ModelChoiceField(label="Campaign", queryset=Campaign.objects.none())
    recipient_list = forms.ModelChoiceField(label="Recipients", queryset=None)
    channel = forms.ChoiceField(label="Channel", choices=Channel.choices, initial=Channel.EMAIL)
    subject = forms.CharField(label="Subject", max_length=300, required=False)
    body = forms.CharField(
        label="Message",
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text="Email: HTML. Every link becomes one of the campaign's tracked links and "
        "the hub adds its open pixel; without {unsubscribe} in a link of yours, the hub adds "
        "an unsubscribe line at the end. SMS: plain text; its links are tracked too. "
        + merge_fields.fields_help(merge_fields.SENDOUT_FIELDS),
    )

    def __init__(self, *args, account, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaign"].queryset = Campaign.objects.filter(account=account)
        self.fields["recipient_list"].queryset = RecipientList.objects.filter(account=account)


class SendoutConfirmForm(forms.Form):
    when = forms.ChoiceField(
        label="When",
        choices=[("now", "Send now"), ("later", "Send at a time")],
        initial="now",
        # static/js/app.js shows "Send at" only while "Send at a time" is chosen.
        widget=forms.RadioSelect(attrs={"data-controls": "scheduled-at"}),
    )
    scheduled_at = forms.DateTimeField(
        label="Send at",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        help_text="In the hub's time zone. The legal basis is checked again at that time.",
    )

    def clean(self):
        data = super().clean()
        if data.get("when") == "later":
            when = data.get("scheduled_at")
            if when is None:
                self.add_error("scheduled_at", "Give the time to send at.")
            elif when <= timezone.now():
                self.add_error("scheduled_at", "Choose a time in the future.")
        return data


class MessageFilterForm(forms.Form):
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "All"), *SendoutMessage.Status.choices]
    )


class EmailSenderForm(forms.Form):
    from_name = forms.CharField(
        label="Sender name",
        max_length=EmailSender._meta.get_field("from_name").max_length,
        help_text="What recipients see as who the e-mail is from, for example 'Acme Events'.",
    )
    from_email = forms.EmailField(
        label="Sender address",
        max_length=254,
        help_text="The From address. Your mail server must be allowed to send for its domain "
        "(SPF and DKIM), or recipients' mail servers file the e-mail as spam.",
    )
    reply_to = forms.EmailField(
        label="Replies go to",
        max_length=254,
        required=False,
        help_text="Left empty, replies go to the sender address.",
    )


class PreviewRecipientForm(forms.Form):
    q = forms.CharField(label="Find a recipient", required=False, max_length=200)
    contact = forms.IntegerField(required=False, widget=forms.HiddenInput)


class HostedFormForm(forms.Form):
    """What the page the hub serves for a form asks and says."""

    intro = forms.CharField(
        label="Text above the fields",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    field_names = forms.MultipleChoiceField(
        label="Fields",
        required=False,
        choices=[(name, label) for name, label in FORM_FIELDS.items() if name != "email"],
        widget=forms.CheckboxSelectMultiple,
        help_text="The e-mail address is always asked for: it names the contact.",
    )
    consent_emarketing = forms.BooleanField(
        label="Ask for consent to marketing e-mail (“Marketing sendouts”)", required=False
    )
    consent_emarketing_text = forms.CharField(
        label="Text beside that box",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What the visitor agrees to, for example 'Yes, send me news and offers by "
        "e-mail. I can unsubscribe at any time.' It is kept with the consent.",
    )
    consent_store = forms.BooleanField(
        label="Ask for consent to store and process their details (“Store and process”)",
        required=False,
    )
    consent_store_text = forms.CharField(
        label="Text beside that box",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    button_label = forms.CharField(
        label="Button", required=False, max_length=60, help_text="Left empty: 'Send'."
    )
    thanks_message = forms.CharField(
        label="Thank-you message",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Shown after sending, unless the form goes to your own page (above).",
    )

    PURPOSES = (("EMARKETING", "consent_emarketing"), ("STORE", "consent_store"))

    def __init__(self, *args, consent_legal_basis: str = "61A", **kwargs):
        super().__init__(*args, **kwargs)
        # The account's legal-base key for consent, which a ticked box records.
        self.consent_legal_basis = consent_legal_basis

    @classmethod
    def initial_from(cls, form: Form) -> dict:
        data = {
            "intro": form.intro,
            "field_names": [n for n in form.field_names if n != "email"],
            "button_label": form.button_label,
            "thanks_message": form.thanks_message,
        }
        for purpose, name in cls.PURPOSES:
            box = form.consent_boxes.get(purpose)
            data[name] = box is not None
            data[f"{name}_text"] = box["text"] if box else ""
        return data

    def clean(self):
        data = super().clean()
        boxes = {}
        for purpose, name in self.PURPOSES:
            if not data.get(name):
                continue
            text = (data.get(f"{name}_text") or "").strip()
            if not text:
                self.add_error(f"{name}_text", "Write what the visitor agrees to.")
                continue
            boxes[purpose] = {"text": text, "legal_basis": self.consent_legal_basis}
        data["consent_boxes"] = boxes
        return data

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        return {
            "intro": d["intro"],
            "field_names": ["email", *d["field_names"]],
            "consent_boxes": d["consent_boxes"],
            "button_label": d["button_label"],
            "thanks_message": d["thanks_message"],
        }
