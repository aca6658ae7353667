"""The dashboard's Alerts page under Streamlit's AppTest, on a real alert book: the queue renders,
a notification link opens the alert, and acknowledging from the page changes its state."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from alerts.book import AlertBook
from alerts.conditions import State
from alerts.evaluate import Change
from alerts.rules import Severity, load_rules
from tests.conftest import REPO
from tower.contract import DeviceKind

T0 = 1_789_948_800_000


@pytest.fixture
def book(tmp_path, monkeypatch) -> AlertBook:
    monkeypatch.setenv("TOWER_DATA_DIR", str(tmp_path / "var"))
    book = AlertBook(tmp_path / "var" / "alerts.db")
    rules = {rule.id: rule for rule in load_rules("default").rules}
    for rule_id, entity, severity in (("machine-fault", "conv-rtm-03", Severity.CRITICAL),
                                      ("tracker-silent", "SHP-RTM-UTR-02", Severity.MINOR)):  # fmt: skip
        change = Change(rules[rule_id], entity, entity, DeviceKind.EQUIPMENT, "dc-rotterdam", State.FIRING, severity,
                        T0, None, f"{rule_id} detail")  # fmt: skip
        book.apply(change, T0)
    return book


def _app() -> AppTest:
    return AppTest.from_file(str(REPO / "dashboards" / "app.py"), default_timeout=30)


def test_the_queue_lists_open_alerts_most_severe_first(book):
    app = _app().run()
    assert not app.exception
    queue = app.dataframe[0].value
    assert list(queue["rule"]) == ["machine-fault", "tracker-silent"]
    assert [metric.value for metric in app.metric] == ["1", "0", "1", "0"]


def test_acknowledging_from_the_page_records_the_operator(book):
    alert_id = book.alerts("open")[0]["id"]
    app = _app()
    app.query_params["alert"] = alert_id
    app.run()
    assert not app.exception
    assert any("Lock out the machine and inspect it" in m.value for m in app.markdown)
    app.text_input(key="by").input("Anna")
    app.text_input(key="note").input("on my way")
    app.button[0].click().run()  # the form's Apply (acknowledge is the default action)
    assert not app.exception
    assert book.get(alert_id)["status"] == "acknowledged" and book.get(alert_id)["acked_by"] == "Anna"
    assert book.history(alert_id)[-1]["note"] == "on my way"
    assert any("acknowledged (by Anna)" in s.value for s in app.success)


def test_an_action_without_a_name_is_refused(book):
    alert_id = book.alerts("open")[0]["id"]
    app = _app()
    app.query_params["alert"] = alert_id
    app.run()
    app.button[0].click().run()
    assert any("Enter your name" in e.value for e in app.error)
    assert book.get(alert_id)["status"] == "firing"
