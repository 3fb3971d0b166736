"""PostgreSQL 15 from Debian's packages, one cluster under the services dir."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Any

import psycopg2

from .base import Service
from .errors import ServiceError
from .process import (
    Log,
    apt_install,
    as_user,
    check_traversable,
    chown_tree,
    is_root,
    make_dir,
    pid_alive,
    read_pid,
    remove_file,
    run_logged,
    stop_pid,
    wait_for,
    write_pid,
)

PG_MAJOR = 15
PG_BIN = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
PG_USER = "postgres"
DATABASE = "cohortline"


def _connect(host: str, port: int, dbname: str, timeout: float) -> Any:
    return psycopg2.connect(
        host=host,
        port=port,
        user=PG_USER,
        dbname=dbname,
        connect_timeout=max(1, int(timeout)),
    )


class PostgresService(Service):
    name = "postgresql"
    start_timeout = 60.0
    port_fields = ("postgres_port",)

    @property
    def port(self) -> int:
        return self.settings.postgres_port

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgresql.log"

    @property
    def pid_file(self) -> Path:
        return self.root / "postgresql.pid"

    def marker(self) -> str:
        return str(self.data_dir)

    def env_line(self) -> str:
        url = f"postgresql://{PG_USER}@{self.settings.host}:{self.port}/{DATABASE}"
        return f"export COHORTLINE_DATABASE_URL={url}"

    # --- install -------------------------------------------------------------------------------

    def binaries_present(self) -> bool:
        return (PG_BIN / "initdb").is_file() and (PG_BIN / "pg_ctl").is_file()

    def is_installed(self) -> bool:
        return self.binaries_present()

    def install_state(self) -> str:
        if not self.binaries_present():
            return "not installed"
        if not (self.data_dir / "PG_VERSION").is_file():
            return f"installed (PostgreSQL {PG_MAJOR}), no cluster yet"
        return f"installed (PostgreSQL {PG_MAJOR})"

    def install(self, log: Log) -> None:
        make_dir(self.root)
        apt_install(["postgresql"], service=self.name, log_file=self.install_log, log=log)
        if not self.binaries_present():
            raise self.fail(f"{PG_BIN / 'initdb'} still missing after apt-get", self.install_log)

    # --- run state -----------------------------------------------------------------------------

    def recorded_pid(self) -> int | None:
        # Our pid file, else the postmaster's own lock file (same cluster, so also ours).
        pid = read_pid(self.pid_file)
        if pid is None:
            pid = read_pid(self.data_dir / "postmaster.pid")
        return pid

    def clear_stale(self, log: Log) -> None:
        super().clear_stale(log)
        lock = self.data_dir / "postmaster.pid"
        pid = read_pid(lock)
        if pid is not None and not pid_alive(pid, self.marker()):
            # The pid may have been reused by an unrelated process: PostgreSQL would refuse.
            remove_file(lock)

    def healthy(self, timeout: float = 2.0) -> bool:
        try:
            conn = _connect(self.settings.host, self.port, "postgres", timeout)
        except (psycopg2.Error, OSError):
            return False
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT 1")
                return cursor.fetchone() == (1,)
        except (psycopg2.Error, OSError):
            return False
        finally:
            conn.close()

    def running_fsync(self) -> str | None:
        try:
            conn = _connect(self.settings.host, self.port, "postgres", 2)
        except (psycopg2.Error, OSError):
            return None
        try:
            with conn.cursor() as cursor:
                cursor.execute("SHOW fsync")
                row = cursor.fetchone()
                return str(row[0]) if row else None
        except (psycopg2.Error, OSError):
            return None
        finally:
            conn.close()

    def health_detail(self) -> str:
        fsync = self.running_fsync()
        if fsync is None:
            return ""
        return "durable (fsync on)" if fsync == "on" else "fast (fsync off)"

    def warn_config(self, log: Log) -> None:
        fsync = self.running_fsync()
        wanted = "on" if self.settings.postgres_durable else "off"
        if fsync is not None and fsync != wanted:
            log(
                f"{self.name}: note: running with fsync={fsync} but COHORTLINE_POSTGRES_DURABLE "
                f"asks for fsync={wanted}; run 'down' then 'up' to apply"
            )

    # --- lifecycle -----------------------------------------------------------------------------

    def _pg(self, tool: str) -> str:
        return str(PG_BIN / tool)

    def _server_options(self) -> str:
        options = [
            f"-c listen_addresses={self.settings.host}",
            f"-p {self.port}",
            f"-k {shlex.quote(str(self.data_dir))}",
            "-c max_connections=200",
        ]
        if not self.settings.postgres_durable:
            options += ["-c fsync=off", "-c synchronous_commit=off"]
        else:
            options += ["-c fsync=on", "-c synchronous_commit=on"]
        return " ".join(options)

    def _prepare(self, log: Log) -> None:
        make_dir(self.root)
        chown_tree(self.root, PG_USER, recursive=False)
        check_traversable(self.root, PG_USER, service=self.name)
        if not (self.data_dir / "PG_VERSION").is_file():
            if self.data_dir.exists() and any(self.data_dir.iterdir()):
                problem = "exists but holds no cluster; remove it and run up again"
                raise self.fail(f"{self.data_dir} {problem}")
            make_dir(self.data_dir, 0o700)
            chown_tree(self.data_dir, PG_USER, recursive=False)
            log(f"{self.name}: creating cluster in {self.data_dir}")
            argv = [
                self._pg("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                PG_USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
            if not self.settings.postgres_durable:
                argv.append("--no-sync")
            run_logged(
                as_user(PG_USER, argv),
                self.install_log,
                service=self.name,
                what="initdb",
                cwd=self.root,
                timeout=300,
            )
        if is_root() and not self.log_file.exists():
            self.log_file.touch()
            chown_tree(self.log_file, PG_USER, recursive=False)

    def start(self, log: Log) -> None:
        self._prepare(log)
        log(f"{self.name}: starting on {self.settings.host}:{self.port}")
        self.record_ports()
        argv = [
            self._pg("pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(int(self.start_timeout)),
            "-o",
            self._server_options(),
            "start",
        ]
        run_logged(
            as_user(PG_USER, argv),
            self.log_file,
            service=self.name,
            what="pg_ctl start",
            cwd=self.root,
            timeout=self.start_timeout + 30,
        )
        pid = read_pid(self.data_dir / "postmaster.pid")
        if pid is None:
            raise self.fail("pg_ctl start returned but postmaster.pid is missing")
        write_pid(self.pid_file, pid)

    def wait_ready(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            pid = self.running_pid()
            if pid is None:
                raise self.fail("the server process exited during start-up")
            if self.healthy(timeout=2):
                return pid
            if time.monotonic() >= deadline:
                raise self.fail(f"no answer to SELECT 1 on port {self.port} after {timeout:.0f} s")
            time.sleep(0.25)

    def after_ready(self, log: Log) -> None:
        try:
            conn = _connect(self.settings.host, self.port, "postgres", 5)
            conn.autocommit = True
            try:
                with conn.cursor() as cursor:
                    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
                    if cursor.fetchone() is None:
                        cursor.execute(f'CREATE DATABASE "{DATABASE}"')
                        log(f"{self.name}: created database {DATABASE}")
            finally:
                conn.close()
        except (psycopg2.Error, OSError) as exc:
            raise self.fail(f"could not create database {DATABASE}: {exc}") from exc

    def stop(self, pid: int, log: Log) -> None:
        argv = [
            self._pg("pg_ctl"),
            "-D",
            str(self.data_dir),
            "-m",
            "fast",
            "-w",
            "-t",
            "30",
            "stop",
        ]
        try:
            run_logged(
                as_user(PG_USER, argv),
                self.log_file,
                service=self.name,
                what="pg_ctl stop",
                cwd=self.root,
                timeout=60,
            )
        except ServiceError as exc:
            log(f"{self.name}: {exc}; sending SIGTERM to {pid}")
            stop_pid(pid, timeout=30)
        wait_for(lambda: not pid_alive(pid), 10)
        remove_file(self.pid_file)
