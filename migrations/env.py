"""alembic environment: runs on the connection schemaless.migration hands over."""

from alembic import context

from schemaless.migration import VERSION_TABLE
from schemaless.tables import metadata

connection = context.config.attributes["connection"]


def include_object(obj, name, type_, reflected, compare_to):  # noqa: ANN001, ANN201
    """Index tables are made by add_index, not by migrations: autogenerate leaves them alone."""
    return not (type_ == "table" and name.startswith("index_"))


context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    include_object=include_object,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
