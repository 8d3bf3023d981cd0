"""A kind whose fields no index can hold (a time of day, a duration): no DDL at all."""

import uuid

from django.db import migrations, models

import schemaless.django.models


class Migration(migrations.Migration):
    dependencies = [("shop", "0002_entry_rank")]

    operations = [
        migrations.CreateModel(
            name="Slot",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("version", schemaless.django.models.VersionField(default=0)),
                ("starts", models.TimeField()),
                ("lasts", models.DurationField(null=True)),
            ],
        ),
    ]
