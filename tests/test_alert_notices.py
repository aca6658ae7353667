"""Notices people can act on: what, where (the latest position, the nearest named place, the customer),
how bad, since when in the contact's own zone, the runbook, and a signed one-click link that
acknowledges as that contact through a real `tower api`; resolved notices say how it ended; a
flapping signal pages once; alerts of one rule at one place are grouped; the engine never overwrites
a person's action. On a network of the tests' own (tests/test_master_data.py), a real webhook
receiver and headless Chromium."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import httpx
import pytest

from alerts.book import AlertBook
from alerts.conditions import State
from alerts.evaluate import Change, RuleEvaluator
from alerts.links import AckLinks, LinkError, link_key
from alerts.notify import Deliverer
from alerts.oncall import OnCall
from alerts.rules import RuleSet
from alerts.service import AlertService
from tests.browser import SCREENSHOTS, chromium
from tests.conftest import wait_until
from tests.receivers import WebhookReceiver
from tests.test_master_data import NORDIC, _drive, plan
from tower.config import load_settings
from tower.contract import DeviceKind, Reading
from tower.domain import Severity
from tower.masterdata.model import Shipment
from tower.masterdata.view import MasterData

MIN = 60_000
DEPARTURE = int(datetime(2026, 1, 15, 7, 0, tzinfo=UTC).timestamp() * 1000)  # 08:00 in Oslo (CET)
RUNBOOK = {
    "owner": "transport desk",
    "respond_within": "10m",
    "steps": ["Call the driver of {shipment}", "Tell {customer} about order {order}"],
}
RULES = RuleSet.model_validate({"rules": [
    {"id": "door-open", "type": "threshold", "scope": {"kind": "shipment"}, "field": "door_open", "equals": True,
     "runbook": RUNBOOK},
    {"id": "too-warm", "type": "threshold", "scope": {"kind": "shipment"}, "field": "temp_c", "above": 3.0,
     "runbook": RUNBOOK},
    {"id": "hard-shock", "type": "threshold", "scope": {"kind": "shipment"}, "field": "shock_g", "above": 6.0,
     "runbook": RUNBOOK},
]})  # fmt: skip


def _oncall(webhook: WebhookReceiver) -> OnCall:
    return OnCall.model_validate({
        "contacts": {"anna": {"name": "Anna", "urls": [webhook.url("/anna")], "zone": "Europe/Oslo"},
                     "bram": {"name": "Bram", "urls": [webhook.url("/bram")]}},
        "policies": {"desk": {"levels": [{"notify": ["anna"]}]}},
        "routes": [{"policy": "desk"}],
    })  # fmt: skip


def _master(*shipments: tuple[str, str]) -> MasterData:
    plans = {s: Shipment.model_validate(plan(s, tracker, DEPARTURE)) for s, tracker in shipments}
    return MasterData(NORDIC, plans)


def _reading(minute: int, tracker: str = "T-1", **fields: object) -> Reading:
    (_, position), *_ = _drive(tracker, DEPARTURE, range(minute, minute + 1))
    base = {k: v for k, v in position.items() if k != "ts"}
    return Reading(DeviceKind.SHIPMENT, tracker, DEPARTURE + minute * MIN, {**base, **fields})


@pytest.fixture
def desk(tmp_path, start_api):
    """An alert service on a data dir that a real `tower api` serves, with Anna on call."""
    with WebhookReceiver() as webhook:
        api = start_api(tmp_path, TOWER_API_TOKEN="desk-secret-1", TOWER_API_TOKEN_NAME="desk")
        links = AckLinks(link_key(load_settings(data_dir=tmp_path)), api.url, 3600)
        deliverer = Deliverer(tmp_path / "alerts.db", attempts=1)
        book = AlertBook(tmp_path / "alerts.db")
        service = AlertService(RuleEvaluator(RULES, _master(("S-1", "T-1"), ("S-2", "T-2"))), book, _oncall(webhook),
                               deliverer, links=links, group_window_ms=60 * MIN)  # fmt: skip
        yield service, webhook, api
        deliverer.stop()
        book.close()


def test_three_notices_carry_place_zone_runbook_and_a_link_that_acknowledges_as_their_contact(desk):
    service, webhook, api = desk
    wall = DEPARTURE + 60 * MIN
    for minute in range(0, 20):
        service.observe(_reading(minute, door_open=minute >= 10, temp_c=5.0 if minute >= 12 else 0.6,
                                 shock_g=7.5 if minute == 14 else 0.2), wall)  # fmt: skip
    service.deliverer.wait_idle()
    bodies = sorted(webhook.bodies("/anna"), key=lambda body: body["message"].split("Since: ")[1])  # sent in parallel
    titles = ["[MAJOR] door-open: S-1", "[MAJOR] too-warm: S-1", "[MAJOR] hard-shock: S-1"]
    assert [b["title"] for b in bodies] == titles
    for body in bodies:
        text = body["message"]
        assert re.search(r"Where: 59\.\d{4}, 10\.\d{4}, near Oslo Alnabru terminal \(\d+ km\); bound for "
                         r"Fiskehallen at Fiskehallen Drammen", text), text  # fmt: skip
        assert "About: shipment S-1 (device T-1), order PO-S-1 for Fiskehallen, laks" in text
        assert re.search(r"Since: 2026-01-15 08:[12]\d CET", text)  # Anna's zone, not UTC
        assert "Promised: 2026-01-15 11:00 CET" in text
        assert "1. Call the driver of S-1" in text and "2. Tell Fiskehallen about order PO-S-1" in text
    # The link acknowledges as Anna. Fetching it (a link scanner, a chat preview) does not; the page's form does.
    door = service.book.alerts("all")[-1]
    link = re.search(r"one click\): (\S+)", bodies[0]["message"]).group(1)
    assert link.startswith(f"{api.url}/ack/")
    page = httpx.get(link)
    assert page.status_code == 200 and "Acknowledging as anna" in page.text
    assert service.book.get(door["id"])["status"] == "firing"
    acked = httpx.post(link)
    assert acked.status_code == 200 and "Acknowledged by anna" in acked.text
    alert = service.book.get(door["id"])
    assert (alert["status"], alert["acked_by"]) == ("acknowledged", "anna")
    assert service.book.history(door["id"])[-1] | {"at_ms": 0} == {
        "alert_id": door["id"], "at_ms": 0, "status": "acknowledged", "actor": "anna", "note": "one-click link",
        "via": "link"}  # fmt: skip
    again = httpx.post(link)  # a second click says where it stands
    assert again.status_code == 200 and "Acknowledged by anna" in again.text
    forged = httpx.get(link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB"))
    assert forged.status_code == 400 and "not valid" in forged.text


def test_a_link_expires_and_names_no_one_else():
    links = AckLinks("key-1", "http://tower.example", ttl_s=0.5)
    token = links.url("a1", "anna").rsplit("/", 1)[-1]
    assert links.read(token) == ("a1", "anna")
    with pytest.raises(LinkError, match="not valid"):
        AckLinks("another-key", "http://tower.example", 60).read(token)
    time.sleep(1.1)
    with pytest.raises(LinkError, match="expired"):
        links.read(token)


def test_the_one_click_link_acknowledges_in_a_real_browser(desk):
    service, webhook, api = desk
    service.observe(_reading(3, door_open=True), DEPARTURE + 60 * MIN)
    service.deliverer.wait_idle()
    (body,) = webhook.bodies("/anna")
    link = re.search(r"one click\): (\S+)", body["message"]).group(1)
    with chromium() as browser:
        browser.get(link)
        wait_until(lambda: "Acknowledged by anna" in browser.page_source, what="the acknowledgement page")
        browser.save_screenshot(str(SCREENSHOTS / "one-click-acknowledgement.png"))
    (alert,) = service.book.alerts("all")
    assert (alert["status"], alert["acked_by"]) == ("acknowledged", "anna")


def test_a_flapping_signal_pages_once_and_its_resolution_waits_for_quiet(desk):
    service, webhook, _ = desk
    wall = DEPARTURE + 60 * MIN
    temps = [0.6, 5.0, 0.6, 5.0, 0.6, 5.0, 0.6, 0.6, 0.6]  # out of range three times within minutes
    for minute, temp in enumerate(temps):
        service.observe(_reading(minute, temp_c=temp), wall)
        service.tick(wall)
    service.deliverer.wait_idle()
    assert [b["title"] for b in webhook.bodies("/anna")] == ["[MAJOR] too-warm: S-1"]
    (alert,) = service.book.alerts("all")
    assert [row["status"] for row in service.book.history(alert["id"])] == [
        "firing",
        "resolved",
        "firing",
        "resolved",
        "firing",
        "resolved",
    ]
    for minute in range(9, 20):  # quiet for the rule's quiet period (10 min): now it is over
        service.observe(_reading(minute, temp_c=0.6), wall)
        service.tick(wall)
    service.deliverer.wait_idle()
    titles = [b["title"] for b in webhook.bodies("/anna")]
    assert titles == ["[MAJOR] too-warm: S-1", "[RESOLVED] too-warm: S-1"]
    assert "How it ended: condition cleared: temp_c 0.6 vs limit 3" in webhook.bodies("/anna")[-1]["message"]


def test_one_cause_on_one_lane_pages_once_listing_every_shipment(desk):
    service, webhook, _ = desk
    wall = DEPARTURE + 60 * MIN
    for minute in range(0, 6):
        service.observe(_reading(minute, "T-1", temp_c=5.0 if minute >= 2 else 0.6), wall)
        service.observe(_reading(minute, "T-2", temp_c=5.0 if minute >= 4 else 0.6), wall)
    service.tick(wall + 15 * MIN)  # Anna's policy has no second level; nothing else is due
    service.deliverer.wait_idle()
    assert [b["title"] for b in webhook.bodies("/anna")] == ["[MAJOR] too-warm: S-1"]
    lead, member = sorted(service.book.alerts("open"), key=lambda a: a["fired_ms"])
    assert member["group_id"] == lead["id"] == lead["group_id"]
    service.book.act(lead["id"], "acknowledge", "anna", "both trucks", wall)  # the group is taken care of
    assert service.book.get(member["id"])["status"] == "acknowledged"
    # A resolved lead's notice says what is still open in its group, which goes on under its oldest member.
    for minute in range(6, 8):
        service.observe(_reading(minute, "T-1", temp_c=0.6), wall)
    service.tick(wall + 30 * MIN)
    service.deliverer.wait_idle()
    resolved = webhook.bodies("/anna")[-1]
    assert resolved["title"] == "[RESOLVED] too-warm: S-1" and "S-2 since 2026-01-15 08:04 CET" in resolved["message"]
    assert service.book.get(member["id"])["group_id"] == member["id"]


def test_the_engine_never_overwrites_a_persons_action(tmp_path):
    book = AlertBook(tmp_path / "alerts.db")
    rule = RULES.rules[0]

    def change(state: State, minute: int) -> Change:
        return Change(rule, "S-1", "T-1", DeviceKind.SHIPMENT, "NO-OSL-TERM", state, Severity.MAJOR,
                      DEPARTURE + minute * MIN, None, f"{state} at {minute}")  # fmt: skip

    book.apply(change(State.PENDING, 0), DEPARTURE)
    (pending,) = book.alerts("open")
    book.act(pending["id"], "acknowledge", "anna", "seen it coming", DEPARTURE)
    book.apply(change(State.FIRING, 1), DEPARTURE)  # the engine fires it: the person's acknowledgement stands
    alert = book.get(pending["id"])
    assert (alert["status"], alert["acked_by"], alert["fired_ms"]) == ("acknowledged", "anna", DEPARTURE + MIN)
    with pytest.raises(ValueError, match="changed meanwhile"):  # acting on what one saw before: refused
        book.act(pending["id"], "resolve", "bram", "", DEPARTURE, revision=pending["revision"])
    book.act(pending["id"], "resolve", "bram", "door fixed", DEPARTURE, revision=alert["revision"])
    resolved = book.get(pending["id"])
    assert (resolved["status"], resolved["resolution"]) == ("resolved", "resolved by bram: door fixed")
    assert resolved["detail"] == "firing at 1"  # the last detail is kept
