"""Store entities with no schema, index a field, and query it.

python examples/quickstart.py        # uses SCHEMALESS_URL, else ./schemaless.db
"""

from __future__ import annotations

from schemaless_indexer.worker import Worker

import schemaless
from schemaless import Index

store = schemaless.connect()
store.migrate()
if not any(index.name == "note_by_author" for index, _ in store.indexes()):
    store.add_index(Index("note_by_author", kind="note", fields={"author": "str"}))
    print("added index note_by_author")

first = store.put("note", {"author": "ada", "text": "analytical engine"})
store.put("note", {"author": "ada", "text": "notes on the engine", "tags": ["math"]})
store.put("note", {"author": "alan", "text": "on computable numbers"})
print(f"stored {first.id} at version {first.version}")

# The indexer daemon (`schemaless indexer`) usually does this in the background.
Worker(store, burst=True, install_signal_handlers=False).run()

for note in store.query("note").filter(author="ada"):
    print(f"ada wrote: {note['text']}")
