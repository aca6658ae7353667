"""`tower api` as a real process on a free port, over real HTTP: shipments created, updated and
cancelled land in the master store and `tower shipments list`; where a shipment stands agrees with
the dashboard's table on a seeded store; alert actions are recorded under the token's name; 401,
403 and 422; a bad plan gets the same reason by API, CSV import and MQTT; the OpenAPI spec fuzzed
by schemathesis without a 500."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from alerts.book import AlertBook
from alerts.rules import load_rules
from simulators.backfill import backfill
from simulators.engine import Simulation
from tests.conftest import REPO, Api, launch_api, stop_api, wait_until
from tower.api.tokens import add_token
from tower.broker import free_port
from tower.masterdata.store import MasterStore
from tower.scenario import load_scenario
from tower.store.sqlite import SqliteStore
from tower.timeutil import parse_moment_ms

START = "2026-01-05T00:00:00Z"
SEEDED_MS = int(9.25 * 3_600_000)
FUZZ_EXAMPLES = 25  # per operation: a few seconds in all
PLAN = {"tracker": "trk-api-1", "lane": "rtm-ams", "cargo": "chilled", "departure": "2026-11-23T08:00:00Z",
        "promised": "2026-11-23T11:00:00+01:00", "order": "PO-1", "customer": "ACME"}  # fmt: skip


def _network_folder(folder: Path) -> Path:
    MasterStore(folder / "master.db").set_network(load_scenario("default").network(), "test")
    return folder


def _tower(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tower.cli", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **env})  # fmt: skip


@pytest.fixture
def network_api(tmp_path, start_api) -> tuple[Api, dict[str, str]]:
    """An API on the default network's master data with an integration, an operator and a viewer token."""
    folder = _network_folder(tmp_path / "var")
    path = folder / "api-tokens.yaml"
    tokens = {role: add_token(path, f"{role}-token", role, "") for role in ("integration", "operator", "viewer")}
    return start_api(folder), tokens


# -- shipments ---------------------------------------------------------------------------------------


def test_create_update_and_cancel_land_in_the_master_store_and_the_cli(network_api):
    api, tokens = network_api
    folder = api.log.parent
    with api.client(tokens["integration"]) as http:
        created = http.post("/shipments", json={"id": "SHP-API-1", **PLAN})
        assert created.status_code == 201, created.text
        assert created.json()["promised"] == "2026-11-23T10:00:00.000Z"  # RFC 3339 in, UTC RFC 3339 out
        assert http.post("/shipments", json={"id": "SHP-API-1", **PLAN}).status_code == 409
        master = MasterStore(folder / "master.db")
        assert master.shipment("SHP-API-1").customer == "ACME"
        assert master.changes(1)[0] | {"at_ms": 0} == {"revision": master.revision(), "at_ms": 0,
                                                      "what": "shipment created", "subject": "SHP-API-1",
                                                      "source": "api:integration-token"}  # fmt: skip

        updated = http.put("/shipments/SHP-API-1", json={**PLAN, "promised": "2026-11-23T12:00:00Z"})
        assert updated.status_code == 200 and updated.json()["promised"] == "2026-11-23T12:00:00.000Z"
        revision = master.revision()
        again = http.put("/shipments/SHP-API-1", json={**PLAN, "promised": "2026-11-23T12:00:00Z"})
        assert again.status_code == 200 and master.revision() == revision  # idempotent: nothing changed
        assert http.put("/shipments/SHP-API-2", json=PLAN).status_code == 201  # PUT creates too

        departed = http.post("/shipments/SHP-API-2/status", json={"status": "departed", "ts": "2026-11-23T08:05:00Z"})
        assert departed.json()["status"] == "departed" and departed.json()["departed"] == "2026-11-23T08:05:00.000Z"
        cancelled = http.post("/shipments/SHP-API-1/cancel", json={"reason": "customer moved the order"})
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert http.get("/shipments/SHP-API-1").json()["standing"]["status"] == "cancelled"
        listed = http.get("/shipments", params={"status": "cancelled"}).json()["items"]
        assert [item["shipment"]["id"] for item in listed] == ["SHP-API-1"]

    stored = master.shipment("SHP-API-1")
    assert stored.status == "cancelled" and stored.note == "customer moved the order"
    assert master.changes(1)[0]["source"] == "api:integration-token"
    cli = _tower("shipments", "list", "--format", "json", env={"TOWER_DATA_DIR": str(folder)})
    rows = {row["id"]: row for row in json.loads(cli.stdout)}
    assert rows["SHP-API-1"]["status"] == "cancelled" and rows["SHP-API-1"]["promised"] == "2026-11-23T12:00:00.000Z"
    assert rows["SHP-API-2"]["status"] == "departed"


