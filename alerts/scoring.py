"""`tower evaluate`: simulate a scenario in fast-forward, run the rules on its messages in publish
order (late, duplicated and back-filled readings included), and score the alerts against the
simulator's ground truth.

An alert matches an injected fault when it is about the fault's shipment or machine, its rule
`detects` that fault type, and it fired between 5 minutes before the fault began and 30 minutes
after the fault ended or its consequence became real. Per fault type:
- recall: faults that should raise an alert (their consequence happened; data-quality faults are
  ingest's) with at least one matching alert;
- precision: of the alerts of rules that detect the type, those matching an injected fault;
- lead: consequence time minus the first matching alert (positive: the alert came first).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from alerts.backtest import replay
from alerts.book import AlertBook
from alerts.rules import PredictedDelayRule, RuleSet
from simulators.backfill import arrivals
from simulators.engine import Simulation
from tower.masterdata.store import MasterStore
from tower.scenario import FaultType, Scenario
from tower.timeutil import parse_moment_ms

MINUTE = 60_000
BEFORE_MS, AFTER_MS = 5 * MINUTE, 30 * MINUTE
EARLY_ENOUGH_MS = 30 * MINUTE  # predicted-delay target: this long before the promised time


@dataclass(frozen=True)
class FaultScore:
    fault: str
    faults: int
    should_alert: int
    detected: int
    alerts: int
    matching_alerts: int
    median_lead_min: float | None

    @property
    def recall(self) -> float | None:
        return self.detected / self.should_alert if self.should_alert else None

    @property
    def precision(self) -> float | None:
        return self.matching_alerts / self.alerts if self.alerts else None


@dataclass(frozen=True)
class Report:
    scores: list[FaultScore]
    late_shipments: int
    warned_early: int  # late shipments with a predicted-delay alert >= 30 min before the promised time
    alerts: list[dict]
    detections: list[dict]  # per fault that should alert: the first matching alert and its lead
    unmatched: list[dict]
    seconds: float

    def as_dict(self) -> dict:
        return {
            "faults": [
                {**score.__dict__, "recall": score.recall, "precision": score.precision} for score in self.scores
            ],
            "late_shipments": self.late_shipments,
            "late_warned_30min_before": self.warned_early,
            "alerts": len(self.alerts),
            "detections": self.detections,
            "unmatched_alerts": self.unmatched,
            "seconds": round(self.seconds, 1),
        }


def simulate_alerts(simulation: Simulation, rules: RuleSet) -> AlertBook:
    """Every message of the run through decode and the alert service, in publish order."""
    master = MasterStore(":memory:")
    master.set_network(simulation.scenario.network(), f"scenario {simulation.scenario.name}")
    return replay(rules, arrivals(simulation), master, simulation.end_ms)


def score(simulation: Simulation, rules: RuleSet, book: AlertBook, seconds: float = 0.0) -> Report:
    detects = {rule.id: set(rule.detects) for rule in rules.rules}
    alerts = [a for a in book.alerts("all", limit=1_000_000) if a["fired_ms"] is not None]
    truth = simulation.truth()
    for record in truth:
        record["entity"] = record.get("shipment_id") or record.get("equipment_id")
        record["window"] = (
            parse_moment_ms(record["start"]) - BEFORE_MS,
            max(parse_moment_ms(record["end"]), parse_moment_ms(record["consequence_at"] or record["end"])) + AFTER_MS,
        )

    def matches(alert: dict, record: dict) -> bool:
        low, high = record["window"]
        return (
            alert["entity"] == record["entity"]
            and record["fault"] in detects[alert["rule"]]
            and low <= alert["fired_ms"] <= high
        )

    matched_alerts = {a["id"] for a in alerts if any(matches(a, r) for r in truth)}
    scores, detections = [], []
    for fault in FaultType:
        records = [r for r in truth if r["fault"] == fault.value]
        should = [r for r in records if _should_alert(r)]
        leads = []
        for record in should:
            hits = sorted((a["fired_ms"], a["rule"]) for a in alerts if matches(a, record))
            lead = None
            if hits:
                consequence = parse_moment_ms(record["consequence_at"] or record["start"])
                lead = round((consequence - hits[0][0]) / MINUTE, 1)
                leads.append(lead)
            detections.append({"fault": fault.value, "entity": record["entity"], "first_rule": hits[0][1] if hits
                               else None, "lead_min": lead})  # fmt: skip
        relevant = [a for a in alerts if fault.value in detects[a["rule"]]]
        scores.append(
            FaultScore(
                fault.value, len(records), len(should), len(leads), len(relevant),
                sum(a["id"] in matched_alerts for a in relevant),
                round(statistics.median(leads), 1) if leads else None,
            )
        )  # fmt: skip
    late, early = _late_shipments(simulation, rules, alerts)
    unmatched = [
        {k: a[k] for k in ("rule", "entity", "severity", "fired_ms", "detail")}
        for a in alerts
        if a["id"] not in matched_alerts and detects[a["rule"]]
    ]
    return Report(scores, late, early, alerts, detections, unmatched, seconds)


def _should_alert(record: dict) -> bool:
    return not record["consequence"].startswith(("none", "data quality"))


def _late_shipments(simulation: Simulation, rules: RuleSet, alerts: list[dict]) -> tuple[int, int]:
    delay_rules = {rule.id for rule in rules.rules if isinstance(rule, PredictedDelayRule)}
    late = early = 0
    for trip in simulation.trips.values():
        promised = trip.shipment.promised
        if trip.arrival_ms is not None and trip.arrival_ms <= promised:
            continue
        if promised > simulation.end_ms:
            continue  # still on the road when the run ends, before its promised time
        late += 1
        fired = [a["fired_ms"] for a in alerts if a["rule"] in delay_rules and a["entity"] == trip.shipment.id]
        early += bool(fired) and min(fired) <= promised - EARLY_ENOUGH_MS
    return late, early


def evaluate(scenario: Scenario, rules: RuleSet, seed: int, start_ms: int, duration_ms: int) -> Report:
    began = time.monotonic()
    simulation = Simulation(scenario, seed, start_ms, duration_ms)
    book = simulate_alerts(simulation, rules)
    return score(simulation, rules, book, time.monotonic() - began)
