"""Indexes maintained by the indexer, and queries through them, on SQLite and MySQL."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from schemaless_indexer.worker import Worker

import schemaless
from schemaless import Index
from schemaless.testing import actual_rows, expected_rows

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
BY_USER = Index(
    "entry_by_user",
    kind="entry",
    fields={"user_id": "int", "published": "datetime"},
    shard_on="user_id",
)
BY_TAG = Index("entry_by_tag", kind="entry", fields={"tags": "str"})


def drain(store: schemaless.Store) -> None:
    Worker(store, burst=True, install_signal_handlers=False).run()


def titles(query: schemaless.query.Query) -> list[str]:
    return [e["title"] for e in query]


@pytest.fixture
def indexed(store: schemaless.Store) -> schemaless.Store:
    assert store.add_index(BY_USER) == "ready"
    assert store.add_index(BY_TAG) == "ready"
    return store


def test_rows_appear_only_after_the_indexer_runs(indexed: schemaless.Store) -> None:
    indexed.put("entry", {"user_id": 1, "published": T0, "title": "a", "tags": ["x"]})
    assert not actual_rows(indexed, BY_USER)
    assert indexed.wait_for_indexes(timeout=0.05) is False
    drain(indexed)
    assert indexed.wait_for_indexes(timeout=0.05) is True
    assert actual_rows(indexed, BY_USER) == expected_rows(indexed, BY_USER)
    assert titles(indexed.query("entry").filter(user_id=1)) == ["a"]


def test_an_update_moves_the_rows(indexed: schemaless.Store) -> None:
    e = indexed.put("entry", {"user_id": 1, "published": T0, "title": "a", "tags": ["x"]})
    drain(indexed)
    indexed.put("entry", {"user_id": 2, "published": T0, "title": "a", "tags": ["y"]}, id=e.id)
    drain(indexed)
    assert titles(indexed.query("entry").filter(user_id=1)) == []
    assert titles(indexed.query("entry").filter(user_id=2)) == ["a"]
    assert titles(indexed.query("entry").filter(tags="y")) == ["a"]
    assert actual_rows(indexed, BY_USER) == expected_rows(indexed, BY_USER)
    assert {r[-1] for r in actual_rows(indexed, BY_USER)} == {2}


def test_a_delete_removes_the_rows(indexed: schemaless.Store) -> None:
    e = indexed.put("entry", {"user_id": 1, "published": T0, "title": "a", "tags": ["x", "y"]})
    drain(indexed)
    indexed.delete(e.id)
    drain(indexed)
    assert not actual_rows(indexed, BY_USER) and not actual_rows(indexed, BY_TAG)


def test_a_list_field_makes_a_row_per_element(indexed: schemaless.Store) -> None:
    indexed.put("entry", {"user_id": 1, "title": "a", "tags": ["x", "y", "x"]})
    indexed.put("entry", {"user_id": 1, "title": "b", "tags": ["y"]})
    drain(indexed)
    assert actual_rows(indexed, BY_TAG).total() == 3
    assert sorted(titles(indexed.query("entry").filter(tags="y"))) == ["a", "b"]
    assert titles(indexed.query("entry").filter(tags__in=["x", "y"]).order_by("tags")) == ["a", "b"]
    assert indexed.query("entry").filter(tags__in=["x", "y"]).count() == 2


def test_missing_and_none_fields_are_indexed_as_null(indexed: schemaless.Store) -> None:
    indexed.put("entry", {"user_id": 1, "title": "no date"})
    indexed.put("entry", {"user_id": 1, "published": None, "title": "none"})
    indexed.put("entry", {"user_id": 1, "published": T0, "title": "dated"})
    drain(indexed)
    assert len(list(indexed.query("entry").filter(user_id=1))) == 3
    assert sorted(titles(indexed.query("entry").filter(user_id=1, published=None))) == [
        "no date",
        "none",
    ]


def test_a_partial_index_serves_only_queries_naming_its_where(store: schemaless.Store) -> None:
    published = Index(
        "entry_published", kind="entry", fields={"user_id": "int"}, where={"status": "published"}
    )
    store.add_index(published)
    store.put("entry", {"user_id": 1, "status": "published", "title": "p"})
    store.put("entry", {"user_id": 1, "status": "draft", "title": "d"})
    drain(store)
    assert actual_rows(store, published).total() == 1
    assert titles(store.query("entry").filter(user_id=1, status="published")) == ["p"]
    with pytest.raises(schemaless.IndexRequired):
        list(store.query("entry").filter(user_id=1))


def test_a_corrupted_index_row_is_filtered_from_results(indexed: schemaless.Store) -> None:
    a = indexed.put("entry", {"user_id": 1, "published": T0, "title": "a"})
    indexed.put("entry", {"user_id": 2, "published": T0, "title": "b"})
    drain(indexed)
    table = indexed.registry.table(BY_USER)
    for shard in indexed.shards:
        with shard.engine.begin() as conn:
            conn.execute(table.update().where(table.c.entity_id == a.id.bytes), {"user_id": 2})
    assert titles(indexed.query("entry").filter(user_id=2)) == ["b"]


def test_stale_rows_in_a_limited_page_are_made_up_from_the_next(indexed: schemaless.Store) -> None:
    made = [
        indexed.put("entry", {"user_id": 7, "published": T0 + dt.timedelta(minutes=i), "title": i})
        for i in range(30)
    ]
    drain(indexed)
    stale = [e.id.bytes for e in made[25:28]]  # among the latest ten: now user 8's, says the body
    for e in made[25:28]:
        indexed.put("entry", {**e.body, "user_id": 8}, id=e.id)  # the indexer has not run
    q = indexed.query("entry").filter(user_id=7).order_by("-published")
    assert [e["title"] for e in q[:10]] == [29, 28, 24, 23, 22, 21, 20, 19, 18, 17]
    assert [e["title"] for e in q[2:5]] == [24, 23, 22]
    after = q.after(list(q[:10])[-1])[:3]
    assert [e["title"] for e in after] == [16, 15, 14]
    assert {r[2] for r in actual_rows(indexed, BY_USER) if r[0] == 7} >= set(stale)  # still stale


def test_order_limit_and_keyset_pagination(indexed: schemaless.Store) -> None:
    for i in range(25):
        indexed.put(
            "entry", {"user_id": 7, "published": T0 + dt.timedelta(minutes=i), "title": f"t{i:02}"}
        )
    drain(indexed)
    q = indexed.query("entry").filter(user_id=7).order_by("-published")
    first = list(q[:10])
    assert [e["title"] for e in first] == [f"t{i:02}" for i in range(24, 14, -1)]
    second = list(q.after(first[-1])[:10])
    assert [e["title"] for e in second] == [f"t{i:02}" for i in range(14, 4, -1)]
    assert q.count() == 25 and len(q) == 25 and q.exists()
    assert q.first()["title"] == "t24"
    assert q[3]["title"] == "t21"
    ranged = q.filter(published__gte=T0 + dt.timedelta(minutes=20))
    assert titles(ranged) == ["t24", "t23", "t22", "t21", "t20"]
    assert titles(
        indexed.query("entry").filter(
            user_id=7, published__range=(T0, T0 + dt.timedelta(minutes=1))
        )
    ) == ["t00", "t01"]


def test_a_cursor_from_a_query_of_another_plan_resumes_by_the_entity(
    indexed: schemaless.Store,
) -> None:
    for i in range(4):
        indexed.put("entry", {"user_id": 7, "published": T0 + dt.timedelta(minutes=i), "title": i})
    drain(indexed)
    both = indexed.query("entry").filter(user_id__in=[7, 8])  # keyed by (user_id, published)
    first = list(both)[0]
    narrower = both.filter(user_id=7)  # keyed by published alone
    assert [e["title"] for e in narrower.after(first)] == [1, 2, 3]


def test_startswith_compares_exactly(store: schemaless.Store) -> None:
    by_title = Index("entry_by_title", kind="entry", fields={"title": "str"})
    store.add_index(by_title)
    for title in ("apple", "Apple", "apricot", "banana"):
        store.put("entry", {"title": title})
    drain(store)
    assert titles(store.query("entry").filter(title__startswith="ap").order_by("title")) == [
        "apple",
        "apricot",
    ]


def test_planner_raises_index_required_naming_the_indexes(indexed: schemaless.Store) -> None:
    with pytest.raises(schemaless.IndexRequired, match="entry_by_user"):
        indexed.query("entry").filter(title="x")
    with pytest.raises(schemaless.IndexRequired):
        list(indexed.query("entry").filter(published__gte=T0))
    with pytest.raises(schemaless.IndexRequired):
        indexed.query("entry").filter(user_id=1).order_by("title")


def test_a_building_index_raises_index_not_ready(store: schemaless.Store) -> None:
    store.put("entry", {"user_id": 1, "title": "a"})
    assert store.add_index(BY_USER) == "building"
    drain(store)
    with pytest.raises(schemaless.IndexNotReady):
        list(store.query("entry").filter(user_id=1))
    assert titles(store.query("entry").filter(user_id=1).allow_partial()) == ["a"]


def test_a_wrong_type_leaves_the_entity_out_without_crashing(indexed: schemaless.Store) -> None:
    indexed.put("entry", {"user_id": "seven", "title": "bad"})
    indexed.put("entry", {"user_id": 7, "title": "good"})
    worker = Worker(indexed, burst=True, install_signal_handlers=False)
    worker.run()
    assert worker.stats.skipped == 1
    assert titles(indexed.query("entry").filter(user_id=7)) == ["good"]


def test_redefining_an_index_raises_and_same_definition_is_a_no_op(
    indexed: schemaless.Store,
) -> None:
    assert indexed.add_index(BY_USER) == "ready"
    with pytest.raises(schemaless.ConfigurationError):
        indexed.add_index(Index("entry_by_user", kind="entry", fields={"user_id": "int"}))


def test_drop_index_removes_table_and_registration(indexed: schemaless.Store) -> None:
    indexed.drop_index("entry_by_tag")
    assert [i.name for i, _ in indexed.indexes()] == ["entry_by_user"]
    tables = sa.inspect(indexed.shards.engines[0]).get_table_names()
    assert "index_entry_by_tag" not in tables
    indexed.put("entry", {"user_id": 1, "tags": ["x"]})
    drain(indexed)


def test_sync_indexing_gives_the_same_answers(sync_store: schemaless.Store) -> None:
    sync_store.add_index(BY_USER)
    e = sync_store.put("entry", {"user_id": 3, "published": T0, "title": "now"})
    assert titles(sync_store.query("entry").filter(user_id=3)) == ["now"]
    assert sync_store.pending_changes() == 0
    sync_store.delete(e.id)
    assert titles(sync_store.query("entry").filter(user_id=3)) == []


def test_a_kind_change_after_delete_clears_the_old_rows(indexed: schemaless.Store) -> None:
    e = indexed.put("entry", {"user_id": 1, "title": "a"})
    drain(indexed)
    indexed.delete(e.id)
    indexed.put("user", {"user_id": 1}, id=e.id)
    drain(indexed)
    assert not actual_rows(indexed, BY_USER)


def test_query_with_no_filter_lists_the_kind_in_insertion_order(store: schemaless.Store) -> None:
    made = [store.put("entry", {"n": i}) for i in range(5)]
    store.put("other", {"n": 99})
    assert [e.id for e in store.query("entry")] == [e.id for e in made]
    assert store.query("entry").count() == 5


def test_bad_filters_raise_before_any_sql(indexed: schemaless.Store) -> None:
    with pytest.raises(schemaless.InvalidQuery):
        indexed.query("entry").filter(user_id__near=3)
    with pytest.raises(schemaless.InvalidQuery):
        indexed.query("entry").filter(user_id="seven")  # raised while building
    with pytest.raises(schemaless.InvalidQuery):
        indexed.query("entry").filter(user_id__in=5)


def test_uuid_and_bool_fields(store: schemaless.Store) -> None:
    ix = Index("thing_by_owner", kind="thing", fields={"owner": "uuid", "done": "bool"})
    store.add_index(ix)
    owner = uuid.uuid4()
    store.put("thing", {"owner": owner, "done": True, "title": "x"})
    store.put("thing", {"owner": str(owner), "done": False, "title": "y"})
    drain(store)
    assert titles(store.query("thing").filter(owner=owner, done=True)) == ["x"]
    assert sorted(titles(store.query("thing").filter(owner=owner))) == ["x", "y"]


def test_an_entity_lacking_a_field_is_indexed_and_checked_as_its_default(
    store: schemaless.Store,
) -> None:
    old = store.put("entry", {"user_id": 1, "title": "old"})  # stored before "state" existed
    store.put("entry", {"user_id": 1, "title": "new", "state": "done"})
    store.put("entry", {"user_id": 1, "title": "none", "state": None})
    by_state = Index(
        "entry_by_state", kind="entry", fields={"state": "str"}, defaults={"state": "draft"}
    )
    if store.add_index(by_state) == "building":
        from schemaless_indexer.backfill import Backfill

        Backfill(store, "entry_by_state", progress=False, install_signal_handlers=False).run()
    drain(store)
    assert titles(store.query("entry").filter(state="draft")) == ["old"]
    assert titles(store.query("entry").filter(state=None)) == ["none"]
    assert titles(store.query("entry").filter(state__in=["draft", "done"]).order_by("state")) == [
        "new",
        "old",
    ]
    assert store.query("entry").filter(state="draft").count() == 1
    assert actual_rows(store, by_state) == expected_rows(store, by_state)
    assert [i for i, _ in store.indexes() if i.name == "entry_by_state"][0].defaults == {
        "state": "draft"
    }
    assert store.get(old.id).get("state") is None  # the body is as stored


def _key_directions(store: schemaless.Store, name: str) -> list[str]:
    """The query key's columns as the server stored them, each "A" or "D"."""
    with store.shards[0].engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(f"PRAGMA index_xinfo(ix_{name}_query)").all()
            return ["D" if r[3] else "A" for r in rows if r[5]]  # key columns, not the rowid
        rows = conn.exec_driver_sql(f"SHOW INDEX FROM index_{name}").mappings().all()
        key = sorted(
            (r for r in rows if r["Key_name"] == f"ix_{name}_query"),
            key=lambda r: r["Seq_in_index"],
        )
        return [r["Collation"] for r in key]


