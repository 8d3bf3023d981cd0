"""A shard that is a 3-node MariaDB Galera cluster behind HAProxy (DESIGN section 6).

One cluster for the module (it takes 10-20 s to start): three `mariadbd` with the galera-4
provider on loopback, the first bootstrapping and the others joining by rsync SST, and an
HAProxy whose frontend sends every connection to the first node while its health check passes,
the others being backups. The store, and the real `schemaless indexer`, connect to the proxy.

- Galera replicates only tables with a primary key: every table the store makes has one.
- Two writers updating one entity on two nodes meet certification conflicts (error 1213 at
  COMMIT, `ShardBusy`): the store retries them and every put returns, each with its version.
- The active node is killed (SIGKILL) under a writer: the proxy fails over to a backup, and
  every put that returned is there with its version; a write whose outcome is unknown
  (`OutcomeUnknown`) may be either way and is counted apart; the indexer survives the failover
  and `verify` finds the indexes clean.

The test runs last in the module: it kills the node the proxy sends everything to.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import schemaless
from schemaless import Index
from schemaless.errors import NotFound, OutcomeUnknown, ShardUnavailable
from schemaless.testing import mysql_connection, run_command
from tests.cluster.engine_rules import tables, tables_without_primary_key
from tests.cluster.galera import GaleraCluster, HAProxy, missing

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 5.0  # the store's: a failover takes a few seconds, writes may wait on it
BY_USER = Index("entry_by_user", kind="entry", fields={"user_id": "int", "n": "int"})
BY_TAG = Index("entry_by_tag", kind="entry", fields={"tags": "str"})

pytestmark = [pytest.mark.mysql, pytest.mark.slow]


@dataclass
class Galera:
    cluster: GaleraCluster
    proxy: HAProxy

    def database(self, name: str) -> tuple[str, list[str]]:
        """A new database: its URL through the proxy, and on each node directly."""
        url = self.proxy.create_database(name)
        for node in self.cluster.nodes:
            node.wait_for_database(name)
        nodes = [f"{node.url}{name}?charset=utf8mb4" for node in self.cluster.nodes]
        return url, nodes


@pytest.fixture(scope="module")
def galera() -> Iterator[Galera]:
    reason = missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"cannot start a Galera cluster, and CI must not skip: {reason}")
        pytest.skip(f"cannot start a Galera cluster: {reason}")
    with GaleraCluster(3) as cluster, HAProxy(cluster.nodes) as proxy:
        yield Galera(cluster, proxy)


def test_every_table_has_a_primary_key_on_the_cluster(galera: Galera) -> None:
    url, nodes = galera.database("keys")
    store = schemaless.connect(url, timeout=TIMEOUT)
    store.migrate()
    store.define_kind("entry", colocate_on="user_id")
    store.add_index(BY_USER)
    store.add_index(BY_TAG)
    store.close()
    made = tables(url)
    assert {"entities", "entity_changes", "index_entry_by_user", "index_entry_by_tag"} <= set(made)
    assert tables_without_primary_key(url) == []
    deadline = time.monotonic() + 10  # DDL reaches every node (TOI), applied there soon after
    while tables(nodes[2]) != made and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tables(nodes[2]) == made


def _cert_conflicts(galera: Galera) -> int:
    """Transactions any node aborted for a conflict with a replicated one, so far."""
    total = 0
    for node in galera.cluster.nodes:
        for name in ("wsrep_local_cert_failures", "wsrep_local_bf_aborts"):
            total += int(node.status(name) or 0)
    return total


def _version_on(url: str, entity_id: uuid.UUID) -> int:
    """The entity's version as a node has it, once it applied everything committed before."""
    connection = mysql_connection(url)
    try:
        cursor = connection.cursor()
        cursor.execute("SET SESSION wsrep_sync_wait = 1")  # causal read: wait for the applier
        cursor.execute("SELECT version FROM entities WHERE id = %s", (entity_id.bytes,))
        return int(cursor.fetchone()[0])
    finally:
        connection.close()


