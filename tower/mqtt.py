"""MQTT connection details shared by every tower process: broker URLs, TLS and paho client set-up."""

from __future__ import annotations

import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from tower.config import Settings, redact_url

PUBLISH_WINDOW = 64  # QoS 1 messages a publisher keeps in flight; see QosPublisher
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class BrokerUnavailable(Exception):
    """The broker cannot be reached or refuses us; str(self) says which and why, without secrets."""


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """mqtt[s]://[account:password@]host[:port]; ValueError with the expected form otherwise.

        The messages show the URL with its password redacted: they end up in terminals and logs.
        """
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError(
                f"broker URL '{redact_url(url)}' is not of the form mqtt[s]://[account:password@]host:port"
            )
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise ValueError(f"broker URL '{redact_url(url)}' has an invalid port") from None
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        return cls(parts.hostname, port, username, password, tls=parts.scheme == "mqtts")

    def __str__(self) -> str:  # never shows the password
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def _set_up_tls(client: mqtt.Client, address: BrokerAddress, settings: Settings) -> None:
    """mqtts: verify the broker against the operator's CA (or the system's); a client certificate if given."""
    files = {"TOWER_MQTT_CA_FILE": settings.mqtt_ca_file, "TOWER_MQTT_CERT_FILE": settings.mqtt_cert_file,
             "TOWER_MQTT_KEY_FILE": settings.mqtt_key_file}  # fmt: skip
    if not address.tls:
        given = [name for name, path in files.items() if path is not None]
        if given:
            raise ValueError(f"{', '.join(given)} set but the broker URL {address} is plain text; use mqtts://")
        return
    for name, path in files.items():
        if path is not None and not path.is_file():
            raise ValueError(f"{name} {path} is not a readable file")
    if (settings.mqtt_cert_file is None) != (settings.mqtt_key_file is None):
        raise ValueError("TOWER_MQTT_CERT_FILE and TOWER_MQTT_KEY_FILE go together; set both or neither")
    try:
        client.tls_set(
            ca_certs=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None,
            certfile=str(settings.mqtt_cert_file) if settings.mqtt_cert_file else None,
            keyfile=str(settings.mqtt_key_file) if settings.mqtt_key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    except (ssl.SSLError, OSError) as error:
        raise ValueError(f"TLS set-up for {address} failed: {error} (check TOWER_MQTT_*_FILE)") from None


def make_client(
    settings: Settings, client_id: str, *, persistent: bool = False, manual_ack: bool = False
) -> tuple[mqtt.Client, BrokerAddress, Properties | None]:
    """A paho client (callback API v2) for the configured broker, and its CONNECT properties.

    persistent: the broker keeps the session (subscriptions and queued QoS 1 messages) while we
    are away, for settings.session_expiry_s on MQTT 5, indefinitely on MQTT 3.1.1.
    """
    address = BrokerAddress.parse(settings.broker)
    v5 = settings.mqtt_protocol == "5"
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
    )
    _set_up_tls(client, address, settings)
    if address.username:
        client.username_pw_set(address.username, address.password)
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(PUBLISH_WINDOW)
    properties = None
    if v5:
        properties = Properties(PacketTypes.CONNECT)
        if persistent:
            properties.SessionExpiryInterval = settings.session_expiry_s
        properties.ReceiveMaximum = settings.inflight_max
    return client, address, properties


def connect(
    client: mqtt.Client,
    address: BrokerAddress,
    properties: Properties | None,
    *,
    persistent: bool,
    retry: bool = False,
) -> None:
    """Connect (MQTT 5: clean_start only for non-persistent clients); the caller starts the loop.

    retry: do not fail if the broker is not up yet; paho's loop keeps trying (services may start first).
    """
    method = client.connect_async if retry else client.connect
    try:
        if properties is not None:
            method(address.host, address.port, keepalive=30, clean_start=not persistent, properties=properties)
        else:
            method(address.host, address.port, keepalive=30)
    except OSError as error:  # refused, unreachable, or a TLS handshake that failed (ssl.SSLError)
        raise BrokerUnavailable(f"cannot connect to {address}: {error}") from None


def start_and_wait(
    client: mqtt.Client, address: BrokerAddress, properties: Properties | None, timeout_s: float = 15.0
) -> None:
    """Connect a short-lived client and start its loop; ValueError if the broker refuses the account.

    For one-shot tools (the simulator): a wrong password or a missing account is one clear error at
    once, not a stall while paho retries in the background.
    """
    answered, outcome = threading.Event(), []
    own_callback = client.on_connect

    def on_connect(client: mqtt.Client, userdata, flags, reason_code, properties=None) -> None:
        outcome.append(reason_code)
        answered.set()
        if own_callback is not None:
            own_callback(client, userdata, flags, reason_code, properties)

    client.on_connect = on_connect
    connect(client, address, properties, persistent=False)
    client.loop_start()
    if not answered.wait(timeout_s) or outcome[0].is_failure:
        client.loop_stop()
        if not outcome:
            raise BrokerUnavailable(f"{address} accepted no MQTT connection within {timeout_s:.0f} s (TLS port?)")
        raise ValueError(f"{address} refused the connection: {outcome[0]} (check the account and its password)")
    client.on_connect = own_callback


def network_loop_alive(client: mqtt.Client) -> bool:
    """Whether the thread loop_start() began still runs.

    paho ends that thread when a callback raises or its loop fails, and the process would go on
    deaf: connected to nothing, acknowledging nothing. Services check this and exit non-zero so a
    supervisor restarts them. paho has no public way to ask; it clears Client._thread when its
    loop ends (tests/test_ingest_hostile.py pins that for the installed paho).
    """
    thread = client._thread
    return thread is not None and thread.is_alive()


def subscriptions(settings: Settings, topics: list[str]) -> list[tuple[str, int | SubscribeOptions]]:
    """QoS 1 subscriptions; on MQTT 5, retained messages come only with a new subscription, so a
    reconnect to a kept session does not replay every retained message (and every retained reject)."""
    if settings.mqtt_protocol != "5":
        return [(topic, 1) for topic in topics]
    options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
    return [(topic, options) for topic in topics]


class QosPublisher:
    """Publishes QoS 1 with a small window of unacknowledged messages.

    paho rescans every message it holds for each acknowledgement, so a deep queue makes publishing
    quadratic: measured here, 64 in flight sustains ~20,000 messages/s, 4,000 only ~5,600/s.
    """

    def __init__(self, client: mqtt.Client) -> None:
        self.client = client
        self.window = PUBLISH_WINDOW  # make_client sets the client's in-flight limit to the same
        self._outstanding: deque[mqtt.MQTTMessageInfo] = deque()

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self._outstanding.append(self.client.publish(topic, payload, qos=1, retain=retain))
        if len(self._outstanding) > self.window:
            self._outstanding.popleft().wait_for_publish(60)

    def flush(self, timeout_s: float = 60) -> None:
        """Wait until the broker has acknowledged everything published so far."""
        while self._outstanding:
            self._outstanding.popleft().wait_for_publish(timeout_s)
