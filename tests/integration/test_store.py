"""put / get / delete / compare-and-set through the public API, on SQLite and MySQL."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

import schemaless
from schemaless.tables import entities, entity_changes


def test_put_then_get_returns_the_same_body(store: schemaless.Store) -> None:
    body = {
        "user_id": 7,
        "title": "héllo",
        "tags": ["a", "b"],
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc),
        "price": Decimal("1.10"),
        "ref": uuid.UUID(int=5),
        "raw": b"\x00\xff",
        "nested": {"x": [1, {"y": None}]},
    }
    e = store.put("entry", body)
    assert (e.kind, e.version, e["title"]) == ("entry", 1, "héllo")
    assert store.get(e.id).body == body


def test_body_is_a_copy(store: schemaless.Store) -> None:
    e = store.put("entry", {"tags": ["a"]})
    e.body["tags"].append("b")
    assert e["tags"] == ["a"]


@pytest.mark.parametrize("form", [str, lambda u: u.hex, lambda u: u.bytes, lambda u: u])
def test_every_id_form_is_accepted(store: schemaless.Store, form: object) -> None:
    e = store.put("entry", {"n": 1})
    assert store.get(form(e.id)).id == e.id  # type: ignore[operator]


@pytest.mark.parametrize("bad", ["nope", 12, b"short", None, "z" * 32])
def test_bad_id_raises_invalid_id(store: schemaless.Store, bad: object) -> None:
    with pytest.raises(schemaless.InvalidId):
        store.get(bad)  # type: ignore[arg-type]


def test_missing_entity_raises_not_found_which_is_a_key_error(store: schemaless.Store) -> None:
    with pytest.raises(KeyError):
        store.get(uuid.uuid4())
    with pytest.raises(schemaless.NotFound):
        store.get(uuid.uuid4())


def test_get_many_skips_missing_ids(store: schemaless.Store) -> None:
    a, b = store.put("entry", {"n": 1}), store.put("entry", {"n": 2})
    found = store.get_many([a.id, str(b.id), uuid.uuid4()])
    assert set(found) == {a.id, b.id}
    assert found[b.id]["n"] == 2


def test_compare_and_set_raises_conflict_on_a_stale_version(store: schemaless.Store) -> None:
    e = store.put("entry", {"n": 1})
    e2 = store.put("entry", {"n": 2}, id=e.id, expect_version=1)
    assert e2.version == 2
    with pytest.raises(schemaless.Conflict):
        store.put("entry", {"n": 3}, id=e.id, expect_version=1)
    assert store.get(e.id)["n"] == 2


def test_expect_version_zero_means_create_only(store: schemaless.Store) -> None:
    new_id = uuid.uuid4()
    assert store.put("entry", {"n": 1}, id=new_id, expect_version=0).version == 1
    with pytest.raises(schemaless.Conflict):
        store.put("entry", {"n": 2}, id=new_id, expect_version=0)


def test_versions_keep_rising_after_a_delete(store: schemaless.Store) -> None:
    e = store.put("entry", {"n": 1})
    store.put("entry", {"n": 2}, id=e.id)
    assert store.delete(e.id) is True
    assert store.delete(e.id) is False
    with pytest.raises(schemaless.NotFound):
        store.get(e.id)
    again = store.put("entry", {"n": 3}, id=e.id)
    assert again.version == 4


def test_delete_with_a_stale_version_conflicts(store: schemaless.Store) -> None:
    e = store.put("entry", {"n": 1})
    store.put("entry", {"n": 2}, id=e.id)
    with pytest.raises(schemaless.Conflict):
        store.delete(e.id, expect_version=1)
    assert store.delete(e.id, expect_version=2)


def test_every_write_logs_one_change_row(store: schemaless.Store) -> None:
    e = store.put("entry", {"n": 1})
    store.put("entry", {"n": 2}, id=e.id)
    store.delete(e.id)
    store.put_many("entry", [{"n": i} for i in range(5)])
    with store.shards.engines[0].connect() as conn:
        versions = conn.execute(
            sa.select(entity_changes.c.version).where(entity_changes.c.entity_id == e.id.bytes)
        ).scalars()
        assert sorted(versions) == [1, 2, 3]
    assert store.pending_changes() == 8


def test_put_many_returns_entities_in_order(store: schemaless.Store) -> None:
    made = store.put_many("entry", [{"n": i} for i in range(50)])
    assert [e["n"] for e in made] == list(range(50))
    assert {e.id: e["n"] for e in store.get_many(e.id for e in made).values()} == {
        e.id: e["n"] for e in made
    }


def test_another_kind_under_a_live_id_conflicts(store: schemaless.Store) -> None:
    e = store.put("entry", {"n": 1})
    with pytest.raises(schemaless.Conflict):
        store.put("user", {"n": 1}, id=e.id)


def test_concurrent_compare_and_set_increments_lose_no_update(store: schemaless.Store) -> None:
    e = store.put("counter", {"n": 0})
    threads, per_thread = 8, 15

    def bump() -> None:
        done = 0
        while done < per_thread:
            current = store.get(e.id)
            try:
                store.put(
                    "counter", {"n": current["n"] + 1}, id=e.id, expect_version=current.version
                )
                done += 1
            except schemaless.Conflict:
                pass

    workers = [threading.Thread(target=bump) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    final = store.get(e.id)
    assert final["n"] == threads * per_thread
    assert final.version == threads * per_thread + 1


def test_timestamps_are_stored_in_utc(store: schemaless.Store) -> None:
    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(seconds=5)
    e = store.put("entry", {"n": 1})
    with store.shards.engines[0].connect() as conn:
        updated = conn.execute(
            sa.select(entities.c.updated).where(entities.c.id == e.id.bytes)
        ).scalar_one()
    assert before <= updated <= before + dt.timedelta(seconds=65)
