"""The `tower` commands that read the store and print frames (table, csv, json)."""

from __future__ import annotations

import argparse

import pandas as pd

from tower.cli.output import print_frame
from tower.config import load_settings
from tower.contract import DeviceStatus
from tower.domain import is_offline
from tower.store import open_store
from tower.timeutil import parse_duration_ms, parse_moment_ms


def readings(args: argparse.Namespace) -> int:
    settings = load_settings(store=args.store)
    since = parse_moment_ms(args.since) if args.since else None
    until = parse_moment_ms(args.until) if args.until else None
    every = parse_duration_ms(args.every) if args.every else None
    if since is not None and until is not None and since >= until:
        raise ValueError(f"--since {args.since} is not before --until {args.until}")
    store = open_store(settings.store, settings, must_exist=True)
    if args.device not in {device.device_id for device in store.devices()}:
        raise ValueError(f"no device '{args.device}' in {settings.store}; 'tower devices' lists the known ones")
    frame = store.readings(args.device, fields=args.field, since_ms=since, until_ms=until, every_ms=every)
    print_frame(frame, args.format, f"no readings of {args.device} in that range")
    return 0


def dead_letters(args: argparse.Namespace) -> int:
    settings = load_settings(store=args.store)
    letters = open_store(settings.store, settings, must_exist=True).dead_letters(limit=args.limit)
    frame = pd.DataFrame(
        {
            "received": pd.to_datetime([d.received_ms for d in letters], unit="ms", utc=True),
            "topic": [d.topic for d in letters],
            "reason": [d.reason for d in letters],
            "payload": [d.payload for d in letters],
        }
    )
    print_frame(frame, args.format, "no dead letters")
    return 0


def devices(args: argparse.Namespace) -> int:
    settings = load_settings(store=args.store)
    store = open_store(settings.store, settings, must_exist=True)
    known, as_of = store.devices(), store.as_of_ms()  # judged at the data's "now", as the dashboard does
    frame = pd.DataFrame(
        {
            "device_id": [d.device_id for d in known],
            "kind": [d.kind.value for d in known],
            "last_seen": pd.to_datetime([d.last_seen_ms for d in known], unit="ms", utc=True),
            # the tower's judgement (silent too long, or said goodbye), and what the device last said of itself
            "offline": [is_offline(d.last_seen_ms, as_of, d.status == DeviceStatus.OFFLINE) for d in known],
            "reported_status": [d.status.value if d.status else None for d in known],
        }
    )
    print_frame(frame, args.format, "no devices yet")
    return 0
