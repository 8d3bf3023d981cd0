"""connect(): the one place that reads the environment and builds a Store from URLs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from . import dialect
from .codec import Codec
from .shards import ShardMap
from .store import DEFAULT_MAX_ENTITY_SIZE, Store

DEFAULT_URL = "sqlite:///schemaless.db"


def connect(
    url: str | Sequence[str] | None = None,
    *,
    indexing: str = "async",
    serializer: str = "msgpack",
    allow_pickle: bool = False,
    compress_threshold: int = 4096,
    max_entity_size: int = DEFAULT_MAX_ENTITY_SIZE,
    **engine_options: Any,
) -> Store:
    """Open a store on one database, or on several shards (one URL each, in a fixed order).

    Without a URL it reads ``SCHEMALESS_URL`` (comma-separated for shards), else it uses the
    embedded SQLite file ``./schemaless.db``. Nothing is created until :meth:`Store.migrate`.

        >>> store = schemaless.connect("mysql+mysqldb://root@127.0.0.1:3306/app")
        >>> store = schemaless.connect(["mysql+mysqldb://db0/app", "mysql+mysqldb://db1/app"])
    """
    urls = shard_urls(url)
    engines = [dialect.create_engine(u, **engine_options) for u in urls]
    codec = Codec(
        serializer=serializer, allow_pickle=allow_pickle, compress_threshold=compress_threshold
    )
    return Store(ShardMap(engines), codec=codec, indexing=indexing, max_entity_size=max_entity_size)


def shard_urls(url: str | Sequence[str] | None = None) -> list[str]:
    """The shard URLs that ``url`` (or SCHEMALESS_URL, or the default) names."""
    if url is None:
        url = os.environ.get("SCHEMALESS_URL") or DEFAULT_URL
    if isinstance(url, str):
        url = url.split(",")
    urls = [u.strip() for u in url if u.strip()]
    if not urls:
        from .errors import ConfigurationError

        raise ConfigurationError("no database URL given")
    return urls
