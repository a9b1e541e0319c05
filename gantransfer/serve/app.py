"""The FastAPI application: the page, the versioned API (``/api/v1``) and JSON errors.

    >>> from gantransfer.serve import ServeConfig, create_app, open_served   # doctest: +SKIP
    >>> app = create_app(open_served(["h2z_int8.onnx"]), ServeConfig())      # doctest: +SKIP

Routes (the schema is at ``/api/v1/openapi.json``):

* ``GET /`` the page (``/static/...`` its script and stylesheet, all served from the package);
* ``GET /api/v1/health``, ``GET /api/v1/models``, ``GET /api/v1/models/{id}``;
* ``POST /api/v1/models/{id}/translate``: the image as the raw body or as the multipart field
  ``image``; answers PNG (default) or JPEG (``?format=jpeg&quality=90``).

Every API call checks the token when the server has one. Errors are JSON,
``{"error": "<code>", "message": "<what happened and what to do>"}``, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from importlib import resources
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.datastructures import MutableHeaders, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ._config import ServeConfig, default_prep_threads
from ._images import UploadError, decode_upload, encode_image
from ._models import Opened, StyleError
from ._pool import InferencePool, JobResult, QueueFullError, ShuttingDownError

__all__ = ["API_PREFIX", "ApiError", "ErrorBody", "Health", "ModelInfo", "ModelList", "QueueState",
           "create_app"]

log = logging.getLogger(__name__)
access_log = logging.getLogger("gantransfer.serve.access")

API_PREFIX = "/api/v1"
_MULTIPART_OVERHEAD = 64 * 1024  # room for a multipart envelope around the image's bytes
_STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
# The page loads nothing from elsewhere; the policy makes a browser refuse it if it tried.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' blob: data:; connect-src 'self'; "
                               "form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class ApiError(Exception):
    """An error answered as JSON: HTTP ``status``, a short ``code`` and a clear ``message``."""

    def __init__(self, status: int, code: str, message: str, *,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


# -- schema models -------------------------------------------------------------------------
class ErrorBody(BaseModel):
    """Every error: a short machine-readable code and a message for people."""

    error: str = Field(description="short code, e.g. too_many_pixels, queue_full")
    message: str = Field(description="what went wrong and what to do about it")


class ModelInfo(BaseModel):
    id: str = Field(description="the name used in URLs")
    description: str = Field(description="what the model is and how it runs")
    styles: list[str] = Field(description="styles a request may name (empty: none)")
    metadata: dict[str, Any] = Field(
        description="architecture, target, precision, channels, size divisor, source file name")


class ModelList(BaseModel):
    models: list[ModelInfo]


class QueueState(BaseModel):
    pending: int = Field(description="requests waiting for a worker")
    capacity: int = Field(description="most requests that may wait")
    running: int = Field(description="batches being run")


class Health(BaseModel):
    status: Literal["ok", "shutting_down"]
    version: str
    models: int
    workers: int
    queue: QueueState


_ERROR_TEXT = {
    400: "bad request (empty upload, unknown or unexpected style, bad multipart body)",
    401: "missing or wrong token",
    404: "unknown model",
    408: "the upload took longer than the request timeout",
    413: "upload too large (bytes) or image too large (pixels)",
    415: "not an image in an allowed format",
    422: "invalid parameters, or damaged image data",
    500: "the model failed (details in the server log)",
    503: "queue full or shutting down; see Retry-After",
    504: "the translation took longer than the request timeout",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": ErrorBody, "description": _ERROR_TEXT[c]} for c in codes}


_IMAGE_SCHEMA = {"type": "string", "format": "binary"}
_TRANSLATE_BODY = {
    "requestBody": {
        "required": True,
        "description": "the image: the raw file as the body, or the multipart field 'image'. "
                       "Allowed formats: PNG, JPEG, WebP, BMP.",
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["image"],
                                               "properties": {"image": _IMAGE_SCHEMA}}},
            **{t: {"schema": _IMAGE_SCHEMA} for t in (
                "image/png", "image/jpeg", "image/webp", "image/bmp",
                "application/octet-stream")},
        },
    }
}


# -- the app -------------------------------------------------------------------------------
class _State:
    def __init__(self, models: Sequence[Opened], config: ServeConfig, pool: InferencePool
                 ) -> None:
        self.models = {m.id: m for m in models}
        self.config, self.pool = config, pool
        self.prep: ThreadPoolExecutor | None = None
        biggest = max((m.translator.batch_size for m in models), default=1)
        # Requests being handled at once (uploading, decoding, waiting, running, encoding):
        # the queue plus what the workers run. More are refused before their body is read,
        # so memory stays bounded by this many uploads.
        self.slots = config.queue + config.workers * max(1, biggest)
        self.active = 0


def create_app(models: Sequence[Opened], config: ServeConfig | None = None, *,
               pool: InferencePool | None = None) -> FastAPI:
    """The application serving ``models`` (from :func:`gantransfer.serve.open_served`).

    The inference pool and the decode/encode threads start with the app's lifespan and stop
    with it. Raises ``ValueError`` for an invalid ``config`` or duplicate model ids.
    """
    config = config or ServeConfig()
    config.validate()
    ids = [m.id for m in models]
    if len(set(ids)) != len(ids):
        raise ValueError(f"model ids must be unique, got {ids}")
    if not models:
        raise ValueError("nothing to serve: give at least one model")
    pool = pool or InferencePool(workers=config.workers, capacity=config.queue)
    state = _State(models, config, pool)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.prep = ThreadPoolExecutor(config.prep_threads or default_prep_threads(),
                                        thread_name_prefix="gtx-serve-prep")
        pool.start()
        try:
            yield
        finally:
            pool.close(timeout=config.shutdown_grace)
            state.prep.shutdown(wait=True, cancel_futures=True)

    app = FastAPI(title="gantransfer", version=__version__, lifespan=lifespan,
                  description="Translate images with gantransfer models (see docs/serve.md).",
                  openapi_url=f"{API_PREFIX}/openapi.json", docs_url=None, redoc_url=None)
    app.state.gtx = state
    _add_error_handlers(app)
    app.add_middleware(_Guard, hosts=config.hosts())
    app.include_router(_api_router(state))
    _add_page_routes(app)
    return app


def _check_token(token: str | None) -> Any:
    bearer = HTTPBearer(auto_error=False, description="the server's token, when it has one")

    async def check(credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> None:
        if token is None:
            return
        given = credentials.credentials if credentials is not None else ""
        # Constant time: how much of a guess matched must not show in the response time.
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise ApiError(401, "unauthorized",
                           "this server needs its token: send the header "
                           "'Authorization: Bearer <token>'" if not given else
                           "wrong token", headers={"WWW-Authenticate": "Bearer"})

    return check


def _model(state: _State, model_id: str) -> Opened:
    model = state.models.get(model_id)
    if model is None:
        raise ApiError(404, "unknown_model", f"no model {model_id!r}; this server has "
                       f"{', '.join(map(repr, state.models))} (GET {API_PREFIX}/models)")
    return model


def _describe(model: Opened) -> ModelInfo:
    return ModelInfo(id=model.id, description=model.description, styles=list(model.styles),
                     metadata=model.info)


def _api_router(state: _State) -> APIRouter:
    config, pool = state.config, state.pool
    router = APIRouter(prefix=API_PREFIX, dependencies=[Depends(_check_token(config.token))])

    @router.get("/health", response_model=Health,
                responses={**_errors(401), 503: {"model": Health,
                                                 "description": "the server is shutting down"}})
    async def health() -> Any:
        """Whether the server runs, and its queue."""
        body = Health(status="shutting_down" if pool.closing else "ok", version=__version__,
                      models=len(state.models), workers=config.workers,
                      queue=QueueState(pending=pool.pending, capacity=pool.capacity,
                                       running=pool.running))
        if pool.closing:
            return JSONResponse(body.model_dump(), status_code=503)
        return body

    @router.get("/models", response_model=ModelList, responses=_errors(401))
    async def list_models() -> ModelList:
        """The models this server offers, with their metadata and styles."""
        return ModelList(models=[_describe(m) for m in state.models.values()])

    @router.get("/models/{model_id}", response_model=ModelInfo, responses=_errors(401, 404, 422))
    async def get_model(model_id: str = Path(max_length=200)) -> ModelInfo:
        """One model's metadata and styles."""
        return _describe(_model(state, model_id))

    @router.post(
        "/models/{model_id}/translate", response_class=Response, openapi_extra=_TRANSLATE_BODY,
        responses={200: {"description": "the translated image (same size as the upload)",
                         "content": {"image/png": {"schema": _IMAGE_SCHEMA},
                                     "image/jpeg": {"schema": _IMAGE_SCHEMA}}},
                   **_errors(400, 401, 404, 408, 413, 415, 422, 500, 503, 504)})
    async def translate(
        request: Request,
        model_id: str = Path(max_length=200),
        style: str | None = Query(None, max_length=200, description="a style the model offers"),
        format: Literal["png", "jpeg"] = Query("png", description="the answer's format"),
        quality: int = Query(90, ge=1, le=100, description="JPEG quality"),
    ) -> Response:
        """Translate one image; the answer has the upload's size. Headers: ``X-Model-Seconds``
        (time in the model), ``X-Queue-Seconds`` (waiting), ``X-Total-Seconds``."""
        start = time.perf_counter()
        model = _model(state, model_id)
        try:
            chosen = model.check_style(style)
        except StyleError as exc:
            raise ApiError(400, "unknown_style", str(exc)) from None
        if pool.closing:
            raise ApiError(503, "shutting_down", "the server is shutting down",
                           headers={"Retry-After": "5"})
        if state.active >= state.slots:
            raise ApiError(503, "queue_full",
                           f"the server is busy ({state.active} requests in progress, the "
                           "limit); try again shortly",
                           headers={"Retry-After": str(pool.retry_after())})
        state.active += 1
        try:
            body, job = await _translate(request, model, chosen, fmt=format, quality=quality)
        finally:
            state.active -= 1
        total = time.perf_counter() - start
        timing = {"X-Model-Seconds": f"{job.model_seconds:.4f}",
                  "X-Queue-Seconds": f"{job.queue_seconds:.4f}",
                  "X-Total-Seconds": f"{total:.4f}",
                  "Server-Timing": f"model;dur={job.model_seconds * 1e3:.1f}, "
                                   f"total;dur={total * 1e3:.1f}",
                  "Cache-Control": "no-store"}
        return Response(body, media_type=f"image/{format}", headers=timing)

    async def _translate(request: Request, model: Opened, style: str | None, *, fmt: str,
                         quality: int) -> tuple[bytes, JobResult]:
        loop = asyncio.get_running_loop()
        future: Future[JobResult] | None = None
        reading = True
        try:
            async with asyncio.timeout(config.timeout):
                data = await _read_image(request, config.max_upload_bytes)
                reading = False
                t = model.runner(style)
                decoded = await loop.run_in_executor(state.prep, partial(
                    decode_upload, data, channels=t.channels, divisor=t.divisor,
                    min_size=t.min_size, bucket=t.bucket, max_pixels=config.max_pixels))
                del data
                future = pool.submit(model, style, decoded.x, decoded.size)
                job = await asyncio.wrap_future(future)
                body = await loop.run_in_executor(state.prep, partial(
                    encode_image, job.y, fmt=fmt, quality=quality))
                return body, job
        except TimeoutError:
            if future is not None:
                future.cancel()  # still queued: never run it
            if reading:
                raise ApiError(408, "upload_timeout",
                               f"the upload did not arrive within {config.timeout:g} s") from None
            raise ApiError(504, "timeout",
                           f"the translation took longer than this server's limit of "
                           f"{config.timeout:g} s; try a smaller image or later") from None
        except UploadError as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from None
        except QueueFullError as exc:
            raise ApiError(503, "queue_full", str(exc),
                           headers={"Retry-After": str(exc.retry_after)}) from None
        except ShuttingDownError as exc:
            raise ApiError(503, "shutting_down", str(exc), headers={"Retry-After": "5"}) from None
        except (ApiError, StarletteHTTPException):
            raise
        except Exception:
            log.exception("translating with %s failed", model.id)
            raise ApiError(500, "model_failed",
                           f"model {model.id!r} failed on this image; the server log has the "
                           "details") from None

    return router


