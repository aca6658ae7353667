"""The `tower alerts ...`, `tower backtest` and `tower evaluate` commands."""

from __future__ import annotations

import argparse
import json
import logging

import pandas as pd

from tower.cli.output import print_frame, printable
from tower.config import Settings, load_settings
from tower.timeutil import now_ms, parse_duration_ms, parse_moment_ms, rfc3339

_LIST_COLUMNS = ["id", "severity", "status", "rule", "entity", "site", "fired", "acked_by", "detail"]


def run_engine(args: argparse.Namespace) -> int:
    from alerts.engine import run

    settings = load_settings(broker=args.broker, alert_rules=args.rules, oncall=args.oncall, network=args.network)
    return run(settings)


def list_alerts(args: argparse.Namespace) -> int:
    book = _book(load_settings())
    rows = book.alerts(args.status, args.limit)
    frame = pd.DataFrame(rows, columns=[*_LIST_COLUMNS, "fired_ms", "opened_ms"])
    frame["fired"] = [rfc3339(ms) if ms == ms and ms is not None else "" for ms in frame["fired_ms"]]
    frame["acked_by"] = frame["acked_by"].fillna("")
    print_frame(frame[_LIST_COLUMNS], args.format, f"no {'open ' if args.status == 'open' else ''}alerts")
    return 0


def show_alert(args: argparse.Namespace) -> int:
    book = _book(load_settings())
    alert = book.get(args.alert_id)
    if alert is None:
        raise ValueError(f"no alert '{args.alert_id}' (see 'tower alerts list --status all')")
    history, deliveries = book.history(args.alert_id), book.deliveries(args.alert_id)
    if args.format == "json":
        print(json.dumps({"alert": alert, "history": history, "deliveries": deliveries}))
        return 0
    runbook = alert["runbook"]
    _print(f"{alert['id']}  [{alert['severity']}] {alert['rule']} on {alert['entity']}: {alert['status']}")
    _print(f"  {alert['detail']}")
    if alert["resolution"]:
        _print(f"  ended: {alert['resolution']}")
    if alert["group_id"] not in (None, alert["id"]):
        _print(f"  grouped with {alert['group_id']} (same rule, same place; notified through it)")
    _print(f"  runbook: {runbook['owner']}, respond within {runbook['respond_within'] // 60_000} min")
    for number, step in enumerate(runbook["steps"], 1):
        _print(f"    {number}. {step}")
    _print("  history:")
    for row in history:
        via = f" (via {row['via']})" if row["via"] else ""
        _print(f"    {rfc3339(row['at_ms'])}  {row['status']:<12} {row['actor']:<10} {row['note']}{via}")
    for row in deliveries:
        outcome = "delivered" if row["ok"] else f"failed: {row['error']}"
        _print(f"    {rfc3339(row['at_ms'])}  notify step {row['step']} {row['recipient']} via {row['service']}: "
               f"{outcome}")  # fmt: skip
    return 0


def act_on_alert(args: argparse.Namespace) -> int:
    action = "acknowledge" if args.action == "ack" else args.action
    alert = _book(load_settings()).act(args.alert_id, action, args.by, args.note, now_ms(), via="cli")
    print(f"{alert['id']} {alert['status']} by {args.by}")
    return 0


def silence(args: argparse.Namespace) -> int:
    matcher = {}
    for item in args.match:
        key, sep, pattern = item.partition("=")
        if not sep or not pattern:
            raise ValueError(f"--match '{item}' is not KEY=PATTERN, e.g. --match site=SITE_ID")
        matcher[key] = pattern
    starts = parse_moment_ms(args.starts) if args.starts else now_ms()
    ends = starts + parse_duration_ms(args.duration)
    silence_id = _book(load_settings()).silence(matcher, starts, ends, args.by, args.note)
    print(f"silence {silence_id}: {matcher} from {rfc3339(starts)} until {rfc3339(ends)}")
    return 0


