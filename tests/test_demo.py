"""The README's run command: `tower demo` brings up broker, collector, alert engine, simulator, dashboard
and API (its real port handed to the engine for the links in notices), and stops cleanly; it and
`tower dashboard` leave no process behind, Streamlit's included."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from dashboards.users import Users
from tests.conftest import REPO, descendants, wait_until
from tower.broker import free_port
from tower.store import open_store


def test_demo_fills_the_store_and_stops_on_ctrl_c(tmp_path):
    url = f"sqlite:///{tmp_path}/demo.db"
    env = {**os.environ, "TOWER_DATA_DIR": str(tmp_path / "var")}
    before = descendants()
    demo = subprocess.Popen(
        [sys.executable, "-m", "tower.cli", "demo", "--port", str(free_port()), "--store", url],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: (tmp_path / "demo.db").exists(), what="the demo store")
        store = open_store(url)
        wait_until(
            lambda: {d.kind.value for d in store.devices()} == {"shipment", "warehouse", "equipment"},
            timeout_s=30,
            what="all three kinds of device",
        )
        wait_until(lambda: len(store.readings("trk-pmv-rtm-01")) >= 2, what="a truck's readings")
        alerts_log = tmp_path / "var" / "logs" / "alerts.log"
        wait_until(lambda: b"subscribed to" in alerts_log.read_bytes(), what="the alert engine")
        dashboard_log = tmp_path / "var" / "logs" / "dashboard.log"
        wait_until(lambda: b"You can now view" in dashboard_log.read_bytes(), timeout_s=30, what="the dashboard")
        api_log = tmp_path / "var" / "logs" / "api.log"  # the one-click acknowledgement links point at it
        wait_until(lambda: b"Uvicorn running on" in api_log.read_bytes(), timeout_s=30, what="tower api")
        started = set(descendants()) - set(before)
        assert any("streamlit" in command for pid, command in descendants().items() if pid in started)
        engine = next(pid for pid, command in descendants().items() if pid in started and "alerts run" in command)
        environment = dict(item.split("=", 1) for item in (Path("/proc") / str(engine) / "environ").read_bytes()
                           .decode().split("\0") if "=" in item)  # fmt: skip
        api_port = environment["TOWER_API_URL"].rsplit(":", 1)[-1]
        assert f"--port {api_port}" in next(c for p, c in descendants().items() if p in started and " api " in c)
    finally:
        demo.send_signal(signal.SIGINT)
        output = demo.communicate(timeout=60)[0].decode()
    assert demo.returncode == 0, output
    assert "Control Tower demo running" in output
    # the address printed is where the dashboard listens, and its demo user can sign in there
    printed = re.search(r"dashboard: +(http://\S+)", output).group(1)
    assert f"URL: {printed}".encode() in dashboard_log.read_bytes(), output
    password = (tmp_path / "var" / "dashboard-password").read_text().strip()
    assert Users(tmp_path / "var" / "dashboard-users.yaml").check_password("demo", password).role == "admin"
    assert not set(descendants()) - set(before), "the demo left processes behind"


def test_dashboard_is_streamlit_and_stops_on_sigterm(tmp_path):
    log = tmp_path / "dashboard.log"
    before = descendants()
    with open(log, "wb") as output:
        dashboard = subprocess.Popen(
            [sys.executable, "-m", "tower.cli", "dashboard", "--port", str(free_port())],
            cwd=REPO,
            env={**os.environ, "TOWER_DATA_DIR": str(tmp_path / "var")},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: b"You can now view" in log.read_bytes(), timeout_s=30, what="Streamlit serving")
        assert "streamlit" in descendants()[dashboard.pid]  # tower dashboard became Streamlit: the signal reaches it
    finally:
        dashboard.terminate()
        dashboard.wait(60)
    assert dashboard.returncode == 0
    assert not set(descendants()) - set(before), "tower dashboard left Streamlit behind"


def test_a_demo_starts_from_an_empty_data_directory_and_never_empties_someone_elses(tmp_path):
    from tower.cli.commands import DEMO_MARKER, _fresh_demo_state

    earlier = tmp_path / "var"
    _fresh_demo_state(earlier, f"sqlite:///{earlier}/tower.db")
    (earlier / "tower.db").write_text("an earlier demo's day")
    _fresh_demo_state(earlier, f"sqlite:///{earlier}/tower.db")
    assert sorted(p.name for p in earlier.iterdir()) == [DEMO_MARKER]

    real = tmp_path / "real"
    real.mkdir()
    (real / "alerts.db").write_text("an operator's alert book")
    refused = subprocess.run([sys.executable, "-m", "tower.cli", "demo", "--store", f"sqlite:///{real}/tower.db"],
                             cwd=REPO, env={**os.environ, "TOWER_DATA_DIR": str(real)}, capture_output=True, text=True,
                             timeout=60)  # fmt: skip
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "holds data that is not a demo's" in refused.stderr and "TOWER_DATA_DIR" in refused.stderr
    assert (real / "alerts.db").read_text() == "an operator's alert book"
