"""Status: what an operator wants to see at a glance: per index state, rows, backfill, lag, and
the entities the indexer set aside (poison it could not apply; see :mod:`schemaless.failures`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from . import dialect, failures, moves
from .store import Store
from .tables import entity_changes

SHOWN = 1000  # set-aside entities listed in full (--json); past that only counted
LISTED = 10  # of them, in the human form


def status(store: Store) -> dict[str, Any]:
    """A JSON-ready summary: the change log (pending, lag) and every index."""
    pending, oldest = 0, None
    for shard in store.shards:
        with shard.read() as conn:
            row = conn.execute(
                sa.select(sa.func.count(), sa.func.min(entity_changes.c.created))
            ).one()
        pending += row[0]
        oldest = row[1] if oldest is None or (row[1] is not None and row[1] < oldest) else oldest
    lag = (dialect.utcnow() - oldest).total_seconds() if oldest is not None else 0.0
    return {
        "shards": len(store.shards),
        "pending_changes": pending,
        "lag_seconds": round(max(lag, 0.0), 3),
        "indexes": [_index_status(store, entry) for entry in store.registry.entries()],
        "moves": [m.as_json() for m in moves.listed(store.shards) if m.is_open],
        **_set_aside(store),
    }


def _set_aside(store: Store) -> dict[str, Any]:
    """How many entities are set aside, and the longest-standing of them with their errors."""
    return {
        "set_aside": failures.count(store.shards),
        "set_aside_entities": [f.as_json() for f in failures.listed(store.shards, limit=SHOWN)],
    }


def _index_status(store: Store, entry: Any) -> dict[str, Any]:
    table = store.registry.table(entry.index)
    rows, done, total = 0, 0, 0
    for shard, each in enumerate(store.shards):
        with each.read() as conn:
            rows += conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        progress = store.registry.entries(shard)
        mine = next((e for e in progress if e.index.name == entry.index.name), None)
        if mine is not None:
            done, total = done + mine.done, total + mine.total
    return {
        "name": entry.index.name,
        "kind": entry.index.kind,
        "fields": entry.index.fields,
        "shard_on": entry.index.shard_on,
        "where": entry.index.where,
        "state": entry.state,
        "rows": rows,
        "backfill_done": done,
        "backfill_total": total,
    }


def format_status(data: dict[str, Any]) -> str:
    """The human form of :func:`status`."""
    lines = [
        f"shards: {data['shards']}   pending changes: {data['pending_changes']}   "
        f"lag: {data['lag_seconds']:.2f} s",
    ]
    for ix in data["indexes"]:
        progress = ""
        if ix["state"] == "building" and ix["backfill_total"]:
            progress = f"  backfill {ix['backfill_done']}/{ix['backfill_total']}"
        lines.append(
            f"  {ix['name']:<24} {ix['state']:<9} {ix['kind']:<12} rows={ix['rows']}{progress}"
        )
    if not data["indexes"]:
        lines.append("  (no indexes)")
    for move in data.get("moves", []):
        lines.append(
            f"move {move['id']}: buckets {move['buckets']} of {move['group']} "
            f"{move['source']} -> {move['target']}: {move['phase']} "
            f"{move['copied']}/{move['total']}"
        )
    lines += _format_set_aside(data)
    return "\n".join(lines)


def _format_set_aside(data: dict[str, Any]) -> list[str]:
    if not data["set_aside"]:
        return []
    lines = [
        f"set aside: {data['set_aside']} entities "
        "(`schemaless indexer --retry-set-aside` re-queues them once repaired)"
    ]
    for failure in data["set_aside_entities"][:LISTED]:
        lines.append(f"  {failure['entity_id']}  {failure['kind']:<12} {failure['error'][:80]}")
    if data["set_aside"] > LISTED:
        lines.append(f"  ... and {data['set_aside'] - LISTED} more (see --json)")
    return lines