def test_certification_conflicts_are_retried(galera: Galera) -> None:
    _, nodes = galera.database("conflicts")
    a = schemaless.connect(nodes[1], timeout=TIMEOUT)
    b = schemaless.connect(nodes[2], timeout=TIMEOUT)
    a.migrate()
    entity = a.put("entry", {"user_id": 1, "n": 0})
    deadline = time.monotonic() + 10
    while True:  # replication is virtually synchronous: wait until b's node applied it
        try:
            b.get(entity.id)
            break
        except NotFound:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    before = _cert_conflicts(galera)
    versions: dict[str, list[int]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def update(name: str, store: schemaless.Store) -> None:
        rng = random.Random(name)
        try:
            for n in range(40):
                put = store.put("entry", {"user_id": 1, "n": n, "by": name}, id=entity.id)
                versions[name].append(put.version)
                time.sleep(rng.uniform(0, 0.02))  # two users, not two tight loops
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=update, args=item) for item in (("a", a), ("b", b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    a.close()
    b.close()
    assert errors == []
    conflicts = _cert_conflicts(galera) - before
    print(f"\ncertification conflicts and BF aborts, all retried: {conflicts}")
    assert conflicts > 0, "the two writers never conflicted: nothing tested"
    assert sorted(versions["a"] + versions["b"]) == list(range(2, 82))  # each put its own
    assert _version_on(nodes[1], entity.id) == _version_on(nodes[2], entity.id) == 81


@dataclass
class Ledger:
    """What the writer was told: acknowledged versions, and writes of unknown outcome."""

    acked: dict[uuid.UUID, tuple[int, int]] = field(default_factory=dict)  # id -> (version, n)
    unknown: set[uuid.UUID] = field(default_factory=set)  # updates of unknown outcome
    unknown_new: int = 0  # new entities of unknown outcome: their ids never came back
    failed: int = 0
    acked_after_kill: int = 0
    errors: list[BaseException] = field(default_factory=list)  # anything else: a bug


def _write_until(
    store: schemaless.Store, stop: threading.Event, killed: threading.Event, ledger: Ledger
) -> None:
    """Put new entities and update earlier ones, as fast as the cluster answers."""
    n = 0
    while not stop.is_set():
        n += 1
        earlier = list(ledger.acked)[-3:] if n % 2 == 0 else []
        target = earlier[0] if earlier else None
        body = {"user_id": n % 7, "n": n, "tags": ["galera"]}
        try:
            entity = store.put("entry", body, id=target)
        except OutcomeUnknown:
            if target is None:
                ledger.unknown_new += 1
            else:
                ledger.unknown.add(target)
        except ShardUnavailable:
            ledger.failed += 1  # refused before COMMIT: nothing was written
            time.sleep(0.05)
        except BaseException as exc:
            ledger.errors.append(exc)
            return
        else:
            ledger.acked[entity.id] = (entity.version, n)
            ledger.acked_after_kill += killed.is_set()


def _start_indexer(url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "schemaless", "indexer", f"--url={url}"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_killing_the_active_node_loses_nothing_acknowledged(galera: Galera, tmp_path: Path) -> None:
    url, _ = galera.database("failover")
    store = schemaless.connect(url, timeout=TIMEOUT)
    store.migrate()
    store.add_index(BY_USER)
    store.add_index(BY_TAG)
    log = tmp_path / "indexer.log"
    indexer = _start_indexer(url, log)
    try:
        _kill_under_writes(galera, store, url, indexer, log)
    finally:
        if indexer.poll() is None:
            indexer.kill()
        indexer.wait()
        store.close()


def _kill_under_writes(
    galera: Galera,
    store: schemaless.Store,
    url: str,
    indexer: subprocess.Popen[bytes],
    log: Path,
) -> None:
    ledger, stop, killed = Ledger(), threading.Event(), threading.Event()
    writer = threading.Thread(target=_write_until, args=(store, stop, killed, ledger))
    writer.start()
    try:
        time.sleep(2.0)
        before = len(ledger.acked)
        galera.cluster.nodes[0].kill()  # the active node: every connection went there
        killed.set()
        deadline = time.monotonic() + 20
        while ledger.acked_after_kill < 200 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        writer.join()
    assert ledger.errors == []
    assert before > 50 and ledger.acked_after_kill >= 200, "the writer did not get through"

    found = store.get_many(list(ledger.acked))
    landed = 0
    for entity_id, (version, n) in ledger.acked.items():
        assert entity_id in found, f"acknowledged entity {entity_id} is lost"
        entity = found[entity_id]
        if entity_id in ledger.unknown:  # a later write may or may not have happened
            assert entity.version >= version
            landed += entity.version > version
        else:
            assert (entity.version, entity["n"]) == (version, n)
    print(
        f"\nGalera failover: {len(ledger.acked)} entities acknowledged, all found ({before} before "
        f"the kill, {ledger.acked_after_kill} puts after it); of unknown outcome: "
        f"{len(ledger.unknown)} updates ({landed} landed), {ledger.unknown_new} new entities; "
        f"{ledger.failed} refused before COMMIT"
    )

    assert store.wait_for_indexes(timeout=30), "the indexer did not drain the change log"
    assert indexer.poll() is None, log.read_text()[-3000:]  # it outlived the failover
    indexer.send_signal(signal.SIGTERM)
    assert indexer.wait(timeout=30) == 0, log.read_text()[-3000:]
    done = run_command("verify", url=url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert store.query("entry").filter(tags="galera").count() == len(list(store.query("entry")))
