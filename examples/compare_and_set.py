"""Optimistic concurrency: a counter bumped by compare-and-set, retried on Conflict.

python examples/compare_and_set.py
"""

from __future__ import annotations

import threading

import schemaless

store = schemaless.connect()
store.migrate()
counter = store.put("counter", {"n": 0})


def bump(times: int) -> None:
    for _ in range(times):
        while True:
            current = store.get(counter.id)
            try:
                store.put(
                    "counter",
                    {"n": current["n"] + 1},
                    id=counter.id,
                    expect_version=current.version,
                )
                break
            except schemaless.Conflict:
                continue  # someone else won this version: read again and retry


threads = [threading.Thread(target=bump, args=(25,)) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
final = store.get(counter.id)
print(f"n = {final['n']} after 100 bumps by 4 threads (version {final.version})")
