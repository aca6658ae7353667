"""MQTT connection details shared by every tower process: broker URLs, TLS and paho client set-up."""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from tower.config import PASSWORD_ESCAPES, Settings, redact_url

PUBLISH_WINDOW = 64  # QoS 1 messages a publisher keeps in flight; see QosPublisher
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
# CONNACK reason codes that retrying cannot mend (MQTT 3.1.1 codes arrive mapped to these by paho),
# with what the operator should check. Others (server unavailable, busy, quota) are retried.
PERMANENT_REFUSALS = {
    132: "TOWER_MQTT_PROTOCOL (3.1.1 for a broker without MQTT 5)",  # unsupported protocol version
    133: "the client id (TOWER_INGEST_CLIENT_ID / TOWER_ALERTS_CLIENT_ID)",  # client identifier not valid
    134: "the account and password in TOWER_BROKER",  # bad user name or password
    135: "the account and password in TOWER_BROKER, and that the account exists ('tower accounts list')",
    138: "why the broker bans this account or address",  # banned
    140: "the broker's authentication method",  # bad authentication method
}
SESSION_TAKEN_OVER = 142  # DISCONNECT reason: a client with our client id connected


class BrokerUnavailable(Exception):
    """The broker cannot be reached or refuses us; str(self) says which and why, without secrets."""


class BrokerRefused(Exception):
    """The broker refused a service for a reason retrying cannot mend; str(self) says which broker,
    which account, what the broker said and what to check."""


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
        hint = f" ({PASSWORD_ESCAPES})" if "@" in url else ""
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError(
                f"broker URL '{redact_url(url)}' is not of the form mqtt[s]://[account:password@]host:port{hint}"
            )
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise ValueError(f"broker URL '{redact_url(url)}' has an invalid port{hint}") from None
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
        raise BrokerUnavailable(connect_error(address, error)) from None


def connect_error(address: BrokerAddress, error: OSError) -> str:
    """Why a connection attempt failed, in words that point at the fix."""
    where = f"{address.host}:{address.port}"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"cannot connect to {address}: its TLS certificate is not trusted ({error}); check TOWER_MQTT_CA_FILE"
    if address.tls and isinstance(error, ssl.SSLError | ConnectionResetError | BrokenPipeError):
        # mosquitto's plain listener reads a TLS ClientHello as a broken CONNECT and resets the connection
        return (f"cannot connect to {address}: the TLS handshake with {where} failed ({error}); is it a plain-text "
                f"MQTT port? check the scheme (mqtts:// for TLS, mqtt:// for plain text) and the port")  # fmt: skip
    if isinstance(error, ConnectionRefusedError):
        return f"cannot connect to {address}: nothing accepts connections at {where} (broker not started yet?)"
    if isinstance(error, socket.gaierror):
        return f"cannot connect to {address}: host {address.host} not found ({error})"
    return f"cannot connect to {address}: {error}"


class ServiceConnection:
    """A long-running service's broker connection as its operator needs to hear of it.

    The service's paho callbacks call `accepted` (on_connect) and `disconnected` (on_disconnect);
    failed attempts are said in words that point at the fix (on_connect_fail). A refusal retrying
    cannot mend (PERMANENT_REFUSALS: password, account, client id), at start or after a reconnect
    (an account removed while the service runs), is kept in `refused`: the service then ends with
    exit 1 instead of reconnecting forever, so a supervisor shows a crash loop and the reason.
    """

    def __init__(self, client: mqtt.Client, address: BrokerAddress, client_id: str, log: logging.Logger) -> None:
        self.address, self.client_id, self.log = address, client_id, log
        self.refused: BrokerRefused | None = None
        self._answered = False  # a CONNACK came on the current connection
        client.on_connect_fail = self._on_connect_fail

    def accepted(self, reason_code: ReasonCode) -> bool:
        """Whether the CONNACK accepts us; a refusal is logged (transient) or kept in `refused` (permanent)."""
        self._answered = True
        if not reason_code.is_failure:
            return True
        check = PERMANENT_REFUSALS.get(reason_code.value)
        if check is None:
            self.log.warning("broker %s refused the connection for now: %s; retrying", self.address, reason_code)
        elif self.refused is None:
            account = f"account '{self.address.username}'" if self.address.username else "no account (anonymous)"
            self.refused = BrokerRefused(f"broker {self.address} refused {account} with client id '{self.client_id}': "
                                         f"{reason_code}; check {check}")  # fmt: skip
        return False

    def disconnected(self, reason_code: ReasonCode) -> None:
        answered, self._answered = self._answered, False
        if self.refused is not None or reason_code == 0:
            return
        if reason_code == SESSION_TAKEN_OVER:
            self.log.error("broker %s ended our session: %s; another process connected with the same client id "
                           "'%s' (two services on one client id take the session from each other: stop the other "
                           "or give one another client id); reconnecting", self.address, reason_code,
                           self.client_id)  # fmt: skip
        elif not answered:
            self.log.warning("%s closed the connection without an MQTT answer; is it a TLS port? check the "
                             "scheme (mqtts:// for TLS, mqtt:// for plain text) and the port; retrying",
                             self.address)  # fmt: skip
        else:
            self.log.warning("disconnected from %s: %s; reconnecting", self.address, reason_code)

    def _on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        # paho calls this from inside its `except OSError:` around the attempt and passes no error:
        # the exception being handled is the error (tests/test_service_guards.py pins that).
        error = sys.exc_info()[1]
        reason = connect_error(self.address, error) if isinstance(error, OSError) else f"cannot reach {self.address}"
        self.log.warning("%s; retrying", reason)


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
