"""Alembic environment: runs migrations on the connection handed over by `learnagg.adapters.store.schema`."""

from __future__ import annotations

from alembic import context

from learnagg.adapters.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things in place; batch mode rebuilds tables when a later revision needs it.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
