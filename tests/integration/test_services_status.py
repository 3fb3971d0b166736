"""The local services manager (infra/services): settings, status, env, stale pid files.

The tests that need nothing running use a temporary services dir and ports nobody listens on.
The one marked ``services`` checks the services that ``cohortline services up`` started from the
repository root (./var/services, default ports) and fails, saying how to start them, when they are
not running.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from infra.services import ServiceError, SettingsError, env_lines, load_settings, main, status
from infra.services.settings import (
    DEFAULT_ELASTICSEARCH_PORT,
    DEFAULT_KAFKA_CONTROLLER_PORT,
    DEFAULT_KAFKA_PORT,
    DEFAULT_POSTGRES_PORT,
)
from tests.services import HOW_TO_START

REPO_SERVICES_DIR = Path(__file__).resolve().parents[2] / "var" / "services"
ISOLATED_PORTS = {
    "COHORTLINE_POSTGRES_PORT": "58432",
    "COHORTLINE_KAFKA_PORT": "58092",
    "COHORTLINE_KAFKA_CONTROLLER_PORT": "58093",
    "COHORTLINE_ELASTICSEARCH_PORT": "58200",
}


@pytest.fixture
def empty_services_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    services_dir = tmp_path / "services"
    monkeypatch.setenv("COHORTLINE_SERVICES_DIR", str(services_dir))
    for name, value in ISOLATED_PORTS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("COHORTLINE_POSTGRES_DURABLE", raising=False)
    return services_dir


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_default_settings_avoid_the_well_known_ports(tmp_path: Path) -> None:
    settings = load_settings({"COHORTLINE_SERVICES_DIR": str(tmp_path / "x" / ".." / "s")})
    assert settings.services_dir == tmp_path / "s"
    assert settings.postgres_port == DEFAULT_POSTGRES_PORT != 5432
    assert settings.kafka_port == DEFAULT_KAFKA_PORT != 9092
    assert settings.kafka_controller_port == DEFAULT_KAFKA_CONTROLLER_PORT
    assert settings.elasticsearch_port == DEFAULT_ELASTICSEARCH_PORT != 9200
    assert settings.postgres_durable is False
    assert load_settings({"COHORTLINE_POSTGRES_DURABLE": "1"}).postgres_durable is True


def test_default_services_dir_is_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings({}).services_dir == tmp_path / "var" / "services"


@pytest.mark.parametrize("value", ["abc", "0", "70000", "12.5"])
def test_malformed_port_names_the_variable(value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"COHORTLINE_KAFKA_PORT": value})
    assert "COHORTLINE_KAFKA_PORT" in str(raised.value)
    assert isinstance(raised.value, ServiceError)


def test_two_services_on_one_port_is_refused() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"COHORTLINE_ELASTICSEARCH_PORT": str(DEFAULT_POSTGRES_PORT)})
    assert "COHORTLINE_ELASTICSEARCH_PORT" in str(raised.value)


def test_malformed_durable_flag_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="COHORTLINE_POSTGRES_DURABLE"):
        load_settings({"COHORTLINE_POSTGRES_DURABLE": "yes"})


def test_status_before_any_up(empty_services_dir: Path) -> None:
    entries = {entry.name: entry for entry in status()}
    assert set(entries) == {"postgresql", "kafka", "elasticsearch"}
    for entry in entries.values():
        assert entry.running is False
        assert entry.pid is None
    assert entries["kafka"].detail == "not installed"
    assert entries["elasticsearch"].detail == "not installed"
    assert entries["postgresql"].port == int(ISOLATED_PORTS["COHORTLINE_POSTGRES_PORT"])
    assert not empty_services_dir.exists(), "status must not create anything"


def test_env_prints_nothing_when_nothing_runs(
    empty_services_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert env_lines() == []
    assert main(["env"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip()


def test_main_status_exit_code_and_lines(
    empty_services_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert all("stopped" in line for line in lines)


def test_stale_pid_file_counts_as_stopped(empty_services_dir: Path) -> None:
    pid = _dead_pid()
    pid_file = empty_services_dir / "kafka" / "kafka.pid"
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(f"{pid}\n")
    kafka = next(entry for entry in status() if entry.name == "kafka")
    assert kafka.running is False
    assert kafka.pid is None
    assert "stale" in kafka.detail
    assert env_lines() == []


def test_pid_of_an_unrelated_live_process_is_not_ours(empty_services_dir: Path) -> None:
    # Our own pid is alive but is not a Kafka broker: a reused pid must not count as running.
    pid_file = empty_services_dir / "kafka" / "kafka.pid"
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(f"{os.getpid()}\n")
    kafka = next(entry for entry in status() if entry.name == "kafka")
    assert kafka.running is False


def test_bad_usage_and_bad_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([]) == 2
    assert main(["sideways"]) == 2
    monkeypatch.setenv("COHORTLINE_POSTGRES_PORT", "not-a-port")
    assert main(["up"]) == 1
    assert "COHORTLINE_POSTGRES_PORT" in capsys.readouterr().err


@pytest.mark.services
def test_running_services_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ISOLATED_PORTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COHORTLINE_SERVICES_DIR", str(REPO_SERVICES_DIR))
    entries = {entry.name: entry for entry in status()}
    if not all(entry.running for entry in entries.values()):
        pytest.fail(f"the local services are not all running: {HOW_TO_START}", pytrace=False)
    assert all(entry.healthy for entry in entries.values()), entries
    database_url = f"postgresql://postgres@127.0.0.1:{DEFAULT_POSTGRES_PORT}/cohortline"
    assert sorted(env_lines()) == [
        f"export COHORTLINE_DATABASE_URL={database_url}",
        f"export COHORTLINE_ELASTICSEARCH_URL=http://127.0.0.1:{DEFAULT_ELASTICSEARCH_PORT}",
        f"export COHORTLINE_KAFKA_URL=kafka://127.0.0.1:{DEFAULT_KAFKA_PORT}",
    ]
