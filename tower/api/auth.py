"""Bearer tokens on every route but /health: 401 without a token or with one the tower does not
know, 403 when the token's role may not do what is asked. The caller's name is what the routes
record (an alert action's `by`, a shipment change's source `api:<name>`); nothing in a request's
body can claim another identity. The token itself is never logged or echoed.

Routes take the caller as a parameter typed by what it must be allowed to do (`Reader`, `Writer`,
`Acknowledger`, `Resolver`); the accepted tokens are the app's (`app.state.tokens`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tower.api.tokens import Tokens
from tower.roles import Actor, Permission

_bearer = HTTPBearer(auto_error=False, description="a token from 'tower api token add NAME --role ROLE'")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _caller_who_may(permission: Permission) -> Callable[[Request, HTTPAuthorizationCredentials | None], Actor]:
    def caller(request: Request, credentials: Credentials) -> Actor:
        if credentials is None:
            raise HTTPException(401, "no bearer token: send 'Authorization: Bearer <token>'", headers=_CHALLENGE)
        tokens: Tokens = request.app.state.tokens
        found = tokens.caller(credentials.credentials)
        if found is None:
            raise HTTPException(401, "unknown or revoked token (see 'tower api token list')", headers=_CHALLENGE)
        if not found.may(permission):
            raise HTTPException(403, f"token '{found.name}' has the role {found.role}, which may not {permission}")
        return found

    return caller


Reader = Annotated[Actor, Depends(_caller_who_may("read"))]
Writer = Annotated[Actor, Depends(_caller_who_may("write"))]
Acknowledger = Annotated[Actor, Depends(_caller_who_may("ack"))]
Resolver = Annotated[Actor, Depends(_caller_who_may("resolve"))]
