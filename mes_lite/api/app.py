"""The FastAPI application: settings, database engine, routers, error mapping.

`create_app(settings)` is the only way the service, the CLI and the tests build the app, so they
run the same code. OpenAPI is at /docs.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from mes_lite.api.routes import ROUTER_MODULES
from mes_lite.db import make_engine, session_factory
from mes_lite.services.errors import ServiceError
from mes_lite.settings import MesSettings


def _field_path(loc: tuple | list) -> str:
    """`('body', 'lines', 0, 'qty')` -> `lines[0].qty`: the field as the caller wrote it."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header", "cookie")] or list(loc)
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def create_app(settings: MesSettings | None = None) -> FastAPI:
    settings = settings or MesSettings()
    engine = make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title="edgefab MES",
        description="Master data, work orders, machine states, production counts, OEE (ISO 22400-2).",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory(engine)

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        body: dict[str, object] = {"detail": exc.message}
        if exc.field:
            body["field"] = exc.field
        return JSONResponse(status_code=exc.http_status, content=body)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_path(e.get("loc", ())), "message": e.get("msg", ""), "input": e.get("input")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse(status_code=422, content=jsonable({"detail": detail, "errors": errors}))

    @app.get("/api/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    for name in ROUTER_MODULES:
        app.include_router(importlib.import_module(name).router)
    return app


def jsonable(value: object) -> object:
    from fastapi.encoders import jsonable_encoder

    try:
        return jsonable_encoder(value)
    except (TypeError, ValueError):
        return str(value)
