"""`cohortline audit verify` and `cohortline audit export` on both storages."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.integration.test_append_http import every_type, post
from tests.integration.test_audit_http import tamper


def cohortline(system, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COHORTLINE_DATABASE_URL": system.settings.database_url}
    for name in ("COHORTLINE_KAFKA_URL", "COHORTLINE_ELASTICSEARCH_URL"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args], env=env, capture_output=True, timeout=120, check=False
    )


def test_export_writes_the_log_as_ndjson_and_verify_names_the_altered_position(client, system):
    assert post(client, every_type()).status_code == 201
    head = system.event_store.recorder.max_notification_id()
    exported = cohortline(system, "audit", "export", "--after", "3")
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.decode().splitlines()]
    assert [e["position"] for e in lines] == list(range(4, head + 1))
    assert all(len(e["hash"]) == 64 and e["event_id"] for e in lines)

    verified = cohortline(system, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout) == {"ok": True, "events": head, "head_hash": lines[-1]["hash"]}

    tamper(system.engine, 5)
    broken = cohortline(system, "audit", "verify")
    assert broken.returncode == 1
    verdict = json.loads(broken.stdout)
    assert verdict["ok"] is False and verdict["broken_at"] == 5 and verdict["events"] == 4
