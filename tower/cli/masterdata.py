"""The `tower network ...` and `tower shipments ...` commands: master data from files, by hand."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import TYPE_CHECKING

import pandas as pd

from tower.cli.output import print_frame
from tower.config import load_settings
from tower.masterdata.files import load_network_file, read_shipments_csv
from tower.masterdata.model import Network, Shipment, StatusEvent
from tower.masterdata.store import MasterStore
from tower.masterdata.view import MasterData
from tower.timeutil import now_ms, rfc3339

if TYPE_CHECKING:
    from alerts.shipment_view import ShipmentView

_SHIPMENT_COLUMNS = ["id", "tracker", "route", "cargo", "departure", "promised", "status", "order", "customer",
                     "progress", "eta", "open_alerts"]  # fmt: skip


def _store() -> MasterStore:
    return MasterStore(load_settings().master_db)


def load_network(args: argparse.Namespace) -> int:
    network = load_network_file(args.file)
    store = _store()
    changed = store.set_network(network, str(args.file))
    counts = ", ".join(_count(len(items), noun) for items, noun in (
        (network.sites, "site"), (network.lanes, "lane"), (network.cargo_types, "cargo type"),
        (network.warehouse_sensors, "warehouse sensor"), (network.machines(), "machine")))  # fmt: skip
    print(f"network {'loaded' if changed else 'unchanged'} (revision {store.revision()}): {counts}")
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
    if args.format != "table":
        print_frame(sites, args.format, "no sites yet: tower network load FILE")
        return 0
    print(f"revision {master.revision}; {len(master.shipments)} shipments (tower shipments list)")
    tables = {
        "sites": sites,
        "lanes": pd.DataFrame([(lane.id, lane.origin, lane.destination, lane.road) for lane in network.lanes],
                              columns=["lane", "origin", "destination", "road"]),
        "cargo types": pd.DataFrame([(name, c.min_c, c.max_c, c.setpoint_c, c.description)
                                     for name, c in network.cargo_types.items()],
                                    columns=["cargo type", "min_c", "max_c", "setpoint_c", "description"]),
        "warehouse sensors": pd.DataFrame([(s.id, s.site, s.zone, s.min_c, s.max_c) for s in network.warehouse_sensors],
                                          columns=["sensor", "site", "zone", "min_c", "max_c"]),
        "equipment": pd.DataFrame([(machine, group.site, group.type) for machine, group in network.machines()],
                                  columns=["machine", "site", "type"]),
    }  # fmt: skip
    for title, frame in tables.items():
        print(f"\n{title}:")
        print_frame(frame, "table", "  none" if network.sites else "  none: tower network load FILE")
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def import_shipments(args: argparse.Namespace) -> int:
    store = _store()
    shipments = read_shipments_csv(args.file, store.snapshot().network)
    changed = store.put_shipments(shipments, f"import:{args.file}")
    print(f"{len(shipments)} shipments in {args.file}: {changed} new or changed (revision {store.revision()})")
    return 0


def list_shipments(args: argparse.Namespace) -> int:
    store = _store()
    shipments = store.shipments(args.status, args.limit)
    frame = _frame(shipments, _standing(store.snapshot().network, shipments))
    print_frame(frame, args.format, "no shipments (tower shipments import FILE.csv, MQTT plans, the API)")
    return 0


def _standing(network: Network, shipments: list[Shipment]) -> dict[str, ShipmentView]:
    """Where each shipment stands (progress, ETA, open alerts), as the dashboard and the API judge it
    (alerts.shipment_view), as of the newest reading in the store (the wall clock without one)."""
    from alerts.book import AlertBook
    from alerts.rules import load_rules
    from alerts.shipment_view import RuleRoles, shipment_views
    from tower.store import open_store

    settings = load_settings()
    plans = MasterData(network, {s.id: s for s in shipments if network.problem_with(s) is None}).plans
    try:
        readings = open_store(settings.store, settings, must_exist=True)
    except ValueError:  # no store yet: nothing has reported
        as_of = now_ms()
    else:
        as_of = readings.as_of_ms()
        readings.close()
    book = AlertBook(settings.alerts_db)
    try:
        views = shipment_views(plans, book.tracking(), book.alerts("open", limit=1_000_000),
                               RuleRoles.of(load_rules(settings.alert_rules)), as_of)  # fmt: skip
    finally:
        book.close()
    return {view.shipment: view for view in views}


def show_shipment(args: argparse.Namespace) -> int:
    store = _store()
    shipment = store.shipment(args.shipment_id)
    if shipment is None:
        raise ValueError(f"no shipment '{args.shipment_id}' (see 'tower shipments list')")
    master = store.snapshot()
    problem = master.network.problem_with(shipment)
    view = _standing(master.network, [shipment]).get(args.shipment_id)
    standing = {key: rfc3339(value) if key.endswith("_ms") and value is not None else value
                for key, value in asdict(view).items()} if view else None  # fmt: skip
    if args.format == "json":
        print(json.dumps({**shipment.model_dump(mode="json"), "problem": problem, "revision": master.revision,
                          "standing": standing}))  # fmt: skip
        return 0
    for key, value in shipment.model_dump(mode="json").items():
        if isinstance(value, dict):  # references: one line each, as they were given ("ref:po" in a CSV)
            for name, reference in value.items():
                print(f"{'ref:' + name:>12}: {reference}")
        elif value not in (None, "", []):
            print(f"{key:>12}: {value}")
    if problem:
        print(f"{'problem':>12}: {problem}; the tower cannot track it until the network has it")
    if standing:
        print("where it stands:")
        for key in ("status", "progress_pct", "remaining_km", "eta_ms", "eta_early_ms", "eta_late_ms", "late_by_min",
                    "arrival_ms", "last_ms", "temp_c", "excursion_min", "open_alerts", "worst"):  # fmt: skip
            if standing[key] is not None:
                print(f"{key.removesuffix('_ms'):>12}: {standing[key]}")
    return 0


def cancel_shipment(args: argparse.Namespace) -> int:
    store = _store()
    note = f"{args.reason} (by {args.by})" if args.by else args.reason
    event = StatusEvent(status="cancelled", ts=now_ms(), note=note)
    changed = store.apply_status(args.shipment_id, event, f"cli:{args.by or 'unknown'}")
    print(f"shipment {args.shipment_id} {'cancelled' if changed else 'was already cancelled'}")
    return 0


def _frame(shipments: list[Shipment], standing: dict[str, ShipmentView]) -> pd.DataFrame:
    rows = [
        {
            "id": s.id, "tracker": s.tracker, "route": s.lane or f"{s.origin}>{s.destination}", "cargo": s.cargo,
            "departure": pd.Timestamp(s.departure, unit="ms", tz="UTC"),
            "promised": pd.Timestamp(s.promised, unit="ms", tz="UTC"), "status": s.status.value, "order": s.order,
            "customer": s.customer,
            **_where(standing.get(s.id)),
        }
        for s in shipments
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=_SHIPMENT_COLUMNS)


def _where(view: ShipmentView | None) -> dict:
    if view is None:  # the network cannot resolve it (tower shipments show ID says why)
        return {"progress": "", "eta": None, "open_alerts": None}
    eta = view.arrival_ms if view.arrival_ms is not None else view.eta_ms
    return {"progress": view.status, "eta": pd.Timestamp(eta, unit="ms", tz="UTC") if eta is not None else None,
            "open_alerts": view.open_alerts}  # fmt: skip
