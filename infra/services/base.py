"""What every managed service provides to the manager."""

from __future__ import annotations

import abc
import dataclasses
import json
from pathlib import Path

from .errors import ServiceError
from .process import Log, pid_alive, port_open, read_pid, remove_file
from .settings import Settings


class Service(abc.ABC):
    """One local service: where it lives, how to install, start, check and stop it."""

    name: str = ""
    start_timeout: float = 120.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.services_dir / self.name

    # --- description ---------------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def port(self) -> int: ...

    @property
    @abc.abstractmethod
    def log_file(self) -> Path:
        """The service's main log, named in errors."""

    @property
    @abc.abstractmethod
    def pid_file(self) -> Path: ...

    @property
    def install_log(self) -> Path:
        return self.root / "install.log"

    @property
    def extra_ports(self) -> list[int]:
        """Ports other than ``port`` the service binds."""
        return []

    # Names of the Settings fields holding this service's ports (recorded at start).
    port_fields: tuple[str, ...] = ()

    @property
    def ports_file(self) -> Path:
        return self.root / "ports.json"

    def wanted_ports(self) -> dict[str, int]:
        return {field: getattr(self.settings, field) for field in self.port_fields}

    def record_ports(self) -> None:
        self.ports_file.write_text(json.dumps(self.wanted_ports()) + "\n", encoding="utf-8")

    def recorded_ports(self) -> dict[str, int]:
        """The ports the running process was started with (the wanted ones if unknown)."""
        try:
            data = json.loads(self.ports_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return self.wanted_ports()
        if not isinstance(data, dict):
            return self.wanted_ports()
        ports = self.wanted_ports()
        for field in self.port_fields:
            value = data.get(field)
            if isinstance(value, int):
                ports[field] = value
        return ports

    def as_started(self) -> Service:
        """This service as configured when it was started (differs if the ports changed since)."""
        ports = self.recorded_ports()
        if ports == self.wanted_ports():
            return self
        return type(self)(dataclasses.replace(self.settings, **ports))

    @abc.abstractmethod
    def marker(self) -> str:
        """A string in the command line of our process (guards against reused pids)."""

    @abc.abstractmethod
    def env_line(self) -> str: ...

    # --- install -------------------------------------------------------------------------------

    @abc.abstractmethod
    def is_installed(self) -> bool: ...

    @abc.abstractmethod
    def install(self, log: Log) -> None: ...

    def install_state(self) -> str:
        return "installed" if self.is_installed() else "not installed"

    # --- run state -----------------------------------------------------------------------------

    def recorded_pid(self) -> int | None:
        return read_pid(self.pid_file)

    def running_pid(self) -> int | None:
        """The pid of our running process, or None (a stale pid file counts as stopped)."""
        pid = self.recorded_pid()
        return pid if pid_alive(pid, self.marker()) else None

    def clear_stale(self, log: Log) -> None:
        """Remove a pid file whose process is gone."""
        pid = self.recorded_pid()
        if pid is not None and not pid_alive(pid, self.marker()):
            log(f"{self.name}: removing stale pid file (pid {pid} is not running)")
            remove_file(self.pid_file)

    @abc.abstractmethod
    def healthy(self, timeout: float = 2.0) -> bool: ...

    def health_detail(self) -> str:
        """Extra words for ``status`` when the service is running and healthy."""
        return ""

    def check_ports_free(self) -> None:
        for port in [self.port, *self.extra_ports]:
            if port_open(port, self.settings.host):
                raise ServiceError(
                    self.name,
                    f"port {port} on {self.settings.host} is already in use by another process "
                    f"(pick another port through the COHORTLINE_*_PORT variables)",
                )

    # --- lifecycle -----------------------------------------------------------------------------

    @abc.abstractmethod
    def start(self, log: Log) -> None:
        """Launch the service; return as soon as possible (``wait_ready`` waits)."""

    @abc.abstractmethod
    def wait_ready(self, timeout: float) -> int:
        """Wait until healthy; return the pid. Raise ServiceError on failure or timeout."""

    def after_ready(self, log: Log) -> None:
        """One-off set-up once healthy (e.g. create a database); nothing by default."""
        return

    def warn_config(self, log: Log) -> None:
        """Called when already running: say if running settings differ from wanted ones."""
        return

    @abc.abstractmethod
    def stop(self, pid: int, log: Log) -> None: ...

    def fail(self, what: str, log_file: Path | None = None) -> ServiceError:
        return ServiceError(self.name, what, log_file or self.log_file)
