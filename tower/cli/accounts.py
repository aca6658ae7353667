"""`tower devices add|remove|rotate` and `tower accounts ...`: MQTT accounts on the broker.

They connect as the broker's admin account (--broker or TOWER_BROKER). A new password goes to
stdout alone, shown this once (scripts can capture it); what the account may do goes to stderr.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from tower.access import account_kind, grants
from tower.accounts import account_admin, describe_grants
from tower.cli.output import print_frame
from tower.config import load_settings


def add_device(args: argparse.Namespace) -> int:
    return _add(args, args.device_id, args.kind)


def add_account(args: argparse.Namespace) -> int:
    return _add(args, args.name, args.role)


def remove(args: argparse.Namespace) -> int:
    devices_only = args.command == "devices"
    with account_admin(load_settings(broker=args.broker)) as admin:
        account = admin.remove(args.name, devices_only)
    print(f"removed {account.name} ({_kind_text(account.kind)}); it is disconnected if it was connected",
          file=sys.stderr)  # fmt: skip
    return 0


def rotate(args: argparse.Namespace) -> int:
    devices_only = args.command == "devices"
    with account_admin(load_settings(broker=args.broker)) as admin:
        account, password = admin.rotate(args.name, devices_only)
    print(password)
    print(f"new password for {account.name} above, shown once; the old one no longer works", file=sys.stderr)
    return 0


def list_accounts(args: argparse.Namespace) -> int:
    with account_admin(load_settings(broker=args.broker)) as admin:
        accounts = admin.accounts()
    frame = pd.DataFrame(
        {
            "name": [a.name for a in accounts],
            "kind": [_kind_text(a.kind) for a in accounts],
            "may": [describe_grants(grants(a.name, a.kind)) if a.kind else "" for a in accounts],
        }
    )
    print_frame(frame, args.format, "no accounts")
    return 0


def sync(args: argparse.Namespace) -> int:
    with account_admin(load_settings(broker=args.broker)) as admin:
        changed = admin.sync()
    print(f"updated the grants of {len(changed)} accounts{': ' if changed else ''}{', '.join(changed)}",
          file=sys.stderr)  # fmt: skip
    return 0


def _add(args: argparse.Namespace, name: str, kind_text: str) -> int:
    kind = account_kind(kind_text)
    with account_admin(load_settings(broker=args.broker)) as admin:
        password = admin.add(name, kind)
        address = admin.address
    print(password)
    scheme = "mqtts" if address.tls else "mqtt"
    print(f"created {name} ({kind}): {describe_grants(grants(name, kind))}\n"
          f"its password is above, shown once; it connects as {scheme}://{name}:PASSWORD@{address.host}:{address.port}",
          file=sys.stderr)  # fmt: skip
    return 0


def _kind_text(kind: object) -> str:
    return "" if kind is None else str(kind)
