"""What can go wrong while applying events, by what should happen next (README "Operations"):

- `TransientError`: a backend is unavailable; the batch is retried with back-off.
- `InvalidEvent`: the projection cannot hold this event; it is dead-lettered and the stream moves on.
- `DocumentRejected`: the search index refuses the event's document; dead-lettered likewise.

Anything else is a bug in Cohortline's own code and halts the projection at the event
(projections.halts)."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError


class TransientError(Exception):
    """A backend is unavailable: the batch is retried later, not dead-lettered."""


class InvalidEvent(Exception):
    """An event the projection cannot hold (e.g. an amount beyond what its columns keep)."""


class DocumentRejected(Exception):
    """The search index refused a document for what it holds (e.g. a mapping error)."""


def storable(text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL characters; keep them visible instead."""
    return text.replace("\x00", "\\x00") if text else text


def database_unavailable(error: BaseException) -> bool:
    """The database is unavailable or the connection was lost (not a bug in a statement)."""
    return isinstance(error, DBAPIError) and (
        error.connection_invalidated or isinstance(error, (OperationalError, InterfaceError))
    )
