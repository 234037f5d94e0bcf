"""The automation form: type, trigger, and settings picked from SuperOffice's lists."""

from __future__ import annotations

from django import forms

from campaigns import merge_fields
from campaigns.models import EventType, Form, TrackedLink

from .actions import DESCRIPTION_FIELDS
from .models import Automation, AutomationType

T = AutomationType

# Which settings each type uses; the first tuple is required, the second optional.
TYPE_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    T.CREATE_SALE: (
        ("source_id", "rating_id", "description"),
        ("owner_id", "extra_selection_id", "extra_project_id"),
    ),
    T.CREATE_TASK: (("activity_type_id", "description"), ("owner_id",)),
    T.NOTIFY_SALES_REP: (("activity_type_id", "description"), ("owner_id",)),
    T.SET_INTEREST: (("interest_ids",), ()),
    T.UNSET_INTEREST: (("interest_ids",), ()),
    T.ADD_TO_PROJECT: (("project_id",), ()),
    T.REMOVE_FROM_PROJECT: (("project_id",), ()),
    T.ADD_TO_SELECTION: (("selection_id",), ()),
    T.REMOVE_FROM_SELECTION: (("selection_id",), ()),
    # Link actions (automations.link_actions).
    T.SET_FIELD: (("field_key",), ("field_value",)),
    T.FOLLOW_UP: (
        ("follow_up_kind", "activity_type_id"),
        ("description", "project_id", "owner_id", "duration_minutes", "due_in_days"),
    ),
    T.CREATE_REQUEST: (
        ("request_title", "request_assign"),
        ("priority_id", "category_id", "owner_id"),
    ),
    T.RUN_SCRIPT: (("script_id",), ()),
}
SETTING_FIELDS = (
    "source_id",
    "rating_id",
    "activity_type_id",
    "description",
    "interest_ids",
    "project_id",
    "selection_id",
    "owner_id",
    "extra_selection_id",
    "extra_project_id",
    "field_key",
    "field_value",
    "follow_up_kind",
    "duration_minutes",
    "due_in_days",
    "request_title",
    "request_assign",
    "priority_id",
    "category_id",
    "script_id",
)
INT_SETTINGS = {
    "source_id",
    "rating_id",
    "activity_type_id",
    "project_id",
    "selection_id",
    "owner_id",
    "extra_selection_id",
    "extra_project_id",
    "priority_id",
    "category_id",
    "script_id",
}
FIELD_VALUE_HELP = (
    "Text as is; a number for number and list fields (the list item's id); "
    "a date as YYYY-MM-DD; 1 or 0 for a checkbox."
)

DESCRIPTION_HELP = merge_fields.fields_help(DESCRIPTION_FIELDS)
# Texts filled in per run: the marketer learns of a misspelt field on save, not from a
# sales rep reading "{frist_name}" in SuperOffice.
TEMPLATE_SETTINGS = ("description", "request_title")


def _types_using(field: str) -> str:
    return " ".join(t for t, (req, opt) in TYPE_FIELDS.items() if field in req + opt)


