"""Predictive-maintenance rules on real degradation data: NASA's C-MAPSS turbofan engines, run to
failure (`tower evaluate-cmapss`).

Each engine becomes an equipment device (`engine-001` ...), each cycle one reading an hour apart,
with the 21 sensors as fields `s1` ... `s21`; the last cycle is the failure. The rules are scored
against the issue's baseline: the best fixed threshold on a single sensor (the 99.5th, or for a
falling sensor the 0.5th, percentile of every engine's first 30 cycles), alerting at 3 consecutive
exceedances. An engine counts as warned in time when the first alert comes >= 20 cycles before
failure, and as warned early (a false alarm, in effect) when it comes in the first half of its life.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from alerts.backtest import as_arrivals, replay
from alerts.rules import RuleSet
from tower.contract import DeviceKind, Reading

SENSORS = [f"s{n}" for n in range(1, 22)]
COLUMNS = ["unit", "cycle", "setting1", "setting2", "setting3", *SENSORS]
CYCLE_MS = 3_600_000
START_MS = 1_735_689_600_000  # 2025-01-01T00:00Z: cycle 1 of every engine
IN_TIME_CYCLES = 20
BASELINE_CYCLES, BASELINE_RUN = 30, 3


@dataclass(frozen=True)
class Outcome:
    name: str
    in_time: int  # engines warned >= 20 cycles before failure
    early: int  # engines warned in the first half of their life
    engines: int


def load(path: str | Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, sep=r"\s+", header=None, names=COLUMNS)
    except (OSError, pd.errors.ParserError) as problem:
        raise ValueError(f"{path}: cannot read C-MAPSS data: {problem}") from None
    if frame.empty or frame["cycle"].isna().any():
        raise ValueError(f"{path}: not C-MAPSS training data (26 columns: unit, cycle, 3 settings, 21 sensors)")
    return frame


def readings(frame: pd.DataFrame) -> list[Reading]:
    out = []
    for row in frame.to_dict("records"):
        device = f"engine-{int(row['unit']):03d}"
        ts = START_MS + (int(row["cycle"]) - 1) * CYCLE_MS
        out.append(Reading(DeviceKind.EQUIPMENT, device, ts, {s: float(row[s]) for s in SENSORS}))
    return sorted(out, key=lambda reading: reading.ts_ms)


def score_first_alerts(name: str, frame: pd.DataFrame, first_cycle: dict[int, int]) -> Outcome:
    life = frame.groupby("unit")["cycle"].max()
    in_time = sum(1 for unit, cycle in first_cycle.items() if cycle <= life[unit] - IN_TIME_CYCLES)
    early = sum(1 for unit, cycle in first_cycle.items() if cycle < life[unit] / 2)
    return Outcome(name, in_time, early, len(life))


def rules_outcome(frame: pd.DataFrame, rules: RuleSet, name: str) -> Outcome:
    book = replay(rules, as_arrivals(readings(frame)))
    first: dict[int, int] = {}
    for alert in book.alerts("all", limit=1_000_000):
        if alert["fired_ms"] is None:
            continue
        unit = int(alert["entity"].removeprefix("engine-"))
        cycle = (alert["fired_ms"] - START_MS) // CYCLE_MS + 1
        first[unit] = min(first.get(unit, cycle), cycle)
    return score_first_alerts(name, frame, first)


def fixed_threshold_outcomes(frame: pd.DataFrame) -> list[Outcome]:
    """The baseline rule on every sensor that varies, rising and falling; best first."""
    opening = frame[frame["cycle"] <= BASELINE_CYCLES]
    outcomes = []
    for sensor in SENSORS:
        if frame[sensor].std() < 1e-9:
            continue
        for direction, limit in (
            ("above", opening[sensor].quantile(0.995)),
            ("below", opening[sensor].quantile(0.005)),
        ):
            first = {}
            for unit, engine in frame.groupby("unit"):
                beyond = engine[sensor] > limit if direction == "above" else engine[sensor] < limit
                run = beyond.astype(int).groupby((~beyond).cumsum()).cumsum()
                hits = engine["cycle"][run >= BASELINE_RUN]
                if len(hits):
                    first[unit] = int(hits.iloc[0])
            outcomes.append(score_first_alerts(f"{sensor} {direction} {limit:.4g}", frame, first))
    return sorted(outcomes, key=lambda outcome: (-outcome.in_time, outcome.early))