def test_the_container_healthcheck_follows_the_api(network_api):
    api, _ = network_api
    port = api.url.rsplit(":", 1)[1]
    assert _tower("health", "api", "--port", port, env={}).returncode == 0
    assert stop_api(api) == 0
    stopped = _tower("health", "api", "--port", port, env={})
    assert stopped.returncode == 1 and stopped.stderr.startswith("tower: unhealthy:"), stopped.stderr


def test_paging_walks_every_shipment_once(network_api):
    api, tokens = network_api
    with api.client(tokens["integration"]) as http:
        for n in range(7):
            plan = {**PLAN, "departure": f"2026-11-2{n}T08:00:00Z", "promised": f"2026-11-2{n}T12:00:00Z"}
            assert http.put(f"/shipments/SHP-P-{n}", json=plan).status_code == 201
        seen, offset = [], 0
        while offset is not None:
            page = http.get("/shipments", params={"limit": 3, "offset": offset}).json()
            seen += [item["shipment"]["id"] for item in page["items"]]
            offset = page["next_offset"]
    assert seen == [f"SHP-P-{n}" for n in reversed(range(7))]  # newest planned departure first


# -- where a shipment stands, as the dashboard shows it ------------------------------------------------


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Path:
    """9 h 15 min of the default scenario backfilled into a store, an alert book and master data."""
    folder = tmp_path_factory.mktemp("seeded")
    simulation = Simulation(load_scenario("default"), 1, parse_moment_ms(START), SEEDED_MS)
    store = SqliteStore(folder / "tower.db")
    backfill(
        simulation, store, load_rules("default"), AlertBook(folder / "alerts.db"), MasterStore(folder / "master.db")
    )
    store.close()
    return folder


@pytest.fixture
def seeded_api(seeded, tmp_path, start_api, monkeypatch) -> tuple[Api, Path]:
    """An API on a private copy of the seeded folder, and the dashboard's settings pointing at it."""
    folder = tmp_path / "var"
    shutil.copytree(seeded, folder)
    for name, value in {"TOWER_STORE": f"sqlite:///{folder}/tower.db", "TOWER_DATA_DIR": str(folder)}.items():
        monkeypatch.setenv(name, value)
    return start_api(folder, TOWER_API_TOKEN="env-secret-1", TOWER_API_TOKEN_NAME="night-desk",
                     TOWER_API_TOKEN_ROLE="operator"), folder  # fmt: skip


def _ms(text: str | None) -> float | None:
    return None if text is None else parse_moment_ms(text)


