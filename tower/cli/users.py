"""The `tower users` commands: the dashboard's users and roles. Nothing secret is printed: a
password is typed at a prompt (or read from standard input when it is not a terminal) and only its
argon2 hash is kept."""

from __future__ import annotations

import argparse
import getpass
import sys

from dashboards.users import add_user, read_users, remove_user
from tower.config import load_settings
from tower.timeutil import now_ms, rfc3339


def _password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise ValueError("the passwords differ; nothing was changed")
    return first


def add(args: argparse.Namespace) -> int:
    path = load_settings().users_file
    add_user(path, args.name, args.role, None if args.identity_provider else _password(), rfc3339(now_ms()))
    how = "signs in through the identity provider" if args.identity_provider else "signs in with the password given"
    print(f"user '{args.name}' ({args.role}) added to {path}; {how}")
    return 0


def list_users(args: argparse.Namespace) -> int:
    path = load_settings().users_file
    entries = read_users(path).users
    if not entries:
        print(f"no users in {path} (tower users add NAME --role ROLE)", file=sys.stderr)
    for entry in entries:
        how = "password" if entry.password else "identity provider"
        print(f"{entry.name:<32} {entry.role:<10} {how:<18} {entry.created}")
    return 0


def remove(args: argparse.Namespace) -> int:
    path = load_settings().users_file
    remove_user(path, args.name)
    print(f"user '{args.name}' removed from {path}; they cannot sign in again (a session already open runs on "
          "until it ends)")  # fmt: skip
    return 0
