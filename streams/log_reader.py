"""Reads the event store's global log in order, as projection records."""

from __future__ import annotations

from collections.abc import Callable

from domain.application import Cohortline
from domain.audit import AuditedEvent
from domain.events import Fact
from projections.records import EventRecord

LogPage = Callable[[int, int], list[AuditedEvent]]
"""(after, limit) → up to `limit` stored events above position `after`, in order."""


class LogReader:
    def __init__(self, event_store: Cohortline, page: LogPage | None = None):
        """`page` reads the log faster than the library's notification log (infra.audit)."""
        self.event_store = event_store
        self.page = page

    def head(self) -> int:
        return self.event_store.recorder.max_notification_id() or 0

    def read(self, after: int, limit: int) -> list[EventRecord]:
        """Up to `limit` events with positions above `after`, in log order."""
        if self.page is not None:
            return [EventRecord.from_fact(e.fact, e.position) for e in self.page(after, limit)]
        notifications = self.event_store.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        records = []
        for notification in notifications:
            fact = self.event_store.mapper.to_domain_event(notification)
            assert isinstance(fact, Fact)
            records.append(EventRecord.from_fact(fact, notification.id))
        return records
