"""Search rules over the user read model: a lifecycle state, an RFM segment or a search filter,
written once as a condition on stored columns and then evaluated in Python (`holds`), compiled to
SQL (`projections.rules_sql.to_sql`) or to Elasticsearch (`projections.rules_elasticsearch`).

What every backend must agree on, and so what a rule means:
- A comparison with a missing value is false (SQL's NULL, a document without the field).
- Times compare at millisecond resolution, both sides cut down to the millisecond: Elasticsearch
  keeps `date` fields in milliseconds, while SQL and Python keep microseconds.
- Text orders by code point (Elasticsearch keywords, SQLite BINARY, PostgreSQL "C").
- `Prefix` ignores the case of ASCII letters only; every other character matches exactly."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, TypeAlias

from projections.schema import aware_utc

Op = Literal["<", "<=", ">", ">=", "=="]
OPS: tuple[Op, ...] = ("<", "<=", ">", ">=", "==")

FIELDS: dict[str, str] = {
    "user_id": "text",
    "country": "text",
    "first_seen_at": "time",
    "last_active_at": "time",
    "last_order_at": "time",
    "resurrected_on": "day",
    "orders": "int",
}
"""The searchable columns of `rm_users` (fields of the user documents) and their kinds."""

INT32 = (-(2**31), 2**31 - 1)
"""The range of the `int` fields (SQL `Integer` columns, Elasticsearch `integer` fields)."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Compare:
    field: str
    op: Op
    value: Any

    def __post_init__(self) -> None:
        _check_field(self.field)
        if self.op not in OPS:
            raise ValueError(f"unknown operator {self.op!r}")
        if not _fits(FIELDS[self.field], self.value):
            raise TypeError(f"{self.field} is compared with a {FIELDS[self.field]}, not {self.value!r}")


@dataclass(frozen=True)
class Missing:
    field: str

    def __post_init__(self) -> None:
        _check_field(self.field)


@dataclass(frozen=True)
class Prefix:
    """The field starts with `text`, ASCII letters compared without case."""

    field: str
    text: str

    def __post_init__(self) -> None:
        _check_field(self.field)
        if FIELDS[self.field] != "text":
            raise TypeError(f"{self.field} is not text")


@dataclass(frozen=True)
class AllOf:
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class AnyOf:
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Not:
    rule: Rule


Rule: TypeAlias = Compare | Missing | Prefix | AllOf | AnyOf | Not

EVERYONE: Rule = AllOf(())
NOBODY: Rule = AnyOf(())


def all_of(*rules: Rule) -> Rule:
    return rules[0] if len(rules) == 1 else AllOf(rules)


def any_of(*rules: Rule) -> Rule:
    return rules[0] if len(rules) == 1 else AnyOf(rules)


def present(field: str) -> Rule:
    return Not(Missing(field))


def _check_field(field: str) -> None:
    if field not in FIELDS:
        raise ValueError(f"unknown field {field!r}")


def _fits(kind: str, value: Any) -> bool:
    if kind == "time":
        return isinstance(value, datetime)
    if kind == "day":
        return isinstance(value, date) and not isinstance(value, datetime)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str)


def millis(at: datetime) -> int:
    """Milliseconds since the epoch, rounded down (as Elasticsearch stores a `date`); naive is UTC."""
    return (aware_utc(at) - EPOCH) // MILLISECOND  # type: ignore[operator]


def from_millis(ms: int) -> datetime:
    return EPOCH + ms * MILLISECOND


def fold(text: str) -> str:
    """`text` with ASCII capitals in lower case, every other character as it is."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def holds(rule: Rule, user: Mapping[str, Any]) -> bool:
    """Whether the rule holds for a user, given as a row or a presented user (times as datetimes
    or RFC 3339 text, days as dates or ISO text)."""
    if isinstance(rule, AllOf):
        return all(holds(r, user) for r in rule.rules)
    if isinstance(rule, AnyOf):
        return any(holds(r, user) for r in rule.rules)
    if isinstance(rule, Not):
        return not holds(rule.rule, user)
    value = typed(rule.field, user.get(rule.field))
    if isinstance(rule, Missing):
        return value is None
    if value is None:
        return False
    if isinstance(rule, Prefix):
        return fold(value).startswith(fold(rule.text))
    return _compare(value, rule.op, rule.value, FIELDS[rule.field])


def typed(field: str, value: Any) -> Any:
    """A stored or presented value as the kind of its field."""
    if value is None:
        return None
    kind = FIELDS[field]
    if kind == "time":
        return aware_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)
    if kind == "day" and isinstance(value, str):
        return date.fromisoformat(value)
    return value


def _compare(value: Any, op: Op, bound: Any, kind: str) -> bool:
    if kind == "time":
        value, bound = millis(value), millis(bound)
    if op == "<":
        return value < bound
    if op == "<=":
        return value <= bound
    if op == ">":
        return value > bound
    if op == ">=":
        return value >= bound
    return value == bound


def int_range(op: str, value: int) -> tuple[int, int]:
    """The inclusive range of 32-bit integers `v` with `v op value` (empty when low > high)."""
    low, high = {
        "<": (INT32[0], value - 1),
        "<=": (INT32[0], value),
        ">": (value + 1, INT32[1]),
        ">=": (value, INT32[1]),
        "==": (value, value),
    }[op]
    return max(low, INT32[0]), min(high, INT32[1])
