"""Poison never stops the indexer: each poison value mixed among good entities, on both backends.

A value an index column cannot hold leaves its entity out of that index only; an entity that
cannot be decoded, or whose row the server refuses, is set aside with its error while the rest
of its batch is applied; status shows it, a retry re-queues it once repaired.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from schemaless_indexer.cleaner import Cleaner
from schemaless_indexer.worker import Worker

import schemaless
from schemaless import DecodeError, Index, InvalidQuery
from schemaless.failures import requeue
from schemaless.status import format_status, status
from schemaless.tables import entities

BY_V = {kind: Index("thing_by_v", kind="thing", fields={"v": kind}) for kind in ("int", "float")}
BY_N = Index("thing_by_n", kind="thing", fields={"n": "int"})
EAST = dt.timezone(dt.timedelta(hours=5))
WEST = dt.timezone(dt.timedelta(hours=-5))
AWARE_YEAR_1 = dt.datetime(1, 1, 1, tzinfo=EAST)  # before year 1 once made UTC
AWARE_YEAR_9999 = dt.datetime(9999, 12, 31, 23, tzinfo=WEST)  # after year 9999 once made UTC
GARBAGE = b"\x01\x00\xc1\xc1\xc1"  # a valid header, then bytes msgpack never uses
GOOD = {
    "int": 7,
    "float": 1.5,
    "datetime": dt.datetime(2020, 1, 2, 3, 4, 5, 678),
    "str": "h\u00e9llo \U0001f600",
    "bytes": b"ok",
}

POISON = [
    pytest.param("float", math.nan, False, id="nan"),
    pytest.param("float", math.inf, False, id="inf"),
    pytest.param("float", -math.inf, False, id="-inf"),
    pytest.param("float", [1.5, math.nan], False, id="nan-in-a-list"),
    pytest.param("float", 2**1100, True, id="int-past-the-largest-float"),
    pytest.param("int", 2**64 - 1, False, id="int-past-signed-64-bits"),
    pytest.param("int", -(2**100), True, id="int-past-64-bits-pickled"),
    pytest.param("datetime", AWARE_YEAR_1, False, id="aware-near-year-1"),
    pytest.param("datetime", AWARE_YEAR_9999, False, id="aware-near-year-9999"),
    pytest.param("str", "x" * 256, False, id="str-of-256"),
    pytest.param("str", "a\ud800", True, id="str-with-a-lone-surrogate"),
    pytest.param("bytes", b"x" * 256, False, id="bytes-of-256"),
]


def drain(store: schemaless.Store) -> Worker:
    worker = Worker(store, burst=True, install_signal_handlers=False)
    worker.run()
    return worker


def rows(store: schemaless.Store, index: Index) -> Counter[tuple[Any, ...]]:
    """Every row of the index's table, as (fields..., entity_id, version), as a multiset."""
    table = store.registry.table(index)
    columns = [*(table.c[f] for f in index.fields), table.c.entity_id, table.c.version]
    found: Counter[tuple[Any, ...]] = Counter()
    for shard in store.shards:
        with shard.read() as conn:
            found.update(tuple(row) for row in conn.execute(sa.select(*columns)))
    return found


def corrupt(store: schemaless.Store, entity_id: uuid.UUID, blob: bytes = GARBAGE) -> None:
    """Write ``blob`` as the entity's body with SQL, around the store (as a bad tool would)."""
    with store.shards.for_id(entity_id.bytes).begin() as conn:
        conn.execute(entities.update().where(entities.c.id == entity_id.bytes).values(body=blob))


def refuse_from(store: schemaless.Store, index: Index, limit: int) -> None:
    """Make the server refuse index rows whose ``v`` reaches ``limit``: a CHECK on MySQL, a
    trigger on SQLite (which cannot add a CHECK to a table)."""
    table = f"index_{index.name}"
    with store.shards[0].begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                f"CREATE TRIGGER refuse BEFORE INSERT ON {table} WHEN NEW.v >= {limit} "
                "BEGIN SELECT RAISE(ABORT, 'refused by the server'); END"
            )
        else:
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD CONSTRAINT refuse CHECK (v < {limit})")


