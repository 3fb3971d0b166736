"""The embedded default: projections follow the event store in process, without Kafka."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine

from projections.failures import TransientError
from projections.halts import ProjectionHalted
from projections.runner import Delivery, ProjectionRunner
from projections.tracking import LOCAL_PARTITION, positions
from streams.log_reader import LogReader

log = logging.getLogger(__name__)


class LocalFollower:
    """Polls the log after each projection's tracked position and applies it in batches."""

    def __init__(
        self,
        reader: LogReader,
        runners: list[ProjectionRunner],
        batch_size: int = 1000,
        read_engine: Engine | None = None,
    ):
        """`batch_size` events are applied per write transaction; `read_engine` reads the tracked
        positions (default: each runner's engine)."""
        self.reader = reader
        self.runners = runners
        self.batch_size = batch_size
        self.read_engine = read_engine
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> int:
        """Apply at most one batch to each projection; returns the events read. A halted projection
        is skipped until the process restarts (the runner logged and recorded why)."""
        read = 0
        for runner in self.runners:
            if runner.halted:
                continue
            with (self.read_engine or runner.engine).connect() as conn:
                after = positions(conn, runner.name).get(LOCAL_PARTITION, 0)
            records = self.reader.read(after, self.batch_size)
            try:
                runner.process([Delivery(LOCAL_PARTITION, r.position, None, r) for r in records])
            except ProjectionHalted:
                continue
            read += len(records)
        return read

    def catch_up(self) -> None:
        """Apply everything recorded so far."""
        while self.step():
            pass

    def start(self, poll_interval: float = 0.1) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(poll_interval,), name="projections", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self, poll_interval: float) -> None:
        while not self._stop.is_set():
            try:
                if not self.step():
                    self._stop.wait(poll_interval)
            except TransientError:
                log.warning("projections: a backend is unavailable; retrying", exc_info=True)
                time.sleep(1)
            except Exception:
                log.exception("projections: unexpected failure; retrying")
                time.sleep(1)
