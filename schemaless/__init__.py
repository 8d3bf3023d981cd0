"""schemaless: a FriendFeed-style schemaless datastore on MySQL (and SQLite), for Python and Django.

Entities are serialized blobs in one ``entities`` table per shard; secondary indexes are tables
of their own, filled asynchronously by indexer workers from a change log.

    >>> import schemaless
    >>> store = schemaless.connect()
    >>> store.migrate()
    >>> e = store.put("entry", {"user_id": 7, "title": "hi"})
"""

from .connection import connect
from .entity import Entity
from .errors import (
    BucketMoved,
    ConfigurationError,
    Conflict,
    DecodeError,
    EncodeError,
    EntityTooLarge,
    IndexNotReady,
    IndexRequired,
    InvalidId,
    InvalidName,
    InvalidQuery,
    NotFound,
    OutcomeUnknown,
    SchemalessError,
    ShardBusy,
    ShardUnavailable,
)
from .index import Index
from .query import Query
from .store import Store

__version__ = "0.1.0"

__all__ = [
    "BucketMoved",
    "ConfigurationError",
    "Conflict",
    "DecodeError",
    "EncodeError",
    "Entity",
    "EntityTooLarge",
    "Index",
    "IndexNotReady",
    "IndexRequired",
    "InvalidId",
    "InvalidName",
    "InvalidQuery",
    "NotFound",
    "OutcomeUnknown",
    "Query",
    "SchemalessError",
    "ShardBusy",
    "ShardUnavailable",
    "Store",
    "connect",
]
