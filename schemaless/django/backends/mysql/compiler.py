"""The compilers of the mysql backend: ours in front of Django's (see ../compiler.py)."""

from __future__ import annotations

from django.db.backends.mysql.compiler import (
    SQLAggregateCompiler as _Aggregate,
)
from django.db.backends.mysql.compiler import (
    SQLCompiler as _Select,
)
from django.db.backends.mysql.compiler import (
    SQLDeleteCompiler as _Delete,
)
from django.db.backends.mysql.compiler import (
    SQLInsertCompiler as _Insert,
)
from django.db.backends.mysql.compiler import (
    SQLUpdateCompiler as _Update,
)

from .. import compiler, writes


class SQLCompiler(compiler.SelectCompiler, _Select):  # type: ignore[misc]
    pass


class SQLInsertCompiler(writes.InsertCompiler, _Insert):  # type: ignore[misc]
    pass


class SQLDeleteCompiler(writes.DeleteCompiler, _Delete):  # type: ignore[misc]
    pass


class SQLUpdateCompiler(writes.UpdateCompiler, _Update):  # type: ignore[misc]
    pass


class SQLAggregateCompiler(compiler.AggregateCompiler, _Aggregate):  # type: ignore[misc]
    pass
