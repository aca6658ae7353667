"""MQTT connection details shared by every tower process: broker URLs and paho client set-up."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from tower.config import Settings

PUBLISH_WINDOW = 64  # QoS 1 messages a publisher keeps in flight; see QosPublisher


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """mqtt://[user:pass@]host[:port]; ValueError with the expected form otherwise."""
        parts = urlsplit(url)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise ValueError(f"broker URL '{url}' is not of the form mqtt://[user:pass@]host:port")
        try:
            port = parts.port or 1883
        except ValueError:
            raise ValueError(f"broker URL '{url}' has an invalid port") from None
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        return cls(parts.hostname, port, username, password)

    def __str__(self) -> str:  # never shows the password
        user = f"{self.username}@" if self.username else ""
        return f"mqtt://{user}{self.host}:{self.port}"


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
    if properties is not None:
        method(address.host, address.port, keepalive=30, clean_start=not persistent, properties=properties)
    else:
        method(address.host, address.port, keepalive=30)


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
