"""Dashboard benchmark: each page's server-side run, and what the map sends, on a large network.

Seeded store (SQLite): the network of long_haul.yaml, 2,000 shipments on the road on four
long-haul lanes out of the default network's DCs, 200 machines, the default warehouse sensors,
each reporting once per 10 s for 24 h (about 19 million readings), written through the store
interface; an alert book with the alerts such a day leaves open (delivery at risk for 1 in 10
shipments, cold-chain excursions for 1 in 50, wearing machines). Readings are generated with
numpy (the simulator at 10 s would take ~15 min for this); the seed is kept in
var/bench-dashboard/ and reused (delete it to reseed).

Each page runs under Streamlit's AppTest (the server side of a browser session, signed in): cold
(nothing kept: every read made by the page, as after a minute unread or a write) and warm.
Baseline in the same run: an empty page under the same harness. Map payload: the bytes of the deck
sent for the Map page's default view. The same pages in a real browser: benchmarks/dashboard_browser.py.

Run: make bench   (or: python -m benchmarks.dashboard)
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from alerts.book import AlertBook
from alerts.conditions import State
from alerts.evaluate import Change, Tracking
from alerts.rules import load_rules
from tower.contract import DeviceKind, Reading
from tower.domain import Severity
from tower.masterdata.model import Equipment
from tower.masterdata.store import MasterStore
from tower.masterdata.view import MasterData
from tower.scenario import load_scenario
from tower.store import Batch
from tower.store.sqlite import SqliteStore

REPO = Path(__file__).resolve().parent.parent
SEED_DIR = REPO / "var" / "bench-dashboard"
SCENARIO = Path(__file__).resolve().parent / "long_haul.yaml"
START_MS = 1_767_571_200_000  # 2026-01-05T00:00Z
DAY_MS, EVERY_MS = 86_400_000, 10_000
SHIPMENTS, MACHINES = 2_000, 200
PAGES = ["overview", "map", "shipment", "warehouses", "equipment", "alerts"]
RUNS = 3
USER, PASSWORD = "bench", "benchmark password"  # an admin of the seeded store's dashboard


def _tracker_readings(plan, rng: np.random.Generator, times: np.ndarray) -> list[Reading]:
    points = np.array(plan.route.points)
    cumulative = np.array(plan.route.cumulative_m)
    pace = plan.planned_speed_m_s * rng.uniform(0.8, 1.1)
    along = np.clip((times - plan.departure_ms) / 1000 * pace, 0, plan.route.length_m)
    lat, lon = np.interp(along, cumulative, points[:, 0]), np.interp(along, cumulative, points[:, 1])
    setpoint = plan.cargo_type.setpoint_c
    temp = (setpoint if setpoint is not None else 15.0) + rng.normal(0, 0.4, len(times))
    if setpoint is not None and rng.random() < 0.02:  # a reefer that fails at noon
        temp += np.where(times > START_MS + DAY_MS // 2, 9.0, 0.0)
    speed = np.where(times >= plan.departure_ms, pace * 3.6 + rng.normal(0, 4, len(times)), 0.0).clip(0)
    return [
        Reading(DeviceKind.SHIPMENT, plan.tracker, int(t), {"lat": round(a, 6), "lon": round(o, 6),
                                                            "speed_kmh": round(v, 1), "temp_c": round(c, 2),
                                                            "door_open": False}, seq)
        for seq, (t, a, o, v, c) in enumerate(zip(times, lat, lon, speed, temp, strict=True))
    ]  # fmt: skip


def _machine_readings(device: str, group: Equipment, rng: np.random.Generator, times: np.ndarray,
                      wearing: bool) -> list[Reading]:  # fmt: skip
    healthy = group.healthy
    hours = (times - START_MS) / 3_600_000
    wear = 0.12 * np.maximum(0, hours - 6) if wearing else 0
    vibration = np.mean(healthy.vibration_rms_mm_s) + wear + rng.normal(0, 0.15, len(times))
    bearing = np.mean(healthy.bearing_temp_c) + 4 * wear + rng.normal(0, 0.5, len(times))
    current = np.mean(healthy.motor_current_a) + rng.normal(0, 0.3, len(times))
    return [
        Reading(DeviceKind.EQUIPMENT, device, int(t), {"vibration_rms_mm_s": round(v, 3), "bearing_temp_c": round(b, 2),
                                                       "motor_current_a": round(c, 2), "rpm": healthy.rpm,
                                                       "state": "running"}, seq)
        for seq, (t, v, b, c) in enumerate(zip(times, vibration, bearing, current, strict=True))
    ]  # fmt: skip


def _sensor_readings(sensor, rng: np.random.Generator, times: np.ndarray) -> list[Reading]:
    base = sensor.setpoint_c if sensor.setpoint_c is not None else 14.0
    temp = base + rng.normal(0, 0.3, len(times))
    door = (times // 600_000) % 5 == 0  # open 10 minutes in every 50
    return [
        Reading(DeviceKind.WAREHOUSE, sensor.id, int(t), {"temp_c": round(c, 2), "humidity_pct": 55.0,
                                                          "dock_door_open": bool(d)}, seq)
        for seq, (t, c, d) in enumerate(zip(times, temp, door, strict=True))
    ]  # fmt: skip


def seed(folder: Path) -> dict:
    """Store, master data and alert book (with the engine's tracking) in folder; (re)used when complete."""
    done = folder / "seeded.json"
    if done.exists():
        _bench_user(folder)
        return json.loads(done.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db*"):
        stale.unlink()
    world = load_scenario(SCENARIO)
    master = MasterStore(folder / "master.db")
    master.set_network(world.network(), str(SCENARIO))
    master.put_shipments(world.plans(START_MS), "benchmark")
    network = master.snapshot()
    store = SqliteStore(folder / "tower.db")
    book = AlertBook(folder / "alerts.db")
    rng = np.random.default_rng(1)
    times = np.arange(START_MS, START_MS + DAY_MS, EVERY_MS)
    began, written = time.monotonic(), 0
    pending: list[Reading] = []

    def flush(force: bool = False) -> None:
        nonlocal pending, written
        if len(pending) >= 50_000 or (force and pending):
            store.write(Batch(readings=pending))
            written, pending = written + len(pending), []

    for plan in network.plans.values():
        pending += _tracker_readings(plan, rng, times + int(rng.integers(EVERY_MS)))
        book.save_tracking([_tracking(plan, pending[-1])])  # as the engine would have left it
        flush()
    for n, (machine, group) in enumerate(world.machines()):
        pending += _machine_readings(machine, group, rng, times + int(rng.integers(EVERY_MS)), wearing=n % 20 == 0)
        flush()
    for sensor in world.warehouse_sensors:
        pending += _sensor_readings(sensor, rng, times + int(rng.integers(EVERY_MS)))
        flush()
    flush(force=True)
    store.close()
    seconds = time.monotonic() - began
    alerts = _seed_alerts(book, network)
    facts = {"readings": written, "seed_s": round(seconds), "alerts": alerts,
             "db_mb": round((folder / "tower.db").stat().st_size / 1e6)}  # fmt: skip
    done.write_text(json.dumps(facts))
    _bench_user(folder)
    return facts


def _bench_user(folder: Path) -> None:
    from dashboards.users import add_user, read_users

    if not read_users(folder / "dashboard-users.yaml").users:
        add_user(folder / "dashboard-users.yaml", USER, "admin", PASSWORD, "")


def _tracking(plan, newest: Reading) -> Tracking:
    fields = newest.fields
    remaining = plan.route.length_m - plan.route.distance_from((fields["lat"], fields["lon"]))[1]
    eta = newest.ts_ms + int(remaining / plan.planned_speed_m_s * 1000)
    return Tracking(plan.shipment_id, plan.tracker, newest.ts_ms, fields["lat"], fields["lon"], fields["temp_c"],
                    fields["speed_kmh"], remaining, None, eta - 600_000, eta, eta + 1_800_000, 0)  # fmt: skip


def _seed_alerts(book: AlertBook, network: MasterData) -> int:
    rules = {rule.id: rule for rule in load_rules("default").rules}
    end = START_MS + DAY_MS
    changes = []
    for n, plan in enumerate(network.plans.values()):
        device = plan.tracker
        if n % 10 == 0:
            changes.append(Change(rules["delivery-at-risk"], plan.shipment_id, device, DeviceKind.SHIPMENT,
                                  plan.origin.id, State.FIRING, Severity.MAJOR, end - 3_600_000, 25.0,
                                  "ETA later than promised"))  # fmt: skip
        if n % 50 == 0 and plan.cargo_type.controlled:
            changes.append(Change(rules["cold-chain-excursion"], plan.shipment_id, device, DeviceKind.SHIPMENT,
                                  plan.origin.id, State.FIRING, Severity.CRITICAL, end - 7_200_000, 12.0,
                                  "temp_c out of range"))  # fmt: skip
    for n, (machine, group) in enumerate(network.network.machines()):
        if n % 20 == 0:
            changes.append(Change(rules["vibration-to-limit"], machine, machine, DeviceKind.EQUIPMENT, group.site,
                                  State.FIRING, Severity.MAJOR, end - 5_400_000, 9.5, "crosses 4.5"))  # fmt: skip
    for change in changes:
        book.apply(change, change.at_ms)
    return len(changes)


def _timed(run) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def measure(folder: Path) -> tuple[dict[str, tuple[float, float]], float, int, float]:
    """Per page (cold median, warm median) seconds; the first load after a start; the map's deck
    bytes; the empty page's median. Cold = nothing kept (data.expire()), every read made by the page."""
    from streamlit.testing.v1 import AppTest

    from dashboards import data

    os.environ.update(TOWER_STORE=f"sqlite:///{folder}/tower.db", TOWER_DATA_DIR=str(folder))
    app_file = str(REPO / "dashboards" / "app.py")

    def signed_in(timeout: float) -> AppTest:
        app = AppTest.from_file(app_file, default_timeout=timeout)
        app.run()
        app.text_input(key="sign_in_name").input(USER)
        app.text_input(key="sign_in_password").input(PASSWORD)
        app.button(key="sign_in_submit").click()
        return app

    data.expire()
    first = _timed(signed_in(300).run)  # the sign-in's submit: it runs the start page
    results, deck_bytes = {}, 0
    for page in PAGES:
        cold, warm = [], []
        for _ in range(RUNS):
            app = signed_in(120)
            app.run()
            data.expire()
            cold.append(_timed(lambda app=app, page=page: app.switch_page(f"views/{page}.py").run()))
            assert not app.exception, [e.message for e in app.exception]
            warm.append(_timed(app.run))
            if page == "map":
                deck_bytes = len(app.get("deck_gl_json_chart")[0].proto.json.encode())
        results[page] = (statistics.median(cold), statistics.median(warm))
    with tempfile.TemporaryDirectory() as empty_dir:
        empty = Path(empty_dir) / "empty.py"
        empty.write_text("import streamlit as st\nst.title('empty')\n")
        baseline = statistics.median(_timed(AppTest.from_file(str(empty)).run) for _ in range(RUNS))
    return results, first, deck_bytes, baseline


def main() -> None:
    import logging

    logging.disable(logging.WARNING)
    folder = SEED_DIR
    facts = seed(folder)
    print(f"seeded store: {facts['readings']:,} readings ({facts['db_mb']} MB, written in {facts['seed_s']} s), "
          f"{facts['alerts']} open alerts; {SHIPMENTS:,} shipments on the road, {MACHINES} machines")  # fmt: skip
    results, first, deck_bytes, baseline = measure(folder)
    print(f"{'page':<12} {'cold (s)':>9} {'warm (s)':>9} {'cold / empty page':>18}")
    for page, (cold, warm) in results.items():
        print(f"{page:<12} {cold:>9.2f} {warm:>9.2f} {cold / baseline:>17.0f}x")
    print(f"baseline: an empty page under the same harness: {baseline * 1000:.0f} ms")
    print(f"first load after a start (every cache empty, sign-in included): {first:.1f} s (target <= 2 s)")
    print(f"map payload: {deck_bytes / 1e6:.2f} MB of deck JSON for {SHIPMENTS:,} shipments (target <= 2 MB)")
    worst = max(cold for cold, _ in results.values())
    print(f"slowest page cold: {worst:.2f} s (target <= 1 s): {'OK' if worst <= 1.0 else 'OVER'}")


if __name__ == "__main__":
    main()
