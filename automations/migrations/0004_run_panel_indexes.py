from django.db import migrations, models

WAITING = models.Index(
    condition=models.Q(("status", "waiting_for_match")),
    fields=["account", "contact", "waiting_since"],
    name="run_waiting_idx",
)


def waiting_index_create(apps, schema_editor):
    """The waiting runs' index; on PostgreSQL covering the event too, so the Lead Report
    joins the waiting runs to their events from the index alone. SQLite has no covering
    indexes: there it is the declared one."""
    run = apps.get_model("automations", "Run")
    if schema_editor.connection.vendor == "postgresql":
        covering = models.Index(
            condition=WAITING.condition,
            fields=WAITING.fields,
            name=WAITING.name,
            include=["event"],
        )
        schema_editor.add_index(run, covering)
    else:
        schema_editor.add_index(run, WAITING)


def waiting_index_drop(apps, schema_editor):
    schema_editor.remove_index(apps.get_model("automations", "Run"), WAITING)


class Migration(migrations.Migration):
    dependencies = [
        ("automations", "0003_link_action_types"),
        ("campaigns", "0010_hosted_form_page"),
        ("emhub", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="run", index=WAITING)],
            database_operations=[migrations.RunPython(waiting_index_create, waiting_index_drop)],
        ),
        migrations.AddIndex(
            model_name="run",
            index=models.Index(
                condition=models.Q(("crm_object_id__isnull", False)),
                fields=["account", "crm_object_type", "crm_object_id"],
                name="run_crm_object_idx",
            ),
        ),
    ]
