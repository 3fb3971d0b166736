"""Alembic's environment: runs on the connection `infra.migrations` hands over, or, from the
`alembic` command line, on COHORTLINE_DATABASE_URL."""

from __future__ import annotations

from alembic import context

from infra.migrations import compare_type
from infra.schema import ALL_METADATA


def run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=list(ALL_METADATA),
        render_as_batch=True,  # SQLite alters tables by copying them
        transactional_ddl=True,
        compare_type=compare_type,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    from infra.config import load_settings
    from infra.database import create_database_engine

    engine = create_database_engine(load_settings().database_url)
    with engine.begin() as conn:
        run(conn)
    engine.dispose()
