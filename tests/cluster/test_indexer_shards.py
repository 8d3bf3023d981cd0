"""`schemaless indexer --shard NAME` drains only the change logs of the shards it names."""

from __future__ import annotations

import sqlalchemy as sa

import schemaless
from schemaless.tables import entity_changes
from schemaless.testing import run_command


def _pending(store: schemaless.Store) -> list[int]:
    count = sa.select(sa.func.count()).select_from(entity_changes)
    found = []
    for shard in store.shards:
        with shard.engine.connect() as conn:
            found.append(int(conn.execute(count).scalar_one()))
    return found


def test_an_indexer_drains_only_the_shards_it_is_given(sqlite_files: list[str]) -> None:
    url = f"s0={sqlite_files[0]},s1={sqlite_files[1]}"
    store = schemaless.connect(url)
    store.migrate()
    store.put_many("entry", [{"n": n} for n in range(60)])
    before = _pending(store)
    assert min(before) > 0
    done = run_command("indexer", "--burst", "--shard", "s1", url=url)
    assert done.returncode == 0, done.stderr
    assert _pending(store) == [before[0], 0]
    done = run_command("indexer", "--burst", "--shard", "s0", "--shard", "s1", url=url)
    assert done.returncode == 0, done.stderr
    assert _pending(store) == [0, 0]
    store.close()


def test_an_unknown_shard_is_one_error_line(sqlite_files: list[str]) -> None:
    url = f"s0={sqlite_files[0]}"
    schemaless.connect(url).migrate()
    done = run_command("indexer", "--burst", "--shard", "s7", url=url)
    assert done.returncode == 2
    assert "no shard named s7" in done.stderr
