"""The daemons, by the name an installed wheel gives them: ``schemaless_indexer``.

The repository keeps them in its top-level ``indexer/`` folder, and the wheel installs that
folder as ``schemaless_indexer/`` (``sources`` in pyproject.toml), so that site-packages gains
no top-level name but ``schemaless*``: a user's own app called ``indexer`` must neither shadow
ours nor be shadowed by it. In a checkout (an editable install, ``PYTHONPATH``) this package
stands in for it: its submodules are found in ``indexer/``, so every import site reads
``from schemaless_indexer.worker import Worker`` in both places. The wheel never ships this file.
"""

from pathlib import Path

__path__ = [str(Path(__file__).resolve().parent.parent / "indexer")]
