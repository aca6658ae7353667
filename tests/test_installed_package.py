"""What ships is what is tested: the wheel, installed in fresh virtual environments outside the
source tree, runs the default scenario's evaluation, the alert engine and the dashboard; the
collector's install has none of the other services' dependencies."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, wait_until
from tower.broker import free_port

OPTIONAL = {"streamlit", "pydeck", "apprise", "influxdb_client", "altair"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the tree, so nothing of a developer's checkout (build/, .venv) leaks in."""
    root = tmp_path_factory.mktemp("package")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "var", "build", "*.egg-info", "test-artifacts", "__pycache__", ".*_cache"))  # fmt: skip
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", root / "dist", source],
                   check=True, capture_output=True)  # fmt: skip
    (built,) = (root / "dist").glob("control_tower-*.whl")
    return built


def fresh_environment(path: Path, requirement: str) -> dict[str, str]:
    """A new virtual environment with the requirement installed; the environment variables to run in it."""
    venv.create(path, with_pip=True)
    subprocess.run([path / "bin" / "pip", "install", "-q", requirement], check=True, capture_output=True)
    bare = {key: value for key, value in os.environ.items() if not key.startswith(("TOWER_", "PYTHON", "VIRTUAL_ENV"))}
    return {**bare, "PATH": f"{path / 'bin'}:{os.environ['PATH']}", "TOWER_DATA_DIR": str(path.parent / "var")}


def run(env: dict, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["tower", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_wheel_holds_what_the_services_read_at_run_time(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ["alerts/rules/default.yaml", "simulators/scenarios/default.yaml", "dashboards/app.py",
                   "dashboards/views/alerts.py", "dashboards/views/map.py", "tower/cli/__init__.py"]:  # fmt: skip
        assert needed in names, f"{needed} missing from {wheel.name}"
    assert not any(name.startswith(("tests/", "benchmarks/")) for name in names)


def test_the_collector_installs_without_the_other_services_dependencies(wheel, tmp_path):
    env = fresh_environment(tmp_path / "venv", str(wheel))
    installed = subprocess.run([tmp_path / "venv" / "bin" / "python", "-c", "import sys, ingest.collector, tower.cli; "
                                "print(sys.modules['tower'].__file__)"], env=env, cwd=tmp_path, capture_output=True,
                               text=True, check=True).stdout  # fmt: skip
    assert "site-packages" in installed and str(REPO) not in installed
    assert run(env, "contract", cwd=tmp_path).returncode == 0
    for command, extra in [(["alerts", "run"], "alerts"), (["dashboard"], "dashboard"),
                           (["ingest", "--store", "influxdb://h:8086?bucket=b"], "influx")]:  # fmt: skip
        result = run(env, *command, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert f"pip install 'control-tower[{extra}]'" in result.stderr


def test_the_installed_package_evaluates_alerts_and_serves_the_dashboard(wheel, tmp_path, broker):
    env = fresh_environment(tmp_path / "venv", f"{wheel}[alerts,dashboard]")
    evaluated = run(env, "evaluate", "--format", "json", cwd=tmp_path)  # the default scenario and rules, from the wheel
    assert evaluated.returncode == 0, evaluated.stderr
    assert '"recall"' in evaluated.stdout

    log = tmp_path / "alerts.log"
    where = "from tower.scenario import DEFAULT_SCENARIO; print(DEFAULT_SCENARIO)"
    network = subprocess.run(["python", "-c", where], env=env, cwd=tmp_path, capture_output=True, text=True,
                             check=True).stdout.strip()  # fmt: skip
    assert "site-packages" in network  # the default scenario's network, from the wheel
    engine_env = {**env, "TOWER_BROKER": broker.url, "TOWER_NETWORK": network, "TOWER_ALERTS_CLIENT_ID": "pkg-test"}
    engine = subprocess.Popen(["tower", "alerts", "run"], env=engine_env, cwd=tmp_path, stdout=log.open("wb"),
                              stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_until(lambda: b"subscribed to" in log.read_bytes(), timeout_s=60, what="the installed alert engine")
        wait_until(lambda: run(engine_env, "health", "alerts", cwd=tmp_path).returncode == 0, what="its heartbeat")
        assert b"network reloaded from" in log.read_bytes()
    finally:
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(30) == 0, log.read_text()

    port = free_port()
    dashboard = subprocess.Popen(["tower", "dashboard", "--port", str(port), "--store", f"sqlite:///{tmp_path}/t.db"],
                                 env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)  # fmt: skip
    try:
        wait_until(lambda: run(env, "health", "dashboard", "--port", str(port), cwd=tmp_path).returncode == 0,
                   timeout_s=60, what="the installed dashboard's health endpoint")  # fmt: skip
    finally:
        os.killpg(dashboard.pid, signal.SIGTERM)  # tower dashboard and its Streamlit process
        dashboard.wait(30)
    assert run(env, "health", "dashboard", "--port", str(port), cwd=tmp_path).returncode == 1


def test_the_collector_imports_no_optional_dependency():
    probe = ("import sys, ingest.collector, tower.cli, tower.cli.commands, tower.store, tower.accounts; "
             f"print(sorted({OPTIONAL!r} & set(sys.modules)))")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