def test_status_and_eta_agree_with_the_dashboard(seeded_api):
    from dashboards import data

    api, _ = seeded_api
    table = data.shipment_table(data.source()).set_index("shipment")
    with api.client("env-secret-1") as http:
        page = http.get("/shipments", params={"limit": 1000}).json()
        detail = http.get("/shipments/SHP-ANT-LIE-02").json()
    assert page["as_of"] == detail["as_of"] and _ms(page["as_of"]) == data.as_of(data.source())
    standings = {item["shipment"]["id"]: item["standing"] for item in page["items"]}
    assert set(standings) == set(table.index) and len(table) > 40
    for shipment_id, standing in standings.items():
        row = table.loc[shipment_id].to_dict()
        expected = {key: None if value != value else value for key, value in row.items()}  # NaN: unknown
        assert standing["status"] == expected["status"], shipment_id
        for field in ("eta", "eta_early", "eta_late", "arrival"):
            assert _ms(standing[field]) == expected[f"{field}_ms"], (shipment_id, field)
        for field in ("late_by_min", "progress_pct", "remaining_km", "excursion_min", "open_alerts", "worst"):
            assert standing[field] == expected[field], (shipment_id, field)
    # the delay rule has this one at risk (a breakdown), with its ETA band past the promised time
    assert detail["standing"]["status"] == "at risk" == table.loc["SHP-ANT-LIE-02", "status"]
    assert detail["standing"]["late_by_min"] > 5
    assert _ms(detail["standing"]["eta_early"]) <= _ms(detail["standing"]["eta"]) <= _ms(detail["standing"]["eta_late"])
    assert [alert["rule"] for alert in detail["alerts"]] == ["delivery-at-risk"]
    assert {row["status"] for row in standings.values()} >= {"planned", "on time", "at risk", "delivered"}


def test_ack_and_resolve_are_recorded_under_the_tokens_name(seeded_api):
    api, folder = seeded_api
    with api.client("env-secret-1") as http:
        queue = http.get("/alerts").json()["items"]
        firing = next(alert for alert in queue if alert["status"] == "firing")
        assert http.get("/alerts", params={"entity": firing["entity"]}).json()["items"][0]["entity"] == firing["entity"]
        claimed = http.post(f"/alerts/{firing['id']}/ack", json={"note": "on it", "by": "somebody-else"})
        assert (
            claimed.status_code == 422 and "by: Extra inputs are not permitted" in claimed.json()["detail"]
        )  # no identity from the body
        acked = http.post(f"/alerts/{firing['id']}/ack", json={"note": "on it"})
        assert acked.status_code == 200 and acked.json()["acked_by"] == "night-desk"
        assert http.post(f"/alerts/{firing['id']}/ack").status_code == 409  # already acknowledged
        resolved = http.post(f"/alerts/{firing['id']}/resolve", json={"note": "driver called back"})
        assert resolved.json()["status"] == "resolved"
        shown = http.get(f"/alerts/{firing['id']}").json()
    assert [(t["status"], t["actor"], t["note"]) for t in shown["history"][-2:]] == [
        ("acknowledged", "night-desk", "on it"), ("resolved", "night-desk", "driver called back")]  # fmt: skip
    assert shown["runbook"]["steps"] and shown["runbook"]["owner"]
    book = AlertBook(folder / "alerts.db")
    assert book.get(firing["id"])["acked_by"] == "night-desk"
    assert [row["actor"] for row in book.history(firing["id"])][-2:] == ["night-desk", "night-desk"]
    assert "env-secret-1" not in api.log.read_text()


# -- who may do what ---------------------------------------------------------------------------------


def test_tokens_roles_and_the_log(network_api, tmp_path):
    api, tokens = network_api
    folder = api.log.parent
    assert httpx.get(f"{api.url}/health").json()["status"] == "ok"  # no token for health checks
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": f"Basic {tokens['viewer']}"}):
        answer = httpx.get(f"{api.url}/shipments", headers=headers)
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer", headers
    with api.client(tokens["viewer"]) as http:
        assert http.get("/network").json()["revision"] >= 1
        refused = http.put("/shipments/SHP-V-1", json=PLAN)
        assert refused.status_code == 403 and "viewer" in refused.json()["detail"]
    with api.client(tokens["operator"]) as http:
        assert http.put("/shipments/SHP-V-1", json=PLAN).status_code == 403
    with api.client(tokens["integration"]) as http:
        assert http.post("/alerts/0123456789ab/resolve").status_code == 403  # may acknowledge, not resolve
        assert http.post("/alerts/0123456789ab/ack").status_code == 404

    # a token added while the API runs counts at once; a removed one no longer does
    env = {"TOWER_DATA_DIR": str(folder)}
    added = _tower("api", "token", "add", "late-comer", "--role", "admin", env=env)
    token = added.stdout.strip()
    assert added.returncode == 0 and token.startswith("tower_") and token not in added.stderr
    assert token not in (folder / "api-tokens.yaml").read_text()
    assert "late-comer" in _tower("api", "token", "list", env=env).stdout
    with api.client(token) as http:
        assert http.put("/shipments/SHP-V-2", json=PLAN).status_code == 201
    assert MasterStore(folder / "master.db").changes(1)[0]["source"] == "api:late-comer"
    assert _tower("api", "token", "remove", "late-comer", env=env).returncode == 0
    with api.client(token) as http:
        assert http.get("/shipments").status_code == 401

    log = api.log.read_text()
    assert '"GET /shipments HTTP/1.1" 401' in log  # the access log is on ...
    assert all(secret not in log for secret in [*tokens.values(), token])  # ... and never shows a token
    assert "Traceback" not in log