@pytest.fixture
def pickled(db_url: str, store: schemaless.Store) -> Iterator[schemaless.Store]:
    """The migrated database of ``store``, written with pickle (allow_pickle=True)."""
    other = schemaless.connect(db_url, serializer="pickle", allow_pickle=True)
    yield other
    other.close()


# -- values an index column cannot hold ----------------------------------------------------------


@pytest.mark.parametrize(("kind", "poison", "needs_pickle"), POISON)
def test_a_poison_value_leaves_its_entity_out_of_that_index_only(
    store: schemaless.Store,
    pickled: schemaless.Store,
    kind: str,
    poison: Any,
    needs_pickle: bool,
) -> None:
    subject = pickled if needs_pickle else store
    by_v = Index("thing_by_v", kind="thing", fields={"v": kind})
    subject.add_index(by_v)
    subject.add_index(BY_N)
    good = GOOD[kind]
    bodies: list[dict[str, Any]] = [{"v": good, "n": n} for n in range(11)]
    bodies[5]["v"] = poison
    made = subject.put_many("thing", bodies)

    worker = drain(subject)

    poisoned = made[5].id
    assert rows(subject, by_v) == Counter((good, e.id.bytes, 1) for e in made if e.id != poisoned)
    assert rows(subject, BY_N) == Counter((n, e.id.bytes, 1) for n, e in enumerate(made))
    assert (worker.stats.skipped, worker.stats.set_aside) == (1, 0)
    assert subject.pending_changes() == 0 and subject.set_aside() == []
    found = subject.query("thing").filter(v=good)
    assert Counter(e.id for e in found) == Counter(e.id for e in made if e.id != poisoned)


def test_a_where_of_nan_is_refused_when_the_index_is_defined() -> None:
    with pytest.raises(schemaless.ConfigurationError):
        Index("odd", kind="thing", fields={"n": "int"}, where={"x": math.nan})


@pytest.mark.parametrize(
    "condition",
    [
        {"v": math.nan},
        {"v__in": [1.5, math.nan]},
        {"v__gt": math.inf},
        {"v__range": (-math.inf, 0.0)},
        {"t": AWARE_YEAR_1},
        {"t__lt": AWARE_YEAR_9999},
        {"s": "x" * 256},
    ],
    ids=["nan", "nan-in", "gt-inf", "range-from-minus-inf", "aware-year-1", "aware-year-9999", "s"],
)
def test_a_filter_on_a_value_no_index_column_holds_is_refused_before_sql(
    store: schemaless.Store, condition: dict[str, Any]
) -> None:
    store.add_index(BY_V["float"])
    store.add_index(Index("thing_by_t", kind="thing", fields={"t": "datetime"}))
    store.add_index(Index("thing_by_s", kind="thing", fields={"s": "str"}))
    store.put("thing", {"v": 1.5, "t": GOOD["datetime"], "s": "x"})
    drain(store)
    with pytest.raises(InvalidQuery):
        list(store.query("thing").filter(**condition))


def test_a_scan_compares_datetimes_past_utc_as_python_does(store: schemaless.Store) -> None:
    far = store.put("thing", {"t": AWARE_YEAR_1})
    near = store.put("thing", {"t": dt.datetime(2020, 1, 1)})
    scan = store.query("thing").scan()
    assert [e.id for e in scan.filter(t=AWARE_YEAR_1)] == [far.id]
    assert [e.id for e in scan.filter(t__gt=dt.datetime(2000, 1, 1))] == [near.id]


# -- entities set aside ------------------------------------------------------------------------


