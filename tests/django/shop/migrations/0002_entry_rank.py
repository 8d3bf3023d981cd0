"""An index added to a kind that holds entities already: backfilled online by migrate."""

from django.db import migrations

import schemaless.django.models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddIndex(
            model_name="entry",
            index=schemaless.django.models.Index(fields=["rank"], name="entry_rank"),
        ),
    ]
