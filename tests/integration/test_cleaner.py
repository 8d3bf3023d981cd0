"""verify, repair and the continuous cleaner, on SQLite and MySQL, against hand-damaged indexes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from schemaless_indexer.cleaner import Cleaner, Finding
from schemaless_indexer.worker import Worker

import schemaless
from schemaless import Index
from schemaless.testing import actual_rows, expected_rows, run_command

ROOT = Path(__file__).resolve().parents[2]
BY_USER = Index(
    "entry_by_user", kind="entry", fields={"user_id": "int", "n": "int"}, shard_on="user_id"
)
BY_TAG = Index("entry_by_tag", kind="entry", fields={"tags": "str"})


def drain(store: schemaless.Store) -> None:
    Worker(store, burst=True, install_signal_handlers=False).run()


def verify(store: schemaless.Store, name: str | None = None, **options: bool) -> Finding:
    [finding] = Cleaner(store, install_signal_handlers=False).verify(name, **options).findings
    return finding


def counts(finding: Finding) -> tuple[int, int, int, int]:
    return finding.missing, finding.stale, finding.extra, finding.pending


def execute(store: schemaless.Store, statement: sa.Executable, shard: int = 0) -> None:
    with store.shards.engines[shard].begin() as conn:
        conn.execute(statement)


@pytest.fixture
def indexed(store: schemaless.Store) -> Iterator[schemaless.Store]:
    """A store whose ready index BY_USER holds 20 entities, exactly."""
    store.add_index(BY_USER)
    store.put_many("entry", [{"user_id": n % 3, "n": n} for n in range(20)])
    drain(store)
    yield store


def _ids(store: schemaless.Store) -> list[bytes]:
    return [e.id.bytes for e in store.query("entry")]


def test_an_exact_index_verifies_clean(indexed: schemaless.Store) -> None:
    finding = verify(indexed)
    assert finding.is_clean and finding.entities == 20
    assert counts(finding) == (0, 0, 0, 0)


def test_verify_finds_a_deleted_an_inserted_and_an_altered_row_and_repair_fixes_them(
    indexed: schemaless.Store,
) -> None:
    table = indexed.registry.table(BY_USER)
    deleted, altered = _ids(indexed)[:2]
    execute(indexed, table.delete().where(table.c.entity_id == deleted))
    stray = {"user_id": 1, "n": 5, "entity_id": uuid.uuid4().bytes, "version": 1, "entity_row": 0}
    execute(indexed, table.insert().values(stray))
    execute(indexed, table.update().where(table.c.entity_id == altered).values(n=12345))
    report = Cleaner(indexed, install_signal_handlers=False).verify()
    assert not report.is_clean
    assert counts(report.findings[0]) == (1, 1, 1, 0)
    assert verify(indexed, repair=True).repaired == 3
    assert verify(indexed).is_clean
    assert actual_rows(indexed, BY_USER) == expected_rows(indexed, BY_USER)


def _duplicate_a_row(store: schemaless.Store, index: Index) -> None:
    """Copy one entity's row 0 as its next row: the same (entity, element) twice."""
    table = store.registry.table(index)
    with store.shards.engines[0].begin() as conn:
        row = conn.execute(sa.select(table).where(table.c.entity_row == 0).limit(1)).one()
        conn.execute(table.insert().values({**row._asdict(), "entity_row": 1}))


def test_a_duplicate_row_is_wrong_and_repair_removes_it(indexed: schemaless.Store) -> None:
    _duplicate_a_row(indexed, BY_USER)
    assert actual_rows(indexed, BY_USER) != expected_rows(indexed, BY_USER)
    finding = verify(indexed)
    assert not finding.is_clean and counts(finding) == (0, 0, 1, 0)
    assert verify(indexed, repair=True).repaired == 1
    assert verify(indexed).is_clean
    assert actual_rows(indexed, BY_USER) == expected_rows(indexed, BY_USER)


def test_verify_exits_1_on_a_duplicate_row_and_0_after_repair(
    indexed: schemaless.Store, db_url: str
) -> None:
    _duplicate_a_row(indexed, BY_USER)
    wrong = run_command("verify", url=db_url)
    assert wrong.returncode == 1, wrong.stderr
    assert "1 wrong rows" in wrong.stdout
    assert run_command("verify", "--repair", url=db_url).returncode == 0
    assert run_command("verify", url=db_url).returncode == 0


def test_an_index_table_refuses_a_second_copy_of_an_entitys_row(
    indexed: schemaless.Store,
) -> None:
    """The primary key (entity_id, entity_row): a racing second insert fails, never doubles."""
    table = indexed.registry.table(BY_USER)
    entity_id = _ids(indexed)[0]
    again = {"user_id": 0, "n": 0, "entity_id": entity_id, "version": 1, "entity_row": 0}
    with pytest.raises(sa.exc.IntegrityError):
        execute(indexed, table.insert().values(again))
    assert verify(indexed).is_clean


def test_a_row_of_an_older_version_is_stale(indexed: schemaless.Store) -> None:
    table = indexed.registry.table(BY_USER)
    entity_id = _ids(indexed)[0]
    indexed.put("entry", {"user_id": 0, "n": 0}, id=entity_id)
    drain(indexed)
    execute(indexed, table.update().where(table.c.entity_id == entity_id).values(version=1))
    assert counts(verify(indexed)) == (0, 1, 0, 0)


