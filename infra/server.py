"""`cohortline serve`: the API in gunicorn worker processes, and on the embedded default one more
process that runs the projections (so they run once, however many API workers). The gunicorn
arbiter starts that process once it is listening and stops it when it exits; workers never touch it.

The projections process is run with `python -m infra.server`, its settings pickled on its standard
input."""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from sqlalchemy import Engine

from infra.config import Settings
from infra.database import checkpoint_wal, wal_bytes

log = logging.getLogger("cohortline")

PROJECTOR_STOP_TIMEOUT_S = 40
"""More than the 30 s its follower is given to finish the batch in hand (streams.local)."""
WAL_CHECK_EVERY_S = 1
WAL_LIMIT_BYTES = 64 * 2**20
"""The SQLite WAL size above which the projections process checkpoints and truncates it."""


MULTIPROCESS_METRICS = "PROMETHEUS_MULTIPROC_DIR"


def use_multiprocess_metrics() -> Path:
    """Have every process of `cohortline serve` (API workers, the projections process) write its
    metrics to one directory that /metrics sums (prometheus_client's multiprocess mode). Called
    before prometheus_client is first imported: it picks the mode then. The directory is
    PROMETHEUS_MULTIPROC_DIR when set (emptied now), else a temporary one removed at exit."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("use_multiprocess_metrics() must run before prometheus_client is imported")
    configured = os.environ.get(MULTIPROCESS_METRICS)
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    else:
        directory = Path(tempfile.mkdtemp(prefix="cohortline-metrics-"))
        owner = os.getpid()
        atexit.register(lambda: os.getpid() == owner and shutil.rmtree(directory, ignore_errors=True))
    os.environ[MULTIPROCESS_METRICS] = str(directory)
    return directory


class Projector:
    """The embedded default's projections process, a child of the process that starts it.

    A subprocess rather than a multiprocessing.Process: gunicorn forks its workers with a copy of
    the handle, and multiprocessing's exit handler would try to join it from each of them. And
    gunicorn's arbiter reaps every child with waitpid(-1), so it may reap this one first: a Popen
    whose child was reaped elsewhere reads as exited, so stopping it then neither hangs nor
    signals a pid that may have been reused."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None
        self._owner: int | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        self._owner = os.getpid()
        self.process = subprocess.Popen([sys.executable, "-m", "infra.server"], stdin=subprocess.PIPE)
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(pickle.dumps(self.settings))
            self.process.stdin.close()
        except BrokenPipeError:
            pass  # it died at once: the watcher reports it
        threading.Thread(target=self._watch, name="projector-watch", daemon=True).start()
        log.info("projections process %s started", self.process.pid)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after PROJECTOR_STOP_TIMEOUT_S; only in the process that started it
        (gunicorn workers are forked with a copy of this object), and only once."""
        if self.process is None or os.getpid() != self._owner or self._stopping.is_set():
            return
        self._stopping.set()
        self.process.terminate()
        try:
            code = self.process.wait(PROJECTOR_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log.error(
                "projections process %s did not stop in %ss; killing it",
                self.process.pid,
                PROJECTOR_STOP_TIMEOUT_S,
            )
            self.process.kill()
            code = self.process.wait()
        log.info("projections process %s stopped (exit code %s)", self.process.pid, code)

    def _watch(self) -> None:
        """Report an exit that `stop` did not ask for: exit code 0 when it was sent SIGTERM or SIGINT
        itself (as when the whole process group is), anything else when it died."""
        assert self.process is not None
        code = self.process.wait()
        if self._stopping.is_set():
            return
        pid = self.process.pid
        if code == 0:
            log.warning("projections process %s was stopped while the API is serving", pid)
        else:
            log.error(
                "projections process %s died (exit code %s): the read models no longer advance until "
                "`cohortline serve` restarts",
                pid,
                code,
            )


class ApiServer(BaseApplication):  # type: ignore[misc]
    def __init__(
        self,
        settings: Settings,
        host: str,
        port: int,
        workers: int,
        open_mode: bool,
        projector: Projector | None = None,
    ):
        self.settings = settings
        self.bind = f"{host}:{port}"
        self.workers = workers
        self.open_mode = open_mode
        self.projector = projector
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", self.bind)
        self.cfg.set("workers", self.workers)
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("threads", 4)
        self.cfg.set("timeout", 120)
        self.cfg.set("graceful_timeout", 20)
        self.cfg.set("proc_name", "cohortline-api")
        self.cfg.set("errorlog", "-")
        if self.projector is not None:
            self.cfg.set("when_ready", self.when_ready)
            self.cfg.set("on_exit", self.on_exit)

    def when_ready(self, _arbiter: Any) -> None:
        """Arbiter only, listening, before the first worker is forked."""
        assert self.projector is not None
        self.projector.start()

    def on_exit(self, _arbiter: Any) -> None:
        """Arbiter only, after its workers have stopped."""
        assert self.projector is not None
        self.projector.stop()

    def load(self) -> Any:
        """Runs in each worker after the fork: engines and pools are the worker's own."""
        from api.app import create_app
        from infra.bootstrap import build_system

        system = build_system(self.settings)
        log.info(
            "worker %s serving (%s)", os.getpid(), ", ".join(f"{k}={v}" for k, v in system.backends.items())
        )
        return create_app(system.api_context(open_mode=self.open_mode))


def run_projections(settings: Settings) -> None:
    """The in-process projections of the embedded default, until SIGTERM or SIGINT."""
    from infra.bootstrap import build_system
    from streams.local import LocalFollower

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    system = build_system(settings)
    follower = LocalFollower(system.log_reader(), system.runners, read_engine=system.read_engine)
    follower.start()
    if system.engine.dialect.name == "sqlite":
        threading.Thread(target=keep_wal_small, args=(system.engine, stop), daemon=True).start()
    log.info("projections following the event store in process (pid %s)", os.getpid())
    stop.wait()
    follower.stop()
    system.close()


def keep_wal_small(engine: Engine, stop: threading.Event) -> None:
    """Checkpoint the SQLite WAL whenever it outgrows WAL_LIMIT_BYTES (infra.database.checkpoint_wal),
    from the one projections process."""
    while not stop.wait(WAL_CHECK_EVERY_S):
        try:
            if wal_bytes(engine) > WAL_LIMIT_BYTES and not checkpoint_wal(engine):
                log.info("WAL checkpoint deferred: readers or a writer stayed busy")
        except Exception:
            log.warning("WAL checkpoint failed; trying again later", exc_info=True)


def serve(settings: Settings, host: str, port: int, workers: int, open_mode: bool, projections: bool) -> int:
    projector = Projector(settings) if settings.embedded and projections else None
    try:
        ApiServer(settings, host, port, workers, open_mode, projector).run()
    finally:
        if projector is not None:
            projector.stop()  # when gunicorn exited without on_exit; a no-op in its workers
    return 0


if __name__ == "__main__":
    run_projections(pickle.load(sys.stdin.buffer))
