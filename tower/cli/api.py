"""The `tower api` commands: run the HTTP API, and manage its tokens (no FastAPI needed for those)."""

from __future__ import annotations

import argparse
import sys

from tower.api.tokens import add_token, read_tokens, remove_token, tokens_path
from tower.broker import check_port_free
from tower.config import load_settings
from tower.timeutil import now_ms, rfc3339


def serve(args: argparse.Namespace) -> int:
    settings = load_settings(api_host=args.host, api_port=args.port)
    check_port_free(settings.api_port, settings.api_host)
    try:
        from tower.api.app import serve as run
    except ImportError as missing:  # the `api` extra is not installed
        raise ValueError(f"the HTTP API needs {missing.name}: pip install 'control-tower[api]'") from None
    return run(settings, settings.api_host, settings.api_port)


def add(args: argparse.Namespace) -> int:
    path = tokens_path(load_settings())
    token = add_token(path, args.name, args.role, rfc3339(now_ms()))
    print(token)
    print(f"token '{args.name}' ({args.role}) added to {path}; it is shown only now, keep it in a secret store",
          file=sys.stderr)  # fmt: skip
    return 0


def list_tokens(args: argparse.Namespace) -> int:
    path = tokens_path(load_settings())
    entries = read_tokens(path).tokens
    if not entries:
        print(f"no tokens in {path} (tower api token add NAME --role ROLE)", file=sys.stderr)
    for entry in entries:
        print(f"{entry.name:<24} {entry.role:<12} {entry.created}")
    return 0


def remove(args: argparse.Namespace) -> int:
    path = tokens_path(load_settings())
    remove_token(path, args.name)
    print(f"token '{args.name}' removed from {path}; a running API refuses it within a request")
    return 0
