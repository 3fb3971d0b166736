"""up / down / status / env over the three local services."""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from .base import Service
from .elasticsearch import ElasticsearchService
from .errors import ServiceError
from .kafka import KafkaService
from .postgres import PostgresService
from .process import Log, make_dir
from .settings import Settings, load_settings


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    pid: int | None
    port: int
    detail: str
    installed: bool = False
    healthy: bool = False

    def line(self) -> str:
        state = "running" if self.running else "stopped"
        pid = str(self.pid) if self.pid is not None else "-"
        return f"{self.name:<14} {state:<8} pid {pid:<8} port {self.port:<6} {self.detail}"


SERVICE_NAMES = ("elasticsearch", "postgresql", "kafka")


def services(settings: Settings | None = None, only: Collection[str] = ()) -> list[Service]:
    """The managed services (all, or those named in `only`), in start order (Elasticsearch first:
    it is the slowest)."""
    settings = settings or load_settings()
    unknown = set(only) - set(SERVICE_NAMES)
    if unknown:
        raise ServiceError(
            ", ".join(sorted(unknown)), f"unknown service; expected {', '.join(SERVICE_NAMES)}"
        )
    every = [ElasticsearchService(settings), PostgresService(settings), KafkaService(settings)]
    return [s for s in every if not only or s.name in only]


@contextmanager
def _lock(settings: Settings) -> Iterator[None]:
    """One up/down at a time per services dir."""
    make_dir(settings.services_dir)
    with open(settings.services_dir / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _synchronized(log: Log) -> Log:
    lock = threading.Lock()

    def emit(message: str) -> None:
        with lock:
            log(message)

    return emit


def _show_tail(error: ServiceError, log: Log) -> None:
    if error.tail and error.log_file is not None and not error.tail_shown:
        log(f"--- last {len(error.tail)} lines of {error.log_file} ---")
        for line in error.tail:
            log(line)
        log("---")
        error.tail_shown = True


def up(log: Callable[[str], None] = print, only: Collection[str] = ()) -> None:
    """Install what is missing and start every service that is not running; wait until healthy.

    Services boot in parallel: each one's health wait starts as soon as it is launched, while the
    next one installs and starts. If any fails, the others still come up, the tail of the failed
    one's log is printed and its ServiceError raised.
    """
    settings = load_settings()
    emit = _synchronized(log)
    began = time.monotonic()
    errors: list[ServiceError] = []
    waits: list[tuple[Service, Future[None]]] = []
    with _lock(settings), ThreadPoolExecutor(max_workers=3) as pool:
        for service in services(settings, only):
            try:
                pid = service.running_pid()
                if pid is not None:
                    _check_same_ports(service, pid)
                    if service.healthy(timeout=2):
                        emit(f"{service.name}: already running (pid {pid}, port {service.port})")
                        service.warn_config(emit)
                        continue
                    emit(f"{service.name}: pid {pid} is up but not answering yet; waiting")
                    future = pool.submit(_wait_one, service, time.monotonic(), False, emit)
                    waits.append((service, future))
                    continue
                service.clear_stale(emit)
                if not service.is_installed():
                    installing = time.monotonic()
                    emit(f"{service.name}: not installed; installing")
                    service.install(emit)
                    elapsed = time.monotonic() - installing
                    emit(f"{service.name}: {service.install_state()} in {elapsed:.1f} s")
                service.check_ports_free()
                starting = time.monotonic()
                service.start(emit)
                waits.append((service, pool.submit(_wait_one, service, starting, True, emit)))
            except ServiceError as error:
                emit(f"{service.name}: FAILED: {error.what}")
                errors.append(error)
        for service, future in waits:
            try:
                future.result()
            except ServiceError as error:
                emit(f"{service.name}: FAILED: {error.what}")
                errors.append(error)
            except (OSError, RuntimeError, ValueError) as error:  # unexpected: still report it
                errors.append(ServiceError(service.name, f"unexpected error: {error!r}"))
    if errors:
        for error in errors:
            _show_tail(error, emit)
        for error in errors[1:]:
            emit(f"error: {error}")
        raise errors[0]
    total = time.monotonic() - began
    if waits:
        emit(f"all services up in {total:.1f} s")
    else:
        emit(f"nothing to do: all services already running ({total:.1f} s)")


def _check_same_ports(service: Service, pid: int) -> None:
    running = service.recorded_ports()
    wanted = service.wanted_ports()
    if running != wanted:
        ports = ", ".join(str(port) for port in running.values())
        asked = ", ".join(str(port) for port in wanted.values())
        raise ServiceError(
            service.name,
            f"already running (pid {pid}) on port {ports} but the settings ask for {asked}; "
            f"run 'down' and then 'up'",
        )


def _wait_one(service: Service, started: float, ours: bool, emit: Log) -> None:
    pid = service.wait_ready(service.start_timeout)
    if ours:
        service.after_ready(emit)
    elapsed = time.monotonic() - started
    verb = "started" if ours else "ready"
    emit(f"{service.name}: {verb} in {elapsed:.1f} s (pid {pid}, port {service.port})")


def down(log: Callable[[str], None] = print, only: Collection[str] = ()) -> None:
    """Stop what ``up`` started (by the pid files); data and installs stay."""
    settings = load_settings()
    if not settings.services_dir.is_dir():
        for service in reversed(services(settings, only)):
            log(f"{service.name}: not running")
        return
    with _lock(settings):
        for service in reversed(services(settings, only)):
            pid = service.running_pid()
            if pid is None:
                stale = service.recorded_pid()
                service.clear_stale(lambda _message: None)
                note = f" (removed stale pid file of pid {stale})" if stale is not None else ""
                log(f"{service.name}: not running{note}")
                continue
            began = time.monotonic()
            service.stop(pid, log)
            log(f"{service.name}: stopped pid {pid} in {time.monotonic() - began:.1f} s")


def status() -> list[ServiceStatus]:
    """What is installed and running, checked now (never starts or changes anything)."""
    result = []
    for configured in services():
        installed = configured.is_installed()
        pid = configured.running_pid()
        # A running service reports the ports it was started with.
        service = configured.as_started() if pid is not None else configured
        healthy = pid is not None and service.healthy(timeout=2)
        detail = service.install_state()
        if pid is not None:
            extra = service.health_detail() if healthy else ""
            detail += f", {extra}" if extra else ""
            if not healthy:
                detail += ", not answering"
        elif service.recorded_pid() is not None:
            detail += f", stale pid file (pid {service.recorded_pid()} is gone)"
        result.append(
            ServiceStatus(
                name=service.name,
                running=pid is not None,
                pid=pid,
                port=service.port,
                detail=detail,
                installed=installed,
                healthy=healthy,
            )
        )
    return result


def env_lines() -> list[str]:
    """``export COHORTLINE_...=...`` lines for the running services (none if none runs)."""
    lines = []
    for service in services():
        if service.running_pid() is not None:
            lines.append(service.as_started().env_line())
    return lines
