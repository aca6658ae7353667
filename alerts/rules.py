"""Rules as data: the YAML rule language, one pydantic model per rule type.

Every rule has an id, a scope (which devices it watches), a severity and a runbook shown with every
alert. Durations are written like `10m`, `2h`. The format, with an example of every type, is in
alerts/RULES.md; the default set is alerts/rules/default.yaml.
"""

from __future__ import annotations

import logging
import string
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tower.contract import DeviceKind, FieldValue, storage_columns
from tower.domain import Severity, SeverityName
from tower.masterdata.model import Range, SiteType
from tower.scenario import FaultType
from tower.yamlfile import Duration, FileError, Located, load_model

DEFAULT_RULES = Path(__file__).resolve().parent / "rules" / "default.yaml"
CMAPSS_RULES = DEFAULT_RULES.with_name("cmapss.yaml")  # the drift rules `tower evaluate-cmapss` scores
log = logging.getLogger("tower.alerts")
QUIET_MS = 10 * 60_000  # a rule's default quiet period; geofence events (arrive, depart) have none


class RulesError(FileError):
    """A rule file that cannot be used; the message names file, line and problem."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Runbook(_Model):
    """Who responds, how fast, and what to do. Steps may name master data in braces, filled in when
    the alert is raised: {shipment}, {device}, {order}, {customer}, {cargo}, {origin}, {destination},
    {site}, {position}, {nearest_site}, {nearest_cold_store} (see alerts/RULES.md)."""

    owner: str = Field(description="the role that responds, e.g. 'cold-chain desk'")
    respond_within: Duration = Field(description="response deadline after the alert fires")
    steps: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _placeholders(self) -> Runbook:
        for step in self.steps:
            for _, name, _, _ in string.Formatter().parse(step):
                if name is not None and name not in RUNBOOK_PLACEHOLDERS:
                    raise ValueError(f"runbook step names {{{name}}}; use {', '.join(RUNBOOK_PLACEHOLDERS)}")
        return self

    def rendered(self, context: dict[str, str]) -> Runbook:
        """The steps with master data filled in; what is not known reads 'unknown'."""
        filled = {name: context.get(name) or f"unknown {name.replace('_', ' ')}" for name in RUNBOOK_PLACEHOLDERS}
        return self.model_copy(update={"steps": tuple(step.format_map(filled) for step in self.steps)})


RUNBOOK_PLACEHOLDERS = ("shipment", "device", "order", "customer", "cargo", "origin", "destination", "site",
                        "position", "nearest_site", "nearest_cold_store")  # fmt: skip


class Scope(_Model):
    kind: DeviceKind | None = None
    device: str = Field("*", description="device id pattern (fnmatch), e.g. conv-*")
    site: str = Field("*", description="site id pattern of the device (shipments: their origin)")
    site_types: tuple[SiteType, ...] = Field((), description="only devices at sites of these types (default: any)")
    cargo: tuple[str, ...] = Field((), description="shipments only: these cargo types (default: any)")
    when: dict[str, FieldValue] = Field({}, description="only readings with these field values, e.g. state: running")

    def matches(self, kind: DeviceKind, device_id: str, site: str = "", cargo: str = "", site_type: str = "") -> bool:
        return (
            (self.kind is None or self.kind == kind)
            and fnmatchcase(device_id, self.device)
            and (self.site == "*" or fnmatchcase(site, self.site))
            and (not self.site_types or site_type in self.site_types)
            and (not self.cargo or cargo in self.cargo)
        )

    def admits(self, fields: dict[str, FieldValue]) -> bool:
        return all(fields.get(name) == value for name, value in self.when.items())


class _Rule(_Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    scope: Scope = Scope()
    severity: SeverityName = "major"
    runbook: Runbook
    detects: tuple[FaultType, ...] = Field((), description="fault types it is meant to catch (for `tower evaluate`)")
    quiet: Duration = Field(
        QUIET_MS,
        description="firing again this soon (event time) after clearing reopens the "
        "alert without a new notice; its resolved notice waits as long (flapping)",
    )

    @property
    def level(self) -> Severity:
        return Severity.of(self.severity)

    judged_against_plan: ClassVar[bool] = False  # route, ETA and cargo-range rules: the shipment's plan

    @property
    def in_transit_only(self) -> bool:
        """Shipment rules apply between departure and delivery."""
        return self.judged_against_plan or self.scope.kind == DeviceKind.SHIPMENT


class RelativeLimit(_Model):
    """A limit relative to the entity's own range of the rule's field: a cargo type's allowed range
    (shipments), a room's (warehouse sensors), a machine's healthy range. `{of: max, plus: 10}` is
    10 above the range's top; `{of: width, times: 0.3}` is 30 % of its width. An entity without
    that range is out of the rule's scope."""

    of: Literal["min", "max", "setpoint", "width"]
    times: float = 1.0
    plus: float = 0.0

    def on(self, bounds: Range | None) -> float | None:
        if bounds is None:
            return None
        if self.of == "width":
            base = bounds.max - bounds.min if bounds.min is not None and bounds.max is not None else None
        else:
            base = getattr(bounds, self.of)
        return None if base is None else base * self.times + self.plus


