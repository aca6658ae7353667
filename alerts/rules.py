"""Rules as data: the YAML rule language, one pydantic model per rule type.

Every rule has an id, a scope (which devices it watches), a severity and a runbook shown with every
alert. Durations are written like `10m`, `2h`. The format, with an example of every type, is in
alerts/RULES.md; the default set is alerts/rules/default.yaml.
"""

from __future__ import annotations

from enum import IntEnum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tower.contract import DeviceKind
from tower.yamlfile import Duration, FileError, Located, load_model

DEFAULT_RULES = Path(__file__).resolve().parent / "rules" / "default.yaml"


class RulesError(FileError):
    """A rule file that cannot be used; the message names file, line and problem."""


class Severity(IntEnum):
    INFO = 1
    MINOR = 2
    MAJOR = 3
    CRITICAL = 4


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Runbook(_Model):
    owner: str = Field(description="the role that responds, e.g. 'cold-chain desk'")
    respond_within: Duration = Field(description="response deadline after the alert fires")
    steps: tuple[str, ...] = Field(min_length=1)


class Scope(_Model):
    kind: DeviceKind | None = None
    device: str = Field("*", description="device id pattern (fnmatch), e.g. conv-*")

    def matches(self, kind: DeviceKind, device_id: str) -> bool:
        return (self.kind is None or self.kind == kind) and fnmatchcase(device_id, self.device)


class _Rule(_Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    scope: Scope = Scope()
    severity: Literal["info", "minor", "major", "critical"] = "major"
    runbook: Runbook

    @property
    def level(self) -> Severity:
        return Severity[self.severity.upper()]


class ThresholdRule(_Rule):
    """Fires when `field` stays beyond a limit for `for`; clears when it stays back past the clear
    level for `clear_for` (hysteresis: the clear level is inside the limit, so noise does not flap)."""

    type: Literal["threshold"]
    field: str
    above: float | None = None
    below: float | None = None
    hold: Duration = Field(0, alias="for")
    clear_above: float | None = Field(None, description="with `below`: back to normal above this")
    clear_below: float | None = Field(None, description="with `above`: back to normal below this")
    clear_for: Duration = 0

    @model_validator(mode="after")
    def _limits(self) -> ThresholdRule:
        if (self.above is None) == (self.below is None):
            raise ValueError("a threshold rule needs exactly one of above / below")
        if self.above is not None and self.clear_below is not None and self.clear_below > self.above:
            raise ValueError("clear_below must not be above `above` (that would flap)")
        if self.below is not None and self.clear_above is not None and self.clear_above < self.below:
            raise ValueError("clear_above must not be below `below` (that would flap)")
        return self

    def breached(self, value: float) -> bool:
        return value > self.above if self.above is not None else value < self.below

    def recovered(self, value: float) -> bool:
        if self.above is not None:
            return value < (self.clear_below if self.clear_below is not None else self.above)
        return value > (self.clear_above if self.clear_above is not None else self.below)


class RateRule(_Rule):
    """Fires when `field` changes by more than `rise_above` (or falls by more than `fall_above`)
    within `window`; clears when the change over the window is back inside the limit."""

    type: Literal["rate_of_change"]
    field: str
    window: Duration
    rise_above: float | None = None
    fall_above: float | None = None

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


Rule = Annotated[ThresholdRule | RateRule | MissingDataRule, Field(discriminator="type")]


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
    """'default' or a path; RulesError('file:line: problem') for anything wrong with the file."""
    path = DEFAULT_RULES if str(path) == "default" else Path(path)
    return load_model(path, RuleSet, "rule file", RulesError)
