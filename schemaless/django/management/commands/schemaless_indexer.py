"""``manage.py schemaless_indexer [--burst] [--workers N]``: drain the change log into the indexes.

Runs :class:`indexer.worker.Worker`; with ``--workers N`` it runs N of them in threads of this
process (they share the log through ``SKIP LOCKED`` claims). For more CPU, run the command in
several processes. SIGINT/SIGTERM finish the batch under way, then exit.
"""

from __future__ import annotations

import threading
from typing import Any

from indexer.signals import on_stop
from indexer.worker import IndexerOptions, Worker

from ..base import SchemalessCommand


class Command(SchemalessCommand):
    help = "Drain the schemaless change log into the index tables."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--burst", action="store_true", help="exit once the log is empty")
        parser.add_argument("--workers", type=int, default=1)
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument("--max-batches", type=int, default=None)

    def run(self, store: Any, **options: Any) -> None:
        workers = [
            Worker(
                store,
                IndexerOptions(batch_size=options["batch_size"]),
                burst=options["burst"],
                max_batches=options["max_batches"],
                install_signal_handlers=options["workers"] == 1,
            )
            for _ in range(max(options["workers"], 1))
        ]
        if len(workers) == 1:
            workers[0].run()
        else:
            _run_threads(workers)
        applied = sum(w.stats.applied for w in workers)
        self.stdout.write(f"applied {applied} changes")


def _run_threads(workers: list[Worker]) -> None:
    """One thread per worker; a signal stops them all, and the main thread waits for them."""
    threads = [threading.Thread(target=w.run, name=f"indexer-{n}") for n, w in enumerate(workers)]

    def stop_all() -> None:
        for worker in workers:
            worker.stop()

    with on_stop(stop_all):
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.5)  # a timed join lets the signal handler run
