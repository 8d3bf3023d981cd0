"""Prometheus metrics of a running worker, served on a port of its own.

The gauges read the worker's stats and the store when scraped, so the worker's loop does no
extra work for them: changes applied, changes pending, lag in seconds, the last batch's duration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge, start_http_server

if TYPE_CHECKING:
    from .worker import Worker


def serve_metrics(worker: Worker, port: int, addr: str = "127.0.0.1") -> CollectorRegistry:
    """Start a metrics HTTP server in a daemon thread; returns its registry."""
    registry = CollectorRegistry()
    gauges = {
        "schemaless_changes_applied_total": lambda: worker.stats.applied,
        "schemaless_changes_pending": worker.store.pending_changes,
        "schemaless_lag_seconds": lambda: worker.stats.lag_seconds,
        "schemaless_batch_seconds": lambda: worker.stats.last_batch_seconds,
        "schemaless_entities_left_out_total": lambda: worker.stats.skipped,
        "schemaless_entities_set_aside_total": lambda: worker.stats.set_aside,
    }
    for name, read in gauges.items():
        gauge = Gauge(name, name.replace("_", " "), registry=registry)
        gauge.set_function(read)
    start_http_server(port, addr=addr, registry=registry)
    return registry
