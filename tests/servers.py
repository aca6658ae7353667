"""Real time-series servers for the store tests and the ingest benchmark, each on free loopback ports.

VictoriaMetrics speaks the InfluxDB v2 write API (/api/v2/write) and exports what it stored
(/api/v1/export); Debian's influxdb 1.6.7 answers InfluxQL (/query) and takes writes on /write.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tower.broker import free_port


def _http(method: str, url: str, body: bytes | None = None) -> bytes:
    request = urllib.request.Request(url, data=body, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def _wait_ready(url: str, process: subprocess.Popen, name: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited at start")
        try:
            _http("GET", url)
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{name} not ready within {timeout_s} s")


class VictoriaMetrics:
    binary = shutil.which("victoria-metrics")

    def __init__(self, data_dir: Path) -> None:
        self.data_dir, self.port = data_dir, free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> VictoriaMetrics:
        self.process = subprocess.Popen(
            [
                self.binary,
                f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.data_dir}",
                "-retentionPeriod=100y",
                "-loggerLevel=ERROR",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.data_dir.parent / "vm.log", "ab"),  # noqa: SIM115
        )
        _wait_ready(f"{self.url}/health", self.process, "victoria-metrics")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)

    def rows_inserted(self) -> int:
        """Samples VictoriaMetrics has taken through the InfluxDB write API so far."""
        for line in _http("GET", f"{self.url}/metrics").decode().splitlines():
            if line.startswith('vm_rows_inserted_total{type="influx"}'):
                return int(float(line.split()[-1]))
        return 0

    def export(self, match: str) -> list[dict]:
        """Every stored series matching the selector, with values and timestamps (ms)."""
        _http("GET", f"{self.url}/internal/force_flush")
        query = urllib.parse.urlencode({"match[]": match})
        lines = _http("GET", f"{self.url}/api/v1/export?{query}").decode().splitlines()
        return [json.loads(line) for line in lines if line]


class InfluxDB1:
    binary = shutil.which("influxd")

    def __init__(self, data_dir: Path) -> None:
        self.data_dir, self.port, self.rpc_port = data_dir, free_port(), free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> InfluxDB1:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "influxdb.conf"
        config.write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{self.data_dir}/meta"\n'
            f'[data]\n  dir = "{self.data_dir}/data"\n  wal-dir = "{self.data_dir}/wal"\n'
            f"  query-log-enabled = false\n"
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
        )
        self.process = subprocess.Popen(
            [self.binary, "-config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.data_dir / "influxd.log", "ab"),  # noqa: SIM115
        )
        _wait_ready(f"{self.url}/ping", self.process, "influxd")
        return self

    def create_database(self, name: str) -> None:
        _http("POST", f"{self.url}/query", urllib.parse.urlencode({"q": f"CREATE DATABASE {name}"}).encode())

    def write_lines(self, database: str, lines: list[str]) -> None:
        _http("POST", f"{self.url}/write?db={database}&precision=ms", "\n".join(lines).encode())

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
