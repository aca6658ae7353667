"""Who may call the HTTP API, and what each caller may do.

A token is a random secret shown once, when it is made (`tower api token add NAME --role ROLE`).
The tokens file (YAML, `$TOWER_API_TOKENS_FILE`, by default `$TOWER_DATA_DIR/api-tokens.yaml`)
keeps only each token's SHA-256, its name and its role, so a copy of the file lets nobody in; it is
re-read when it changes, so a token added or removed counts without a restart. One more token may
come from the environment (`TOWER_API_TOKEN`, named by `TOWER_API_TOKEN_NAME`, with the role
`TOWER_API_TOKEN_ROLE`) for a deployment with a single integration. A caller's name is what audit
trails record; its role says what it may do. Pure apart from reading and writing the file; no
FastAPI here, so `tower api token ...` runs without the `api` extra.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tower.config import Settings
from tower.roles import Actor, Role, check_role, refuse_names_used_twice
from tower.yamlfile import FileError, file_state, load_model, write_private

log = logging.getLogger("tower.api")

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
TOKEN_PREFIX = "tower_"  # lets secret scanners and people recognise a leaked token
TOKENS_HEADER = "Control Tower API tokens: SHA-256 hashes only. Manage with 'tower api token add|list|remove'."


class TokenEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    role: Role
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the token, hex")
    created: str = ""


class TokenFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: tuple[TokenEntry, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> TokenFile:
        refuse_names_used_twice([entry.name for entry in self.tokens], "token names")
        return self


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    """The tokens the API accepts: the file's (re-read when it changes) and the environment's one."""

    def __init__(self, path: Path, env_token: str | None = None, env_name: str = "", env_role: str = "") -> None:
        self.path = path
        self._env = None
        if env_token:
            check_role(env_role, "TOWER_API_TOKEN_ROLE")
            TokenEntry(name=env_name, role=env_role, sha256="0" * 64)  # the name's rules, with a clear error
            self._env = (digest(env_token), Actor(env_name, env_role))
        self._lock = threading.Lock()
        self._state: tuple[int, int] | None = None
        self._by_digest: dict[str, Actor] = {}
        self._reload(strict=True)

    def caller(self, token: str) -> Actor | None:
        """Who holds this token, or None."""
        presented = digest(token)
        if self._env is not None and hmac.compare_digest(presented, self._env[0]):
            return self._env[1]
        self._reload(strict=False)
        return self._by_digest.get(presented)

    def __len__(self) -> int:
        return len(self._by_digest) + (self._env is not None)

    def _reload(self, strict: bool) -> None:
        """Read the file if it changed; a bad file stops the API at start (strict), later it is logged
        and the tokens stay as they were (a half-edited file locks nobody out)."""
        state = file_state(self.path)
        with self._lock:
            if state == self._state:
                return
            self._state = state
            try:
                entries = read_tokens(self.path).tokens
            except FileError as problem:
                if strict:
                    raise
                log.error("%s; keeping the tokens as they were", problem)
                return
            self._by_digest = {entry.sha256: Actor(entry.name, entry.role) for entry in entries}


def tokens_path(settings: Settings) -> Path:
    return settings.api_tokens_file or settings.data_dir / "api-tokens.yaml"


def read_tokens(path: Path) -> TokenFile:
    """The tokens file; none if it does not exist. FileError (`file:line: problem`) if it is bad."""
    if not path.exists():
        return TokenFile()
    return load_model(path, TokenFile, "tokens file")


def add_token(path: Path, name: str, role: str, created: str) -> str:
    """Make a token, keep its hash in the file, and return it (the only time it is seen)."""
    current = read_tokens(path)
    if any(entry.name == name for entry in current.tokens):
        raise ValueError(f"a token named '{name}' exists; remove it first (tower api token remove {name})")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    entry = TokenEntry(name=name, role=check_role(role, "--role"), sha256=digest(token), created=created)
    write_private(path, TOKENS_HEADER, TokenFile(tokens=(*current.tokens, entry)))
    return token


def remove_token(path: Path, name: str) -> None:
    current = read_tokens(path)
    kept = tuple(entry for entry in current.tokens if entry.name != name)
    if len(kept) == len(current.tokens):
        raise ValueError(f"no token named '{name}' in {path} (see 'tower api token list')")
    write_private(path, TOKENS_HEADER, TokenFile(tokens=kept))
