"""Search rules (projections.rules) compiled to Elasticsearch queries over the user documents
(projections.search.INDEX_MAPPING).

Elasticsearch keeps a `date` in milliseconds (rounded down) and compares it with a bound rounded
down the same way, which is what a rule means by comparing times; bounds are sent as exact epoch
milliseconds. Integer bounds are kept within the `integer` field's range, which Elasticsearch
would otherwise refuse."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from projections.rules import (
    FIELDS,
    INT32,
    AllOf,
    AnyOf,
    Compare,
    Missing,
    Not,
    Prefix,
    Rule,
    int_range,
    millis,
)

MATCH_NONE: dict[str, Any] = {"match_none": {}}
MATCH_ALL: dict[str, Any] = {"match_all": {}}
_RANGE_OPS = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


def to_elasticsearch(rule: Rule) -> dict[str, Any]:
    """The query (filter context) that matches exactly the documents for which `rule` holds."""
    if isinstance(rule, AllOf):
        return {"bool": {"filter": [to_elasticsearch(r) for r in rule.rules]}} if rule.rules else MATCH_ALL
    if isinstance(rule, AnyOf):
        if not rule.rules:
            return MATCH_NONE
        return {"bool": {"should": [to_elasticsearch(r) for r in rule.rules], "minimum_should_match": 1}}
    if isinstance(rule, Not):
        return {"bool": {"must_not": [to_elasticsearch(rule.rule)]}}
    if isinstance(rule, Missing):
        return {"bool": {"must_not": [{"exists": {"field": rule.field}}]}}
    if isinstance(rule, Prefix):
        # Elasticsearch documents `case_insensitive` as ASCII case-insensitive matching.
        return {"prefix": {rule.field: {"value": rule.text, "case_insensitive": True}}}
    return _compare(rule)


def _compare(rule: Compare) -> dict[str, Any]:
    kind = FIELDS[rule.field]
    if kind == "int":
        return _int_range(rule)
    if kind in ("time", "day"):
        at = rule.value if kind == "time" else datetime.combine(rule.value, time())
        return _range(rule.field, rule.op, millis(at), {"format": "epoch_millis"})
    if rule.op == "==":
        return {"term": {rule.field: rule.value}}
    return _range(rule.field, rule.op, rule.value, {})


def _range(field: str, op: str, value: Any, extra: dict[str, Any]) -> dict[str, Any]:
    bounds = {"gte": value, "lte": value} if op == "==" else {_RANGE_OPS[op]: value}
    return {"range": {field: {**bounds, **extra}}}


def _int_range(rule: Compare) -> dict[str, Any]:
    low, high = int_range(rule.op, rule.value)
    if low > high:
        return MATCH_NONE
    bounds = {}
    if low > INT32[0]:
        bounds["gte"] = low
    if high < INT32[1]:
        bounds["lte"] = high
    return {"range": {rule.field: bounds}} if bounds else {"exists": {"field": rule.field}}
