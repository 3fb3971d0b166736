"""`cohortline demo` prints what the read models found and exits; with `--serve` it then keeps
serving the dashboard on the demo's data, in open mode on loopback, and says where."""

from __future__ import annotations

import os
import subprocess
import sys

import requests

from tests.processes import Command, free_port, wait_until


def demo_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}


def test_demo_prints_its_summary_and_exits(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "infra.cli", "demo"],
        env=demo_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "read models at position 7509" in done.stdout
    assert "check-in within 7 days of first seen" in done.stdout
    assert "Dashboard:" not in done.stdout


def test_demo_serve_keeps_serving_the_dashboard(tmp_path):
    port = free_port()
    demo = Command(["demo", "--serve", "--port", str(port)], demo_env(), tmp_path, "demo")
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: f"Dashboard: {base}/" in demo.output(), 300, "the dashboard's URL", demo)
        page = wait_until(lambda: requests.get(f"{base}/", timeout=5), 60, "the dashboard", demo)
        assert page.status_code == 200 and "<title>Overview · Cohortline</title>" in page.text
        assert requests.get(f"{base}/v1/status", timeout=5).json()["head"] == 7509
        assert "read models at position 7509" in demo.output()
    finally:
        assert demo.stop() == 0, demo.output()


def test_demo_serve_refuses_a_host_beyond_loopback(tmp_path):
    refused = subprocess.run(
        [sys.executable, "-m", "infra.cli", "demo", "--serve", "--host", "0.0.0.0"],
        env=demo_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "loopback only" in refused.stderr
