"""Errors raised by the local services manager."""

from __future__ import annotations

from pathlib import Path

TAIL_LINES = 20


def tail_lines(path: Path | None, count: int = TAIL_LINES) -> list[str]:
    """Return the last ``count`` lines of a text file ([] if it is missing or unreadable)."""
    if path is None:
        return []
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[-count:]


class ServiceError(Exception):
    """A service could not be installed, started, checked or stopped.

    ``str()`` names the service, what failed and the log file to read. ``tail`` holds the last
    lines of that log (captured when the error is raised); ``details()`` renders both.
    """

    def __init__(
        self,
        service: str,
        what: str,
        log_file: Path | None = None,
        tail: list[str] | None = None,
    ) -> None:
        self.service = service
        self.what = what
        self.log_file = log_file
        self.tail = tail if tail is not None else tail_lines(log_file)
        self.tail_shown = False
        super().__init__(str(self))

    def __str__(self) -> str:
        message = f"{self.service}: {self.what}"
        if self.log_file is not None:
            message += f" (log: {self.log_file})"
        return message

    def details(self) -> str:
        """The message followed by the tail of the log file, if any."""
        if not self.tail or self.log_file is None:
            return str(self)
        header = f"--- last {len(self.tail)} lines of {self.log_file} ---"
        return "\n".join([str(self), header, *self.tail, "---"])


class SettingsError(ServiceError):
    """A ``COHORTLINE_*`` environment variable has a malformed value."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        super().__init__("settings", f"{variable}: {problem}")