Limit = float | RelativeLimit


class ThresholdRule(_Rule):
    """Fires when `field` stays beyond a limit for `for`; clears when it stays back past the clear
    level for `clear_for` (hysteresis: the clear level is inside the limit, so noise does not flap)."""

    type: Literal["threshold"]
    field: str
    above: Limit | None = None
    below: Limit | None = None
    equals: FieldValue | None = Field(None, description="for flags and states: door_open: true, state: fault")
    hold: Duration = Field(0, alias="for")
    clear_above: Limit | None = Field(None, description="with `below`: back to normal above this")
    clear_below: Limit | None = Field(None, description="with `above`: back to normal below this")
    clear_for: Duration = 0

    @model_validator(mode="after")
    def _limits(self) -> ThresholdRule:
        if sum(limit is not None for limit in (self.above, self.below, self.equals)) != 1:
            raise ValueError("a threshold rule needs exactly one of above / below / equals")
        if _numbers(self.above, self.clear_below) and self.clear_below > self.above:
            raise ValueError("clear_below must not be above `above` (that would flap)")
        if _numbers(self.below, self.clear_above) and self.clear_above < self.below:
            raise ValueError("clear_above must not be below `below` (that would flap)")
        return self

    def breached(self, value: FieldValue) -> bool:
        if self.equals is not None:
            return value == self.equals
        return value > self.above if self.above is not None else value < self.below

    def recovered(self, value: FieldValue) -> bool:
        if self.equals is not None:
            return value != self.equals
        if self.above is not None:
            return value < (self.clear_below if self.clear_below is not None else self.above)
        return value > (self.clear_above if self.clear_above is not None else self.below)


class RateRule(_Rule):
    """Fires when `field` changes by more than `rise_above` (or falls by more than `fall_above`)
    within `window` for `for`; clears when the change over the window has been back inside the
    limit for `clear_for`."""

    type: Literal["rate_of_change"]
    field: str
    window: Duration
    rise_above: Limit | None = None
    fall_above: Limit | None = None
    hold: Duration = Field(0, alias="for")
    clear_for: Duration = 0

    @model_validator(mode="after")
    def _limits(self) -> RateRule:
        if self.rise_above is None and self.fall_above is None:
            raise ValueError("a rate_of_change rule needs rise_above or fall_above")
        return self


class MissingDataRule(_Rule):
    """Fires when a device in scope has sent nothing for `after`, judged against the fleet's
    event-time watermark (the newest reading of any device), not the wall clock."""

    type: Literal["missing_data"]
    after: Duration


class GeofenceRule(_Rule):
    """A shipment's tracker arriving at or departing from a site, or dwelling there longer than
    `dwell_over`. Arrive and depart are events: firing on the crossing reading, normal on the next.
    Which sites: `at` its origin, its destination or any site, of `site_types`, matching `sites`."""

    type: Literal["geofence"]
    event: Literal["arrive", "depart", "dwell"]
    at: Literal["any", "origin", "destination"] = "any"
    site_types: tuple[SiteType, ...] = Field((), description="only sites of these types (default: any)")
    sites: str = Field("*", description="site id pattern")
    dwell_over: Duration | None = None
    quiet: Duration = 0

    def watches(self, site: str, site_type: str | None, origin: str | None, destination: str | None) -> bool:
        return (
            (self.at == "any" or site == (origin if self.at == "origin" else destination))
            and (not self.site_types or site_type in self.site_types)
            and fnmatchcase(site, self.sites)
        )

    @model_validator(mode="after")
    def _dwell(self) -> GeofenceRule:
        if (self.event == "dwell") != (self.dwell_over is not None):
            raise ValueError("dwell_over goes with event: dwell, and only with it")
        return self

    @property
    def in_transit_only(self) -> bool:
        return False  # arriving and departing are what delimit the transit


class RouteDeviationRule(_Rule):
    """The tracker is more than `max_offset_m` from its lane's planned route for `for`."""

    scope: Scope = Scope(kind=DeviceKind.SHIPMENT)
    judged_against_plan: ClassVar[bool] = True
    type: Literal["route_deviation"]
    max_offset_m: float = Field(gt=0)
    hold: Duration = Field(0, alias="for")
    clear_for: Duration = 0

    def breached(self, offset_m: float) -> bool:
        return offset_m > self.max_offset_m

    def recovered(self, offset_m: float) -> bool:
        return offset_m < 0.8 * self.max_offset_m


class PredictedDelayRule(_Rule):
    """ETA from the remaining route distance and recent speed (the current pace is assumed to last
    `pace_lasts`, then the plan's speed) against the promised time. Fires when the ETA is later than
    promised + `tolerance` for `for`; rises to `late_severity` once the promised time has passed
    without arrival."""

    scope: Scope = Scope(kind=DeviceKind.SHIPMENT)
    judged_against_plan: ClassVar[bool] = True
    type: Literal["predicted_delay"]
    tolerance: Duration = 0
    speed_window: Duration = Field(15 * 60_000, description="time constant of the recent-speed average")
    pace_lasts: Duration = Field(30 * 60_000, description="how long the recent pace is assumed to hold")
    hold: Duration = Field(0, alias="for")
    late_severity: SeverityName = "critical"


