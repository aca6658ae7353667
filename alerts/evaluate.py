"""Rule evaluation on event time. Pure: readings in, state changes out; no I/O, no wall clock.

Per device the evaluator keeps its newest readings sorted by `ts` (at most REORDER_DEPTH, within
REORDER_HORIZON_MS), and per (rule, device) two copies of the rule's condition: a checkpoint as it
stood before the oldest kept reading, and the current one. A reading in order steps the current
condition; a late one (out of order, or a back-filled offline buffer) is put in its place and the
current condition is replayed from the checkpoint, so the answer is the same as if it had come on
time. Readings older than everything kept are too late to change anything: counted, not used.

Shipment rules apply between departure (the plan's time) and delivery (the first reading inside
the destination's geofence); outside that the condition rests in its normal state.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass, field

from alerts.conditions import CONDITIONS, Condition, State
from alerts.network import Entity, Network, Position
from alerts.rules import MissingDataRule, Rule, RuleSet, Severity
from tower.contract import DeviceKind, Reading

REORDER_DEPTH = 8  # newest readings kept per device to place late ones among
REORDER_HORIZON_MS = 2 * 3_600_000  # and no older than this behind the device's newest


@dataclass(frozen=True)
class Change:
    """A rule's state for one entity changed (or its severity did), at an event time."""

    rule: Rule
    entity_id: str
    device_id: str
    kind: DeviceKind
    site: str
    state: State
    severity: Severity
    at_ms: int
    value: float | None
    detail: str


@dataclass
class _Device:
    kind: DeviceKind
    entity: Entity
    rules: list[Rule]
    missing: list[MissingDataRule]
    readings: list[tuple[int, int, dict, Position | None]] = field(default_factory=list)  # (ts, n, fields, where)
    checkpoint: dict[str, Condition] = field(default_factory=dict)
    current: dict[str, Condition] = field(default_factory=dict)
    reported: dict[str, tuple[State, Severity]] = field(default_factory=dict)
    delivered_at: int | None = None
    silent: set[str] = field(default_factory=set)
    arrivals: int = 0

    @property
    def newest(self) -> int:
        return self.readings[-1][0] if self.readings else -1

    def in_transit(self, ts: int) -> bool:
        plan = self.entity.plan
        return plan is None or (plan.departure_ms <= ts and (self.delivered_at is None or ts < self.delivered_at))


