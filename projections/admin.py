"""What can go wrong when operators rebuild or verify read models (shared by the API and the code
that does the work)."""

from __future__ import annotations


class UnknownProjection(KeyError):
    """No projection has this name."""


class RebuildRunning(Exception):
    """A rebuild of this projection is under way."""


class ReadModelsMoving(Exception):
    """The live partitions sit at different positions, so there is no one point to compare at."""
