"""The `tower` command: one entry point, one sub-command per capability.

Mistakes (bad flags, URLs, times, unknown devices) print one line saying what is wrong and how
to fix it, and exit 2; an unavailable store or broker, a broker that refuses a service's account,
and a second service on state another one holds exit 1. No tracebacks for any.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from pydantic import ValidationError

from tower.access import ServiceRole
from tower.contract import DeviceKind
from tower.mqtt import BrokerRefused, BrokerUnavailable
from tower.process import AlreadyRunning
from tower.roles import PEOPLE_ROLES
from tower.store import StoreUnavailable

FORMATS = ("table", "csv", "json")
# Optional dependencies by the extra that installs them (pyproject.toml): the collector's image has none.
EXTRAS = {"apprise": "alerts", "itsdangerous": "alerts", "influxdb_client": "influx", "urllib3": "influx",
          "streamlit": "dashboard", "pydeck": "dashboard", "argon2": "dashboard"}  # fmt: skip
BROKER_HELP = "mqtt[s]://[account:password@]host:port (default: $TOWER_BROKER)"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's usage dump becomes one line
        print(f"{self.prog}: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(2)


def _store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", help="store URL (default: $TOWER_STORE or sqlite:///var/tower.db)")


def _format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")


def _broker_option(parser: argparse.ArgumentParser, help_text: str = BROKER_HELP) -> None:
    parser.add_argument("--broker", help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tower", description="Control Tower: supply-chain visibility from device to dashboard.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ingest = sub.add_parser("ingest", help="run the MQTT collector into the store")
    _broker_option(ingest)
    _store_option(ingest)
    ingest.add_argument("--client-id", help="MQTT client id of the persistent session (default: tower-ingest)")
    ingest.add_argument("--share-group", help="join the shared subscription $share/GROUP/... to split load")
    ingest.set_defaults(run="commands:ingest")

    query = sub.add_parser("query", help="read readings or dead letters from the store")
    query_sub = query.add_subparsers(dest="what", metavar="WHAT", required=True)
    readings = query_sub.add_parser("readings", help="one device's readings in a time range")
    readings.add_argument("--device", required=True, help="device id (see 'tower devices')")
    readings.add_argument("--field", action="append", help="only this field (repeatable)")
    readings.add_argument("--since", help="start: RFC 3339, epoch seconds, or an age like 2h (default: all)")
    readings.add_argument("--until", help="end, exclusive: same forms as --since (default: now)")
    readings.add_argument("--every", help="downsample to means per interval, e.g. 1m, 15m, 1h")
    _store_option(readings)
    _format_option(readings)
    readings.set_defaults(run="queries:readings")
    dead = query_sub.add_parser("dead-letters", help="rejected messages with their reasons")
    dead.add_argument("--limit", type=int, default=1000, help="newest N (default: 1000)")
    _store_option(dead)
    _format_option(dead)
    dead.set_defaults(run="queries:dead_letters")

    _account_commands(sub)

    contract = sub.add_parser("contract", help="print the message contract's field tables (Markdown)")
    contract.set_defaults(run="commands:contract")

    broker = sub.add_parser("broker", help="run a local mosquitto (anonymous, loopback only: for development)")
    broker.add_argument("--port", type=int, default=1883, help="port on 127.0.0.1 (default: 1883)")
    broker.set_defaults(run="commands:broker")

    simulate = sub.add_parser(
        "simulate",
        help="play a scenario's devices onto MQTT, with injected faults and a ground-truth log",
        description="Play a scenario onto MQTT. Simulated time runs --speed times faster than real time; "
        "event timestamps are simulated time and never ahead of the present (by default the run ends now).",
    )
    simulate.add_argument("--scenario", default="default", help="scenario file, or a bundled one: default, iberia")
    simulate.add_argument("--speed", default="1", help="simulated seconds per real second, or 'max' (default: 1)")
    simulate.add_argument("--duration", help="simulated time to run, e.g. 2h (default: the scenario's)")
    simulate.add_argument(
        "--start", help="simulated start: RFC 3339, epoch seconds, or an age like 24h (default: ends now)"
    )
    simulate.add_argument(
        "--seed", type=int, default=1, help="random seed; the same seed and start replay byte for byte"
    )
    _broker_option(simulate)
    simulate.add_argument("--truth", help="write the injected faults as JSON Lines to this file")
    simulate.set_defaults(run="commands:simulate")

    _master_data_commands(sub)
    _alert_commands(sub)

    _api_commands(sub)

    dashboard = sub.add_parser("dashboard", help="run the Streamlit control tower (sign-in with roles: tower users)")
    dashboard.add_argument("--host", help="address to listen on (default: $TOWER_DASHBOARD_HOST or 127.0.0.1)")
    dashboard.add_argument("--port", type=int, default=8501, help="HTTP port (default: 8501)")
    _store_option(dashboard)
    dashboard.set_defaults(run="commands:dashboard")
    _user_commands(sub)

    health = sub.add_parser("health", help="exit 0 if a service here is alive (container healthchecks)")
    health.add_argument("service", choices=("ingest", "alerts", "dashboard", "api"))
    health.add_argument("--port", type=int, help="dashboard, api: its HTTP port (default: 8501, 8600)")
    health.set_defaults(run="commands:health")

    demo = sub.add_parser("demo", help="run the whole system locally: broker, collector, simulator (default scenario)")
    demo.add_argument("--port", type=int, help="broker port on 127.0.0.1 (default: 1883, or a free one)")
    _store_option(demo)
    demo.set_defaults(run="commands:demo")
    return parser


def _master_data_commands(sub: argparse._SubParsersAction) -> None:
    network = sub.add_parser("network", help="the network: sites, lanes, cargo types, sensors, equipment")
    network_sub = network.add_subparsers(dest="action", metavar="ACTION", required=True)
    load = network_sub.add_parser("load", help="load a network file (or a scenario's network) into the master data")
    load.add_argument("file", metavar="FILE", help="network YAML (format: tower/masterdata/README.md)")
    load.set_defaults(run="masterdata:load_network")
    show = network_sub.add_parser("show", help="the network the tower works with now")
    _format_option(show)
    show.set_defaults(run="masterdata:show_network")

    shipments = sub.add_parser("shipments", help="shipments: import from CSV, list, show, cancel")
    shipments_sub = shipments.add_subparsers(dest="action", metavar="ACTION", required=True)
    load = shipments_sub.add_parser("import", help="create or update shipments from a CSV file, all or none")
    load.add_argument("file", metavar="FILE.csv", help="columns: id,tracker,lane,cargo,departure,promised,...")
    load.set_defaults(run="masterdata:import_shipments")
    listing = shipments_sub.add_parser("list", help="shipments, newest departure first")
    listing.add_argument("--status", choices=("planned", "departed", "delivered", "cancelled"), help="only these")
    listing.add_argument("--limit", type=int, default=1000, help="at most N (default: 1000)")
    _format_option(listing)
    listing.set_defaults(run="masterdata:list_shipments")
    show = shipments_sub.add_parser("show", help="one shipment's plan and status")
    show.add_argument("shipment_id", metavar="ID")
    show.add_argument("--format", choices=("table", "json"), default="table", help="default: table")
    show.set_defaults(run="masterdata:show_shipment")
    cancel = shipments_sub.add_parser("cancel", help="cancel a shipment: its alerts end, nothing new is raised")
    cancel.add_argument("shipment_id", metavar="ID")
    cancel.add_argument("--reason", required=True, help="why (recorded with the shipment)")
    cancel.add_argument("--by", help="who cancels it")
    cancel.set_defaults(run="masterdata:cancel_shipment")


def _account_commands(sub: argparse._SubParsersAction) -> None:
    admin_help = "the broker's admin account: mqtts://admin:PASSWORD@host:8883 (default: $TOWER_BROKER)"
    devices = sub.add_parser("devices", help="devices seen in the store (list), and their MQTT accounts (add ...)")
    _store_option(devices)
    _format_option(devices)
    devices.set_defaults(run="queries:devices")
    devices_sub = devices.add_subparsers(dest="action", metavar="ACTION")
    listing = devices_sub.add_parser("list", help="devices seen in the store: kind, last-seen time, status (default)")
    listing.add_argument("--store", default=argparse.SUPPRESS, help="store URL (default: $TOWER_STORE)")
    listing.add_argument("--format", choices=FORMATS, default=argparse.SUPPRESS, help="output format (default: table)")
    add = devices_sub.add_parser("add", help="create a device's MQTT account; prints its password once")
    add.add_argument("device_id", metavar="ID")
    add.add_argument("--kind", required=True, choices=[kind.value for kind in DeviceKind], help="device kind")
    _broker_option(add, admin_help)
    add.set_defaults(run="accounts:add_device")
    for action, helptext in (("remove", "delete a device's MQTT account (disconnects it)"),
                             ("rotate", "give a device a new password (prints it once; disconnects it)")):  # fmt: skip
        command = devices_sub.add_parser(action, help=helptext)
        command.add_argument("name", metavar="ID")
        _broker_option(command, admin_help)
        command.set_defaults(run=f"accounts:{action}")

    accounts = sub.add_parser("accounts", help="MQTT accounts of services and integrations (and devices)")
    accounts_sub = accounts.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = accounts_sub.add_parser("list", help="every account on the broker with its kind and rights")
    _format_option(listing)
    _broker_option(listing, admin_help)
    listing.set_defaults(run="accounts:list_accounts")
    add = accounts_sub.add_parser("add", help="create a service account; prints its password once")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", required=True, choices=[role.value for role in ServiceRole],
                     help="what it may do (see tower/access.py)")  # fmt: skip
    _broker_option(add, admin_help)
    add.set_defaults(run="accounts:add_account")
    for action, helptext in (("remove", "delete an account (disconnects it)"),
                             ("rotate", "a new password for an account (printed once; disconnects it)")):  # fmt: skip
        command = accounts_sub.add_parser(action, help=helptext)
        command.add_argument("name", metavar="NAME")
        _broker_option(command, admin_help)
        command.set_defaults(run=f"accounts:{action}")
    synced = accounts_sub.add_parser("sync", help="bring every account's rights to what this version defines")
    _broker_option(synced, admin_help)
    synced.set_defaults(run="accounts:sync")


def _api_commands(sub: argparse._SubParsersAction) -> None:
    api = sub.add_parser(
        "api",
        help="run the HTTP API for integrations (shipments, alerts); manage its tokens",
        description="Run the HTTP API (OpenAPI docs at /docs), or manage its bearer tokens.",
    )
    api.add_argument("--host", help="address to listen on (default: $TOWER_API_HOST or 127.0.0.1)")
    api.add_argument("--port", type=int, help="port (default: $TOWER_API_PORT or 8600)")
    api.set_defaults(run="api:serve")
    api_sub = api.add_subparsers(dest="action", metavar="ACTION")
    token = api_sub.add_parser("token", help="bearer tokens: add, list, remove")
    token_sub = token.add_subparsers(dest="token_action", metavar="ACTION", required=True)
    add = token_sub.add_parser("add", help="make a token and print it (once); only its hash is kept")
    add.add_argument("name", metavar="NAME", help="who uses it, as audit trails will name it (e.g. tms-connector)")
    add.add_argument(
        "--role",
        required=True,
        choices=("viewer", "operator", "integration", "admin"),
        help="viewer: read; operator: + ack/resolve alerts; integration: + write shipments, ack; admin",
    )
    add.set_defaults(run="api:add")
    listing = token_sub.add_parser("list", help="token names, roles and when they were made (never the tokens)")
    listing.set_defaults(run="api:list_tokens")
    remove = token_sub.add_parser("remove", help="revoke a token")
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(run="api:remove")


def _user_commands(sub: argparse._SubParsersAction) -> None:
    users = sub.add_parser("users", help="the dashboard's users and their roles: add, list, remove")
    users_sub = users.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = users_sub.add_parser("add", help="add a user; the password is asked for (or read from standard input)")
    add.add_argument("name", metavar="NAME", help="as audit trails will name them (an e-mail for --identity-provider)")
    add.add_argument("--role", required=True, choices=PEOPLE_ROLES,
                     help="viewer: read; operator: + acknowledge/resolve alerts; admin: + silences, users")  # fmt: skip
    add.add_argument("--identity-provider", action="store_true",
                     help="no password: signs in through OIDC (st.login), this file gives the role")  # fmt: skip
    add.set_defaults(run="users:add")
    listing = users_sub.add_parser("list", help="user names, roles, how they sign in (never a password or hash)")
    listing.set_defaults(run="users:list_users")
    remove = users_sub.add_parser("remove", help="remove a user")
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(run="users:remove")


def _alert_commands(sub: argparse._SubParsersAction) -> None:
    alerts = sub.add_parser("alerts", help="the alert engine and the alert queue")
    alerts_sub = alerts.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = alerts_sub.add_parser("run", help="evaluate rules on the live MQTT stream, notify and escalate")
    _broker_option(run)
    run.add_argument("--rules", help="rule file, or 'default' (default: $TOWER_ALERT_RULES or default)")
    run.add_argument("--oncall", help="on-call file: contacts, schedules, policies, routes (default: $TOWER_ONCALL)")
    run.add_argument("--network", help="network file, reloaded when it changes (default: $TOWER_NETWORK)")
    run.set_defaults(run="alerting:run_engine")
    listing = alerts_sub.add_parser("list", help="open alerts by severity and age, or all alerts")
    listing.add_argument("--status", choices=("open", "all"), default="open", help="default: open")
    listing.add_argument("--limit", type=int, default=1000, help="at most N alerts (default: 1000)")
    _format_option(listing)
    listing.set_defaults(run="alerting:list_alerts")
    show = alerts_sub.add_parser("show", help="one alert with its runbook, audit trail and deliveries")
    show.add_argument("alert_id", metavar="ID")
    show.add_argument("--format", choices=("table", "json"), default="table", help="default: table")
    show.set_defaults(run="alerting:show_alert")
    for action, helptext in (("ack", "acknowledge an alert: its escalation stops"),
                             ("resolve", "resolve an alert by hand"), ("close", "close a resolved alert")):  # fmt: skip
        command = alerts_sub.add_parser(action, help=helptext)
        command.add_argument("alert_id", metavar="ID")
        command.add_argument("--by", required=True, help="who does it (recorded in the audit trail)")
        command.add_argument("--note", default="", help="a note for the audit trail")
        command.set_defaults(run="alerting:act_on_alert")
    silence = alerts_sub.add_parser("silence", help="hold notifications for matching alerts (maintenance window)")
    silence.add_argument("--match", action="append", required=True, metavar="KEY=PATTERN",
                         help="rule, entity, device, site, kind or severity: site=SITE_ID (repeatable)")  # fmt: skip
    silence.add_argument("--starts", help="start: RFC 3339, epoch seconds (default: now)")
    silence.add_argument("--for", dest="duration", required=True, help="how long, e.g. 2h")
    silence.add_argument("--by", required=True, help="who sets it")
    silence.add_argument("--note", default="", help="why")
    silence.set_defaults(run="alerting:silence")

    backtest = sub.add_parser("backtest", help="run rules over history and show what would have fired")
    backtest.add_argument("--rules", required=True, help="rule file, or 'default'")
    source = backtest.add_mutually_exclusive_group(required=True)
    source.add_argument("--readings", help="CSV file: ts,device_id,kind,<fields>")
    source.add_argument("--since", help="from the store, from: RFC 3339, epoch seconds, or an age like 7d")
    backtest.add_argument("--until", help="with --since: end (default: now)")
    _store_option(backtest)
    backtest.add_argument("--format", choices=("table", "json"), default="table", help="default: table")
    backtest.set_defaults(run="alerting:backtest")

    evaluate = sub.add_parser("evaluate", help="score rules against a simulated scenario's ground truth")
    evaluate.add_argument("--scenario", default="default", help="scenario file, or a bundled one: default, iberia")
    evaluate.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    evaluate.add_argument("--duration", help="simulated time, e.g. 24h (default: the scenario's)")
    evaluate.add_argument(
        "--start", default="2026-01-05T00:00:00Z", help="simulated start (default: 2026-01-05T00:00Z)"
    )
    evaluate.add_argument("--rules", default="default", help="rule file, or 'default' (the default)")
    evaluate.add_argument("--format", choices=("table", "json"), default="table", help="default: table")
    evaluate.set_defaults(run="alerting:evaluate")

    cmapss = sub.add_parser("evaluate-cmapss", help="score predictive-maintenance rules on NASA C-MAPSS engines")
    cmapss.add_argument(
        "--data", required=True, help="C-MAPSS training file, e.g. ../shared/data/cmapss/train_FD001.txt"
    )
    cmapss.add_argument("--rules", help="rule file (default: the drift rules shipped in alerts/rules/cmapss.yaml)")
    cmapss.add_argument("--format", choices=("table", "json"), default="table", help="default: table")
    cmapss.set_defaults(run="alerting:evaluate_cmapss")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    module, function = args.run.split(":")
    try:
        # Commands load their modules on use: `tower ingest` never imports pandas (~50 MB, ~0.5 s).
        return getattr(importlib.import_module(f"tower.cli.{module}"), function)(args)
    except ValidationError as error:  # a ValueError too, so it comes first
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        print(
            f"tower: error: configuration: {problems} (check TOWER_* variables and $TOWER_CONFIG)",
            file=sys.stderr,
        )
        return 2
    except ValueError as error:
        print(f"tower: error: {error}", file=sys.stderr)
        return 2
    except StoreUnavailable as error:
        print(f"tower: error: store unavailable: {error}", file=sys.stderr)
        return 1
    except BrokerUnavailable as error:
        print(f"tower: error: broker unavailable: {error}", file=sys.stderr)
        return 1
    except (AlreadyRunning, BrokerRefused) as error:  # a service that must not run, or cannot: exit 1
        print(f"tower: error: {error}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as error:
        if error.name not in EXTRAS:
            raise
        print(f"tower: error: '{args.command}' needs {error.name}: pip install 'control-tower[{EXTRAS[error.name]}]'",
              file=sys.stderr)  # fmt: skip
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `tower ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
