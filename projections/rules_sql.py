"""Search rules (projections.rules) compiled to SQLAlchemy conditions on `rm_users`, the same on
SQLite and PostgreSQL.

A time bound is cut down to the millisecond and turned into a bound on the stored microseconds:
`ms(v) >= ms(b)` is `v >= ms(b)`, `ms(v) > ms(b)` is `v >= ms(b) + 1 ms`, and so on, so that
the columns are compared as stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, false, not_, or_, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import DateTime, String

from projections.rules import (
    FIELDS,
    INT32,
    MILLISECOND,
    AllOf,
    AnyOf,
    Compare,
    Missing,
    Not,
    Prefix,
    Rule,
    fold,
    from_millis,
    int_range,
    millis,
)
from projections.schema import naive_utc
from projections.users import users


class ascii_lower(FunctionElement[str]):  # noqa: N801 (a SQL function)
    """Text with ASCII capitals in lower case only (PostgreSQL's lower() follows the locale)."""

    type = String()
    inherit_cache = True


@compiles(ascii_lower)
def _ascii_lower(element: Any, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(ascii_lower, "postgresql")
def _ascii_lower_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    text = compiler.process(element.clauses, **kw)
    return f"translate({text}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"


class code_points(FunctionElement[str]):  # noqa: N801 (a SQL function)
    """Text that orders by code point, whatever the database's collation."""

    type = String()
    inherit_cache = True


@compiles(code_points)
def _code_points(element: Any, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(code_points, "postgresql")
def _code_points_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)}) COLLATE "C"'


class to_millisecond(FunctionElement[datetime]):  # noqa: N801 (a SQL function)
    """A stored time cut down to the millisecond (for ordering as Elasticsearch does)."""

    type = DateTime()
    inherit_cache = True


@compiles(to_millisecond)
def _to_millisecond(element: Any, compiler: Any, **kw: Any) -> str:
    # SQLite keeps a DateTime as text 'YYYY-MM-DD HH:MM:SS.ffffff'.
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 23)"


@compiles(to_millisecond, "postgresql")
def _to_millisecond_postgresql(element: Any, compiler: Any, **kw: Any) -> str:
    return f"date_trunc('milliseconds', {compiler.process(element.clauses, **kw)})"


def to_sql(rule: Rule, table: Table = users) -> ColumnElement[bool]:
    """The condition on `table` (rm_users or a copy of it) that holds exactly where `rule` does."""
    if isinstance(rule, AllOf):
        return and_(*(to_sql(r, table) for r in rule.rules)) if rule.rules else true()
    if isinstance(rule, AnyOf):
        return or_(*(to_sql(r, table) for r in rule.rules)) if rule.rules else false()
    if isinstance(rule, Not):
        return not_(to_sql(rule.rule, table))
    column = table.c[rule.field]
    if isinstance(rule, Missing):
        return column.is_(None)
    condition = _prefix(column, rule) if isinstance(rule, Prefix) else _compare(column, rule)
    # Two-valued like the other backends: a missing value makes the condition false, not NULL.
    return and_(column.is_not(None), condition) if column.nullable else condition


def _prefix(column: Any, rule: Prefix) -> ColumnElement[bool]:
    escaped = fold(rule.text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return ascii_lower(column).like(f"{escaped}%", escape="\\")


def _compare(column: Any, rule: Compare) -> ColumnElement[bool]:
    kind = FIELDS[rule.field]
    if kind == "time":
        return _compare_time(column, rule.op, naive_utc(from_millis(millis(rule.value))))
    if kind == "int":
        return _compare_int(column, rule.op, rule.value)
    if kind == "text" and rule.op != "==":
        column = code_points(column)
    return _apply(column, rule.op, rule.value)


def _compare_time(column: Any, op: str, bound: datetime) -> ColumnElement[bool]:
    following = bound + MILLISECOND
    if op == "==":
        return and_(column >= bound, column < following)
    return {
        "<": column < bound,
        ">=": column >= bound,
        ">": column >= following,
        "<=": column < following,
    }[op]


def _compare_int(column: Any, op: str, value: int) -> ColumnElement[bool]:
    low, high = int_range(op, value)
    if low > high:
        return false()
    conditions = []
    if low > INT32[0]:
        conditions.append(column >= low)
    if high < INT32[1]:
        conditions.append(column <= high)
    return and_(*conditions) if conditions else true()


def _apply(left: Any, op: str, right: Any) -> ColumnElement[bool]:
    return {
        "<": lambda: left < right,
        "<=": lambda: left <= right,
        ">": lambda: left > right,
        ">=": lambda: left >= right,
        "==": lambda: left == right,
    }[op]()
