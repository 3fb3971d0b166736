"""Dialect-specific SQL the read models share."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

IN_LIST = 1000
"""Keys per `IN (...)` list: a few round trips for many keys, each statement a bounded size."""


def key_chunks(keys: Iterable[str]) -> Iterator[list[str]]:
    """The distinct keys, sorted, in lists of at most IN_LIST."""
    ordered = sorted(set(keys))
    for first in range(0, len(ordered), IN_LIST):
        yield ordered[first : first + IN_LIST]


def upsert(conn: Connection, table: Table) -> Any:
    """An INSERT that supports ON CONFLICT on this connection's database (PostgreSQL or SQLite)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def execute_many(conn: Connection, statement: Any, rows: list[dict[str, Any]], *returning: Any) -> list[Any]:
    """Run an INSERT .. ON CONFLICT for many rows as a few multi-row statements, returning
    `returning` (default: the first key column) of each row written.

    SQLAlchemy batches an ON CONFLICT insert into multi-row VALUES only when it has RETURNING
    (sqlalchemy#13130); without, psycopg2 sends one statement per row, each parsed and planned.
    Rows of one call must not share a conflict key (PostgreSQL refuses to update a row twice in one
    statement)."""
    columns = returning or tuple(statement.table.primary_key.columns)[:1]
    return list(conn.execute(statement.returning(*columns), rows))


def upsert_rows(
    conn: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    adding: str | Sequence[str] | None,
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """Insert `rows` into `table`; a row whose key exists adds its `adding` column (or columns) to
    the stored one (`adding` None: leaves the stored row alone). Returns `returning` of each row
    written.

    The read models' hottest statement. On PostgreSQL it is sent as multi-row VALUES pages built by
    psycopg2, several times faster than SQLAlchemy's rendering of the same upsert."""
    if not rows:
        return []
    keys = [c.name for c in table.primary_key.columns]
    added = [adding] if isinstance(adding, str) else list(adding or ())
    if conn.dialect.name != "postgresql":
        statement = upsert(conn, table)
        if not added:
            statement = statement.on_conflict_do_nothing()
        else:
            excluded = statement.excluded
            statement = statement.on_conflict_do_update(
                index_elements=keys, set_={name: table.c[name] + excluded[name] for name in added}
            )
        if not returning:  # sqlite3 runs one prepared statement over the rows: no need to batch
            conn.execute(statement, rows)
            return []
        found = execute_many(conn, statement, rows, *(table.c[name] for name in returning))
        return [tuple(row) for row in found]
    from psycopg2.extras import execute_values

    quote = conn.dialect.identifier_preparer.quote
    columns = list(rows[0])
    name = quote(table.name)
    schema = conn.get_execution_options().get("schema_translate_map", {}).get(table.schema)
    qualified = f"{quote(schema)}.{name}" if schema else name
    action = "NOTHING"
    if added:
        action = "UPDATE SET " + ", ".join(
            f"{quote(a)} = {name}.{quote(a)} + EXCLUDED.{quote(a)}" for a in added
        )
    sql = (
        f"INSERT INTO {qualified} AS {name} ({', '.join(map(quote, columns))}) VALUES %s "
        f"ON CONFLICT ({', '.join(map(quote, keys))}) DO {action}"
    )
    values = [tuple(row[c] for c in columns) for row in rows]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if not returning:
            execute_values(cursor, sql, values, page_size=1000)
            return []
        sql += f" RETURNING {', '.join(map(quote, returning))}"
        return [tuple(r) for r in execute_values(cursor, sql, values, page_size=1000, fetch=True)]
    finally:
        cursor.close()
