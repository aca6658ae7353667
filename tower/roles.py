"""Who may do what, for people (the dashboard) and integrations (the HTTP API): one set of role
names with the permissions each holds, so a dashboard user and an API token with the same role
may do the same things (the dashboard has no shipment writes; the API has no silences or users).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Permission = Literal["read", "write", "ack", "resolve", "silence", "users"]
Role = Literal["viewer", "operator", "integration", "admin"]
ROLES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "operator": frozenset({"read", "ack", "resolve"}),
    "integration": frozenset({"read", "write", "ack"}),  # a TMS connector: shipments, and acknowledging
    "admin": frozenset({"read", "write", "ack", "resolve", "silence", "users"}),
}
PEOPLE_ROLES = ("viewer", "operator", "admin")  # the dashboard's users; integration is for machines


def check_role(role: str, where: str, allowed: tuple[str, ...] = tuple(ROLES)) -> str:
    if role not in allowed:
        raise ValueError(f"{where}: '{role}' is not a role; use {', '.join(allowed)}")
    return role


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a signed-in person (the dashboard) or an API token; the name audit trails record."""

    name: str
    role: str

    def may(self, permission: Permission) -> bool:
        return permission in ROLES[self.role]


def refuse_names_used_twice(names: list[str], what: str) -> None:
    """ValueError naming the names used more than once (what: "user names", "token names")."""
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"{what} used twice: {', '.join(twice)}")
