"""`cohortline serve` on the embedded default stops cleanly on SIGTERM to its master alone: exit 0,
no error in its output, and no process of its tree left running."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import requests

from tests.processes import serve, wait_until

KEYS = "prod-key:producer,read-key:reader"


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(FileNotFoundError):  # the thread ended meanwhile
            found |= {int(child) for child in (task / "children").read_text().split()}
    return found


def process_tree(pid: int) -> set[int]:
    tree = {pid}
    for child in children(pid):
        tree |= process_tree(child)
    return tree


def whole_tree(master: int) -> set[int] | None:
    tree = process_tree(master)
    return tree if len(tree) >= 4 else None


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_sigterm_to_the_master_stops_every_process_cleanly(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    env["COHORTLINE_API_KEYS"] = KEYS
    server, base = serve(env, tmp_path, "--workers", "2")
    master = server.process.pid
    try:
        append_and_read(base)
        tree = wait_until(
            lambda: whole_tree(master), 30, "the master, two API workers and the projections process"
        )

        os.kill(master, signal.SIGTERM)
        try:
            code = server.process.wait(60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"serve did not exit on SIGTERM:\n{server.output()}") from None
        output = server.log_path.read_text(errors="replace")
        assert code == 0, output
        for word in ("Traceback", "AssertionError", "Exception", "ERROR"):
            assert word not in output, output
        deadline = time.monotonic() + 10
        while any(running(pid) for pid in tree) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in tree if running(pid)] == [], output
    finally:
        server.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(master, signal.SIGKILL)  # whatever of its process group outlived the master


def append_and_read(base: str) -> None:
    """One event through the API and the projections process, so that every process is at work."""
    event = {
        "type": "SessionStarted",
        "user_id": "u1",
        "occurred_at": "2011-03-07T10:00:00Z",
        "data": {"session_id": "s1", "platform": "ios"},
    }
    appended = requests.post(
        f"{base}/v1/events",
        json={"events": [event]},
        headers={"Authorization": "Bearer prod-key"},
        timeout=10,
    )
    assert appended.status_code == 201, appended.text
    active = requests.get(
        f"{base}/v1/activity/active-users",
        params={"from": "2011-03-07", "to": "2011-03-07", "min_position": 1, "wait_ms": 10000},
        headers={"Authorization": "Bearer read-key"},
        timeout=30,
    )
    assert active.status_code == 200 and active.json()["series"][0]["users"] == 1, active.text
