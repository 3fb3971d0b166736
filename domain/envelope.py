"""The envelope of a fact as sent by a product system, and its validation against the catalogue."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.catalogue import (
    CONTEXT_FIELDS,
    TYPES,
    FieldSpec,
    TypeSpec,
    money_field,
)

ENVELOPE_FIELDS = frozenset({"event_id", "type", "occurred_at", "user_id", "data", "context"})
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
MAX_DECIMAL_DIGITS = 18
NO_NUL = "must not contain NUL characters (no database text holds them)"
TEXT_PATTERN = "^[^\\u0000]*$"
"""What `NO_NUL` says, as JSON Schema writes it."""


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


@dataclass(frozen=True)
class Envelope:
    """A validated fact: normalised types (aware UTC datetimes, Decimals), ready for the domain."""

    type: str
    event_id: str
    occurred_at: datetime
    user_id: str | None
    data: dict[str, Any]
    context: dict[str, Any]

    @property
    def spec(self) -> TypeSpec:
        return TYPES[self.type]

    @property
    def stream_key(self) -> str:
        spec = self.spec
        if spec.stream_key is None:
            assert self.user_id is not None
            return self.user_id
        return str(self.data[spec.stream_key])


class InvalidEnvelope(Exception):
    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


def parse_timestamp(value: object) -> datetime | None:
    """An RFC 3339 timestamp with offset, as an aware UTC datetime; None when malformed or outside
    the years 1 to 9999 once in UTC."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        return None
    text = value.replace("z", "Z").replace("Z", "+00:00")
    fraction = re.search(r"\.(\d+)", text)
    if fraction and len(fraction.group(1)) > 6:
        text = text.replace(fraction.group(0), "." + fraction.group(1)[:6])
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        return None


def format_timestamp(value: datetime | None) -> str | None:
    """An instant as the contract writes it: RFC 3339 in UTC with `Z` (a naive value is UTC)."""
    if value is None:
        return None
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return utc.isoformat().replace("+00:00", "Z")


def parse_envelope(raw: object, *, from_sender: bool = True) -> Envelope:
    """Validate one raw envelope; raise InvalidEnvelope listing every problem found."""
    if not isinstance(raw, dict):
        raise InvalidEnvelope([FieldError("", "an event must be a JSON object")])
    errors: list[FieldError] = []
    errors += [FieldError(k, "unknown field") for k in sorted(set(raw) - ENVELOPE_FIELDS)]

    spec = _type_spec(raw.get("type"), from_sender, errors)
    event_id = _event_id(raw.get("event_id"), errors)
    occurred_at = parse_timestamp(raw.get("occurred_at"))
    if occurred_at is None:
        errors.append(
            FieldError("occurred_at", "required RFC 3339 timestamp with offset, e.g. 2011-01-04T10:00:00Z")
        )
    user_id = _user_id(raw.get("user_id"), spec, errors)
    data = _fields(raw.get("data"), spec.fields if spec else None, "data", errors)
    context = _fields(raw.get("context"), CONTEXT_FIELDS, "context", errors, optional_object=True)
    if errors:
        raise InvalidEnvelope(errors)
    assert spec is not None and occurred_at is not None
    return Envelope(spec.name, event_id, occurred_at, user_id, data, context)


def _type_spec(value: object, from_sender: bool, errors: list[FieldError]) -> TypeSpec | None:
    if value is None:
        errors.append(FieldError("type", "required"))
        return None
    spec = TYPES.get(value) if isinstance(value, str) else None
    if spec is None or (from_sender and not spec.accepted_from_senders):
        errors.append(FieldError("type", f"unknown event type {value!r}"))
        return None
    return spec


def _event_id(value: object, errors: list[FieldError]) -> str:
    if value is None:
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(str(value))) if isinstance(value, str) else _bad_event_id(errors)
    except ValueError:
        return _bad_event_id(errors)


def _bad_event_id(errors: list[FieldError]) -> str:
    errors.append(FieldError("event_id", "must be a UUID string"))
    return ""


def _user_id(value: object, spec: TypeSpec | None, errors: list[FieldError]) -> str | None:
    if value is None:
        if spec is not None and spec.needs_user:
            errors.append(FieldError("user_id", "required"))
        return None
    if spec is not None and not spec.needs_user:
        errors.append(FieldError("user_id", f"{spec.name} takes no user_id"))
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 128:
        errors.append(FieldError("user_id", "must be a string of 1 to 128 characters"))
        return None
    if "\x00" in value:
        errors.append(FieldError("user_id", NO_NUL))
        return None
    return value


class _Invalid(Exception):
    def __init__(self, message: str):
        self.message = message


