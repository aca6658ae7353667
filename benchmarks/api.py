"""HTTP API benchmark: request latency of `tower api` on a seeded store.

Seed: 9 h 15 min of the default scenario backfilled into SQLite, an alert book and master data
(simulators/backfill.py, as the API and dashboard tests seed theirs). `tower api` runs as its own
process; one client on a kept-alive connection sends the requests one after another, so each
figure is one request's latency through uvicorn, FastAPI, the token check and the stores.
Measured: GET /shipments/{id} (cycling through every shipment: plan, where it stands, open
alerts), GET /shipments (a page of 100 with where each stands), GET /alerts (the open queue).
Baseline in the same run: GET /health (the same server and connection, one indexed read).

Run: make bench   (or: python -m benchmarks.api --requests 500)
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from alerts.book import AlertBook
from alerts.rules import load_rules
from simulators.backfill import backfill
from simulators.engine import Simulation
from tower.broker import free_port
from tower.masterdata.store import MasterStore
from tower.scenario import load_scenario
from tower.store.sqlite import SqliteStore
from tower.timeutil import parse_moment_ms

REPO = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"
SEEDED_MS = int(9.25 * 3_600_000)


def seed(folder: Path) -> list[str]:
    """The seeded store, book and master data in `folder`; the shipment ids."""
    simulation = Simulation(load_scenario("default"), 1, parse_moment_ms("2026-01-05T00:00:00Z"), SEEDED_MS)
    store, master = SqliteStore(folder / "tower.db"), MasterStore(folder / "master.db")
    backfill(simulation, store, load_rules("default"), AlertBook(folder / "alerts.db"), master)
    store.close()
    return [shipment.id for shipment in master.shipments()]


def start_api(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "TOWER_DATA_DIR": str(folder), "TOWER_STORE": f"sqlite:///{folder}/tower.db",
           "TOWER_API_TOKEN": TOKEN, "TOWER_API_TOKEN_ROLE": "viewer"}  # fmt: skip
    with open(folder / "api.log", "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "tower.cli", "api", "--port", str(port)], env=env,
                                   cwd=REPO, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"tower api did not start: {(folder / 'api.log').read_text()[-2000:]}")


def latencies_ms(client: httpx.Client, paths: list[str], requests: int) -> list[float]:
    for path in paths[:20]:  # warm-up: imports, caches, connections
        client.get(path).raise_for_status()
    taken = []
    for n in range(requests):
        started = time.perf_counter()
        client.get(paths[n % len(paths)]).raise_for_status()
        taken.append((time.perf_counter() - started) * 1000)
    return taken


def _quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1] if q < 1 else max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per endpoint (default: 400)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tower-bench-api-") as tmp:
        folder = Path(tmp)
        shipments = seed(folder)
        process, url = start_api(folder)
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
                runs = {
                    "GET /health (baseline)": latencies_ms(client, ["/health"], args.requests),
                    "GET /shipments/{id}": latencies_ms(client, [f"/shipments/{s}" for s in shipments], args.requests),
                    "GET /shipments?limit=100": latencies_ms(client, ["/shipments?limit=100"], args.requests),
                    "GET /alerts": latencies_ms(client, ["/alerts"], args.requests),
                }
                open_alerts = len(client.get("/alerts", params={"limit": 1000}).json()["items"])
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
    print(f"HTTP API on the seeded default scenario ({len(shipments)} shipments, {open_alerts} open alerts), "
          f"{args.requests} sequential requests each, one kept-alive connection:")  # fmt: skip
    baseline = statistics.median(runs["GET /health (baseline)"])
    for name, taken in runs.items():
        p50, p99 = statistics.median(taken), _quantile(taken, 0.99)
        print(f"  {name:<24} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  p50 / health {p50 / baseline:5.1f}x")


if __name__ == "__main__":
    main()
