"""A local mosquitto for the demo, the tests and the benchmarks.

Configured so a slow or absent persistent subscriber loses nothing (the default queue limit of
1000 messages drops QoS 1 messages beyond it). With accounts=True it runs the way
deploy/mosquitto.conf runs production, minus TLS on loopback: anonymous off, accounts and ACLs in
the dynamic-security plugin (tower.accounts), the plugin's admin password in `admin-password`.
There is no fallback broker: amqtt, the pure-Python one used before, lost acknowledged readings in
the SIGKILL and full-spool drills and cannot do MQTT 5 shared subscriptions.
"""

from __future__ import annotations

import getpass
import glob
import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

MOSQUITTO_CONF = """\
# mosquitto keeps the user it is started as (by default root switches to 'mosquitto', who cannot read our files)
user {user}
listener {port} 127.0.0.1
allow_anonymous {anonymous}
# Nothing lost for slow or offline persistent sessions: no limit on queued QoS 1 messages.
max_queued_messages 0
max_queued_bytes 0
persistent_client_expiration 14d
persistence {persistence}
persistence_location {data_dir}/
# Saved every second (deploy/mosquitto.conf trades throughput for saving on every change).
autosave_interval 1
log_dest file {data_dir}/mosquitto.log
log_type error
log_type warning
log_type notice
"""

ACCOUNTS_CONF = """\
plugin {plugin}
plugin_opt_config_file {data_dir}/dynamic-security.json
"""

ADMIN_ACCOUNT = "admin"
_INSTALL = "install mosquitto (Debian/Ubuntu: apt-get install mosquitto; macOS: brew install mosquitto)"


def mosquitto_tool(name: str) -> str:
    """The path of a mosquitto program; ValueError naming the package if it is not installed."""
    # Debian installs mosquitto in /usr/sbin, which is not on every user's PATH.
    found = shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if found is None:
        raise ValueError(f"{name} not found: {_INSTALL}")
    return found


def dynamic_security_plugin() -> str:
    """mosquitto_dynamic_security.so beside the installed mosquitto (Debian, Alpine, Homebrew layouts)."""
    prefix = Path(mosquitto_tool("mosquitto")).resolve().parent.parent
    for pattern in ("lib/*/mosquitto_dynamic_security.so", "lib/mosquitto_dynamic_security.so",
                    "lib64/mosquitto_dynamic_security.so"):  # fmt: skip
        found = sorted(glob.glob(str(prefix / pattern)))
        if found:
            return found[0]
    raise ValueError(f"mosquitto's dynamic-security plugin (mosquitto_dynamic_security.so) not found: {_INSTALL} 2.0+")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Nothing listens there (a port in TIME_WAIT after a server's restart counts as free, as servers
    bind with SO_REUSEADDR)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def check_port_free(port: int, host: str = "127.0.0.1") -> None:
    """ValueError, said so a person can act on it, when something already listens there."""
    if not port_free(port, host):
        raise ValueError(f"port {port} on {host} is already in use; stop what runs there or choose another with --port")


class LocalBroker:
    """Start with `with LocalBroker(dir) as broker:`; broker.url and broker.protocol tell clients how.

    config: a complete mosquitto.conf to run instead of the built-in one (the security tests run
    deploy/mosquitto.conf); port must then be the port it listens on.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        persistence: bool = False,
        accounts: bool = False,
        config: str | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.persistence = persistence
        self.accounts = accounts
        self.config = config
        self.mosquitto = mosquitto_tool("mosquitto")
        self.protocol = "5"
        self.name = "mosquitto"
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def url_for(self, account: str, password: str) -> str:
        return f"mqtt://{account}:{password}@127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        """As the dynamic-security plugin's admin (accounts=True): what `tower devices|accounts` need."""
        return self.url_for(ADMIN_ACCOUNT, (self.data_dir / "admin-password").read_text().strip())

    def start(self) -> LocalBroker:
        check_port_free(self.port)  # else the "listening" check below would find the other server
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "mosquitto.conf"
        if self.config is not None:
            conf.write_text(self.config)
        else:
            data_dir = self.data_dir.resolve()
            text = MOSQUITTO_CONF.format(
                user=getpass.getuser(),
                port=self.port,
                anonymous=str(not self.accounts).lower(),
                data_dir=data_dir,
                persistence=str(self.persistence).lower(),
            )
            if self.accounts:
                self._initialise_accounts()
                text += ACCOUNTS_CONF.format(plugin=dynamic_security_plugin(), data_dir=data_dir)
            conf.write_text(text)
        log = open(self.data_dir / "broker.out", "ab")  # noqa: SIM115 - lives as long as the broker
        # Its own session, like tower.process.Children's: a Ctrl-C in the terminal reaches the command that
        # started it, which stops its clients first (they flush while the broker is up), then the broker.
        self._process = subprocess.Popen([self.mosquitto, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # fmt: skip
        self._wait_until_listening()
        return self

    def _initialise_accounts(self) -> None:
        """The plugin's file with its admin account (mosquitto_ctrl's own init), kept across restarts."""
        dynsec, secret = self.data_dir / "dynamic-security.json", self.data_dir / "admin-password"
        if dynsec.exists() and secret.exists():
            return
        password = secrets.token_urlsafe(24)
        dynsec.unlink(missing_ok=True)
        subprocess.run([mosquitto_tool("mosquitto_ctrl"), "dynsec", "init", str(dynsec), ADMIN_ACCOUNT, password],
                       check=True, capture_output=True)  # fmt: skip
        secret.touch(mode=0o600)
        secret.write_text(password)

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
