"""The read API's application: settings read at startup, the engines, CORS, error answers (never cached: `no-store`)
and the routes."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from weather_assets.api.answers import NO_STORE
from weather_assets.api.dagster_runs import dagster_runs
from weather_assets.api.on_demand import OnDemand, Unavailable
from weather_assets.api.routes import router
from weather_assets.api.service import Service
from weather_assets.api.settings import Settings
from weather_assets.api.store import Store, reader_engine


class _StartupCORS:
    """CORS for the origins of the settings read at startup (Starlette builds its middleware before that)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.cors is None:
            origins = list(scope["app"].state.service.settings.cors_origins)
            self.cors = (
                CORSMiddleware(
                    self.app,
                    allow_origins=origins,
                    allow_methods=["GET"],
                    allow_headers=["*"],
                    expose_headers=["ETag", "Retry-After"],  # the app's script reads when to ask again after a 429/503
                )
                if origins
                else self.app
            )
        await self.cors(scope, receive, send)


@contextlib.asynccontextmanager
async def _serving(app: FastAPI, settings: Settings | None) -> AsyncIterator[None]:
    active = settings or Settings.from_env()
    sqlite = active.db_url.startswith("sqlite")
    reader = reader_engine(active.db_url)
    engine = sa.create_engine(  # blocking: the on-demand threads' locks and checks
        active.db_url,
        # SQLite: a connection per check, so a replaced file is never read through an old connection
        **(
            {"poolclass": sa.pool.NullPool, "connect_args": {"timeout": 30}}
            if sqlite
            else {"pool_size": 10, "pool_pre_ping": True}
        ),
    )
    on_demand = OnDemand(active, engine, dagster_runs(active))
    app.state.service = Service(active, Store(reader), on_demand)
    # The imported code (Dagster's included) is permanent: keep it out of the collector's full passes,
    # which otherwise pause a worker for about 100 ms.
    gc.freeze()
    try:
        yield
    finally:
        on_demand.close()
        await reader.dispose()
        engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; `settings` for tests, else read from the environment when the app starts."""
    app = FastAPI(
        title="Weather comfort API",
        description="How comfortable is it now? Comfort scores (0 to 100) per ASOS station and KST hour.",
        version="1.1.0",
        lifespan=lambda app: _serving(app, settings),
    )
    app.add_middleware(_StartupCORS)
    app.add_exception_handler(HTTPException, _client_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(Unavailable, _unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(sa.exc.DBAPIError, _database_down)  # type: ignore[arg-type]
    app.add_exception_handler(sa.exc.TimeoutError, _database_down)  # type: ignore[arg-type]  # pool exhausted
    app.include_router(router)
    return app


def _not_stored(response: Response) -> Response:
    response.headers["Cache-Control"] = NO_STORE
    return response


async def _client_error(request: Request, error: HTTPException) -> Response:
    return _not_stored(await http_exception_handler(request, error))


async def _invalid(request: Request, error: RequestValidationError) -> Response:
    return _not_stored(await request_validation_exception_handler(request, error))


async def _unavailable(_request: Request, error: Unavailable) -> JSONResponse:
    headers = {"Retry-After": str(error.retry_after), "Cache-Control": NO_STORE}
    return JSONResponse({"detail": str(error)}, status_code=503, headers=headers)


async def _database_down(_request: Request, _error: sa.exc.DBAPIError | sa.exc.TimeoutError) -> JSONResponse:
    body = {"detail": "the predictions database is unavailable"}
    return JSONResponse(body, status_code=503, headers={"Retry-After": "30", "Cache-Control": NO_STORE})