class ColdChainRule(_Rule):
    """The cargo's allowed range (from its cargo type, or `min_c`/`max_c`): fires after `for`
    continuously out of range, clears after `clear_for` back inside by `margin_c`. Rises to
    `budget_severity` once the shipment's cumulative time out of range exceeds `budget`, or its
    mean kinetic temperature exceeds the range."""

    scope: Scope = Scope(kind=DeviceKind.SHIPMENT)
    judged_against_plan: ClassVar[bool] = True
    type: Literal["cold_chain"]
    field: str = "temp_c"
    min_c: float | None = None
    max_c: float | None = None
    hold: Duration = Field(0, alias="for")
    clear_for: Duration = 0
    margin_c: float = Field(0.3, ge=0)
    budget: Duration | None = None
    budget_severity: SeverityName = "critical"


class DriftRule(_Rule):
    """Predictive maintenance: learns each asset's baseline (mean, standard deviation) from its own
    first `learn` of readings in scope (and `min_samples` readings at least), then fires when the
    smoothed value (exponential average, time constant `window`) stays more than `sigmas` baseline
    deviations away for `for`."""

    type: Literal["drift"]
    field: str
    learn: Duration
    min_samples: int = Field(30, ge=2, description="and at least this many readings")
    window: Duration
    sigmas: float = Field(gt=0)
    direction: Literal["up", "down", "both"] = "both"
    hold: Duration = Field(0, alias="for")
    clear_for: Duration = 0


class TrendRule(_Rule):
    """Predictive maintenance: a linear trend fitted over `window` (exponentially weighted) projects
    when `field` will cross `limit`; fires when that is within `horizon`, reporting the projected time."""

    type: Literal["trend"]
    field: str
    limit: Limit
    direction: Literal["up", "down"] = "up"
    window: Duration
    horizon: Duration
    hold: Duration = Field(0, alias="for")


Rule = Annotated[
    ThresholdRule | RateRule | MissingDataRule | GeofenceRule | RouteDeviationRule | PredictedDelayRule
    | ColdChainRule | DriftRule | TrendRule,
    Field(discriminator="type"),
]  # fmt: skip


class RuleSet(_Model):
    rules: tuple[Rule, ...]

    @model_validator(mode="after")
    def _unique(self) -> RuleSet:
        seen: set[str] = set()
        for index, rule in enumerate(self.rules):
            if rule.id in seen:
                raise Located(("rules", index, "id"), f"rule id '{rule.id}' is used twice")
            seen.add(rule.id)
        return self


def load_rules(path: str | Path) -> RuleSet:
    """'default' or a path; RulesError('file:line: problem') for anything wrong with the file. What is
    valid but probably not meant (no rules; a field no device kind reports, like a misspelt
    `temprature`: extra fields are allowed, so it is not an error) is logged as a warning."""
    path = DEFAULT_RULES if str(path) == "default" else Path(path)
    rules = load_model(path, RuleSet, "rule file", RulesError)
    if not rules.rules:
        log.warning("%s has no rules: nothing will alert", path)
    known = {*storage_columns(), *(name for rule in rules.rules for name in rule.scope.when)}
    for rule in rules.rules:
        field = getattr(rule, "field", None)
        if field is not None and field not in known:
            log.warning("%s: rule %s watches field '%s', which no device kind's contract has; it fires only if "
                        "devices send it as an extra field (check the spelling)", path, rule.id, field)  # fmt: skip
    return rules


_LIMITS: dict[type, tuple[str, ...]] = {
    ThresholdRule: ("above", "below", "clear_above", "clear_below"),
    RateRule: ("rise_above", "fall_above"),
    TrendRule: ("limit",),
}


def for_entity(rule: Rule, ranges: dict[str, Range]) -> Rule | None:
    """The rule as it judges one entity: relative limits made numbers from the entity's range of the
    rule's field, a cold-chain rule given the entity's allowed range. None: the entity has no such
    range, so the rule cannot judge it."""
    bounds = ranges.get(getattr(rule, "field", ""))
    if isinstance(rule, ColdChainRule):
        if rule.min_c is not None or rule.max_c is not None:
            return rule
        if bounds is None or not bounds.bounded:
            return None
        return rule.model_copy(update={"min_c": bounds.min, "max_c": bounds.max})
    updates = {}
    for name in _LIMITS.get(type(rule), ()):
        limit = getattr(rule, name)
        if isinstance(limit, RelativeLimit):
            updates[name] = limit.on(bounds)
            if updates[name] is None:
                return None
    return rule.model_copy(update=updates) if updates else rule


def _numbers(*values: Limit | None) -> bool:
    return all(isinstance(value, int | float) for value in values)