def test_cli_mistakes_are_one_line(tmp_path):
    env = {"TOWER_DATA_DIR": str(tmp_path)}
    no_tokens = _tower("api", "--port", str(free_port()), env=env)
    assert no_tokens.returncode == 2 and "no API tokens" in no_tokens.stderr
    assert len(no_tokens.stderr.strip().splitlines()) == 1, no_tokens.stderr
    bad_role = _tower("api", "token", "add", "x", "--role", "root", env=env)
    assert bad_role.returncode == 2 and "invalid choice" in bad_role.stderr
    assert _tower("api", "token", "add", "x", "--role", "viewer", env=env).returncode == 0
    twice = _tower("api", "token", "add", "x", "--role", "viewer", env=env)
    assert twice.returncode == 2 and twice.stderr.count("\n") == 1 and "exists" in twice.stderr
    bad_env = _tower("api", "--port", str(free_port()), env={**env, "TOWER_API_TOKEN": "s",
                                                              "TOWER_API_TOKEN_ROLE": "boss"})  # fmt: skip
    assert bad_env.returncode == 2 and "TOWER_API_TOKEN_ROLE" in bad_env.stderr


def test_only_tower_api_imports_the_web_stack():
    """FastAPI and uvicorn are the `api` extra: the collector and the token commands run without them."""
    code = ("import sys, tower.cli.commands, tower.cli.api, ingest.collector; "
            "print(sorted({'fastapi', 'starlette', 'uvicorn'} & set(sys.modules)))")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


# -- the same validation on every way in -----------------------------------------------------------


BAD_PLANS = {  # plan -> the reason every way in gives
    "SHP-BAD-1": ({**PLAN, "promised": "2026-11-23T07:00:00Z"}, "promised must be after departure"),
    "SHP-BAD-2": ({**PLAN, "lane": "no-such-lane"}, "unknown lane 'no-such-lane'"),
    "SHP-BAD-3": ({**PLAN, "cargo": "lava"}, "unknown cargo type 'lava'"),
    "SHP-BAD-4": ({**PLAN, "departure": "2026-11-23 08:00"}, "'2026-11-23 08:00' has no time zone"),
}


