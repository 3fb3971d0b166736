"""`cohortline worker` on the real services closes the system it built (database engine,
Elasticsearch client) when it is stopped. The process is observed through a wrapper that reports
each System.close(); everything else is the real command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.processes import wait_until

OBSERVED_WORKER = """
import sys

from infra import bootstrap, cli

close = bootstrap.System.close


def observed_close(self):
    close(self)
    print(f"system closed: {self.engine.pool.checkedout()} connections out", flush=True)


bootstrap.System.close = observed_close
sys.exit(cli.main(["worker"]))
"""


def test_a_stopped_worker_closes_its_system(full_stack_env, tmp_path):
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-c", OBSERVED_WORKER],
            env=full_stack_env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: "[^Worker]: Ready" in log_path.read_text(errors="replace"), 120, "the worker")
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(60)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
    output = log_path.read_text(errors="replace")
    assert "system closed: 0 connections out" in output, output[-4000:]
