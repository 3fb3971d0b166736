"""A scratch copy whose tables cannot be made gives back its lock and its connection, on both
storages: the next rebuild or verification can start, and the pool is whole."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from domain.envelope import parse_envelope
from infra.demo import demo_events
from projections.tracking import tracking
from streams.log_reader import LogReader
from streams.rebuild import ScratchCopy


class Uncreatable:
    """A projection that lists the tracking table, which every scratch copy makes anyway: the copy
    fails on making it twice."""

    name = "uncreatable"
    tables = (tracking,)

    def apply(self, conn, events):
        return {}


def test_a_failed_scratch_copy_frees_its_lock_and_connection(system):
    system.event_store.record([parse_envelope(e) for e in demo_events()[:50]])
    reader = LogReader(system.event_store)
    assert system.engine.pool.checkedout() == 0

    with pytest.raises(DBAPIError):
        ScratchCopy(system.engine, reader, Uncreatable())

    assert system.engine.pool.checkedout() == 0
    copy = ScratchCopy(system.engine, reader, system.runners[0].projection)  # the lock is free
    try:
        copy.fill()
        assert copy.position == reader.head()
    finally:
        copy.close()
    assert system.engine.pool.checkedout() == 0