def test_an_undecodable_entity_is_set_aside_and_the_rest_of_its_batch_applied(
    store: schemaless.Store,
) -> None:
    store.add_index(BY_N)
    made = store.put_many("thing", [{"n": n} for n in range(10)])
    bad = made[4].id
    corrupt(store, bad)

    worker = drain(store)

    good = [(n, e) for n, e in enumerate(made) if e.id != bad]
    assert rows(store, BY_N) == Counter((n, e.id.bytes, 1) for n, e in good)
    assert (worker.stats.applied, worker.stats.set_aside) == (10, 1)
    assert store.pending_changes() == 0
    [failure] = store.set_aside()
    assert (failure.entity_id, failure.kind, failure.version) == (bad, "thing", 1)
    assert failure.attempts == 1 and failure.shard == "s0"
    assert failure.error.startswith("DecodeError")


def test_status_shows_what_is_set_aside(store: schemaless.Store) -> None:
    store.add_index(BY_N)
    made = store.put_many("thing", [{"n": n} for n in range(3)])
    assert status(store)["set_aside"] == 0
    corrupt(store, made[1].id)
    drain(store)

    data = status(store)

    assert data["set_aside"] == 1
    [shown] = data["set_aside_entities"]
    assert shown["entity_id"] == str(made[1].id) and "DecodeError" in shown["error"]
    text = format_status(data)
    assert "set aside: 1" in text and str(made[1].id) in text and "--retry-set-aside" in text


def test_a_repaired_entity_is_indexed_once_re_queued(store: schemaless.Store) -> None:
    store.add_index(BY_N)
    made = store.put_many("thing", [{"n": n} for n in range(5)])
    bad = made[2].id
    corrupt(store, bad)
    drain(store)
    assert (2, bad.bytes, 1) not in rows(store, BY_N)

    corrupt(store, bad, store.codec.encode({"n": 2}))  # the repair
    assert requeue(store.shards) == 1
    assert store.set_aside() == [] and store.pending_changes() == 1
    drain(store)

    assert rows(store, BY_N) == Counter((n, e.id.bytes, 1) for n, e in enumerate(made))
    assert store.set_aside() == [] and status(store)["set_aside"] == 0


def test_an_entity_set_aside_again_counts_its_attempts(store: schemaless.Store) -> None:
    store.add_index(BY_N)
    bad = store.put("thing", {"n": 1}).id
    corrupt(store, bad)
    drain(store)
    store.put("thing", {"n": 2}, id=bad)
    corrupt(store, bad)  # the bad tool again
    drain(store)
    [failure] = store.set_aside()
    assert (failure.version, failure.attempts) == (2, 2)
    assert failure.last_seen > failure.first_seen


def test_a_new_version_that_applies_takes_an_entity_off_the_set_aside_list(
    store: schemaless.Store,
) -> None:
    store.add_index(BY_N)
    bad = store.put("thing", {"n": 1}).id
    corrupt(store, bad)
    drain(store)
    assert len(store.set_aside()) == 1

    store.put("thing", {"n": 40}, id=bad)
    drain(store)

    assert store.set_aside() == [] and rows(store, BY_N) == Counter([(40, bad.bytes, 2)])
    assert status(store)["set_aside"] == 0
    assert requeue(store.shards) == 0 and store.pending_changes() == 0  # nothing to retry


def test_a_row_the_server_refuses_sets_its_entity_aside(store: schemaless.Store) -> None:
    by_v = BY_V["int"]
    store.add_index(by_v)
    store.add_index(BY_N)
    refuse_from(store, by_v, 1000)
    made = store.put_many("thing", [{"v": 5000 if n == 3 else n, "n": n} for n in range(8)])

    worker = drain(store)

    refused = made[3].id
    good = [(n, e) for n, e in enumerate(made) if e.id != refused]
    assert rows(store, by_v) == Counter((n, e.id.bytes, 1) for n, e in good)
    assert rows(store, BY_N) == Counter((n, e.id.bytes, 1) for n, e in good)  # all or nothing
    assert worker.stats.set_aside == 1
    [failure] = store.set_aside()
    assert failure.entity_id == refused and "refuse" in failure.error


