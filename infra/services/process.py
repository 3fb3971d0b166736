"""Process helpers: pid files, commands with logs, detached spawns, stops, waits, users."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

from .errors import ServiceError

Log = Callable[[str], None]

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}


# --- pid files and liveness -------------------------------------------------------------------


def read_pid(path: Path) -> int | None:
    """The pid in the first line of ``path``, or None if missing or malformed."""
    try:
        first = path.read_text(encoding="ascii", errors="replace").split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.isdigit() and int(first) > 0 else None


def write_pid(path: Path, pid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{pid}\n", encoding="ascii")
    os.replace(tmp, path)


def remove_file(path: Path) -> None:
    path.unlink(missing_ok=True)


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: the state follows the last ')'.
    rest = stat.rsplit(")", 1)[-1].split()
    return rest[0] if rest else None


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", errors="replace")


def pid_alive(pid: int | None, marker: str | None = None) -> bool:
    """True if ``pid`` is a live (non-zombie) process whose command line contains ``marker``."""
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    state = _proc_state(pid)
    if state is None or state in ("Z", "X"):
        return False
    if marker is None:
        return True
    for attempt in range(3):  # /proc/<pid>/cmdline can read empty or stale for a moment (start-up)
        if marker in cmdline(pid):
            return True
        if attempt < 2:
            time.sleep(0.1)
    return False


def stop_pid(pid: int, timeout: float = 30.0) -> bool:
    """SIGTERM ``pid``, wait up to ``timeout`` s, then SIGKILL. Returns False if it was killed."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    if wait_for(lambda: not pid_alive(pid), timeout):
        return True
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    wait_for(lambda: not pid_alive(pid), 10.0)
    return False


# --- waiting -----------------------------------------------------------------------------------


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds have passed (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --- running commands --------------------------------------------------------------------------


def is_root() -> bool:
    return os.geteuid() == 0


def as_user(user: str, argv: Sequence[str]) -> list[str]:
    """``argv`` run as ``user`` (through runuser when we are root, unchanged otherwise)."""
    if is_root() and user != "root":
        return ["runuser", "-u", user, "--", *argv]
    return list(argv)


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env["LANG"] = "C.UTF-8"
    env.pop("LC_ALL", None)
    if extra:
        env.update(extra)
    return env


def open_log(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "ab")


def _header(handle: IO[bytes], argv: Sequence[str]) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    handle.write(f"\n[{stamp}] $ {' '.join(argv)}\n".encode())
    handle.flush()


def run_logged(
    argv: Sequence[str],
    log_file: Path,
    *,
    service: str,
    what: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> None:
    """Run ``argv`` to completion, appending its output to ``log_file``.

    Raises ServiceError(service, what, log_file) if it cannot run, fails or times out.
    """
    _run(argv, log_file, service=service, what=what, env=env, cwd=cwd, timeout=timeout, keep_stdout=False)


def capture(
    argv: Sequence[str],
    *,
    service: str,
    what: str,
    log_file: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = 120,
) -> str:
    """Run ``argv`` and return its stdout; stderr (and stdout on failure) goes to ``log_file``."""
    completed = _run(
        argv, log_file, service=service, what=what, env=env, cwd=cwd, timeout=timeout, keep_stdout=True
    )
    return completed.stdout.decode("utf-8", errors="replace")


def _run(
    argv: Sequence[str],
    log_file: Path,
    *,
    service: str,
    what: str,
    env: Mapping[str, str] | None,
    cwd: Path | None,
    timeout: float | None,
    keep_stdout: bool,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` with its output (stderr only, when ``keep_stdout``) appended to ``log_file``;
    what cannot run, fails or times out is a ServiceError naming the log."""
    with open_log(log_file) as handle:
        _header(handle, argv)
        try:
            completed = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if keep_stdout else handle,
                stderr=handle if keep_stdout else subprocess.STDOUT,
                env=base_env(env),
                cwd=cwd,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            raise ServiceError(service, f"{what}: command not found: {argv[0]}", log_file) from None
        except subprocess.TimeoutExpired:
            problem = f"{what}: timed out after {timeout:.0f} s"
            raise ServiceError(service, problem, log_file) from None
        if completed.returncode != 0:
            if keep_stdout:
                handle.write(completed.stdout)
                handle.flush()
            raise ServiceError(service, f"{what} failed (exit code {completed.returncode})", log_file)
    return completed


def spawn_detached(
    argv: Sequence[str],
    log_file: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session (it outlives us), stdout and stderr appended to a log."""
    with open_log(log_file) as handle:
        _header(handle, argv)
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=base_env(env),
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )


# --- system users, packages, permissions -------------------------------------------------------


def user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def ensure_system_user(user: str, *, service: str, log_file: Path, log: Log) -> None:
    """Create a no-login system user ``user`` if it is missing (needs root)."""
    if user_exists(user):
        return
    if not is_root():
        raise ServiceError(service, f"system user {user!r} is missing and we are not root")
    log(f"{service}: creating system user {user}")
    run_logged(
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            user,
        ],
        log_file,
        service=service,
        what=f"creating system user {user}",
    )


def chown_tree(path: Path, user: str, *, recursive: bool = True) -> None:
    """Give ``path`` (and everything below it) to ``user`` and that user's primary group."""
    if not is_root():
        return
    entry = pwd.getpwnam(user)
    if not recursive:
        os.chown(path, entry.pw_uid, entry.pw_gid)
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def owned_by(path: Path, user: str) -> bool:
    try:
        return path.stat().st_uid == pwd.getpwnam(user).pw_uid
    except (OSError, KeyError):
        return False


def make_dir(path: Path, mode: int = 0o755) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    return path


def check_traversable(path: Path, user: str, *, service: str) -> None:
    """Raise ServiceError unless ``user`` can reach ``path`` (every parent must be searchable)."""
    if not is_root() or user == "root":
        return
    result = subprocess.run(
        ["runuser", "-u", user, "--", "test", "-x", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    if result.returncode != 0:
        raise ServiceError(
            service,
            f"user {user!r} cannot reach {path}: every parent directory must be searchable by "
            f"others (chmod o+x) or set COHORTLINE_SERVICES_DIR to a directory outside it",
        )


def apt_install(packages: Sequence[str], *, service: str, log_file: Path, log: Log) -> None:
    """``apt-get update`` then ``apt-get install -y`` the packages (needs root)."""
    if not is_root():
        names = " ".join(packages)
        raise ServiceError(service, f"needs the Debian packages {names}; install them as root")
    log(f"{service}: apt-get install {' '.join(packages)} (log: {log_file})")
    run_logged(
        ["apt-get", "update"],
        log_file,
        service=service,
        what="apt-get update",
        env=APT_ENV,
        timeout=900,
    )
    run_logged(
        ["apt-get", "install", "-y", "--no-install-recommends", *packages],
        log_file,
        service=service,
        what=f"apt-get install {' '.join(packages)}",
        env=APT_ENV,
        timeout=1800,
    )


def ensure_command(command: str, package: str, *, service: str, log_file: Path, log: Log) -> str:
    """Path of ``command``, installing the Debian ``package`` when it is missing."""
    found = shutil.which(command)
    if found:
        return found
    apt_install([package], service=service, log_file=log_file, log=log)
    found = shutil.which(command)
    if not found:
        raise ServiceError(service, f"{command} still missing after installing {package}", log_file)
    return found