def backtest(args: argparse.Namespace) -> int:
    _replay_quietly()
    from alerts.backtest import as_arrivals, readings_from_csv, readings_from_store, replay, summary
    from alerts.rules import load_rules
    from tower.masterdata.store import MasterStore
    from tower.store import open_store

    rules = load_rules(args.rules)
    settings = load_settings(store=args.store)
    if args.readings:
        readings = readings_from_csv(args.readings)
    else:
        since = parse_moment_ms(args.since)
        until = parse_moment_ms(args.until) if args.until else now_ms()
        if since >= until:
            raise ValueError(f"--since {args.since} is not before --until {args.until or 'now'}")
        store = open_store(settings.store, settings, must_exist=True)
        readings = readings_from_store(store, since, until)
    master = MasterStore(settings.master_db)
    result = summary(replay(rules, as_arrivals(readings), master))
    if args.format == "json":
        print(json.dumps(result))
        return 0
    print(f"{len(readings)} readings, {len(result['alerts'])} alerts would have fired")
    frame = pd.DataFrame(result["alerts"], columns=["fired", "resolved", "severity", "rule", "entity", "detail"])
    print_frame(frame, "table", "no alerts")
    for title, counts in (("per rule", result["per_rule"]), ("per day", result["per_day"])):
        if counts:
            print(f"\n{title}:")
            for key, count in counts.items():
                print(f"  {key:<28} {count}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    _replay_quietly()
    from alerts.rules import load_rules
    from alerts.scoring import evaluate as run_evaluation
    from tower.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    rules = load_rules(args.rules)
    duration = parse_duration_ms(args.duration) if args.duration else scenario.duration
    report = run_evaluation(scenario, rules, args.seed, parse_moment_ms(args.start), duration)
    if args.format == "json":
        print(json.dumps(report.as_dict()))
        return 0
    print(f"{scenario.name}, seed {args.seed}, {duration // 3_600_000} h simulated in {report.seconds:.1f} s: "
          f"{len(report.alerts)} alerts")  # fmt: skip
    rows = [
        {"fault": s.fault, "injected": s.faults, "should alert": s.should_alert, "detected": s.detected,
         "recall": _ratio(s.recall), "precision": _ratio(s.precision), "alerts": s.alerts,
         "median lead (min)": "" if s.median_lead_min is None else f"{s.median_lead_min:g}"}
        for s in report.scores
    ]  # fmt: skip
    print(pd.DataFrame(rows).to_string(index=False))
    print("n/a: nothing to score (no fault that should alert; data-quality faults are the collector's to reject)")
    print(f"late shipments: {report.late_shipments}, warned >= 30 min before the promised time: {report.warned_early}")
    for detection in report.detections:
        lead = "missed" if detection["lead_min"] is None else f"{detection['lead_min']:+g} min"
        print(f"  {detection['fault']:<22} {detection['entity']:<16} {detection['first_rule'] or '':<22} {lead}")
    for alert in report.unmatched:
        print(f"  false alarm: {alert['rule']} on {alert['entity']} at {rfc3339(alert['fired_ms'])}: {alert['detail']}")
    return 0


def evaluate_cmapss(args: argparse.Namespace) -> int:
    logging.getLogger("tower.alerts").setLevel(logging.ERROR)  # C-MAPSS sensors are extra fields, by design
    from alerts.cmapss import fixed_threshold_outcomes, load, rules_outcome
    from alerts.rules import CMAPSS_RULES, load_rules

    rules = load_rules(args.rules or CMAPSS_RULES)
    frame = load(args.data)
    ours = rules_outcome(frame, rules, f"rules in {args.rules or CMAPSS_RULES}")
    baseline = fixed_threshold_outcomes(frame)
    if args.format == "json":
        print(json.dumps({"rules": ours.__dict__, "best_fixed_threshold": baseline[0].__dict__,
                          "fixed_thresholds": [o.__dict__ for o in baseline]}))  # fmt: skip
        return 0
    print(f"{ours.engines} engines run to failure; warned in time = first alert >= 20 cycles before failure, "
          "early = first alert in the first half of life")  # fmt: skip
    rows = [ours, *baseline[:5]]
    print(pd.DataFrame([{"rule": o.name, "warned in time": o.in_time, "warned early": o.early} for o in rows])
          .to_string(index=False))  # fmt: skip
    return 0


def _print(line: str) -> None:
    """Details, notes and names come partly from devices and integrations: escaped for the terminal."""
    print(printable(line))


def _replay_quietly() -> None:
    """A replay's alerts are the output; the service's per-alert log lines would only repeat them."""
    logging.getLogger("tower.alerts").setLevel(logging.WARNING)


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _book(settings: Settings):
    from alerts.book import AlertBook

    if not settings.alerts_db.exists():
        raise ValueError(f"no alerts yet: {settings.alerts_db} does not exist (start 'tower alerts run')")
    return AlertBook(settings.alerts_db)
