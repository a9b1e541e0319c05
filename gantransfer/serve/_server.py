"""Open the models once and run the app under uvicorn, stopping gracefully on SIGTERM/Ctrl-C."""

from __future__ import annotations

import logging
import re
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._config import ServeConfig
from ._models import Opened, open_models

__all__ = ["build_server", "open_served", "serve"]

log = logging.getLogger(__name__)

_NAMED = re.compile(r"^(?P<name>[A-Za-z0-9._-]{1,64})=(?P<path>.+)$")


def open_served(sources: Sequence[Any], *, target: str | None = None, device: str = "auto",
                providers: str = "auto", precision: str = "auto", compile: str = "off",
                ema: bool | None = None) -> list[Opened]:
    """Open every source once (see :func:`gantransfer.serve._models.open_models`) with unique ids.

    A string ``NAME=PATH`` names the model (``zebra=h2z_a2b.onnx``), unless a file of that
    whole name exists. Repeated names get ``-2``, ``-3``... Raises what the loaders raise
    (``FileNotFoundError``, ``CheckpointError``, ``OnnxLoadError``, ``ValueError``).
    """
    opened: list[Opened] = []
    for source in sources:
        name = None
        if isinstance(source, str) and not Path(source).exists():
            m = _NAMED.match(source)
            if m is not None:
                name, source = m["name"], m["path"]
        opened.extend(open_models(source, name=name, target=target, device=device,
                                  providers=providers, precision=precision, compile=compile,
                                  ema=ema))
    seen: dict[str, int] = {}
    for model in opened:
        count = seen[model.id] = seen.get(model.id, 0) + 1
        if count > 1:
            model.id = f"{model.id}-{count}"
    return opened


def serve(models: Sequence[Opened], config: ServeConfig, *,
          on_ready: Callable[[str], None] | None = None) -> str | None:
    """Serve ``models`` (from :func:`open_served`) until SIGTERM or Ctrl-C; blocks.

    ``on_ready(url)`` is called once the socket listens (``port=0`` picks a free port; the
    URL says which). On the first SIGTERM/SIGINT the server stops accepting connections and
    refuses new requests, finishes what is running and queued for ``config.shutdown_grace``
    seconds, refuses (503) what is still queued then, and returns the signal's name; a
    second Ctrl-C stops at once. Raises ``ValueError`` for an invalid config,
    :class:`~gantransfer._extras.MissingExtraError` without the ``serve`` extra.
    """
    server = build_server(models, config, on_ready=on_ready)
    server.run()
    return server.stopped_by


def build_server(models: Sequence[Opened], config: ServeConfig, *,
                 on_ready: Callable[[str], None] | None = None) -> Any:
    """The uvicorn server :func:`serve` runs (``server.run()`` blocks; from another thread,
    ``server.handle_exit(signal.SIGTERM, None)`` stops it as a signal would)."""
    from .._extras import require

    require("serve")
    import uvicorn

    from ._pool import InferencePool
    from .app import create_app

    config.validate()
    pool = InferencePool(workers=config.workers, capacity=config.queue)
    app = create_app(models, config, pool=pool)
    return _make_server(uvicorn.Config(
        app, host=config.host, port=config.port, log_config=None, access_log=False,
        lifespan="on", server_header=False, proxy_headers=False, timeout_keep_alive=5,
        # queued requests get `shutdown_grace` to finish, and the refusals time to be sent
        timeout_graceful_shutdown=int(config.shutdown_grace) + 5,
        # a backstop against connection floods; the app's own bound answers with JSON first
        limit_concurrency=4 * (config.queue + config.workers * 8) + 64,
    ), pool=pool, grace=config.shutdown_grace, on_ready=on_ready)


def _make_server(config: Any, *, pool: Any, grace: float,
                 on_ready: Callable[[str], None] | None) -> Any:
    """uvicorn's Server, which also tells the pool when a signal arrives."""
    import uvicorn

    class Server(uvicorn.Server):
        stopped_by: str | None = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            pool.begin_shutdown(grace=grace)
            if self.stopped_by is None:
                self.stopped_by = signal.Signals(sig).name
            super().handle_exit(sig, frame)
            # A graceful stop is a normal end: uvicorn would re-raise the signal afterwards.
            self._captured_signals.clear()

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started and on_ready is not None:
                host, port = self.servers[0].sockets[0].getsockname()[:2]
                shown = f"[{host}]" if ":" in host else host
                on_ready(f"http://{shown}:{port}/")

    return Server(config)
