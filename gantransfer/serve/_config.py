"""What a server may do: address, token, workers, queue, limits (:class:`ServeConfig`)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

__all__ = ["TOKEN_ENV", "ServeConfig", "default_prep_threads", "is_loopback"]

TOKEN_ENV = "GTX_SERVE_TOKEN"
_MIN_TOKEN = 16
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only listens on this machine."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to any address


def default_prep_threads() -> int:
    """Threads that decode uploads and encode results: ``min(4, CPU count)``, as the folder
    pipeline's decoders (Pillow releases the GIL, so they overlap with the model)."""
    return min(4, os.cpu_count() or 1)


@dataclass(kw_only=True)
class ServeConfig:
    """Settings of a server; :meth:`validate` checks them (``gtx serve`` options map 1:1)."""

    host: str = "127.0.0.1"  # address to bind; anything but loopback needs expose=True
    port: int = 8000  # 0: any free port (the address is logged)
    expose: bool = False  # allow a non-loopback address (then a token is required)
    token: str | None = None  # checked on every API call when set (Authorization: Bearer ...)
    workers: int = 1  # model runs at once (one run uses all cores; see InferencePool)
    queue: int = 16  # jobs that may wait for a worker; more get 503 + Retry-After
    timeout: float = 60.0  # seconds a translation request may take in all; then 504
    max_upload_bytes: int = 20 * 1024 * 1024  # largest accepted image file
    max_pixels: int | None = 16_777_216  # largest image (width x height), from its header
    shutdown_grace: float = 20.0  # seconds queued requests get to finish at shutdown
    prep_threads: int | None = None  # decode/encode threads (None: min(4, CPU count))
    allowed_hosts: tuple[str, ...] | None = None  # Host headers accepted (None: see validate)

    def validate(self) -> None:
        """Raise ``ValueError`` (saying how to fix it) for an unsafe or impossible setting.

        Rules: a non-loopback ``host`` needs ``expose``; ``expose`` needs a token of at least 16
        characters (``--token`` or the ``GTX_SERVE_TOKEN`` environment variable).
        """
        if not is_loopback(self.host) and not self.expose:
            raise ValueError(
                f"--host {self.host} would expose the server to other machines; it binds "
                "127.0.0.1 by default. To expose it on purpose, pass --expose and a token "
                f"(--token or {TOKEN_ENV}); see docs/serve.md, 'Exposing the server'")
        if self.expose and not self.token:
            raise ValueError(f"--expose needs a token: set {TOKEN_ENV} (or pass --token), e.g. "
                             "to the output of: python -c 'import secrets; "
                             "print(secrets.token_urlsafe())'")
        if self.token is not None and len(self.token) < _MIN_TOKEN:
            raise ValueError(f"the token is {len(self.token)} characters long; use at least "
                             f"{_MIN_TOKEN} random ones (python -c 'import secrets; "
                             "print(secrets.token_urlsafe())')")
        for name, value, low in (("--workers", self.workers, 1), ("--queue", self.queue, 1),
                                 ("--port", self.port, 0)):
            if value < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
        if self.port > 65535:
            raise ValueError(f"--port must be <= 65535, got {self.port}")
        if self.timeout <= 0 or self.shutdown_grace < 0:
            raise ValueError("--timeout must be > 0 and --shutdown-grace >= 0 seconds")
        if self.max_upload_bytes < 1:
            raise ValueError(f"--max-upload-mb must be > 0, got {self.max_upload_bytes} bytes")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise ValueError("--max-pixels must be >= 1")

    def hosts(self) -> tuple[str, ...] | None:
        """Host header names accepted (None: any). A loopback server accepts only loopback
        names, so a web page cannot reach it through a DNS name rebound to 127.0.0.1."""
        if self.allowed_hosts is not None:
            return self.allowed_hosts
        return None if self.expose else _LOOPBACK_NAMES
