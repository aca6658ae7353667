"""Rule evaluation on event time. Pure: readings in, state changes out; no I/O, no wall clock.

Per device the evaluator keeps its newest readings sorted by `ts` (at most REORDER_DEPTH, within
REORDER_HORIZON_MS), and per (rule, device) two copies of the rule's condition: a checkpoint as it
stood before the oldest kept reading, and the current one. A reading in order steps the current
condition; a late one (out of order, or a back-filled offline buffer) is put in its place and the
current condition is replayed from the checkpoint, so the answer is the same as if it had come on
time. Readings older than everything kept are too late to change anything: counted, not used.

Master data (tower.masterdata) says what a device stands for (a shipment, a room, a machine, or
itself) and can change at any time: `set_master` takes a new revision, and a device whose entity
changed (a new plan, a cancelled shipment, a tracker's next shipment) is re-bound: alerts of an
entity it no longer stands for end, rules in scope are resolved again for the entity's ranges.
Shipment rules apply between departure and delivery (tower.domain.ArrivalWatch: confirmed by two
readings inside the destination's geofence, or the owner's proof of delivery); outside that the
condition rests in its normal state.
"""

from __future__ import annotations

import copy
from bisect import insort
from dataclasses import dataclass, field, replace

from alerts.conditions import CONDITIONS, ColdChain, Condition, PredictedDelay, State
from alerts.rules import MissingDataRule, Rule, RuleSet, for_entity
from tower.contract import DeviceKind, Reading
from tower.domain import ArrivalWatch, Severity, ShipmentStatus
from tower.geo import LatLon
from tower.masterdata.view import LOADING_MS, Entity, MasterData, Position

REORDER_DEPTH = 8  # newest readings kept per device to place late ones among
REORDER_HORIZON_MS = 2 * 3_600_000  # and no older than this behind the device's newest
SILENCE_SCAN_MS = 60_000  # missing data is judged once per minute of event time
# A firing alert's detail and value (minutes out of range, distance off route, ...) are brought up to
# date this often in event time, so the queue and a late reader see how it stands, not how it began.
DETAIL_REFRESH_MS = 5 * 60_000
# Bumped when the shape of the rule state changes: a snapshot of another shape is not restored.
STATE_FORMAT = 2


@dataclass(frozen=True)
class Change:
    """A rule's state for one entity changed (or its severity did), at an event time. `context` is
    the master data a person needs (shipment, order, customer, position, nearest sites...), for
    runbooks and notifications."""

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
    context: dict[str, str] = field(default_factory=dict)
    resolution: str = ""  # how an alert ended, when not by its condition clearing (a cancelled shipment...)
    refresh: bool = False  # the same state, its detail and value brought up to date (DETAIL_REFRESH_MS)


@dataclass(frozen=True)
class Tracking:
    """Where a shipment stands by its tracker, as the rules see it: the newest position, the delay
    rule's ETA band, the cold-chain rule's minutes out of range. Frozen at delivery."""

    shipment_id: str
    tracker: str
    last_ms: int
    lat: float | None
    lon: float | None
    temp_c: float | None
    speed_kmh: float | None
    remaining_m: float | None
    arrived_ms: int | None
    eta_early_ms: int | None
    eta_ms: int | None
    eta_late_ms: int | None
    excursion_ms: int


@dataclass
class _Device:
    kind: DeviceKind
    entity: Entity
    rules: list[Rule]  # in scope, resolved for the entity's ranges
    missing: list[MissingDataRule]
    readings: list[tuple[int, int, dict, Position | None]] = field(default_factory=list)  # (ts, n, fields, where)
    checkpoint: dict[str, Condition] = field(default_factory=dict)
    current: dict[str, Condition] = field(default_factory=dict)
    reported: dict[str, tuple[State, Severity]] = field(default_factory=dict)
    refreshed: dict[str, int] = field(default_factory=dict)  # event time each rule's state was last reported
    arrival_checkpoint: ArrivalWatch = field(default_factory=ArrivalWatch)
    arrival: ArrivalWatch = field(default_factory=ArrivalWatch)
    silent: set[str] = field(default_factory=set)
    received: int = 0
    position: LatLon | None = None  # newest known position, for context
    tracking: Tracking | None = None

    @property
    def newest(self) -> int:
        return self.readings[-1][0] if self.readings else -1

    def in_transit(self, ts: int, arrival: ArrivalWatch) -> bool:
        """Whether shipment rules apply at ts: a device without a plan always, an idle tracker never."""
        if self.entity.idle:
            return False
        plan = self.entity.plan
        if plan is None:
            return True
        shipment = plan.shipment
        departed = min(plan.departure_ms, shipment.departed) if shipment.departed is not None else plan.departure_ms
        delivered = [t for t in (arrival.arrived_ms, shipment.delivered) if t is not None]
        if shipment.status is ShipmentStatus.DELIVERED and not delivered:
            return False
        return departed <= ts and (not delivered or ts < min(delivered))


