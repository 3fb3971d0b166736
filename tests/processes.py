"""Cohortline commands run as real processes in tests, their output kept in a log file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_command(
    args: list[str], env: dict[str, str], workdir: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a cohortline command to its end; its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Command:
    def __init__(self, args: list[str], env: dict[str, str], workdir: Path, name: str):
        self.log_path = workdir / f"{name}.log"
        self.log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", *args],
            env=env,
            cwd=workdir,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.name = name

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        """Signal the process group and wait; returns the exit code, None if it had to be killed."""
        code = self.process.poll()
        if code is None:
            os.killpg(self.process.pid, sig)
            try:
                code = self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.log.close()
        return code


def wait_until(check: Callable[[], Any], timeout: float, what: str, *watched: Command) -> Any:
    """Poll `check` until it returns a truthy value; fail naming `what` and the watched logs."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        for command in watched:
            if not command.alive():
                raise AssertionError(f"{command.name} exited while waiting for {what}:\n{command.output()}")
        try:
            result = check()
            if result:
                return result
        except Exception as e:  # the thing polled may not be up yet
            last_error = e
        time.sleep(0.2)
    logs = "\n".join(f"--- {c.name} ---\n{c.output()}" for c in watched)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what} (last error: {last_error!r})\n{logs}"
    )


def serve(env: dict[str, str], workdir: Path, *extra: str) -> tuple[Command, str]:
    port = free_port()
    command = Command(["serve", "--port", str(port), *extra], env, workdir, "serve")
    base = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: requests.get(f"{base}/v1/status", timeout=2).status_code in (200, 401), 60, "the API", command
    )
    return command, base
