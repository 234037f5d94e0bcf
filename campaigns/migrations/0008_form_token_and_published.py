import secrets

from django.db import migrations, models

import campaigns.models


def tokens_for_existing_forms(apps, schema_editor):
    """Each form gets its own token; forms that existed were taking submissions, so they
    stay published (at their new address)."""
    Form = apps.get_model("campaigns", "Form")
    for form in Form.objects.all().only("pk"):
        Form.objects.filter(pk=form.pk).update(token=secrets.token_urlsafe(18), published=True)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0007_contact_engagement_backfill"),
    ]

    operations = [
        migrations.AddField(
            model_name="form",
            name="token",
            field=models.CharField(max_length=32, null=True),
        ),
        migrations.AddField(
            model_name="form",
            name="published",
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(tokens_for_existing_forms, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="form",
            name="token",
            field=models.CharField(
                default=campaigns.models.new_form_token, max_length=32, unique=True
            ),
        ),
    ]