def test_a_descending_key_is_stored_so_and_answers_both_orders(store: schemaless.Store) -> None:
    newest = Index(
        "entry_newest",
        kind="entry",
        fields={"user_id": "int", "published": "datetime"},
        descending=["published"],
    )
    assert store.add_index(newest) == "ready"
    assert _key_directions(store, "entry_newest") == ["A", "D", "D"]
    for i in [3, 0, 4, 1, 2]:
        store.put("entry", {"user_id": 7, "published": T0 + dt.timedelta(minutes=i), "title": i})
    store.put("entry", {"user_id": 7, "title": "none"})  # NULL: last descending, first ascending
    store.put("entry", {"user_id": 8, "published": T0, "title": "other"})
    drain(store)
    down = store.query("entry").filter(user_id=7).order_by("-published")
    assert titles(down) == [4, 3, 2, 1, 0, "none"]
    assert titles(down.after(list(down[:2])[-1])[:3]) == [2, 1, 0]
    up = store.query("entry").filter(user_id=7).order_by("published")
    assert titles(up) == ["none", 0, 1, 2, 3, 4]
    assert titles(up.after(list(up[:3])[-1])) == [2, 3, 4]
    assert titles(store.query("entry").filter(user_id__in=[7, 8], published=T0)) == [0, "other"]
    assert actual_rows(store, newest) == expected_rows(store, newest)


def test_isnull_false_is_a_range_an_index_drives(indexed: schemaless.Store) -> None:
    for i, tags in enumerate([["x"], [], None, ["y", "z"]]):
        body = {"user_id": 1, "published": T0 + dt.timedelta(minutes=i), "title": i}
        indexed.put("entry", body if tags is None else {**body, "tags": tags})
    drain(indexed)
    q = indexed.query("entry").filter(tags__isnull=False)
    assert sorted(titles(q)) == [0, 3] and q.count() == 2  # entities, not their rows
    assert q.plan().index.name == "entry_by_tag"  # driven, not a scan
    assert sorted(titles(indexed.query("entry").filter(tags__isnull=True))) == [1, 2]
