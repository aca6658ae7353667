"""Who may use the dashboard: every page asks for a sign-in, a wrong password gets nowhere, a viewer
is offered no action and cannot act even by driving the session directly, an operator's action is
recorded under their name, and `tower users` keeps only hashes and prints nothing secret."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from alerts.book import AlertBook
from dashboards import data
from dashboards.users import Users, read_users
from tests.conftest import REPO
from tests.dashboard.conftest import PAGES, PASSWORD, app_test, page, sign_in
from tower.roles import Actor
from tower.timeutil import now_ms


def _firing(var) -> dict:
    return next(a for a in AlertBook(var / "alerts.db").alerts("open") if a["status"] == "firing")


@pytest.mark.parametrize("name", PAGES)
def test_every_page_asks_for_a_sign_in_first(var, name):
    app = app_test()
    app.query_params["alert"] = "whatever"
    app.run()
    app = app.switch_page(f"views/{name}.py").run()
    assert not app.metric and not app.get("deck_gl_json_chart") and not app.dataframe
    assert app.text_input(key="sign_in_name") and app.text_input(key="sign_in_password").proto.type == 1  # password
    sign_in(app, "operator", "not the password")
    assert [e.value for e in app.error] == ["Wrong user name or password."] and not app.metric
    sign_in(app, "nobody", PASSWORD)
    assert [e.value for e in app.error] == ["Wrong user name or password."]


def test_a_viewer_is_offered_no_action_and_cannot_act(var):
    alert = _firing(var)
    app = page("alerts", role="viewer", alert=alert["id"])
    assert not app.exception and alert["runbook"]["steps"][0] in " ".join(m.value for m in app.markdown)
    assert [b.key for b in app.button if b.key and b.key.startswith(("act_", "silence"))] == []
    assert "acknowledging and resolving take the operator role" in " ".join(c.value for c in app.caption)
    # A crafted request: the action buttons' state set as a browser would send a click; nothing renders them
    for action in ("acknowledge", "resolve", "close"):
        app.session_state[f"act_{action}"] = True
    app.session_state["silence"] = True
    app.run()
    assert AlertBook(var / "alerts.db").get(alert["id"]) == alert
    # and the data layer, which every write goes through, refuses the role whatever the page does
    viewer = Actor("viewer", "viewer")
    with pytest.raises(PermissionError, match="viewer"):
        data.act_on_alert(data.source(), viewer, alert["id"], "acknowledge", "")
    with pytest.raises(PermissionError):
        data.silence_like(data.source(), Actor("operator", "operator"), alert, 1, "")
    assert AlertBook(var / "alerts.db").get(alert["id"]) == alert


def test_an_operators_acknowledgement_is_recorded_under_their_name(var):
    book = AlertBook(var / "alerts.db")
    alert = _firing(var)
    app = page("alerts", role="operator", alert=alert["id"])
    app.text_input(key=f"note_{alert['id']}_firing").input("on my way")
    app.button(key="act_acknowledge").click().run()
    assert not app.exception
    acked = book.get(alert["id"])
    assert acked["status"] == "acknowledged" and acked["acked_by"] == "operator"
    assert book.history(alert["id"])[-1] | {"at_ms": 0} == {"alert_id": alert["id"], "at_ms": 0,
                                                            "status": "acknowledged", "actor": "operator",
                                                            "note": "on my way", "via": "dashboard"}  # fmt: skip
    # the page shows it at once: the status, the audit trail, the queue, and no second acknowledge
    assert any("Status: **acknowledged** by operator" in m.value for m in app.markdown)
    assert app.table[0].value.iloc[-1].tolist()[1:] == ["acknowledged", "operator", "on my way"]
    assert app.button(key="act_resolve") and not [b for b in app.button if b.key == "act_acknowledge"]
    assert any("is acknowledged (by operator)" in s.value for s in app.success)
    assert app.text_input(key=f"note_{alert['id']}_acknowledged").value == ""  # the note went with the ack
    queue = app.dataframe[0].value
    assert queue.loc[queue["id"] == alert["id"], "status"].tolist() == ["acknowledged"]


def test_an_admin_may_silence_an_alert(var):
    alert = _firing(var)
    app = page("alerts", role="admin", alert=alert["id"])
    app.number_input(key="silence_h").set_value(3.0)
    app.text_input(key="silence_note").input("maintenance")
    app.button(key="silence").click().run()
    assert any("Silence 1" in s.value for s in app.success)
    assert AlertBook(var / "alerts.db").silenced_by(alert, now_ms()) == 1


def _users(tmp_path, *args: str, password: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "TOWER_DATA_DIR": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "tower.cli", "users", *args], cwd=REPO, env=env, text=True,
                          input=None if password is None else password + "\n", capture_output=True)  # fmt: skip


def test_the_users_command_keeps_hashes_and_prints_nothing_secret(tmp_path):
    secret = "correct horse battery staple"
    added = _users(tmp_path, "add", "anna", "--role", "operator", password=secret)
    assert added.returncode == 0, added.stderr
    assert _users(tmp_path, "add", "sso@example.com", "--role", "viewer", "--identity-provider").returncode == 0
    listed = _users(tmp_path, "list")
    path = tmp_path / "dashboard-users.yaml"
    entries = {entry.name: entry for entry in read_users(path).users}
    everything = added.stdout + added.stderr + listed.stdout + listed.stderr
    assert secret not in everything + path.read_text() and entries["anna"].password not in everything
    assert entries["anna"].password.startswith("$argon2id$") and entries["sso@example.com"].password is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "anna" in listed.stdout and "identity provider" in listed.stdout
    users = Users(path)
    assert users.check_password("anna", secret) == Actor("anna", "operator")
    assert users.check_password("anna", "wrong") is None and users.check_password("sso@example.com", "") is None
    assert users.known("SSO@example.com") == Actor("sso@example.com", "viewer")
    mistakes = {("add", "anna", "--role", "operator"): "exists", ("add", "bob", "--role", "integration"): "invalid",
                ("add", "bob", "--role", "viewer"): "too short", ("remove", "carl"): "no user"}  # fmt: skip
    for mistake, says in mistakes.items():
        failed = _users(tmp_path, *mistake, password="short")
        assert failed.returncode == 2 and says in failed.stderr and len(failed.stderr.strip().splitlines()) == 1
    assert _users(tmp_path, "remove", "anna").returncode == 0
    assert users.check_password("anna", secret) is None  # refused at the next sign-in, no restart