def test_rows_left_behind_by_a_deleted_entity_are_extra(indexed: schemaless.Store) -> None:
    table = indexed.registry.table(BY_USER)
    gone = indexed.put("entry", {"user_id": 1, "n": 99})
    drain(indexed)
    indexed.delete(gone.id)
    drain(indexed)
    left = {"user_id": 1, "n": 99, "entity_id": gone.id.bytes, "version": 1, "entity_row": 0}
    execute(indexed, table.insert().values(left))
    assert counts(verify(indexed)) == (0, 0, 1, 0)
    verify(indexed, repair=True)
    assert verify(indexed).is_clean


def test_an_entity_waiting_for_the_indexer_is_pending_not_wrong(indexed: schemaless.Store) -> None:
    indexed.put("entry", {"user_id": 2, "n": 100})
    finding = verify(indexed)
    assert finding.is_clean and counts(finding) == (0, 0, 0, 1)


def test_building_indexes_are_verified_only_when_named(store: schemaless.Store) -> None:
    store.put("entry", {"tags": ["a"]})
    drain(store)
    assert store.add_index(BY_TAG) == "building"
    cleaner = Cleaner(store, install_signal_handlers=False)
    assert cleaner.verify().findings == []
    finding = verify(store, BY_TAG.name)
    assert (finding.state, finding.missing) == ("building", 1)


def test_an_unknown_index_raises_index_required(store: schemaless.Store) -> None:
    with pytest.raises(schemaless.IndexRequired):
        Cleaner(store, install_signal_handlers=False).verify("nope")


def test_the_cleaner_repairs_recently_updated_entities_first(indexed: schemaless.Store) -> None:
    table = indexed.registry.table(BY_USER)
    oldest = _ids(indexed)[0]
    recent = indexed.put("entry", {"user_id": 0, "n": 1000}, id=_ids(indexed)[-1]).id.bytes
    drain(indexed)
    for entity_id in (oldest, recent):
        execute(indexed, table.delete().where(table.c.entity_id == entity_id))
    cleaner = Cleaner(indexed, rate=20, batch_size=4, install_signal_handlers=False)
    runner = threading.Thread(target=cleaner.run)
    runner.start()
    try:
        assert _wait_until(lambda: verify(indexed).missing < 2)
        assert verify(indexed).missing == 1  # the recent one; the oldest comes last
        assert _wait_until(lambda: verify(indexed).is_clean)
    finally:
        cleaner.stop()
        runner.join(timeout=5)
    assert not runner.is_alive()


def test_a_shard_on_row_on_the_wrong_shard_is_stale_and_a_stray_row_is_extra(
    tmp_path: Path,
) -> None:
    store = schemaless.connect([f"sqlite:///{tmp_path / f's{n}.db'}" for n in range(2)])
    store.migrate()
    store.add_index(BY_USER)
    store.add_index(BY_TAG)
    entity = store.put("entry", {"user_id": 1, "n": 1, "tags": ["x"]})
    drain(store)
    by_user, by_tag = store.registry.table(BY_USER), store.registry.table(BY_TAG)
    user_shard = store.shards.shard_for_value(1)
    row = {"user_id": 1, "n": 1, "entity_id": entity.id.bytes, "version": 1, "entity_row": 0}
    execute(store, by_user.delete(), user_shard)
    execute(store, by_user.insert().values(row), 1 - user_shard)
    stray = {"tags": "x", "entity_id": entity.id.bytes, "version": 1, "entity_row": 0}
    execute(store, by_tag.insert().values(stray), 1 - store.shards.shard_for_id(entity.id.bytes))
    assert counts(verify(store, BY_USER.name, repair=True)) == (0, 1, 0, 0)
    assert counts(verify(store, BY_TAG.name, repair=True)) == (0, 0, 1, 0)
    for index in (BY_USER, BY_TAG):
        assert verify(store, index.name).is_clean
        assert actual_rows(store, index) == expected_rows(store, index)
    store.close()


def test_verify_exits_1_when_wrong_and_0_after_repair(
    indexed: schemaless.Store, db_url: str
) -> None:
    table = indexed.registry.table(BY_USER)
    execute(indexed, table.delete().where(table.c.entity_id == _ids(indexed)[0]))
    wrong = run_command("verify", url=db_url)
    assert wrong.returncode == 1, wrong.stderr
    assert "entry_by_user" in wrong.stdout and "1 wrong rows" in wrong.stdout
    assert run_command("verify", "entry_by_user", "--repair", url=db_url).returncode == 0
    clean = run_command("verify", url=db_url)
    assert clean.returncode == 0 and "clean" in clean.stdout


def test_the_cleaner_daemon_repairs_and_stops_on_sigterm(
    indexed: schemaless.Store, db_url: str
) -> None:
    table = indexed.registry.table(BY_USER)
    execute(indexed, table.delete().where(table.c.entity_id == _ids(indexed)[0]))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "schemaless", "cleaner", "--rate=200", f"--url={db_url}"]
    daemon = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_until(lambda: verify(indexed).is_clean)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=5) == 0
    finally:
        daemon.kill()
        _, errors = daemon.communicate()
    assert "repaired 1 entities" in errors


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False