def test_a_daemon_without_allow_pickle_sets_pickles_aside_until_told(
    store: schemaless.Store, pickled: schemaless.Store
) -> None:
    store.add_index(BY_N)
    made = pickled.put_many("thing", [{"n": n} for n in range(3)])

    drain(store)  # a msgpack-only codec: every pickle is poison to it
    assert rows(store, BY_N) == Counter() and len(store.set_aside()) == 3

    requeue(store.shards)
    drain(pickled)
    assert rows(store, BY_N) == Counter((n, e.id.bytes, 1) for n, e in enumerate(made))
    assert pickled.set_aside() == []


def test_the_worker_keeps_running_through_poison(store: schemaless.Store) -> None:
    store.add_index(BY_N)
    first = store.put_many("thing", [{"n": n} for n in range(5)])
    corrupt(store, first[2].id)
    worker = Worker(store, install_signal_handlers=False)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        later = store.put_many("thing", [{"n": n} for n in range(5, 10)])
        assert store.wait_for_indexes(timeout=30)
        assert thread.is_alive()
    finally:
        worker.stop()
        thread.join(timeout=10)
    made = [e for e in first + later if e.id != first[2].id]
    assert rows(store, BY_N) == Counter((e["n"], e.id.bytes, 1) for e in made)


# -- reading an undecodable entity ---------------------------------------------------------------


def test_get_of_an_undecodable_entity_raises_decode_error_naming_it(
    store: schemaless.Store,
) -> None:
    good, bad = store.put("thing", {"n": 1}), store.put("thing", {"n": 2})
    corrupt(store, bad.id)
    with pytest.raises(DecodeError, match=str(bad.id)):
        store.get(bad.id)
    with pytest.raises(DecodeError, match=str(bad.id)):
        store.get_many([good.id, bad.id])
    assert store.get(good.id)["n"] == 1


def test_verify_counts_undecodable_entities_instead_of_crashing(store: schemaless.Store) -> None:
    store.add_index(BY_N)
    made = store.put_many("thing", [{"n": n} for n in range(6)])
    drain(store)
    corrupt(store, made[3].id)

    report = Cleaner(store, install_signal_handlers=False).verify()

    [finding] = report.findings
    assert (finding.undecodable, finding.entities) == (1, 6)
    assert (finding.missing, finding.stale, finding.extra) == (0, 0, 0)
    assert not report.is_clean and "1 entities cannot be decoded" in report.format()
    repaired = Cleaner(store, install_signal_handlers=False).verify(repair=True)
    assert repaired.undecodable == 1


def test_a_backfill_sets_poison_aside_and_makes_the_index_ready(store: schemaless.Store) -> None:
    from schemaless_indexer.backfill import Backfill

    made = store.put_many("thing", [{"n": n} for n in range(30)])
    drain(store)  # no index yet: the change log is empty, the backfill has it all to do
    bad = made[17].id
    corrupt(store, bad)
    assert store.add_index(BY_N) == "building"

    Backfill(store, BY_N.name, batch_size=10, progress=False, install_signal_handlers=False).run()

    good = [(n, e) for n, e in enumerate(made) if e.id != bad]
    assert rows(store, BY_N) == Counter((n, e.id.bytes, 1) for n, e in good)
    assert dict(store.indexes())[BY_N] == "ready"
    [failure] = store.set_aside()
    assert failure.entity_id == bad and failure.error.startswith("DecodeError")


def test_a_query_meeting_an_undecodable_entity_names_it(store: schemaless.Store) -> None:
    store.add_index(BY_N)
    made = store.put_many("thing", [{"n": n} for n in range(5)])
    drain(store)
    bad = made[2].id
    corrupt(store, bad)
    for query in (
        store.query("thing").filter(n=2)[:1],
        store.query("thing").filter(n__gte=0).order_by("n"),
        store.query("thing"),
        store.query("thing").scan().filter(n=2),
    ):
        with pytest.raises(DecodeError, match=str(bad)):
            list(query)
