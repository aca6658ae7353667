"""MQTT accounts on the broker: mosquitto's dynamic-security plugin, administered over MQTT.

Each account is a plugin client named after its device id or service, with its kind as the
client's text name and one role, `tower:<name>`, holding exactly its grants (tower.access). The
broker stores the password hashed (PBKDF2-SHA512); tower generates it (32 random URL-safe
characters: a brute force of the hash is hopeless) and shows it once. Deleting or disabling a
client disconnects it at once, so a removed or rotated device loses its connection, not just its
next login. Why the plugin and not a password file: README.md, "Deployment".
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from tower.access import AccountKind, Grant, account_kind, check_account_name, grants
from tower.config import Settings
from tower.contract import DeviceKind
from tower.mqtt import BrokerUnavailable, connect, make_client

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
_ACL_TYPES = {"publish": "publishClientSend", "subscribe": "subscribePattern"}


@dataclass(frozen=True)
class Account:
    name: str
    kind: AccountKind | None  # None: not made by tower (the plugin's admin account, say)


def new_password() -> str:
    return secrets.token_urlsafe(24)


def role_name(account: str) -> str:
    return f"tower:{account}"


def acl_entries(name: str, kind: AccountKind) -> list[dict]:
    return [{"acltype": _ACL_TYPES[g.action], "topic": g.topic, "allow": True} for g in grants(name, kind)]


class AccountAdmin:
    """A connection as the plugin's admin account (TOWER_BROKER names it); one command batch at a time."""

    def __init__(self, settings: Settings, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s
        self.client, self.address, properties = make_client(settings, f"tower-admin-{os.getpid()}")
        self._responses: queue.Queue[dict] = queue.Queue()
        self._ready = threading.Event()
        self._refusal: str | None = None
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        connect(self.client, self.address, properties, persistent=False)
        self.client.loop_start()
        try:
            if not self._ready.wait(timeout_s):
                raise BrokerUnavailable(f"{self.address} did not answer within {timeout_s:.0f} s")
            if self._refusal:
                raise ValueError(self._refusal)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    # -- accounts ---------------------------------------------------------------------------------

    def add(self, name: str, kind: AccountKind) -> str:
        """Create the account with its role; returns its password (shown once, stored hashed)."""
        check_account_name(name)
        if self._client(name) is not None:
            raise ValueError(f"account '{name}' exists; 'rotate' gives it a new password, 'remove' deletes it")
        password = new_password()
        self._run(
            {"command": "deleteRole", "rolename": role_name(name)},  # left behind by a hand-deleted client
            {"command": "createRole", "rolename": role_name(name), "acls": acl_entries(name, kind)},
            {"command": "createClient", "username": name, "password": password, "textname": kind.value,
             "roles": [{"rolename": role_name(name)}]},
            tolerate="Role not found",
        )  # fmt: skip
        return password

    def remove(self, name: str, devices_only: bool = False) -> Account:
        """Delete the account and its role; the broker disconnects it if it is connected."""
        account = self._existing(name, devices_only)
        self._run({"command": "deleteClient", "username": name}, {"command": "deleteRole", "rolename": role_name(name)},
                  tolerate="Role not found")  # fmt: skip
        return account

    def rotate(self, name: str, devices_only: bool = False) -> tuple[Account, str]:
        """A new password; the old one stops working and a session using it is disconnected."""
        account = self._existing(name, devices_only)
        password = new_password()
        self._run(
            {"command": "setClientPassword", "username": name, "password": password},
            {"command": "disableClient", "username": name},  # disconnects whoever used the old password
            {"command": "enableClient", "username": name},
        )
        return account, password

    def accounts(self) -> list[Account]:
        (listing,) = self._run({"command": "listClients", "verbose": True})
        return sorted((Account(c["username"], _kind(c.get("textname"))) for c in listing["data"]["clients"]),
                      key=lambda a: a.name)  # fmt: skip

    def sync(self) -> list[str]:
        """Bring every tower account's role to the grants the code defines now; the names changed."""
        changed = []
        for account in self.accounts():
            if account.kind is None:
                continue
            wanted = {(e["acltype"], e["topic"]) for e in acl_entries(account.name, account.kind)}
            (role,) = self._run({"command": "getRole", "rolename": role_name(account.name)}, tolerate="Role not found")
            if "error" in role:
                role = role_name(account.name)
                self._run({"command": "createRole", "rolename": role},
                          {"command": "addClientRole", "username": account.name, "rolename": role})  # fmt: skip
                present: set[tuple[str, str]] = set()
            else:
                present = {(a["acltype"], a["topic"]) for a in role["data"]["role"]["acls"] if a.get("allow")}
            commands = [{"command": "removeRoleACL", "rolename": role_name(account.name), "acltype": acltype,
                         "topic": topic} for acltype, topic in sorted(present - wanted)]  # fmt: skip
            commands += [{"command": "addRoleACL", "rolename": role_name(account.name), "acltype": acltype,
                          "topic": topic, "allow": True} for acltype, topic in sorted(wanted - present)]  # fmt: skip
            if commands:
                self._run(*commands)
                changed.append(account.name)
        return changed

    def _client(self, name: str) -> dict | None:
        (found,) = self._run({"command": "getClient", "username": name}, tolerate="Client not found")
        return None if "error" in found else found["data"]["client"]

    def _existing(self, name: str, devices_only: bool) -> Account:
        client = self._client(name)
        if client is None:
            raise ValueError(f"no account '{name}' on {self.address} ('tower accounts list' shows them)")
        account = Account(name, _kind(client.get("textname")))
        if devices_only and not isinstance(account.kind, DeviceKind):
            raise ValueError(f"'{name}' is not a device account; use 'tower accounts' for service accounts")
        return account

    # -- the plugin's request/response protocol -----------------------------------------------------

    def _run(self, *commands: dict, tolerate: str | None = None) -> list[dict]:
        """Send commands in one request; their responses in order. A plugin error is a ValueError."""
        tag = secrets.token_hex(8)
        request = [{**command, "correlationData": f"{tag}-{n}"} for n, command in enumerate(commands)]
        self.client.publish(CONTROL_TOPIC, json.dumps({"commands": request}), qos=1)
        while True:
            try:
                responses = self._responses.get(timeout=self.timeout_s)["responses"]
            except queue.Empty:
                raise ValueError(
                    f"no answer from the dynamic-security plugin on {self.address} within {self.timeout_s:.0f} s; "
                    "is it loaded (see deploy/mosquitto.conf)?"
                ) from None
            if responses and responses[0].get("correlationData") == f"{tag}-0":
                break
        for response in responses:
            error = response.get("error")
            if error and error != tolerate:
                raise ValueError(f"broker refused {response['command']}: {error}")
        return responses

    def _on_connect(self, client: mqtt.Client, userdata, flags, reason_code, properties=None) -> None:
        if reason_code.is_failure:
            self._refusal = (
                f"{self.address} refused the connection ({reason_code}); account commands need the broker's "
                "admin account in TOWER_BROKER or --broker, e.g. mqtts://admin:PASSWORD@host:8883"
            )
            self._ready.set()
        else:
            client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_subscribe(self, client: mqtt.Client, userdata, mid, reason_codes, properties=None) -> None:
        if any(code.is_failure for code in reason_codes):
            self._refusal = f"account {self.address.username} on {self.address} is not the broker's admin account"
        self._ready.set()

    def _on_message(self, client: mqtt.Client, userdata, message: mqtt.MQTTMessage) -> None:
        with contextlib.suppress(ValueError):  # not the plugin's: the request waits for its own answer
            self._responses.put(json.loads(message.payload))


@contextmanager
def account_admin(settings: Settings) -> Iterator[AccountAdmin]:
    admin = AccountAdmin(settings)
    try:
        yield admin
    finally:
        admin.close()


def _kind(textname: str | None) -> AccountKind | None:
    try:
        return account_kind(textname or "")
    except ValueError:
        return None


def describe_grants(found: list[Grant]) -> str:
    """'publishes a, b; subscribes to nothing' for the messages of `tower devices|accounts add`."""
    publish = [g.topic for g in found if g.action == "publish"]
    subscribe = [g.topic for g in found if g.action == "subscribe"]
    return f"publishes {', '.join(publish) or 'nothing'}; subscribes to {', '.join(subscribe) or 'nothing'}"