async def _read_image(request: Request, limit: int) -> bytes:
    """The image's bytes from the raw body or the multipart field ``image``; at most ``limit``
    bytes are read (413 beyond, before reading the rest when Content-Length says so)."""
    multipart = request.headers.get("content-type", "").lower().startswith("multipart/")
    cap = limit + (_MULTIPART_OVERHEAD if multipart else 0)
    too_big = ApiError(413, "upload_too_large",
                       f"the upload is larger than this server's limit of {_mb(limit)}")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > cap:
        raise too_big
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > cap:
            raise too_big
        chunks.append(chunk)
    body = b"".join(chunks)
    if not multipart:
        return body

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form(max_files=1, max_fields=8)
    try:
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise ApiError(400, "no_image_field", "a multipart upload needs the image as a file "
                                                  "field named 'image'")
        data = await upload.read()
    finally:
        await form.close()
    if len(data) > limit:
        raise too_big
    return data


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


# -- errors --------------------------------------------------------------------------------
def _json_error(status: int, code: str, message: str,
                headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _json_error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = (f"no such path {request.url.path!r}; the API is under {API_PREFIX} "
                       f"(schema: {API_PREFIX}/openapi.json)")
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        return _json_error(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            where = " ".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return _json_error(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _json_error(500, "internal", "internal error; the server log has the details")


class _Guard:
    """ASGI middleware: refuses Host headers not in ``hosts`` (DNS rebinding) and adds the
    page's security headers to every answer."""

    def __init__(self, app: Any, *, hosts: tuple[str, ...] | None) -> None:
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.hosts is not None:
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]")[0]
            if name.lower() not in self.hosts:
                response = _json_error(
                    400, "bad_host", f"this server answers to {', '.join(self.hosts)} only "
                    "(it binds a loopback address); open it as http://127.0.0.1:PORT/")
                await response(scope, receive, send)
                return

        start, status = time.perf_counter(), 0

        async def send_with_headers(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for key, value in _PAGE_HEADERS.items():
                    headers.setdefault(key, value)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            access_log.info("%s %s %d %.3f s", scope["method"], scope["path"], status,
                            time.perf_counter() - start)


# -- the page ------------------------------------------------------------------------------
def _add_page_routes(app: FastAPI) -> None:
    """The page's three files, read once from the package: a request picks one of these names,
    never a path on the server."""
    folder = resources.files(__package__).joinpath("static")
    index = folder.joinpath("index.html").read_bytes()
    files = {name: (folder.joinpath(name).read_bytes(), media)
             for name, media in _STATIC.items()}

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return Response(index, media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in files:
            raise ApiError(404, "not_found", f"no static file {name!r}")
        body, media = files[name]
        return Response(body, media_type=media, headers={"Cache-Control": "no-cache"})

