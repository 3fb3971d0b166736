"""The date-range picker's presets, resolved against the latest day the read models know (so a
history that ended last year still opens on its last 30 days) and kept in the query string."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from flask_babel import lazy_gettext as _l

PRESETS = {
    "last_7": _l("Last 7 days"),
    "last_30": _l("Last 30 days"),
    "last_90": _l("Last 90 days"),
    "this_month": _l("This month"),
    "last_12_months": _l("Last 12 months"),
    "custom": _l("Custom"),
}
DAYS = {"last_7": 7, "last_30": 30, "last_90": 90}


@dataclass(frozen=True)
class Period:
    preset: str
    start: date
    end: date
    latest: date
    """The day the presets count back from."""
    error: str | None = None
    """Why the query string's range was not used (the page says so and shows the default)."""


def resolve(args: Mapping[str, str], latest: date, default: str) -> Period:
    preset = args.get("range") or ("custom" if args.get("from") or args.get("to") else default)
    if preset not in PRESETS:
        return _preset(default, latest, error=str(_l("Unknown range %(name)s", name=preset)))
    if preset != "custom":
        return _preset(preset, latest)
    try:
        start = date.fromisoformat(args.get("from", ""))
        end = date.fromisoformat(args.get("to", ""))
    except ValueError:
        return _preset(default, latest, error=str(_l("A custom range needs two dates as YYYY-MM-DD")))
    if start > end:
        return _preset(default, latest, error=str(_l("The range starts after it ends")))
    return Period("custom", start, end, latest)


def _preset(preset: str, latest: date, error: str | None = None) -> Period:
    if preset in DAYS:
        start = latest - timedelta(days=DAYS[preset] - 1)
    elif preset == "this_month":
        start = latest.replace(day=1)
    else:
        year, month = divmod(latest.year * 12 + latest.month - 1 - 11, 12)
        start = date(year, month + 1, 1)
    return Period(preset, start, latest, latest, error)
