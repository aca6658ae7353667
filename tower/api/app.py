"""The FastAPI application and its server: routes (shipments, alerts, the network, health),
errors as `{"detail": ...}` in the words the CLI and dead letters use (never a traceback), and
uvicorn with tower's logging. OpenAPI: /openapi.json, browsable at /docs.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from alerts.links import AckLinks
from tower.api import ack_routes, alert_routes, shipment_routes
from tower.api.auth import Reader
from tower.api.backend import Backend
from tower.api.schemas import Health, NetworkView, Problem
from tower.api.tokens import Tokens, tokens_path
from tower.config import Settings
from tower.masterdata.store import MasterDataError
from tower.process import stop_event

log = logging.getLogger("tower.api")

DESCRIPTION = """Shipments in and out of Control Tower for integrations (a TMS, an ERP, scripts), and the alert
queue. Every route but `/health` and the one-click acknowledgement links of notices (`/ack/...`, signed)
takes `Authorization: Bearer <token>`; a token's role says what it may do (viewer: read; operator: +
acknowledge and resolve alerts; integration: + write shipments and acknowledge; admin: all). Times are RFC 3339
with a zone. Plans are validated as the CSV import and MQTT plans are."""


def create_app(settings: Settings) -> FastAPI:
    tokens = Tokens(tokens_path(settings), settings.api_token.get_secret_value() if settings.api_token else None,
                    settings.api_token_name, settings.api_token_role)  # fmt: skip
    if not len(tokens):
        raise ValueError(f"no API tokens: add one with 'tower api token add NAME --role ROLE' (kept in "
                         f"{tokens_path(settings)}) or set TOWER_API_TOKEN")  # fmt: skip
    backend = Backend(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        yield
        backend.close()

    app = FastAPI(title="Control Tower API", version=version("control-tower"), description=DESCRIPTION,
                  lifespan=lifespan, generate_unique_id_function=lambda route: route.name)  # fmt: skip
    app.state.tokens = tokens
    app.include_router(shipment_routes.routes(backend))
    app.include_router(alert_routes.routes(backend))
    app.include_router(ack_routes.routes(backend, AckLinks.from_settings(settings), settings.dashboard_url))

    @app.get("/network", tags=["network"], summary="Sites, lanes, cargo types, sensors and equipment, with the "
             "master data revision", responses={401: {"model": Problem}, 403: {"model": Problem}})  # fmt: skip
    def get_network(caller: Reader) -> NetworkView:
        data = backend.network()
        return NetworkView(**dict(data.network), revision=data.revision)

    @app.get("/health", tags=["service"], summary="For health checks; no token needed")
    def health() -> Health:
        return Health(revision=backend.master.revision())

    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(ValidationError, _invalid)
    app.add_exception_handler(MasterDataError, _refused)
    app.add_exception_handler(Exception, _failed)
    return app


def serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    app = create_app(settings)
    log.info("API on http://%s:%d (OpenAPI docs at /docs)", host, port)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again to the handler it
    # found: with tower's (which only notes it) the command ends with 0, like every tower service.
    stop_event()
    # log_config=None: uvicorn's loggers go through tower's logging. Its access log prints the client,
    # the request line and the status, never headers, so a bearer token cannot reach the log.
    uvicorn.run(app, host=host, port=port, log_config=None, server_header=False)
    return 0


async def _invalid(request: Request, error: Exception) -> JSONResponse:
    """A request that breaks a model: 422 with one line naming each problem, and the problems listed."""
    errors = error.errors()
    clauses = []
    for item in errors:
        if item["type"] == "json_invalid":
            clauses.append(f"invalid JSON: {item.get('ctx', {}).get('error', item['msg'])}")
            continue
        loc = [str(part) for part in item["loc"]]
        where = ".".join(loc[1:] if loc and loc[0] in ("body", "query", "path") else loc)
        clauses.append(f"{where + ': ' if where else ''}{item['msg'].removeprefix('Value error, ')}")
    listed = [{"loc": list(item["loc"]), "msg": item["msg"], "type": item["type"]} for item in errors]
    return JSONResponse({"detail": "; ".join(clauses), "errors": listed}, status_code=422)


async def _refused(request: Request, error: Exception) -> JSONResponse:
    """What the master data refuses (an unknown lane, site or cargo type; a finished shipment)."""
    return JSONResponse({"detail": str(error)}, status_code=422)


async def _failed(request: Request, error: Exception) -> JSONResponse:
    """A bug: a short answer; Starlette re-raises it so that uvicorn logs the traceback."""
    return JSONResponse({"detail": "internal error; the API's log has the details"}, status_code=500)