def test_a_bad_plan_gets_the_same_reason_by_api_csv_and_mqtt(settings, start_collector, publisher, store, start_api,
                                                             tmp_path):  # fmt: skip
    folder = _network_folder(settings.data_dir)
    token = add_token(folder / "api-tokens.yaml", "tms", "integration", "")
    api = start_api(folder, TOWER_STORE=settings.store)
    start_collector()
    master = MasterStore(folder / "master.db")
    revision = master.revision()
    with api.client(token) as http:
        by_api = {shipment_id: http.put(f"/shipments/{shipment_id}", json=plan) for shipment_id, (plan, _) in
                  BAD_PLANS.items()}  # fmt: skip
    by_csv = {}
    for shipment_id, (plan, _) in BAD_PLANS.items():
        path = tmp_path / f"{shipment_id}.csv"
        path.write_text("id," + ",".join(plan) + "\n" + shipment_id + "," + ",".join(plan.values()) + "\n")
        by_csv[shipment_id] = _tower("shipments", "import", str(path), env={"TOWER_DATA_DIR": str(folder)})
    for shipment_id, (plan, _) in BAD_PLANS.items():
        publisher.send(f"tower/v1/plans/shipments/{shipment_id}", plan)
    wait_until(lambda: len(store.dead_letters()) >= len(BAD_PLANS), what="dead letters for every bad plan")
    by_mqtt = {letter.topic.rsplit("/", 1)[1]: letter.reason for letter in store.dead_letters()}

    for shipment_id, (_, reason) in BAD_PLANS.items():
        assert by_api[shipment_id].status_code == 422 and reason in by_api[shipment_id].json()["detail"], shipment_id
        assert by_csv[shipment_id].returncode == 2 and reason in by_csv[shipment_id].stderr, shipment_id
        assert reason in by_mqtt[shipment_id], shipment_id
    assert master.revision() == revision and master.shipments() == []  # nothing half-taken on any way in
    assert "Traceback" not in api.log.read_text()


def test_validation_errors_are_422_with_a_reason(network_api):
    api, tokens = network_api
    cases = [
        ("post", "/shipments", {**PLAN}, "id: Field required"),
        ("post", "/shipments", {"id": "S-1", **PLAN, "colour": "red"}, "colour: Extra inputs are not permitted"),
        ("put", "/shipments/S-1", {**PLAN, "id": "S-2"}, "plan for shipment 'S-2' sent to /shipments/S-1"),
        ("put", "/shipments/S-1", {**PLAN, "via": [[95, 4]]}, "via.0.0: Input should be less than or equal to 90"),
        ("put", "/shipments/S-1", {**PLAN, "departure": 1e30}, "is not between 1970 and 9999"),
        ("put", "/shipments/bad id", PLAN, "shipment_id: String should match pattern"),
        ("put", "/shipments/S-1", [1, 2], "Input should be a valid dictionary"),
        ("post", "/shipments/S-1/status", {"status": "lost", "ts": "2026-11-23T08:00:00Z"}, "status: Input should be"),
        ("post", "/shipments/S-1/cancel", {"reason": ""}, "reason: String should have at least 1 character"),
        ("get", "/shipments?limit=0", None, "limit: Input should be greater than or equal to 1"),
    ]
    with api.client(tokens["integration"]) as http:
        for method, path, body, reason in cases:
            answer = http.request(method, path, json=body)
            assert answer.status_code == 422 and reason in answer.json()["detail"], (path, body, answer.text)
        broken = http.put("/shipments/S-1", content=b'{"tracker": ', headers={"content-type": "application/json"})
        assert broken.status_code == 422 and broken.json()["detail"].startswith("invalid JSON")
        assert http.post("/shipments/S-404/cancel", json={"reason": "x"}).status_code == 404
    assert "Traceback" not in api.log.read_text()


# -- fuzzing -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzzed_api(tmp_path_factory) -> Iterator[tuple[Api, str]]:
    folder = _network_folder(tmp_path_factory.mktemp("fuzz"))
    token = add_token(folder / "api-tokens.yaml", "fuzzer", "admin", "")
    api = launch_api(folder, {})
    try:
        assert api.process.poll() is None, api.log.read_text()
        yield api, token
    finally:
        stop_api(api)


def test_fuzzed_requests_never_get_a_500_and_match_the_spec(fuzzed_api):
    """Every operation of the OpenAPI spec, with bodies, paths and queries generated from it
    (schemathesis, a bounded number each): never a 500, only documented statuses, bodies as documented."""
    api, token = fuzzed_api
    operations = [
        result.ok() for result in schemathesis.openapi.from_url(f"{api.url}/openapi.json").get_all_operations()
    ]
    assert len(operations) == 14

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                                     response_schema_conformance])  # fmt: skip

        fuzz()
    assert "Traceback" not in api.log.read_text()
