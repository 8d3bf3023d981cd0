"""System checks: wrong settings and wrong models are reported by `manage.py check`."""

from __future__ import annotations

import io

from django.conf import settings
from django.core import checks
from django.core.management import call_command
from django.test.utils import override_settings

from schemaless.django import models as sl
from schemaless.django.checks import check_shared


def ids(messages: list[checks.CheckMessage]) -> list[str]:
    return sorted(str(m.id) for m in messages)


def schemaless_checks() -> list[checks.CheckMessage]:
    return checks.run_checks(tags=["schemaless"])


def test_the_test_project_passes_every_check() -> None:
    assert schemaless_checks() == []
    call_command("check", stdout=io.StringIO())


def test_an_alias_missing_from_databases_is_an_error() -> None:
    with override_settings(SCHEMALESS={"DATABASES": ["default", "nope"]}):
        assert ids(schemaless_checks()) == ["schemaless.E002"]


def test_malformed_settings_and_engines_are_errors() -> None:
    with override_settings(SCHEMALESS={"DATABASES": "default"}):
        assert ids(schemaless_checks()) == ["schemaless.E001"]
    with override_settings(SCHEMALESS={"INDEXING": "later"}):
        assert ids(schemaless_checks()) == ["schemaless.E001"]
    settings.DATABASES["pg"] = {"ENGINE": "django.db.backends.postgresql", "NAME": "x"}
    try:
        with override_settings(SCHEMALESS={"DATABASES": ["pg"]}):
            assert ids(schemaless_checks()) == ["schemaless.E003"]
    finally:
        del settings.DATABASES["pg"]


def test_an_index_on_a_missing_or_unindexable_field_is_an_error() -> None:
    class Broken(sl.Model):
        amount = sl.DecimalField(max_digits=5, decimal_places=2)
        name = sl.TextField()
        title = sl.CharField(max_length=40)

        class Meta:
            app_label = "broken"
            ordering = ["nope"]
            indexes = [
                sl.Index(fields=["missing"]),
                sl.Index(fields=["amount"]),
                sl.Index(fields=["title"], shard_on="name"),
                sl.Index(fields=["name"], name="Bad-Name"),
                sl.Index(fields=["name"]),
                "not an index",
            ]

    assert ids(Broken.check()) == [
        "schemaless.E020",
        "schemaless.E021",
        "schemaless.E022",
        "schemaless.E023",
        "schemaless.E023",
        "schemaless.E040",
        "schemaless.W025",
    ]


def test_an_invalid_kind_is_an_error_and_shared_names_clash() -> None:
    class Odd(sl.Model):
        n = sl.IntegerField()

        class Meta:
            app_label = "broken"
            kind = "Odd-Kind"

    class First(sl.Model):
        n = sl.IntegerField()

        class Meta:
            app_label = "broken"
            kind = "same"
            indexes = [sl.Index(fields=["n"], name="by_n")]

    class Second(sl.Model):
        n = sl.IntegerField()

        class Meta:
            app_label = "broken"
            kind = "same"
            indexes = [sl.Index(fields=["n"], name="by_n")]

    assert ids(Odd.check()) == ["schemaless.E010"]
    assert ids(check_shared([First, Second])) == ["schemaless.E024", "schemaless.W011"]


def test_models_of_apps_not_installed_are_left_out() -> None:
    class Elsewhere(sl.Model):
        class Meta:
            app_label = "broken"
            indexes = [sl.Index(fields=["missing"])]

    assert schemaless_checks() == []
