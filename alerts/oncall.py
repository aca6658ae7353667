"""Who gets told, and when: contacts, on-call schedules (rotations with handoffs and overrides),
escalation policies and the routes from alerts to policies. Loaded from YAML (format and example:
alerts/README.md; example: alerts/oncall.example.yaml); pure functions of an alert and the wall-clock time.

Escalation: a policy's levels each have a delay after the alert fired; unless the alert is
acknowledged first, each level is notified when its delay is up, and the whole chain repeats
`repeat` more times, `repeat_after` after its last level.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from alerts.rules import Severity
from tower.yamlfile import Duration, FileError, Located, load_model


class OnCallError(FileError):
    """An on-call file that cannot be used; the message names file, line and problem."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Contact(_Model):
    name: str
    urls: tuple[str, ...] = Field(min_length=1, description="apprise URLs; ${VAR} is taken from the environment")
    zone: str = Field("UTC", description="time zone of the times in their notices, e.g. Europe/Amsterdam")

    @field_validator("zone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{zone}'; use an IANA name such as Europe/Amsterdam or UTC") from None
        return zone


class Rotation(_Model):
    start: AwareDatetime = Field(description="the first handoff, with its time zone, e.g. 2026-01-05T08:00:00+01:00")
    every: Duration = Field(description="how long each shift lasts, e.g. 1d or 7d")
    members: tuple[str, ...] = Field(min_length=1)


class Override(_Model):
    who: str
    starts: AwareDatetime
    ends: AwareDatetime


class Schedule(_Model):
    rotation: Rotation
    overrides: tuple[Override, ...] = ()

    def on_call(self, at_ms: int) -> str:
        for override in self.overrides:
            if _ms(override.starts) <= at_ms < _ms(override.ends):
                return override.who
        shifts = (at_ms - _ms(self.rotation.start)) // self.rotation.every
        return self.rotation.members[shifts % len(self.rotation.members)]


class Level(_Model):
    after: Duration = 0
    notify: tuple[str, ...] = Field(min_length=1, description="contact or schedule names")


class Policy(_Model):
    levels: tuple[Level, ...] = Field(min_length=1)
    repeat: int = Field(0, ge=0)
    repeat_after: Duration = 30 * 60_000

    def steps(self) -> list[tuple[int, int, Level]]:
        """(step number, delay after firing, level) for every notification the policy can make."""
        period = self.levels[-1].after + self.repeat_after
        return [
            (round_ * len(self.levels) + index, round_ * period + level.after, level)
            for round_ in range(self.repeat + 1)
            for index, level in enumerate(self.levels)
        ]


class Match(_Model):
    severity_at_least: Literal["info", "minor", "major", "critical"] = "info"
    kinds: tuple[str, ...] = ()
    sites: str = "*"
    rules: str = "*"

    def matches(self, alert: dict) -> bool:
        return (
            Severity[alert["severity"].upper()] >= Severity[self.severity_at_least.upper()]
            and (not self.kinds or alert["kind"] in self.kinds)
            and fnmatchcase(alert["site"], self.sites)
            and fnmatchcase(alert["rule"], self.rules)
        )


class Route(_Model):
    match: Match = Match()
    policy: str


class OnCall(_Model):
    contacts: dict[str, Contact]
    schedules: dict[str, Schedule] = {}
    policies: dict[str, Policy]
    routes: tuple[Route, ...] = Field(min_length=1, description="first match wins; no match: not notified")

    @model_validator(mode="after")
    def _references(self) -> OnCall:
        for name, schedule in self.schedules.items():
            for who in (*schedule.rotation.members, *(o.who for o in schedule.overrides)):
                if who not in self.contacts:
                    raise Located(("schedules", name), f"schedule {name}: unknown contact '{who}'")
        for name, policy in self.policies.items():
            for index, level in enumerate(policy.levels):
                for target in level.notify:
                    if target not in self.contacts and target not in self.schedules:
                        raise Located(("policies", name, "levels", index, "notify"),
                                      f"policy {name}: '{target}' is neither a contact nor a schedule")  # fmt: skip
        for index, route in enumerate(self.routes):
            if route.policy not in self.policies:
                raise Located(("routes", index, "policy"), f"unknown policy '{route.policy}'")
        return self

    def policy_for(self, alert: dict) -> Policy | None:
        route = next((r for r in self.routes if r.match.matches(alert)), None)
        return self.policies[route.policy] if route else None

    def recipients(self, level: Level, at_ms: int) -> list[tuple[str, Contact]]:
        """The contacts a level reaches at a moment: schedules resolve to whoever is on call."""
        names = [self.schedules[t].on_call(at_ms) if t in self.schedules else t for t in level.notify]
        return [(name, self.contacts[name]) for name in dict.fromkeys(names)]


def due_steps(policy: Policy, raised_wall_ms: int, now_ms: int, done: set[int]) -> list[tuple[int, Level]]:
    """Steps whose time has come and that have not been notified yet."""
    return [
        (step, level) for step, delay, level in policy.steps() if step not in done and raised_wall_ms + delay <= now_ms
    ]


def _ms(moment: AwareDatetime) -> int:
    return int(moment.timestamp() * 1000)


def load_oncall(path: str | Path) -> OnCall:
    return load_model(Path(path), OnCall, "on-call file", OnCallError)
