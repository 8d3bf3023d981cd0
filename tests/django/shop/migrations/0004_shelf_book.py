"""Shelf and Book: nullable foreign keys two levels deep, for select_related."""

import uuid

import django.db.models.deletion
from django.db import migrations, models

import schemaless.django.models


def _id() -> tuple[str, models.UUIDField]:
    return (
        "id",
        models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False),
    )


class Migration(migrations.Migration):
    dependencies = [("shop", "0003_slot")]

    operations = [
        migrations.CreateModel(
            name="Shelf",
            fields=[
                _id(),
                ("version", schemaless.django.models.VersionField(default=0)),
                ("label", models.CharField(max_length=40)),
                (
                    "room",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        to="shop.slot",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="Book",
            fields=[
                _id(),
                ("version", schemaless.django.models.VersionField(default=0)),
                ("title", models.CharField(max_length=100)),
                (
                    "shelf",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        to="shop.shelf",
                    ),
                ),
            ],
            options={
                "indexes": [schemaless.django.models.Index(fields=["title"], name="book_title")],
            },
        ),
    ]