def _fields(
    value: object,
    specs: tuple[FieldSpec, ...] | None,
    prefix: str,
    errors: list[FieldError],
    optional_object: bool = False,
) -> dict[str, Any]:
    """The valid fields of `value` converted; every problem appended to `errors` with its path."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        errors.append(FieldError(prefix, "must be an object"))
        return {}
    if specs is None:
        return {}
    by_name, required = _index(specs)
    out: dict[str, Any] = {}
    for name, raw in value.items():
        spec = by_name.get(name)
        if spec is None:
            errors.append(FieldError(f"{prefix}.{name}", "unknown field"))
        elif raw is None:
            continue
        elif spec.kind == "items":
            items = _items(raw, f"{prefix}.{name}", errors)
            if items is not None:
                out[name] = items
        else:
            try:
                out[name] = _CONVERTERS[spec.kind](spec, raw)
            except _Invalid as invalid:
                errors.append(FieldError(f"{prefix}.{name}", invalid.message))
    for name in required:
        if value.get(name) is None:
            errors.append(FieldError(f"{prefix}.{name}", "required"))
    return out


_indexes: dict[int, tuple[dict[str, FieldSpec], tuple[str, ...]]] = {}


def _index(specs: tuple[FieldSpec, ...]) -> tuple[dict[str, FieldSpec], tuple[str, ...]]:
    """Field specs by name, and the required names, computed once per (module-level) spec tuple."""
    found = _indexes.get(id(specs))
    if found is None:
        found = _indexes[id(specs)] = ({s.name: s for s in specs}, tuple(s.name for s in specs if s.required))
    return found


def _string(spec: FieldSpec, value: object) -> str:
    if value.__class__ is not str or not 0 < len(value) <= spec.max_length:  # type: ignore[arg-type]
        raise _Invalid(f"must be a string of 1 to {spec.max_length} characters")
    if "\x00" in value:  # type: ignore[operator]
        raise _Invalid(NO_NUL)
    return value  # type: ignore[return-value]


def _currency(spec: FieldSpec, value: object) -> str:
    if not isinstance(value, str) or not _CURRENCY.match(value):
        raise _Invalid("must be an ISO 4217 code such as EUR")
    return value


def _country(spec: FieldSpec, value: object) -> str:
    if not isinstance(value, str) or not _COUNTRY.match(value):
        raise _Invalid("must be an ISO 3166-1 alpha-2 code such as GB")
    return value


def _enum(spec: FieldSpec, value: object) -> str:
    if value not in spec.choices:
        raise _Invalid(f"must be one of {', '.join(spec.choices)}")
    return str(value)


def _decimal(spec: FieldSpec, value: object) -> Decimal:
    if isinstance(value, str) and not re.fullmatch(r"\d+(\.\d+)?", value):
        raise _Invalid("must be a plain decimal string such as 12.34")
    number = to_decimal(value)
    if number is None:
        raise _Invalid("must be a decimal number (string or number)")
    bound = spec.minimum or 0
    if number < bound or (spec.exclusive_minimum and number == bound):
        raise _Invalid(f"must be {'>' if spec.exclusive_minimum else '>='} {bound}")
    if spec.magnitude_below is not None and abs(number) >= spec.magnitude_below:
        raise _Invalid(f"must be less than {spec.magnitude_below:,} in magnitude")
    if spec.max_places is not None and -number.normalize().as_tuple().exponent > spec.max_places:
        raise _Invalid(f"must have at most {spec.max_places} decimal places")
    return number


def to_decimal(value: object) -> Decimal | None:
    """A finite decimal of at most 18 significant digits from a JSON string or number."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        return None
    try:
        number = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        return None
    if not number.is_finite() or len(number.normalize().as_tuple().digits) > MAX_DECIMAL_DIGITS:
        return None
    return number


def _int(spec: FieldSpec, value: object) -> int:
    """An integer, also as JSON writes it with a zero fraction (`340935.0`), as JSON Schema reads it."""
    if value.__class__ is float and value.is_integer():  # type: ignore[attr-defined]
        value = int(value)  # type: ignore[call-overload]
    if value.__class__ is not int:
        raise _Invalid("must be an integer")
    if spec.minimum is not None and value < spec.minimum:  # type: ignore[operator]
        raise _Invalid(f"must be >= {spec.minimum}")
    if spec.maximum is not None and value > spec.maximum:  # type: ignore[operator]
        raise _Invalid(f"must be <= {spec.maximum}")
    return value  # type: ignore[return-value]


def _timestamp(spec: FieldSpec, value: object) -> datetime:
    parsed = parse_timestamp(value)
    if parsed is None:
        raise _Invalid("must be an RFC 3339 timestamp with offset")
    return parsed


def _object(spec: FieldSpec, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid("must be an object")
    return value


ITEM_FIELDS = (
    FieldSpec("sku", "string", True, max_length=128),
    FieldSpec("quantity", "int", True, minimum=1),
    money_field("unit_price"),
)


def _items(value: object, path: str, errors: list[FieldError]) -> list[dict] | None:
    if not isinstance(value, list):
        errors.append(FieldError(path, "must be an array"))
        return None
    before = len(errors)
    items = [_fields(item, ITEM_FIELDS, f"{path}[{i}]", errors) for i, item in enumerate(value)]
    return items if len(errors) == before else None


_CONVERTERS: dict[str, Any] = {
    "string": _string,
    "currency": _currency,
    "country": _country,
    "enum": _enum,
    "decimal": _decimal,
    "int": _int,
    "timestamp": _timestamp,
    "object": _object,
}