class RuleEvaluator:
    """Feed readings in arrival order; get the state changes they cause, stamped in event time."""

    def __init__(self, rules: RuleSet, network: Network | None = None) -> None:
        self.rules = rules.rules
        self.network = network or Network()
        self._devices: dict[str, _Device] = {}
        self.watermark_ms = 0
        self.too_late = 0

    def observe(self, reading: Reading) -> list[Change]:
        device = self._device(reading)
        ts, fields = reading.ts_ms, reading.fields
        self.watermark_ms = max(self.watermark_ms, ts)
        changes = self._back_from_silence(device, reading)
        if any(kept[0] == ts and kept[2] == fields for kept in device.readings):
            return changes  # a duplicate delivery changes nothing
        if device.readings and (ts < device.readings[0][0] and len(device.readings) >= REORDER_DEPTH):
            self.too_late += 1
            return changes
        where = self._locate(device, fields)
        plan = device.entity.plan
        if plan is not None and where is not None and where.site == plan.destination.id and ts >= plan.departure_ms:
            device.delivered_at = ts if device.delivered_at is None else min(device.delivered_at, ts)
        device.arrivals += 1
        entry = (ts, device.arrivals, fields, where)
        if ts >= device.newest:
            device.readings.append(entry)
            for rule in device.rules:
                self._step(device, rule, device.current, entry)
        else:
            insort(device.readings, entry, key=lambda kept: (kept[0], kept[1]))
            for rule in device.rules:
                device.current[rule.id] = device.checkpoint[rule.id].clone()
                for kept in device.readings:
                    self._step(device, rule, device.current, kept)
        while len(device.readings) > REORDER_DEPTH or device.readings[0][0] < device.newest - REORDER_HORIZON_MS:
            oldest = device.readings.pop(0)
            for rule in device.rules:
                self._step(device, rule, device.checkpoint, oldest)
        return changes + self._report(device, reading.device_id, ts)

    def advance(self, watermark_ms: int) -> list[Change]:
        """Move the fleet's event-time watermark (e.g. a clock tick in a replay) and report silences."""
        self.watermark_ms = max(self.watermark_ms, watermark_ms)
        changes = []
        for device_id, device in self._devices.items():
            for rule in device.missing:
                silent_for = self.watermark_ms - device.newest
                if rule.id in device.silent or silent_for <= rule.after or device.delivered_at is not None:
                    continue
                device.silent.add(rule.id)
                at = device.newest + rule.after
                detail = f"no reading for {silent_for // 60_000} min"
                changes.append(self._change(rule, device, device_id, State.FIRING, rule.level, at, None, detail))
        return changes

    def state_of(self, rule_id: str, device_id: str) -> tuple[State, int]:
        """The rule's state for a device now, and since when (event time), from all readings so far."""
        condition = self._devices[device_id].current[rule_id]
        return condition.state, condition.since

    # -- internals --------------------------------------------------------------------------------

    def _device(self, reading: Reading) -> _Device:
        device = self._devices.get(reading.device_id)
        if device is None:
            entity = self.network.entity(reading.device_id)
            scoped = [
                rule
                for rule in self.rules
                if rule.scope.matches(reading.kind, reading.device_id, entity.site, entity.cargo)
            ]
            device = _Device(
                reading.kind,
                entity,
                [rule for rule in scoped if not isinstance(rule, MissingDataRule)],
                [rule for rule in scoped if isinstance(rule, MissingDataRule)],
            )
            for rule in device.rules:
                device.checkpoint[rule.id] = CONDITIONS[rule.type]()
                device.current[rule.id] = CONDITIONS[rule.type]()
                device.reported[rule.id] = (State.NORMAL, rule.level)
            self._devices[reading.device_id] = device
        return device

    def _locate(self, device: _Device, fields: dict) -> Position | None:
        lat, lon = fields.get("lat"), fields.get("lon")
        if device.entity.plan is None or lat is None or lon is None:
            return None
        return self.network.locate(device.entity.plan, (lat, lon))

    def _step(self, device: _Device, rule: Rule, conditions: dict[str, Condition], entry: tuple) -> None:
        ts, _, fields, where = entry
        if not rule.scope.admits(fields):
            return
        if rule.in_transit_only and not device.in_transit(ts):
            if conditions[rule.id].state is not State.NORMAL:
                fresh = conditions[rule.id] = CONDITIONS[rule.type]()
                fresh.since = ts
            return
        conditions[rule.id].step(rule, ts, fields, where, device.entity.plan)

    def _report(self, device: _Device, device_id: str, ts: int) -> list[Change]:
        """Changes of state (stamped with when the state began) or of severity alone (with the reading's ts)."""
        changes = []
        for rule in device.rules:
            condition = device.current[rule.id]
            now = (condition.state, condition.severity or rule.level)
            before = device.reported[rule.id]
            if now != before:
                device.reported[rule.id] = now
                at = condition.since if now[0] != before[0] else ts
                changes.append(self._change(rule, device, device_id, *now, at, condition.value, condition.detail))
        return changes

    def _back_from_silence(self, device: _Device, reading: Reading) -> list[Change]:
        changes = []
        for rule in device.missing:
            if rule.id in device.silent and reading.ts_ms >= device.newest:
                device.silent.discard(rule.id)
                changes.append(
                    self._change(
                        rule,
                        device,
                        reading.device_id,
                        State.NORMAL,
                        rule.level,
                        reading.ts_ms,
                        None,
                        "reporting again",
                    )  # fmt: skip
                )
        return changes

    @staticmethod
    def _change(rule: Rule, device: _Device, device_id: str, state: State, severity: Severity, at: int,
                value: float | None, detail: str) -> Change:  # fmt: skip
        entity = device.entity
        return Change(rule, entity.entity_id, device_id, device.kind, entity.site, state, severity, at, value, detail)
