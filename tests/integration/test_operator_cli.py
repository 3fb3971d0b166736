"""The operators' command line on both storages: `audit verify`, `audit export`, `rebuild`, `erase`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sqlalchemy import text

from tests.integration.test_append_http import every_type, post
from tests.integration.test_audit_http import tamper
from tests.processes import run_command


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


def test_rebuild_switches_to_read_models_built_from_the_log(client, system):
    from streams.local import LocalFollower
    from streams.log_reader import LogReader

    assert post(client, every_type()).status_code == 201
    LocalFollower(LogReader(system.event_store), system.runners).catch_up()
    with system.engine.begin() as conn:
        conn.execute(text("DELETE FROM rm_users"))
    head = system.event_store.recorder.max_notification_id()
    done = cohortline(system, "rebuild", "analytics")
    assert done.returncode == 0, done.stderr
    assert f"position {head:,}" in done.stdout.decode()
    assert b"rebuilt to position" in done.stderr
    with system.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rm_users")).scalar() > 0
    unknown = cohortline(system, "rebuild", "nope")
    assert unknown.returncode == 2 and b"analytics" in unknown.stderr


def test_erase_shreds_a_users_personal_data(client, system):
    assert post(client, every_type()).status_code == 201
    done = cohortline(system, "erase", "u1")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["erased"] is True
    events = client.get("/v1/audit/streams/ticket/t1/events", headers={"Authorization": "Bearer audit"}).json
    assert events["events"][0]["data"]["subject"] == "[erased]"
    unknown = cohortline(system, "erase", "nobody")
    assert unknown.returncode == 2 and b"nobody" in unknown.stderr


def test_a_command_started_without_its_backend_says_so_and_exits_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLINE_")}
    env |= {
        "COHORTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
        "COHORTLINE_KAFKA_URL": "kafka://127.0.0.1:9",
        "COHORTLINE_ELASTICSEARCH_URL": "http://127.0.0.1:9",
    }
    done = run_command(["worker"], env, tmp_path, 120)
    assert done.returncode == 2, done.stderr
    assert "cohortline: a backend is unreachable" in done.stderr
