import django.db.models.deletion
from django.db import migrations, models


def fill_accounts(apps, schema_editor):
    ContactImportRow = apps.get_model("campaigns", "ContactImportRow")
    RecipientListMember = apps.get_model("campaigns", "RecipientListMember")
    ContactImport = apps.get_model("campaigns", "ContactImport")
    RecipientList = apps.get_model("campaigns", "RecipientList")
    for imp in ContactImport.objects.all().only("pk", "account_id"):
        ContactImportRow.objects.filter(contact_import=imp).update(account_id=imp.account_id)
    for rl in RecipientList.objects.all().only("pk", "account_id"):
        RecipientListMember.objects.filter(recipient_list=rl).update(account_id=rl.account_id)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0004_link_response"),
        ("emhub", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="contactimportrow",
            name="account",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="emhub.account",
            ),
        ),
        migrations.AddField(
            model_name="recipientlistmember",
            name="account",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="emhub.account",
            ),
        ),
        migrations.RunPython(fill_accounts, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="contactimportrow",
            name="account",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="emhub.account",
            ),
        ),
        migrations.AlterField(
            model_name="recipientlistmember",
            name="account",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="emhub.account",
            ),
        ),
    ]