class RuleEvaluator:
    """Feed readings in arrival order; get the state changes they cause, stamped in event time."""

    def __init__(self, rules: RuleSet, master: MasterData | None = None) -> None:
        self.rules = rules.rules
        self.master = master or MasterData()
        self._devices: dict[str, _Device] = {}
        self._tracked: set[str] = set()  # devices whose tracking changed since `tracking_changes`
        self.watermark_ms = 0
        self.too_late = 0
        self.placed = 0  # readings that changed the state: neither duplicates nor too late

    def __getstate__(self) -> dict:
        return {**self.__dict__, "master": None}  # master data lives in its own store, not in a snapshot

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.master = MasterData()

    def set_master(self, master: MasterData) -> list[Change]:
        """Take a new revision of master data; what ended for devices whose entity changed."""
        self.master = master
        changes = []
        for device_id, device in self._devices.items():
            entity = master.entity(device_id, max(device.newest, 0))
            if entity == device.entity:
                device.entity = entity
            else:
                changes += self._rebind(device, device_id, entity)
        return changes

    def observe(self, reading: Reading) -> list[Change]:
        device, changes = self._device(reading)
        ts, fields = reading.ts_ms, reading.fields
        before, self.watermark_ms = self.watermark_ms, max(self.watermark_ms, ts)
        changes += self._back_from_silence(device, reading)
        if any(kept[0] == ts and kept[2] == fields for kept in device.readings):
            return changes + self._scan_silences(before)  # a duplicate delivery changes nothing
        if device.readings and (ts < device.readings[0][0] and len(device.readings) >= REORDER_DEPTH):
            self.too_late += 1
            return changes + self._scan_silences(before)
        self.placed += 1
        where = self._locate(device, fields)
        device.received += 1
        entry = (ts, device.received, fields, where)
        if ts >= device.newest:
            device.readings.append(entry)
            self._step_all(device, device.current, device.arrival, entry)
            if "lat" in fields and "lon" in fields:
                device.position = (fields["lat"], fields["lon"])
        else:
            insort(device.readings, entry, key=lambda kept: (kept[0], kept[1]))
            device.current = {rule.id: device.checkpoint[rule.id].clone() for rule in device.rules}
            device.arrival = copy.copy(device.arrival_checkpoint)
            for kept in device.readings:
                self._step_all(device, device.current, device.arrival, kept)
        while len(device.readings) > REORDER_DEPTH or device.readings[0][0] < device.newest - REORDER_HORIZON_MS:
            self._step_all(device, device.checkpoint, device.arrival_checkpoint, device.readings.pop(0))
        if device.entity.plan is not None:
            self._track(device, reading.device_id)
        return changes + self._report(device, reading.device_id, ts) + self._scan_silences(before)

    def _scan_silences(self, watermark_before: int) -> list[Change]:
        """Silences, judged each time the watermark enters a new minute of event time: at the same
        point of the stream however fast it arrives, so a restarted engine working through the
        broker's backlog decides as one that never stopped (a wall-clock tick would not)."""
        if self.watermark_ms // SILENCE_SCAN_MS > watermark_before // SILENCE_SCAN_MS:
            return self.advance(self.watermark_ms)
        return []

    def tracking_changes(self) -> list[Tracking]:
        """Shipments whose tracking changed since the last call."""
        changed = [self._devices[d].tracking for d in self._tracked if self._devices[d].tracking is not None]
        self._tracked.clear()
        return changed

    def advance(self, watermark_ms: int) -> list[Change]:
        """Move the fleet's event-time watermark (e.g. the end of a replay) and report silences."""
        self.watermark_ms = max(self.watermark_ms, watermark_ms)
        changes = []
        for device_id, device in self._devices.items():
            for rule in device.missing:
                silent_for = self.watermark_ms - device.newest
                if rule.id in device.silent or silent_for <= rule.after:
                    continue
                if not device.in_transit(self.watermark_ms, device.arrival):
                    continue
                device.silent.add(rule.id)
                at = device.newest + rule.after
                detail = f"no reading for {silent_for // 60_000} min"
                changes.append(self._change(rule, device, device_id, State.FIRING, rule.level, at, None, detail))
        return changes

    def context_now(self, device_id: str) -> dict[str, str]:
        """The master data context of a device as it stands now (its newest position, nearest sites)."""
        device = self._devices.get(device_id)
        return self.master.context(device.entity, device_id, device.position) if device else {}

    def state_of(self, rule_id: str, device_id: str) -> tuple[State, int]:
        """The rule's state for a device now, and since when (event time), from all readings so far."""
        condition = self._devices[device_id].current[rule_id]
        return condition.state, condition.since

    # -- internals --------------------------------------------------------------------------------

    def _device(self, reading: Reading) -> tuple[_Device, list[Change]]:
        device_id = reading.device_id
        device = self._devices.get(device_id)
        if device is not None and reading.ts_ms < device.newest:
            return device, []  # a late reading belongs to what the device stood for then: no re-binding
        entity = self.master.entity(device_id, reading.ts_ms)
        if device is None:
            device = self._devices[device_id] = _Device(reading.kind, entity, [], [])
            self._bind(device, device_id)
            return device, []
        if entity is device.entity or entity == device.entity:
            device.entity = entity
            return device, []
        return device, self._rebind(device, device_id, entity)

    def _bind(self, device: _Device, device_id: str) -> None:
        """Rules in scope for the device's entity, resolved for its ranges, each with its conditions."""
        scoped = self._scoped(device, device_id, device.entity)
        device.rules = [rule for rule in scoped if not isinstance(rule, MissingDataRule)]
        device.missing = [rule for rule in scoped if isinstance(rule, MissingDataRule)]
        for rule in device.rules:
            device.checkpoint.setdefault(rule.id, CONDITIONS[rule.type]())
            device.current.setdefault(rule.id, CONDITIONS[rule.type]())
            device.reported.setdefault(rule.id, (State.NORMAL, rule.level))

    def _scoped(self, device: _Device, device_id: str, entity: Entity) -> list[Rule]:
        scoped = []
        for rule in self.rules:
            if rule.scope.matches(device.kind, device_id, entity.site, entity.cargo, entity.site_type):
                resolved = for_entity(rule, entity.ranges)
                if resolved is not None:
                    scoped.append(resolved)
        return scoped

    def _rebind(self, device: _Device, device_id: str, entity: Entity) -> list[Change]:
        """The device stands for another entity now (or its entity changed): alerts of what it no
        longer stands for end; conditions of rules that still apply to the same entity carry on. For a
        new entity the kept readings that belong to it are replayed (a plan that arrives a moment after
        the tracker's first readings loses none of them)."""
        old, same = device.entity, entity.entity_id == device.entity.entity_id
        carried = (
            {r.id for r in self._scoped(device, device_id, entity)} & {r.id for r in device.rules} if same else set()
        )
        changes = []
        for rule in device.rules:
            if rule.id in carried:
                continue
            state, severity = device.reported.pop(rule.id, (State.NORMAL, rule.level))
            device.refreshed.pop(rule.id, None)
            device.checkpoint.pop(rule.id, None)
            device.current.pop(rule.id, None)
            if state is not State.NORMAL:
                ended = self._ended(old, entity)
                changes.append(replace(self._change(rule, device, device_id, State.NORMAL, severity,
                                                    max(device.newest, 0), None, ended), resolution=ended))  # fmt: skip
        device.entity = entity
        if not same:
            device.silent = set()
            device.arrival, device.arrival_checkpoint = ArrivalWatch(), ArrivalWatch()
            begins = entity.plan.departure_ms - LOADING_MS if entity.plan else -1
            device.readings = [(ts, n, fields, self._locate(device, fields))
                               for ts, n, fields, _ in device.readings if ts >= begins]  # fmt: skip
        self._bind(device, device_id)
        if not same and device.readings:
            for entry in device.readings:
                self._step_all(device, device.current, device.arrival, entry)
            changes += self._report(device, device_id, device.newest)
        return changes

    def _ended(self, old: Entity, new: Entity) -> str:
        if old.plan is None:
            return "no longer in this rule's scope"
        shipment = self.master.shipments.get(old.entity_id)
        if shipment is None:
            return f"shipment {old.entity_id} removed from master data"
        if shipment.status in (ShipmentStatus.CANCELLED, ShipmentStatus.DELIVERED):
            return f"shipment {old.entity_id} {shipment.status.value}"
        if new.plan is not None and new.entity_id != old.entity_id:
            return f"tracker moved on to shipment {new.entity_id}"
        return f"shipment {old.entity_id} changed: the rule no longer applies"

    def _locate(self, device: _Device, fields: dict) -> Position | None:
        lat, lon = fields.get("lat"), fields.get("lon")
        if device.entity.plan is None or lat is None or lon is None:
            return None
        return self.master.locate(device.entity.plan, (lat, lon))

    def _step_all(self, device: _Device, conditions: dict[str, Condition], arrival: ArrivalWatch,
                  entry: tuple) -> None:  # fmt: skip
        ts, _, _, where = entry
        plan = device.entity.plan
        if where is not None and plan is not None and ts >= plan.departure_ms:
            arrival.step(ts, where.at_destination)
        for rule in device.rules:
            self._step(device, rule, conditions, arrival, entry)

    def _step(self, device: _Device, rule: Rule, conditions: dict[str, Condition], arrival: ArrivalWatch,
              entry: tuple) -> None:  # fmt: skip
        ts, _, fields, where = entry
        if not rule.scope.admits(fields):
            return
        if rule.in_transit_only and not device.in_transit(ts, arrival):
            if conditions[rule.id].state is not State.NORMAL:
                fresh = conditions[rule.id] = CONDITIONS[rule.type]()
                fresh.since = ts
            return
        conditions[rule.id].step(rule, ts, fields, where, device.entity.plan)

    def _track(self, device: _Device, device_id: str) -> None:
        plan = device.entity.plan
        ts, _, fields, where = device.readings[-1]
        before = device.tracking if device.tracking and device.tracking.shipment_id == plan.shipment_id else None
        if not device.in_transit(ts, device.arrival) and ts >= plan.departure_ms:
            if before is not None and before.arrived_ms is None and device.arrival.arrived_ms is not None:
                device.tracking = replace(before, arrived_ms=device.arrival.arrived_ms)  # frozen from here on
                self._tracked.add(device_id)
            return
        eta = next((c.eta_ms for c in device.current.values() if isinstance(c, PredictedDelay) and c.eta_ms), None)
        out = next((c.out_ms for c in device.current.values() if isinstance(c, ColdChain)), 0)
        lat, lon = fields.get("lat"), fields.get("lon")
        if lat is None or lon is None:
            lat, lon = (before.lat, before.lon) if before else (None, None)
        device.tracking = Tracking(
            plan.shipment_id, device_id, ts, lat, lon, fields.get("temp_c"), fields.get("speed_kmh"),
            max(0.0, plan.route.length_m - where.along_m) if where is not None else None, None,
            *(int(t) for t in eta) if eta else (None, None, None), out,
        )  # fmt: skip
        self._tracked.add(device_id)

    def _report(self, device: _Device, device_id: str, ts: int) -> list[Change]:
        """Changes of state (stamped with when the state began) or of severity alone (with the reading's ts)."""
        changes = []
        for rule in device.rules:
            condition = device.current[rule.id]
            now = (condition.state, condition.severity or rule.level)
            before = device.reported[rule.id]
            if now != before:
                device.reported[rule.id], device.refreshed[rule.id] = now, ts
                at = condition.since if now[0] != before[0] else ts
                changes.append(self._change(rule, device, device_id, *now, at, condition.value, condition.detail))
            elif now[0] is State.FIRING and ts - device.refreshed.setdefault(rule.id, ts) >= DETAIL_REFRESH_MS:
                device.refreshed[rule.id] = ts
                change = self._change(rule, device, device_id, *now, ts, condition.value, condition.detail)
                changes.append(replace(change, refresh=True))
        return changes

    def _back_from_silence(self, device: _Device, reading: Reading) -> list[Change]:
        changes = []
        for rule in device.missing:
            if rule.id in device.silent and reading.ts_ms > device.newest:  # a repeat of the newest is no news
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

    def _change(self, rule: Rule, device: _Device, device_id: str, state: State, severity: Severity, at: int,
                value: float | None, detail: str) -> Change:  # fmt: skip
        entity = device.entity
        context = self.master.context(entity, device_id, device.position) if state is not State.NORMAL else {}
        return Change(rule, entity.entity_id, device_id, device.kind, entity.site, state, severity, at, value, detail,
                      context)  # fmt: skip
