"""connect(): the one place that reads the environment and builds a Store from URLs."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from . import dialect
from .cache import Cache, open_cache
from .codec import Codec
from .errors import ConfigurationError
from .replica import ReplicaUrls, replica_urls
from .shard import DEFAULT_TIMEOUT, Shard
from .shards import ShardMap
from .store import DEFAULT_MAX_ENTITY_SIZE, Store

DEFAULT_URL = "sqlite:///schemaless.db"

Urls = str | Sequence[str] | Mapping[str, str]


def connect(
    url: Urls | None = None,
    *,
    indexing: str = "async",
    serializer: str = "msgpack",
    allow_pickle: bool = False,
    compress_threshold: int = 4096,
    max_entity_size: int = DEFAULT_MAX_ENTITY_SIZE,
    timeout: float = DEFAULT_TIMEOUT,
    groups: Mapping[str, Sequence[str]] | None = None,
    cache: str | Cache | None = None,
    replicas: ReplicaUrls | None = None,
    **engine_options: Any,
) -> Store:
    """Open a store on one database, or on several named shards.

    Without a URL it reads ``SCHEMALESS_URL`` (comma-separated for shards, each ``url`` or
    ``name=url``), else it uses the embedded SQLite file ``./schemaless.db``. A list of URLs
    names its shards ``s0``, ``s1``, ...; a dict names them itself. ``timeout`` bounds every
    connect, read and write on a server, in seconds. Nothing is created until
    :meth:`Store.migrate`. ``groups`` names the shards of each shard group (kinds declared
    with ``define_kind(kind, group=...)`` live there); ``migrate`` stores them with the bucket
    map, so later connections need not repeat them. No server is contacted here: the stored
    map is read, and checked, at first use. ``cache`` (``redis://host:6379/0`` or
    ``memcached://host:11211``; see :mod:`schemaless.cache`) puts a read-through cache in front
    of ``get`` and ``get_many``. ``replicas`` names, for some shards, the URLs of their
    replicas (MariaDB/MySQL replication of that server), which serve the reads asked with
    ``consistency="replica"``; see :mod:`schemaless.replica` for what those reads guarantee.

        >>> store = schemaless.connect("mysql+mysqldb://root@127.0.0.1:3306/app")
        >>> store = schemaless.connect({"s0": "mysql+mysqldb://db0/app",
        ...                             "s1": "mysql+mysqldb://db1/app"}, timeout=1.0)
        >>> store = schemaless.connect({"s0": url0, "h0": url1}, groups={"history": ["h0"]})
        >>> store = schemaless.connect({"s0": url0}, replicas={"s0": [replica_url]})
    """
    timeout = _check_timeout(timeout)
    named = shard_urls(url)
    replicated = replica_urls(replicas, list(named))  # checked before any engine is made
    shards = [
        Shard(name, _engine(name, u, timeout, engine_options), timeout=timeout)
        for name, u in named.items()
    ]
    for shard in shards:
        if shard.name in replicated:
            urls = replicated[shard.name]
            shard.add_replicas(_replicas(shard.name, urls, timeout, engine_options))
    codec = Codec(
        serializer=serializer, allow_pickle=allow_pickle, compress_threshold=compress_threshold
    )
    shard_map = ShardMap(shards, groups=groups)
    return Store(
        shard_map,
        codec=codec,
        indexing=indexing,
        max_entity_size=max_entity_size,
        cache=open_cache(cache),
    )


def shard_urls(url: Urls | None = None) -> dict[str, str]:
    """The shards that ``url`` (or SCHEMALESS_URL, or the default) names, by name, in order."""
    if url is None:
        url = os.environ.get("SCHEMALESS_URL") or DEFAULT_URL
    if isinstance(url, Mapping):
        if not all(isinstance(u, str) for u in url.values()):
            raise ConfigurationError("database URLs must be strings")
        pairs = [(str(name), u.strip()) for name, u in url.items()]
    elif not isinstance(url, str | Sequence):
        raise ConfigurationError(
            f"a database URL must be a str, a list of them or a dict of them, not {url!r}"
        )
    else:
        listed = url.split(",") if isinstance(url, str) else list(url)
        if not all(isinstance(u, str) for u in listed):
            raise ConfigurationError("database URLs must be strings")
        pairs = [_named(n, u.strip()) for n, u in enumerate(u for u in listed if u.strip())]
    if not pairs:
        raise ConfigurationError("no database URL given")
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"shard names must differ: {names}")
    for name, _ in pairs:
        if not name.isidentifier():
            raise ConfigurationError(f"shard name {name!r} must be a short identifier")
    return dict(pairs)


def _named(position: int, text: str) -> tuple[str, str]:
    """``name=url`` gives a name; a plain URL is named by its position, s0, s1, ..."""
    head, sep, rest = text.partition("=")
    if sep and "://" not in head and head.strip().isidentifier():
        return head.strip(), rest.strip()
    return f"s{position}", text


def _replicas(shard: str, urls: list[str], timeout: float, options: dict[str, Any]) -> list[Shard]:
    """The replicas of one shard, each a Shard of its own (its engine, pool and breaker)."""
    named = [f"{shard}.replica{n}" for n in range(len(urls))]
    return [
        Shard(name, _engine(name, url, timeout, options), timeout=timeout)
        for name, url in zip(named, urls, strict=True)
    ]


def _engine(name: str, url: str, timeout: float, options: dict[str, Any]) -> sa.Engine:
    """The shard's engine; a bad URL or a missing driver is a ConfigurationError at once."""
    try:
        return dialect.create_engine(url, timeout=timeout, **options)
    except ConfigurationError:
        raise
    except (
        sa.exc.ArgumentError,
        sa.exc.NoSuchModuleError,
        ImportError,
        ValueError,
        TypeError,  # an option the engine or its driver does not take
    ) as exc:
        shown = dialect.hide_password(url)
        raise ConfigurationError(f"shard {name}: cannot use {shown!r}: {exc}") from exc


def _check_timeout(timeout: Any) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ConfigurationError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)
