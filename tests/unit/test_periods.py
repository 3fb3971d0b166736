from datetime import UTC, date, datetime, timezone

from projections.periods import end_of, label, offset, period_of, periods_between, shift


def test_weeks_start_on_monday_and_months_on_the_first():
    sunday = datetime(2011, 1, 9, 23, 59, tzinfo=UTC)
    assert period_of("week", sunday) == date(2011, 1, 3)
    assert period_of("month", sunday) == date(2011, 1, 1)
    assert period_of("day", datetime(2011, 1, 9, 23, 30, tzinfo=UTC)) == date(2011, 1, 9)


def test_event_time_is_bucketed_in_utc():
    from datetime import timedelta

    late_evening_in_new_york = datetime(2011, 1, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert period_of("month", late_evening_in_new_york) == date(2011, 2, 1)


def test_shift_offset_and_labels():
    assert shift("month", date(2010, 12, 1), 1) == date(2011, 1, 1)
    assert shift("month", date(2011, 1, 1), -13) == date(2009, 12, 1)
    assert offset("month", date(2010, 12, 1), date(2011, 12, 1)) == 12
    assert offset("week", date(2011, 1, 3), date(2011, 1, 17)) == 2
    assert label("month", date(2011, 1, 1)) == "2011-01" and label("week", date(2011, 1, 3)) == "2011-01-03"
    assert list(periods_between("month", date(2010, 12, 15), date(2011, 2, 1))) == [
        date(2010, 12, 1),
        date(2011, 1, 1),
        date(2011, 2, 1),
    ]
    assert end_of("month", date(2011, 12, 1)) == datetime(2012, 1, 1, tzinfo=UTC)


def test_lifecycle_states_at_the_watermark():
    from projections.lifecycle import Thresholds, resurrection_day, state

    t = Thresholds()
    w = datetime(2011, 6, 30, tzinfo=UTC)
    assert state(datetime(2011, 6, 25, tzinfo=UTC), None, None, w, t) == "new"
    assert state(datetime(2011, 1, 1, tzinfo=UTC), datetime(2011, 6, 1, tzinfo=UTC), None, w, t) == "active"
    assert state(datetime(2011, 1, 1, tzinfo=UTC), datetime(2011, 5, 1, tzinfo=UTC), None, w, t) == "at_risk"
    assert state(datetime(2011, 1, 1, tzinfo=UTC), datetime(2011, 3, 1, tzinfo=UTC), None, w, t) == "churned"
    back = resurrection_day([date(2011, 1, 1), date(2011, 6, 20), date(2011, 6, 21)], 90)
    assert back == date(2011, 6, 20)
    assert (
        state(datetime(2011, 1, 1, tzinfo=UTC), datetime(2011, 6, 21, tzinfo=UTC), back, w, t)
        == "resurrected"
    )
    assert resurrection_day([date(2011, 1, 1), date(2011, 3, 1)], 90) is None
