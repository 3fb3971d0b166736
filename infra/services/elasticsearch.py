"""Elasticsearch 8.19.x (the integ-test-zip distribution from Maven Central)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from .base import Service
from .errors import ServiceError
from .process import (
    Log,
    as_user,
    check_traversable,
    chown_tree,
    ensure_command,
    ensure_system_user,
    make_dir,
    owned_by,
    read_pid,
    remove_file,
    run_logged,
    spawn_detached,
    stop_pid,
)
from .settings import Settings

# Newest first; the first one Maven Central serves is installed. 8.19.4 was the newest 8.19.x
# integ-test-zip on Maven Central when this was written (8.19.5 to 8.19.12 did not exist).
ES_VERSIONS = ("8.19.4", "8.19.3", "8.19.2", "8.19.1", "8.19.0")
ES_ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch"
ES_USER = "cohortline-es"


class ElasticsearchService(Service):
    name = "elasticsearch"
    start_timeout = 240.0
    port_fields = ("elasticsearch_port",)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._launcher: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self.settings.elasticsearch_port

    @property
    def version_file(self) -> Path:
        return self.root / "VERSION"

    def installed_version(self) -> str | None:
        try:
            version = self.version_file.read_text(encoding="ascii").strip()
        except OSError:
            return None
        if version and (self.root / f"elasticsearch-{version}" / "bin" / "elasticsearch").is_file():
            return version
        return None

    @property
    def home(self) -> Path:
        version = self.installed_version() or ES_VERSIONS[0]
        return self.root / f"elasticsearch-{version}"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def log_file(self) -> Path:
        return self.logs_dir / "elasticsearch.log"

    @property
    def launcher_log(self) -> Path:
        return self.root / "launcher.log"

    @property
    def pid_file(self) -> Path:
        # Written (and removed on exit) by Elasticsearch itself: -p <pid_file>.
        return self.run_dir / "elasticsearch.pid"

    def marker(self) -> str:
        return str(self.home)

    def env_line(self) -> str:
        return f"export COHORTLINE_ELASTICSEARCH_URL=http://{self.settings.host}:{self.port}"

    # --- install -------------------------------------------------------------------------------

    def is_installed(self) -> bool:
        return self.installed_version() is not None

    def install_state(self) -> str:
        version = self.installed_version()
        return f"installed (Elasticsearch {version})" if version else "not installed"

    def install(self, log: Log) -> None:
        make_dir(self.root)
        where = {"service": self.name, "log_file": self.install_log, "log": log}
        mvn = ensure_command("mvn", "maven", **where)
        unzip = ensure_command("unzip", "unzip", **where)
        download = self.root / "download"
        last_error: ServiceError | None = None
        for version in ES_VERSIONS:
            shutil.rmtree(download, ignore_errors=True)
            make_dir(download)
            log(f"{self.name}: downloading Elasticsearch {version} (log: {self.install_log})")
            try:
                run_logged(
                    [
                        mvn,
                        "-B",
                        "-q",
                        "dependency:copy",
                        f"-Dartifact={ES_ARTIFACT}:{version}:zip",
                        f"-DoutputDirectory={download}",
                    ],
                    self.install_log,
                    service=self.name,
                    what=f"mvn dependency:copy (Elasticsearch {version})",
                    cwd=self.root,
                    timeout=1800,
                )
            except ServiceError as exc:
                last_error = exc
                continue
            archive = download / f"elasticsearch-{version}.zip"
            if not archive.is_file():
                last_error = self.fail(f"{archive.name} missing after Maven", self.install_log)
                continue
            staging = self.root / "unpack.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            make_dir(staging)
            log(f"{self.name}: unpacking {archive.name}")
            run_logged(
                [unzip, "-q", "-o", str(archive), "-d", str(staging)],
                self.install_log,
                service=self.name,
                what=f"unzip {archive.name}",
                timeout=600,
            )
            target = self.root / f"elasticsearch-{version}"
            shutil.rmtree(target, ignore_errors=True)
            (staging / f"elasticsearch-{version}").rename(target)
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(download, ignore_errors=True)
            self.version_file.write_text(version + "\n", encoding="ascii")
            return
        assert last_error is not None
        raise last_error

    # --- run state -----------------------------------------------------------------------------

    def cluster_health(self, timeout: float = 2.0) -> dict[str, object] | None:
        seconds = max(1, int(timeout))
        url = (
            f"http://{self.settings.host}:{self.port}/_cluster/health"
            f"?wait_for_status=yellow&timeout={seconds}s"
        )
        try:
            with urllib.request.urlopen(url, timeout=seconds + 2) as response:
                if response.status != 200:
                    return None
                body = json.loads(response.read().decode("utf-8"))
        except (OSError, ValueError, urllib.error.URLError):
            return None
        return body if isinstance(body, dict) else None

    def healthy(self, timeout: float = 2.0) -> bool:
        health = self.cluster_health(timeout)
        return health is not None and health.get("status") in ("green", "yellow")

    def health_detail(self) -> str:
        health = self.cluster_health(1)
        return f"cluster {health.get('status')}" if health else ""

    # --- lifecycle -----------------------------------------------------------------------------

    def _prepare(self, log: Log) -> None:
        ensure_system_user(ES_USER, service=self.name, log_file=self.install_log, log=log)
        for path in (self.data_dir, self.logs_dir, self.run_dir, self.tmp_dir):
            make_dir(path)
            if not owned_by(path, ES_USER):
                chown_tree(path, ES_USER)
        # Elasticsearch writes into its config dir (keystore) and home logs (GC log).
        if not owned_by(self.home / "config", ES_USER):
            chown_tree(self.home, ES_USER)
        check_traversable(self.home / "bin", ES_USER, service=self.name)

    def start(self, log: Log) -> None:
        self._prepare(log)
        remove_file(self.pid_file)
        log(f"{self.name}: starting on {self.settings.host}:{self.port}")
        self.record_ports()
        argv = [
            str(self.home / "bin" / "elasticsearch"),
            "-d",
            "-p",
            str(self.pid_file),
            "-Ediscovery.type=single-node",
            f"-Enetwork.host={self.settings.host}",
            f"-Ehttp.port={self.port}",
            "-Expack.security.enabled=false",
            f"-Epath.data={self.data_dir}",
            f"-Epath.logs={self.logs_dir}",
            "-Ecluster.routing.allocation.disk.threshold_enabled=false",
        ]
        env = {
            "ES_JAVA_HOME": str(self.settings.java_home),
            "ES_JAVA_OPTS": "-Xms512m -Xmx1g",
            "ES_TMPDIR": str(self.tmp_dir),
        }
        # The -d launcher returns once the node has started; run it in the background so the
        # other services boot meanwhile, and wait for it in wait_ready.
        launch = as_user(ES_USER, argv)
        self._launcher = spawn_detached(launch, self.launcher_log, env=env, cwd=self.root)

    def wait_ready(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        launcher = self._launcher
        if launcher is not None:
            try:
                code = launcher.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise self.fail(
                    f"the launcher did not return within {timeout:.0f} s", self.launcher_log
                ) from None
            if code != 0:
                raise self.fail(f"the launcher failed (exit code {code})", self.launcher_log)
        launched = time.monotonic()
        while True:
            pid = self.running_pid()
            if pid is None and launcher is not None:
                if read_pid(self.pid_file) is not None:
                    raise self.fail("the server process exited during start-up")
                if time.monotonic() - launched > 15:
                    raise self.fail(f"the launcher returned but wrote no pid file {self.pid_file}")
            if pid is not None and self.healthy(timeout=2):
                return pid
            if time.monotonic() >= deadline:
                waited = f"after {timeout:.0f} s"
                raise self.fail(f"cluster health not green/yellow on port {self.port} {waited}")
            time.sleep(0.5)

    def stop(self, pid: int, log: Log) -> None:
        if not stop_pid(pid, timeout=30):
            log(f"{self.name}: pid {pid} ignored SIGTERM for 30 s; killed it")
        remove_file(self.pid_file)
