"""A local MQTT broker for the demo, the tests and the benchmarks.

mosquitto when installed, configured so a slow or absent persistent subscriber loses nothing
(the default queue limit of 1000 messages drops QoS 1 messages beyond it). Without mosquitto,
amqtt, a pure-Python broker that speaks MQTT 3.1.1 only, so clients must use protocol 3.1.1.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
# Nothing lost for slow or offline persistent sessions: no limit on queued QoS 1 messages.
max_queued_messages 0
max_queued_bytes 0
persistent_client_expiration 14d
persistence {persistence}
persistence_location {data_dir}/
# Saved every second (deploy/mosquitto.conf trades throughput for saving on every change).
autosave_interval 1
# Started by root, mosquitto would switch to the `mosquitto` user, which cannot write data_dir.
user {user}
log_dest file {data_dir}/mosquitto.log
log_type error
log_type warning
log_type notice
"""

AMQTT_CONF = """\
listeners:
  default:
    type: tcp
    bind: 127.0.0.1:{port}
auth:
  allow-anonymous: true
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalBroker:
    """Start with `with LocalBroker(dir) as broker:`; broker.url and broker.protocol tell clients how."""

    def __init__(
        self, data_dir: Path, port: int | None = None, persistence: bool = False, use_mosquitto: bool = True
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.persistence = persistence
        # Debian installs mosquitto in /usr/sbin, which is not on every user's PATH.
        self.mosquitto = use_mosquitto and shutil.which("mosquitto", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
        self.protocol = "5" if self.mosquitto else "3.1.1"
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def name(self) -> str:
        return "mosquitto" if self.mosquitto else "amqtt (pure Python, MQTT 3.1.1)"

    def start(self) -> LocalBroker:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.mosquitto:
            conf = self.data_dir / "mosquitto.conf"
            conf.write_text(
                MOSQUITTO_CONF.format(
                    port=self.port,
                    data_dir=self.data_dir.resolve(),
                    persistence=str(self.persistence).lower(),
                    user=getpass.getuser(),
                )
            )
            command = [self.mosquitto, "-c", str(conf)]
        else:
            conf = self.data_dir / "amqtt.yaml"
            conf.write_text(AMQTT_CONF.format(port=self.port))
            command = [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]
        log = open(self.data_dir / "broker.out", "ab")  # noqa: SIM115 - lives as long as the broker
        self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self._wait_until_listening()
        return self

    def _wait_until_listening(self, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.data_dir}/broker.out")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen on port {self.port} within {timeout_s:.0f} s")

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
