"""The dashboard's users: names, roles (tower.roles, the HTTP API's role names) and argon2 password
hashes in a YAML file (`$TOWER_DASHBOARD_USERS_FILE`, by default `$TOWER_DATA_DIR/dashboard-users.yaml`,
mode 600), managed with `tower users add|remove|list`, which never print a password or a hash.

A user without a password signs in only through the identity provider (OIDC, Streamlit's
`st.login`): the provider says who they are (their e-mail is the name), this file says what they
may do. The file is re-read when it changes, so a user removed is refused at their next sign-in.
No Streamlit here: the CLI imports it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tower.roles import PEOPLE_ROLES, Actor, check_role, refuse_names_used_twice
from tower.yamlfile import FileError, file_state, load_model, write_private

log = logging.getLogger("tower.dashboard")

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")]  # an e-mail for OIDC users
MIN_PASSWORD = 10
USERS_HEADER = "Control Tower dashboard users: argon2 hashes only. Manage with 'tower users add|list|remove'."
_hasher = PasswordHasher()  # argon2id with the library's current parameters (about 50 ms, 64 MiB a check)
_DUMMY = _hasher.hash("no such user")  # an unknown name costs a check too: the time tells nothing


class UserEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    role: str
    password: str | None = Field(None, description="argon2 hash; none: signs in through the identity provider")
    created: str = ""

    @model_validator(mode="after")
    def _known_role(self) -> UserEntry:
        check_role(self.role, f"user {self.name}", PEOPLE_ROLES)
        return self


class UserFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    users: tuple[UserEntry, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> UserFile:
        refuse_names_used_twice([entry.name.lower() for entry in self.users], "user names")
        return self


def read_users(path: Path) -> UserFile:
    """The users file; none if it does not exist. FileError (`file:line: problem`) if it is bad."""
    if not path.exists():
        return UserFile()
    return load_model(path, UserFile, "users file")


class Users:
    """The users file as the dashboard checks sign-ins against it, re-read when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._state: tuple[int, int] | None = None
        self._by_name: dict[str, UserEntry] = {}

    def __len__(self) -> int:
        self._reload()
        return len(self._by_name)

    def check_password(self, name: str, password: str) -> Actor | None:
        """The person, if the name is a user with a password and it is theirs."""
        self._reload()
        entry = self._by_name.get(name.strip().lower())
        try:
            _hasher.verify(entry.password if entry and entry.password else _DUMMY, password)
        except (VerificationError, InvalidHashError):
            return None
        return Actor(entry.name, entry.role) if entry and entry.password else None

    def known(self, name: str) -> Actor | None:
        """The person for a name the identity provider vouched for, if the file lists them."""
        self._reload()
        entry = self._by_name.get(name.strip().lower())
        return Actor(entry.name, entry.role) if entry else None

    def _reload(self) -> None:
        """Read the file if it changed; a bad file is logged and the users stay as they were."""
        state = file_state(self.path)
        with self._lock:
            if state == self._state:
                return
            try:
                entries = read_users(self.path).users
            except FileError as problem:
                log.error("%s; keeping the users as they were", problem)
                return
            self._state = state
            self._by_name = {entry.name.lower(): entry for entry in entries}


def add_user(path: Path, name: str, role: str, password: str | None, created: str) -> None:
    """Add a user with a password (kept as its argon2 hash), or none for an identity-provider user."""
    current = read_users(path)
    if any(entry.name.lower() == name.lower() for entry in current.users):
        raise ValueError(f"a user named '{name}' exists; remove it first (tower users remove {name})")
    if password is not None and len(password) < MIN_PASSWORD:
        raise ValueError(f"the password is too short: at least {MIN_PASSWORD} characters")
    entry = UserEntry(name=name, role=check_role(role, "--role", PEOPLE_ROLES),
                      password=_hasher.hash(password) if password is not None else None, created=created)  # fmt: skip
    write_private(path, USERS_HEADER, UserFile(users=(*current.users, entry)))


def remove_user(path: Path, name: str) -> None:
    current = read_users(path)
    kept = tuple(entry for entry in current.users if entry.name.lower() != name.lower())
    if len(kept) == len(current.users):
        raise ValueError(f"no user named '{name}' in {path} (see 'tower users list')")
    write_private(path, USERS_HEADER, UserFile(users=kept))
