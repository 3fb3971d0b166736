"""`cohortline serve`: the API in gunicorn worker processes, and on the embedded default one more
process that runs the projections in process (so they run once, however many API workers)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from typing import Any

from gunicorn.app.base import BaseApplication

from infra.config import Settings

log = logging.getLogger("cohortline")


class ApiServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, host: str, port: int, workers: int, open_mode: bool):
        self.settings = settings
        self.bind = f"{host}:{port}"
        self.workers = workers
        self.open_mode = open_mode
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
    """The in-process projections of the embedded default, until SIGTERM."""
    from infra.bootstrap import build_system
    from streams.local import LocalFollower

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    system = build_system(settings)
    follower = LocalFollower(system.log_reader(), system.runners)
    follower.start()
    log.info("projections following the event store in process (pid %s)", os.getpid())
    stop.wait()
    follower.stop()
    system.close()


def serve(settings: Settings, host: str, port: int, workers: int, open_mode: bool, projections: bool) -> int:
    projector = None
    if settings.embedded and projections:
        projector = multiprocessing.get_context("spawn").Process(
            target=run_projections, args=(settings,), name="cohortline-projections"
        )
        projector.start()
    try:
        ApiServer(settings, host, port, workers, open_mode).run()
    finally:
        if projector is not None:
            projector.terminate()
            projector.join(30)
    return 0
