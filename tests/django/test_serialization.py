"""``dumpdata`` and ``loaddata`` on a schemaless alias: lists stay lists, versions round-trip."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from feed.models import Comment, Entry

pytestmark = pytest.mark.usefixtures("entities")


def test_dumpdata_then_loaddata_restores_the_entities(tmp_path: Path) -> None:
    entry = Entry.objects.create(user="ann", title="a", tags=["x", "y"])
    Comment.objects.create(entry=entry, user="bob", body="hi")
    out = io.StringIO()
    call_command("dumpdata", "feed", database="entities", stdout=out)
    dumped = json.loads(out.getvalue())
    assert {d["model"] for d in dumped} == {"feed.entry", "feed.comment"}
    assert next(d for d in dumped if d["model"] == "feed.entry")["fields"]["tags"] == ["x", "y"]
    fixture = tmp_path / "feed.json"
    fixture.write_text(out.getvalue())
    Entry.objects.all().delete()
    assert Entry.objects.count() == 0 and Comment.objects.count() == 0
    call_command("loaddata", str(fixture), database="entities", verbosity=0)
    loaded = Entry.objects.get(pk=entry.pk)
    assert (loaded.title, loaded.tags) == ("a", ["x", "y"])
    assert [c.body for c in loaded.comments.all()] == ["hi"]
    call_command("loaddata", str(fixture), database="entities", verbosity=0)  # again: updates
    assert Entry.objects.count() == 1
