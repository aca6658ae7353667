"""The `tower network ...` and `tower shipments ...` commands: master data from files, by hand."""

from __future__ import annotations

import argparse
import json

import pandas as pd

from tower.cli.output import print_frame
from tower.config import load_settings
from tower.masterdata.files import load_network_file, read_shipments_csv
from tower.masterdata.model import Shipment, StatusEvent
from tower.masterdata.store import MasterStore
from tower.timeutil import now_ms

_SHIPMENT_COLUMNS = ["id", "tracker", "route", "cargo", "departure", "promised", "status", "order", "customer"]


def _store() -> MasterStore:
    return MasterStore(load_settings().master_db)


def load_network(args: argparse.Namespace) -> int:
    network = load_network_file(args.file)
    store = _store()
    changed = store.set_network(network, str(args.file))
    print(f"network {'loaded' if changed else 'unchanged'} (revision {store.revision()}): {len(network.sites)} sites, "
          f"{len(network.lanes)} lanes, {len(network.cargo_types)} cargo types, {len(network.warehouse_sensors)} "
          f"warehouse sensors, {len(network.machines())} machines")  # fmt: skip
    return 0


def show_network(args: argparse.Namespace) -> int:
    master = _store().snapshot()
    network = master.network
    if args.format == "json":
        print(json.dumps({"revision": master.revision, **network.model_dump(mode="json")}))
        return 0
    sites = pd.DataFrame(
        [(s.id, s.name, s.type, s.lat, s.lon, "yes" if s.cold_storage else "") for s in network.sites],
        columns=["site", "name", "type", "lat", "lon", "cold_storage"],
    )
    print(f"revision {master.revision}; {len(master.shipments)} shipments (tower shipments list)")
    print_frame(sites, args.format, "no sites yet: tower network load FILE")
    if args.format == "table" and network.lanes:
        print()
        lanes = pd.DataFrame([(lane.id, lane.origin, lane.destination, lane.road) for lane in network.lanes],
                             columns=["lane", "origin", "destination", "road"])  # fmt: skip
        print_frame(lanes, "table", "")
    return 0


def import_shipments(args: argparse.Namespace) -> int:
    store = _store()
    shipments = read_shipments_csv(args.file, store.snapshot().network)
    changed = store.put_shipments(shipments, f"import:{args.file}")
    print(f"{len(shipments)} shipments in {args.file}: {changed} new or changed (revision {store.revision()})")
    return 0


def list_shipments(args: argparse.Namespace) -> int:
    shipments = _store().shipments(args.status, args.limit)
    print_frame(_frame(shipments), args.format, "no shipments (tower shipments import FILE.csv, MQTT plans, the API)")
    return 0


def show_shipment(args: argparse.Namespace) -> int:
    store = _store()
    shipment = store.shipment(args.shipment_id)
    if shipment is None:
        raise ValueError(f"no shipment '{args.shipment_id}' (see 'tower shipments list')")
    master = store.snapshot()
    problem = master.network.problem_with(shipment)
    if args.format == "json":
        print(json.dumps({**shipment.model_dump(mode="json"), "problem": problem, "revision": master.revision}))
        return 0
    for key, value in shipment.model_dump(mode="json").items():
        if value not in (None, "", {}, []):
            print(f"{key:>12}: {value}")
    if problem:
        print(f"{'problem':>12}: {problem}; the tower cannot track it until the network has it")
    return 0


def cancel_shipment(args: argparse.Namespace) -> int:
    store = _store()
    note = f"{args.reason} (by {args.by})" if args.by else args.reason
    event = StatusEvent(status="cancelled", ts=now_ms(), note=note)
    changed = store.apply_status(args.shipment_id, event, f"cli:{args.by or 'unknown'}")
    print(f"shipment {args.shipment_id} {'cancelled' if changed else 'was already cancelled'}")
    return 0


def _frame(shipments: list[Shipment]) -> pd.DataFrame:
    rows = [
        {
            "id": s.id, "tracker": s.tracker, "route": s.lane or f"{s.origin}>{s.destination}", "cargo": s.cargo,
            "departure": pd.Timestamp(s.departure, unit="ms", tz="UTC"),
            "promised": pd.Timestamp(s.promised, unit="ms", tz="UTC"), "status": s.status.value, "order": s.order,
            "customer": s.customer,
        }
        for s in shipments
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=_SHIPMENT_COLUMNS)
