"""Documents that restate the code stay in step with it, and the compose file stays valid."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO
from tests.test_cli import tower
from tower.config import Settings
from tower.contract import contract_markdown


def test_contract_document_matches_the_code():
    assert contract_markdown() in (REPO / "tower" / "CONTRACT.md").read_text()
    assert tower("contract").stdout.strip() == contract_markdown().strip()


def test_every_setting_is_documented():
    readme = (REPO / "tower" / "README.md").read_text()
    missing = [name for name in Settings.model_fields if f"`TOWER_{name.upper()}`" not in readme]
    assert not missing, f"document these settings in tower/README.md: {missing}"


def test_docker_compose_file_is_valid():
    compose = shutil.which("docker-compose")
    if compose is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed; .ci/run installs it")
        pytest.skip("docker-compose not installed")
    example = dict(
        line.split("=", 1) for line in (REPO / ".env.example").read_text().splitlines() if line and line[0] != "#"
    )
    env = {"PATH": os.environ["PATH"], **example}  # as an operator's .env would provide
    result = subprocess.run([compose, "-f", "docker-compose.yml", "config"], cwd=REPO, capture_output=True, env=env)
    assert result.returncode == 0, result.stderr.decode()
    rendered = result.stdout.decode()
    assert "TOWER_INFLUX_TOKEN" in rendered and "influxdb:2." in rendered
    services = yaml.safe_load(rendered)["services"]
    published = {name: [str(p) for p in service["ports"]] for name, service in services.items() if "ports" in service}
    # Devices reach the broker over TLS only; InfluxDB not at all; the dashboard (sign-in) and the API (tokens),
    # plain HTTP both, on loopback.
    assert published == {"mosquitto": [str({"published": 8883, "target": 8883})],
                         "dashboard": ["127.0.0.1:8501:8501/tcp"],
                         "api": ["127.0.0.1:8600:8600/tcp"]}, published  # fmt: skip
    assert services["simulator"]["profiles"] == ["demo"] and services["admin"]["profiles"] == ["admin"]
    for name, service in services.items():
        if "healthcheck" not in service:
            raise AssertionError(f"service {name} has no healthcheck")
        if name not in ("mosquitto", "influxdb", "dashboard", "api"):
            assert service["environment"]["TOWER_BROKER"].startswith("mqtts://"), name
    broker = (REPO / "deploy" / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in broker and "listener 1883" not in broker
    without_env = subprocess.run(
        [compose, "-f", "docker-compose.yml", "config"], cwd=REPO, capture_output=True, env={"PATH": os.environ["PATH"]}
    )
    assert without_env.returncode != 0 and b"copy .env.example to .env" in without_env.stderr


def test_every_rule_example_in_rules_md_loads(tmp_path):
    from alerts.rules import load_rules

    text = (REPO / "alerts" / "RULES.md").read_text()
    blocks = text.split("```yaml\n")[1:]
    assert len(blocks) == 9  # one per rule type
    types = set()
    for number, block in enumerate(blocks):
        path = tmp_path / f"example-{number}.yaml"
        path.write_text(block.split("```")[0])
        types |= {rule.type for rule in load_rules(path).rules}
    assert len(types) == 9


def test_the_example_on_call_file_loads():
    from alerts.oncall import load_oncall

    oncall = load_oncall(REPO / "alerts" / "oncall.example.yaml")
    assert oncall.policy_for({"severity": "critical", "kind": "shipment", "site": "dc-venlo", "rule": "x"})