class AutomationForm(forms.Form):
    name = forms.CharField(max_length=200)
    # Only the types this form knows the settings of (TYPE_FIELDS) can be picked here.
    type = forms.ChoiceField(
        label="What to do in SuperOffice",
        choices=[(v, label) for v, label in AutomationType.choices if v in TYPE_FIELDS],
    )
    trigger_event_type = forms.ChoiceField(label="When the contact", choices=EventType.choices)
    trigger_link = forms.ModelChoiceField(
        label="Only this link",
        queryset=TrackedLink.objects.none(),
        required=False,
        empty_label="Any link",
    )
    trigger_form = forms.ModelChoiceField(
        label="Only this form",
        queryset=Form.objects.none(),
        required=False,
        empty_label="Any form",
    )
    source_id = forms.TypedChoiceField(label="Source", coerce=int, required=False)
    rating_id = forms.TypedChoiceField(label="Rating", coerce=int, required=False)
    activity_type_id = forms.TypedChoiceField(label="Activity type", coerce=int, required=False)
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=2000,
        help_text=DESCRIPTION_HELP,
    )
    interest_ids = forms.TypedMultipleChoiceField(
        label="Interests",
        coerce=int,
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )
    project_id = forms.TypedChoiceField(label="Project", coerce=int, required=False)
    selection_id = forms.TypedChoiceField(label="Selection", coerce=int, required=False)
    owner_id = forms.TypedChoiceField(
        label="Owner",
        coerce=int,
        required=False,
        empty_value=None,
        help_text="Leave empty to give it to the owner of the person's company.",
    )
    extra_selection_id = forms.TypedChoiceField(
        label="Also add the person to selection", coerce=int, required=False, empty_value=None
    )
    extra_project_id = forms.TypedChoiceField(
        label="Also add the person to project", coerce=int, required=False, empty_value=None
    )
    field_key = forms.ChoiceField(label="Person field", required=False)
    field_value = forms.CharField(
        label="Value", required=False, max_length=2000, help_text=FIELD_VALUE_HELP
    )
    follow_up_kind = forms.ChoiceField(
        label="Follow-up",
        required=False,
        choices=[
            ("", "Choose…"),
            ("meeting", "Meeting (in the diary)"),
            ("task", "Task (in the checklist)"),
        ],
    )
    duration_minutes = forms.TypedChoiceField(
        label="Meeting length",
        coerce=int,
        required=False,
        empty_value=None,
        choices=[
            ("", "30 minutes"),
            (15, "15 minutes"),
            (45, "45 minutes"),
            (60, "1 hour"),
            (90, "1½ hours"),
            (120, "2 hours"),
            (240, "Half a day"),
        ],
    )
    due_in_days = forms.TypedChoiceField(
        label="When",
        coerce=int,
        required=False,
        empty_value=None,
        choices=[
            ("", "Within the hour after the click"),
            (1, "Tomorrow"),
            (2, "In 2 days"),
            (3, "In 3 days"),
            (7, "In a week"),
            (14, "In 2 weeks"),
            (30, "In a month"),
        ],
    )
    request_title = forms.CharField(
        label="Request title", required=False, max_length=180, help_text=DESCRIPTION_HELP
    )
    request_assign = forms.ChoiceField(
        label="Assign the request",
        required=False,
        choices=[
            ("", "Choose…"),
            ("unassigned", "Leave it unassigned"),
            ("category", "By the category's rules"),
            ("owner", "To the owner below (empty: the company's owner)"),
        ],
    )
    priority_id = forms.TypedChoiceField(
        label="Priority", coerce=int, required=False, empty_value=None
    )
    category_id = forms.TypedChoiceField(
        label="Category", coerce=int, required=False, empty_value=None
    )
    script_id = forms.TypedChoiceField(label="CRMScript", coerce=int, required=False)
    once_per_contact = forms.BooleanField(
        required=False,
        label="Only once per contact",
        help_text="Otherwise it runs every time a contact triggers it.",
    )
    is_enabled = forms.BooleanField(required=False, initial=True, label="Enabled")

    def __init__(self, *args, campaign, lists: dict[str, list[tuple[int, str]]], **kwargs):
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        self.fields["trigger_link"].queryset = TrackedLink.objects.filter(
            account_id=campaign.account_id, campaign=campaign
        )
        self.fields["trigger_form"].queryset = Form.objects.filter(
            account_id=campaign.account_id, campaign=campaign
        )
        pick = "Choose…"
        self.fields["source_id"].choices = [("", pick), *lists.get("sources", [])]
        self.fields["rating_id"].choices = [("", pick), *lists.get("ratings", [])]
        self.fields["activity_type_id"].choices = [("", pick), *lists.get("activity_types", [])]
        self.fields["interest_ids"].choices = list(lists.get("interests", []))
        self.fields["project_id"].choices = [("", pick), *lists.get("projects", [])]
        self.fields["selection_id"].choices = [("", pick), *lists.get("selections", [])]
        self.fields["owner_id"].choices = [
            ("", "The company's owner"),
            *lists.get("associates", []),
        ]
        self.fields["extra_selection_id"].choices = [("", "None"), *lists.get("selections", [])]
        self.fields["extra_project_id"].choices = [("", "None"), *lists.get("projects", [])]
        self.field_types = dict(lists.get("person_field_types", []))
        self.fields["field_key"].choices = [("", pick), *lists.get("person_fields", [])]
        self.fields["priority_id"].choices = [("", "None"), *lists.get("ticket_priorities", [])]
        self.fields["category_id"].choices = [("", "None"), *lists.get("ticket_categories", [])]
        self.fields["script_id"].choices = [("", pick), *lists.get("scripts", [])]
        # The page's script shows a settings field only for the types that use it.
        for name in SETTING_FIELDS:
            self.fields[name].widget.attrs["data-types"] = _types_using(name)
        self.fields["trigger_link"].widget.attrs["data-events"] = "link_clicked sms_link_clicked"
        self.fields["trigger_form"].widget.attrs["data-events"] = "form_submitted"

    @classmethod
    def initial_from(cls, automation: Automation) -> dict:
        data = {
            "name": automation.name,
            "type": automation.type,
            "trigger_event_type": automation.trigger_event_type,
            "trigger_link": automation.trigger_link_id,
            "trigger_form": automation.trigger_form_id,
            "once_per_contact": automation.once_per_contact,
            "is_enabled": automation.is_enabled,
        }
        for name in SETTING_FIELDS:
            if name in automation.settings:
                data[name] = automation.settings[name]
        return data

    def clean(self):
        data = super().clean()
        type_ = data.get("type")
        if not type_:
            return data
        required, optional = TYPE_FIELDS[type_]
        for name in required:
            value = data.get(name)
            if value in (None, "", []):
                self.add_error(
                    name,
                    "Choose one."
                    if name != "description"
                    else "Write what the sales rep should read.",
                )
        event_type = data.get("trigger_event_type")
        if data.get("trigger_link") and event_type not in ("link_clicked", "sms_link_clicked"):
            self.add_error("trigger_link", "A link can only narrow a 'link clicked' trigger.")
        if data.get("trigger_form") and event_type != "form_submitted":
            self.add_error("trigger_form", "A form can only narrow a 'form submitted' trigger.")
        settings: dict = {}
        for name in required + optional:
            value = data.get(name)
            if value in (None, "", []):
                continue
            settings[name] = value
        for name in TEMPLATE_SETTINGS:
            unknown = merge_fields.fields_unknown(settings.get(name, ""), known=DESCRIPTION_FIELDS)
            if unknown:
                self.add_error(
                    name, merge_fields.unknown_fields_message(unknown, known=DESCRIPTION_FIELDS)
                )
        if type_ == T.SET_FIELD and data.get("field_key"):
            self._clean_field_value(data, settings)
        data["settings"] = settings
        return data

    def _clean_field_value(self, data: dict, settings: dict) -> None:
        """The value must fit the field's type; the type is kept with the settings."""
        from .link_actions import SETTABLE_FIELD_TYPES, FieldValueInvalid, field_value_encode

        field_type = self.field_types.get(data["field_key"], "")
        if field_type not in SETTABLE_FIELD_TYPES:
            self.add_error("field_key", "This field's type cannot be set from a link.")
            return
        try:
            field_value_encode(field_type=field_type, value=data.get("field_value"))
        except FieldValueInvalid as exc:
            self.add_error("field_value", str(exc))
            return
        settings["field_type"] = field_type
        settings.setdefault("field_value", "")

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        return {
            "name": d["name"],
            "type": d["type"],
            "trigger_event_type": d["trigger_event_type"],
            "trigger_link": d.get("trigger_link"),
            "trigger_form": d.get("trigger_form"),
            "settings": d["settings"],
            "once_per_contact": d["once_per_contact"],
            "is_enabled": d["is_enabled"],
        }


class RunFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False,
        choices=[("", "All statuses")],
    )

    def __init__(self, *args, **kwargs):
        from .models import RunStatus

        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", "All statuses"), *RunStatus.choices]


class AutomationSettingsForm(forms.Form):
    auto_match_single_email = forms.BooleanField(
        required=False,
        label="Match contacts automatically when exactly one SuperOffice person has their email",
        help_text="Off: every contact without a SuperOffice person waits in the queue for a "
        "sales rep. On: the hub matches it when the email is unambiguous.",
    )


class RunRematchForm(forms.Form):
    """Match a failed run's contact to another SuperOffice person (looked up first)."""

    person_id = forms.IntegerField(
        label="SuperOffice person number", min_value=1, max_value=2**31 - 1
    )
    confirmed = forms.BooleanField(label="This is the same person", required=False)
