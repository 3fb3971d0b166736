"""Errors the domain raises when a fact breaks a rule."""

from __future__ import annotations

from dataclasses import dataclass


class DomainConflict(Exception):
    """A fact that the current state of its stream does not allow (a 409 for senders)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class IndexedConflict:
    index: int
    code: str
    message: str


class BatchRejected(Exception):
    """Some facts of a batch broke rules; nothing of the batch was recorded."""

    def __init__(self, conflicts: list[IndexedConflict]):
        super().__init__(f"{len(conflicts)} event(s) broke a rule")
        self.conflicts = conflicts


class UnknownUser(Exception):
    """No event names this user."""
