"""The date-range picker's presets (api.dashboard.periods): counted back from the data's latest day."""

from __future__ import annotations

from datetime import date

import pytest
from flask import Flask
from flask_babel import Babel

from api.dashboard.periods import resolve

LATEST = date(2025, 4, 30)


@pytest.fixture(autouse=True)
def app_context():
    app = Flask(__name__)
    Babel(app)
    with app.test_request_context():
        yield


@pytest.mark.parametrize(
    ("preset", "start"),
    [
        ("last_7", date(2025, 4, 24)),
        ("last_30", date(2025, 4, 1)),
        ("last_90", date(2025, 1, 31)),
        ("this_month", date(2025, 4, 1)),
        ("last_12_months", date(2024, 5, 1)),
    ],
)
def test_a_preset_ends_on_the_latest_day(preset, start):
    period = resolve({"range": preset}, LATEST, "last_30")
    assert (period.preset, period.start, period.end, period.error) == (preset, start, LATEST, None)


def test_twelve_months_back_from_january_crosses_the_year():
    period = resolve({"range": "last_12_months"}, date(2025, 1, 15), "last_30")
    assert period.start == date(2024, 2, 1)


def test_no_range_is_the_page_default_and_dates_alone_are_custom():
    assert resolve({}, LATEST, "last_90").preset == "last_90"
    period = resolve({"from": "2025-03-01", "to": "2025-03-31"}, LATEST, "last_30")
    assert (period.preset, period.start, period.end) == ("custom", date(2025, 3, 1), date(2025, 3, 31))


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"range": "forever"}, "Unknown range forever"),
        ({"range": "custom", "from": "2025-03-01"}, "A custom range needs two dates as YYYY-MM-DD"),
        (
            {"range": "custom", "from": "2025-3-1", "to": "2025-03-31"},
            "A custom range needs two dates as YYYY-MM-DD",
        ),
        ({"range": "custom", "from": "2025-04-01", "to": "2025-03-31"}, "The range starts after it ends"),
    ],
)
def test_a_bad_range_falls_back_to_the_default_and_says_why(args, error):
    period = resolve(args, LATEST, "last_30")
    assert (period.preset, period.start, period.end, period.error) == (
        "last_30",
        date(2025, 4, 1),
        LATEST,
        error,
    )
