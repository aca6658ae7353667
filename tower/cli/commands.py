"""The `tower` commands that run services: ingest, broker, dashboard, demo (and contract, health)."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path

from tower.broker import LocalBroker, free_port, port_free
from tower.config import load_settings, redact_url
from tower.contract import contract_markdown
from tower.process import Children, stop_event
from tower.store import open_store
from tower.timeutil import now_ms, parse_duration_ms, parse_moment_ms, rfc3339

log = logging.getLogger("tower")


def ingest(args: argparse.Namespace) -> int:
    from ingest.collector import run

    settings = load_settings(
        broker=args.broker,
        store=args.store,
        ingest_client_id=args.client_id,
        ingest_share_group=args.share_group,
    )
    store = open_store(settings.store, settings)
    try:
        return run(settings, store)
    finally:
        store.close()


def simulate(args: argparse.Namespace) -> int:
    from simulators.engine import Simulation
    from simulators.run import default_start_ms, run
    from tower.scenario import load_scenario

    settings = load_settings(broker=args.broker)
    scenario = load_scenario(args.scenario)
    speed = None if args.speed == "max" else _positive_speed(args.speed)
    duration = parse_duration_ms(args.duration) if args.duration else scenario.duration
    start = parse_moment_ms(args.start) if args.start else default_start_ms(duration, speed, now_ms())
    simulation = Simulation(scenario, args.seed, start, duration)
    stop = stop_event()
    log.info("simulating %s from %s for %s at %s", scenario.name, rfc3339(start), args.duration or "its duration",
             "max speed" if speed is None else f"{speed:g}x")  # fmt: skip
    run(settings, simulation, speed, args.truth, stop)
    return 0


def _positive_speed(text: str) -> float:
    try:
        speed = float(text)
    except ValueError:
        speed = 0.0
    if speed <= 0:
        raise ValueError(f"--speed '{text}' is not a positive number or 'max'")
    return speed


def contract(args: argparse.Namespace) -> int:
    print(contract_markdown())
    return 0


def broker(args: argparse.Namespace) -> int:
    settings = load_settings()
    done = stop_event()
    with LocalBroker(settings.data_dir / "broker", port=args.port, persistence=True) as local:
        print(f"{local.name} listening on {local.url} (MQTT {local.protocol}); Ctrl-C stops it", file=sys.stderr)
        _wait_for_signal(done)
    return 0


def dashboard(args: argparse.Namespace) -> int:
    """`streamlit run dashboards/app.py`, headless, on loopback unless told otherwise, with the store
    and data directory passed on; visitors see no error details (dashboards/ui.py logs them)."""
    settings = load_settings(store=args.store, dashboard_host=args.host)
    for module in ("streamlit", "pydeck"):  # imported by the Streamlit process, not this one: check here
        if importlib.util.find_spec(module) is None:
            raise ModuleNotFoundError(module, name=module)
    app = Path(importlib.util.find_spec("dashboards").origin).parent / "app.py"  # in the source tree or installed
    env = {**os.environ, "TOWER_STORE": settings.store, "TOWER_DATA_DIR": str(settings.data_dir.resolve())}
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.address", settings.dashboard_host,
               "--server.port", str(args.port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--client.showErrorDetails", "none", "--client.toolbarMode", "viewer",
               "--server.fileWatcherType", "none"]  # fmt: skip
    os.execve(sys.executable, command, env)  # Streamlit takes this process: stop signals reach it, no orphan


def health(args: argparse.Namespace) -> int:
    from tower.health import heartbeat_problem, http_problem

    settings = load_settings()
    if args.service == "dashboard":
        problem = http_problem(f"http://127.0.0.1:{args.port or 8501}/_stcore/health")
    elif args.service == "api":
        problem = http_problem(f"http://127.0.0.1:{args.port or settings.api_port}/health")
    else:
        client_id = settings.ingest_client_id if args.service == "ingest" else settings.alerts_client_id
        problem = heartbeat_problem(settings.health_dir / client_id, args.service)
    if problem:
        print(f"tower: unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


# The demo's services and the MQTT accounts they run as, with the least rights each needs (tower.access).
DEMO_ACCOUNTS = {"ingest": ("tower-ingest", "collector"), "alerts": ("tower-alerts", "alerts"),
                 "simulate": ("tower-simulator", "simulator")}  # fmt: skip


def _demo_accounts(local: LocalBroker) -> dict[str, str]:
    """A fresh password per demo run for each service account: {service: its broker URL}."""
    from tower.access import account_kind
    from tower.accounts import account_admin

    urls = {}
    with account_admin(load_settings(broker=local.admin_url)) as admin:
        existing = {account.name for account in admin.accounts()}
        for service, (name, role) in DEMO_ACCOUNTS.items():
            password = admin.rotate(name)[1] if name in existing else admin.add(name, account_kind(role))
            urls[service] = local.url_for(name, password)
    return urls


def _demo_user(data_dir: Path) -> Path:
    """A dashboard user `demo` (admin) with a fresh password per demo run, kept in a file only its owner reads."""
    import secrets

    from dashboards.users import add_user, read_users, remove_user

    settings = load_settings(data_dir=data_dir)
    if any(user.name == "demo" for user in read_users(settings.users_file).users):
        remove_user(settings.users_file, "demo")
    password = secrets.token_urlsafe(12)
    add_user(settings.users_file, "demo", "admin", password, rfc3339(now_ms()))
    kept = data_dir / "dashboard-password"
    with open(os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(password + "\n")
    return kept


DEMO_MARKER = ".tower-demo"  # in a data directory the demo made, so a later demo may empty it


def _fresh_demo_state(data_dir: Path, store_url: str) -> None:
    """Each demo replays a day that ends now; on an earlier run's data, trails would zigzag between
    two days and alerts mix. So the demo starts from an empty data directory: one an earlier demo
    made is emptied, one that holds anything else is refused (it may be someone's real state), and
    so is an existing SQLite store outside it."""
    import shutil
    from urllib.parse import urlsplit

    fix = "give the demo a data directory of its own (e.g. TOWER_DATA_DIR=var-demo make demo) or move it away"
    used = data_dir.is_dir() and any(data_dir.iterdir())
    made_by_demo = (data_dir / DEMO_MARKER).exists() or (data_dir / "logs" / "truth.jsonl").exists()
    if used and not made_by_demo:
        raise ValueError(f"{data_dir} holds data that is not a demo's; {fix}")
    store = urlsplit(store_url)
    store_file = Path(store.path[1:]) if store.scheme == "sqlite" else None
    if store_file is not None and store_file.exists() and not store_file.resolve().is_relative_to(data_dir.resolve()):
        raise ValueError(f"the store {store_file} exists already; the demo writes a day of data into an empty one")
    if used:
        shutil.rmtree(data_dir)
        log.info("emptied %s, the previous demo's data", data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / DEMO_MARKER).write_text("made by 'tower demo'; the next demo empties this directory\n")


def demo(args: argparse.Namespace) -> int:
    """Broker, collector, alert engine, dashboard, API and the default scenario (at 60x, ending now) as children."""
    from simulators.run import default_start_ms
    from tower.masterdata.store import MasterStore
    from tower.scenario import DEFAULT_SCENARIO, load_scenario

    settings = load_settings(store=args.store)
    port = args.port or (1883 if port_free(1883) else None)
    data_dir = settings.data_dir
    _fresh_demo_state(data_dir, settings.store)
    speed = 60
    dashboard_port = 8501 if port_free(8501) else free_port()
    api_port = 8600 if port_free(8600) else free_port()
    api_token = "tower_demo_" + secrets.token_urlsafe(24)  # this run's, for trying the API (role admin)
    start = rfc3339(default_start_ms(load_scenario("default").duration, speed, now_ms()))
    MasterStore(settings.master_db).sync_network_file(DEFAULT_SCENARIO)  # the dashboard shows the sites at once
    done = stop_event()  # before any child starts: SIGTERM must never end this process without them
    dashboard_url = f"http://127.0.0.1:{dashboard_port}"  # where it listens (loopback), and so the working link
    password_file = _demo_user(data_dir)
    # As production runs it, minus TLS on loopback: no anonymous clients, an account per service.
    # Children stop first (the collector flushes while the broker is still up), then the broker.
    with LocalBroker(data_dir / "broker", port=port, persistence=True, accounts=True) as local, Children() as children:
        broker_urls = _demo_accounts(local)
        env = {
            **os.environ,
            "TOWER_MQTT_PROTOCOL": local.protocol,
            "TOWER_STORE": settings.store,
            "TOWER_NETWORK": str(DEFAULT_SCENARIO),  # a scenario's network part serves as the network file
            "TOWER_DASHBOARD_URL": dashboard_url,  # the links in notifications
            "TOWER_API_URL": f"http://127.0.0.1:{api_port}",  # the one-click acknowledgement links
        }
        logs = data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        tower = [sys.executable, "-m", "tower.cli"]
        commands = {
            "ingest": [*tower, "ingest"],
            "alerts": [*tower, "alerts", "run"],
            "simulate": [*tower, "simulate", "--speed", str(speed), "--start", start,
                         "--truth", str(logs / "truth.jsonl")],
            "dashboard": [*tower, "dashboard", "--port", str(dashboard_port)],
            "api": [*tower, "api", "--port", str(api_port)],
        }  # fmt: skip
        api_env = {"TOWER_API_TOKEN": api_token, "TOWER_API_TOKEN_NAME": "demo", "TOWER_API_TOKEN_ROLE": "admin"}
        for name, command in commands.items():
            with open(logs / f"{name}.log", "ab") as log_file:  # the child has its own copy
                child_env = {**env, "TOWER_BROKER": broker_urls[name]} if name in broker_urls else env
                child_env = {**child_env, **api_env} if name == "api" else child_env
                children.start(name, command, env=child_env, stdout=log_file, stderr=subprocess.STDOUT)
        store = redact_url(settings.store)
        # the commands to try, as typed in another terminal: they find the demo's state only if told where
        typed = "tower" if data_dir == Path("var") else f"TOWER_DATA_DIR={data_dir} tower"
        flag = f" --store {store}" if args.store else ""
        print(
            f"Control Tower demo running: {local.name} on {local.url} (accounts only), store {store}\n"
            f"  dashboard:   {dashboard_url}   (user demo, password: cat {password_file})\n"
            f"  api:         http://127.0.0.1:{api_port}/docs   (token for this run: {api_token})\n"
            f"  logs:        {logs}/\n"
            f"  devices:     {typed} devices{flag}\n"
            f"  add one:     {typed} devices add ID --kind shipment "
            f"--broker mqtt://admin:$(cat {local.data_dir}/admin-password)@127.0.0.1:{local.port}\n"
            f"  shipments:   {typed} shipments list   (the simulator's TMS publishes their plans over MQTT)\n"
            f"  readings:    {typed} query readings{flag} --device trk-rtm-ams-01 --every 5m\n"
            f"  rejects:     {typed} query dead-letters{flag}\n"
            f"  alerts:      {typed} alerts list   (then: tower alerts show ID, tower alerts ack ID --by NAME)\n"
            "Ctrl-C stops everything.",
            file=sys.stderr,
        )
        _wait_for_signal(done, children)
    return 0


def _wait_for_signal(done: threading.Event, children: Children | None = None) -> None:
    finished: set[str] = set()
    while not done.wait(1.0):
        for name, child in (children.processes if children else {}).items():
            code = child.poll()
            if code == 0 and name not in finished:  # the simulator ends with its scenario; the rest runs on
                finished.add(name)
                log.info("%s finished; the collector and alert engine keep running until Ctrl-C", name)
            elif code not in (None, 0):
                log.error("%s exited with code %s (see its log); stopping the demo", name, code)
                return
