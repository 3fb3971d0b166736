"""Every analytics answer of the projections compared with the reference definitions, for one
history and one arrival order; shared by the SQLite and PostgreSQL property tests."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Connection, Engine, select

from projections import reports
from projections.presenters import present_user
from projections.records import EventRecord
from projections.rfm import present_rfm, rfm_cuts
from projections.users import money, users
from tests import reference
from tests.properties import project

START, END = date(2011, 1, 1), date(2011, 4, 30)


def assert_reports_equal_reference(
    engine: Engine, events: list[EventRecord], batches: list[list[EventRecord]]
) -> None:
    project(engine, batches)
    assert_read_models_equal_reference(engine, events)


def assert_read_models_equal_reference(
    engine: Engine, events: list[EventRecord], start: date = START, end: date = END
) -> None:
    """Every report read from the read models of `engine` equals the definitions over `events`."""
    START, END = start, end  # noqa: N806 - the range asked below
    watermark = max(e.occurred_at for e in events)
    with engine.connect() as conn:
        for granularity in ("day", "week", "month"):
            for kind, filter_ in (
                ("active", None),
                ("scene:social", "scene:social"),
                ("tool:check_in", "tool:check_in"),
            ):
                assert reports.active_users(conn, granularity, START, END, kind) == reference.active_users(
                    events, granularity, START, END, filter_
                ), (granularity, kind)
        for granularity in ("week", "month"):
            assert reports.frequency(conn, granularity, START, END) == reference.frequency(
                events, granularity, START, END
            )
            assert reports.lifecycle(conn, granularity, START, END) == reference.lifecycle(
                events, granularity, START, END
            )
        assert reports.stickiness(conn, date(2011, 1, 10), END) == reference.stickiness(
            events, date(2011, 1, 10), END
        )
        for granularity, periods in (("day", 20), ("week", 8), ("month", 4)):
            for definition in ("first_seen", "signup", "first_order"):
                for returns in ("active", "order"):
                    for mode in ("on", "on_or_after"):
                        for breakdown in (None, "channel", "country"):
                            asked = (
                                granularity,
                                definition,
                                returns,
                                mode,
                                START,
                                END,
                                periods,
                                watermark,
                                breakdown,
                            )
                            got = reports.retention(conn, *asked)
                            want = reference.retention(events, *asked)
                            assert got == want, (granularity, definition, returns, mode, breakdown)
        assert reports.repurchase(conn, START, END) == reference.repurchase(events, START, END)
        assert reports.repurchase(conn, date(2011, 2, 1), date(2011, 2, 28)) == reference.repurchase(
            events, date(2011, 2, 1), date(2011, 2, 28)
        )
        assert rfm_of_every_customer(conn, watermark) == reference.rfm(events, watermark)


def rfm_of_every_customer(conn: Connection, watermark: datetime) -> dict[str, dict]:
    """user → RFM as the API presents it, monetary in 1/10,000 units like the reference."""
    cuts = rfm_cuts(conn)
    found = {}
    for row in conn.execute(select(users)).mappings():
        rfm = present_rfm(present_user(dict(row)), watermark, cuts)
        if rfm is not None:
            found[row["user_id"]] = {**rfm, "monetary": money(Decimal(rfm["monetary"]))}
    return found
