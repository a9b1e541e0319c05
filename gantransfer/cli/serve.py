"""`gtx serve SOURCE...`: a web page and an HTTP API translating uploads (docs/serve.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from ._console import console

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve_cmd(
        sources: Annotated[list[str], typer.Argument(
            help="Models to offer: run directories, checkpoints or .onnx files; NAME=PATH "
                 "names one.")],
        host: Annotated[str, typer.Option(
            help="Address to bind. Anything but loopback needs --expose and a token.")
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port (0: any free one).")] = 8000,
        expose: Annotated[bool, typer.Option(
            "--expose", help="Allow a non-loopback --host; requires a token.")] = False,
        token: Annotated[str | None, typer.Option(
            envvar="GTX_SERVE_TOKEN", show_envvar=True,
            help="Token every API call must send (Authorization: Bearer ...); prefer the "
                 "environment variable (a command line is visible to other users).")] = None,
        target: Annotated[str | None, typer.Option(
            "--target", "--direction",
            help="Only this target of PyTorch sources (default: every image target).")] = None,
        device: Annotated[str, typer.Option(
            help="PyTorch device: auto, cpu, cuda, cuda:N or mps.")] = "auto",
        precision: Annotated[str, typer.Option(help="PyTorch precision: fp32, bf16 or auto.")
                             ] = "auto",
        compile: Annotated[str, typer.Option(
            "--compile", help="torch.compile PyTorch models: on or off (each new image size "
                              "compiles once).")] = "off",
        providers: Annotated[str, typer.Option(
            help="onnxruntime providers: auto, or a comma list (cpu,cuda,tensorrt).")] = "auto",
        ema: Annotated[bool | None, typer.Option("--ema/--no-ema", help="EMA weights.")] = None,
        workers: Annotated[int, typer.Option(
            min=1, help="Model runs at once (1: one run already uses every core).")] = 1,
        queue: Annotated[int, typer.Option(
            min=1, help="Requests that may wait; more get 503 with Retry-After.")] = 16,
        timeout: Annotated[float, typer.Option(
            min=0.001, help="Seconds a request may take in all (then 504).")] = 60.0,
        max_upload_mb: Annotated[float, typer.Option(
            min=0.001, help="Largest upload in MiB (then 413).")] = 20.0,
        max_pixels: Annotated[int, typer.Option(
            min=0, help="Largest image in pixels, checked from its header before decoding "
                        "(then 413; 0: no limit).")] = 16_777_216,
        shutdown_grace: Annotated[float, typer.Option(
            min=0, help="Seconds queued requests get to finish on SIGTERM/Ctrl-C.")] = 20.0,
    ) -> None:
        """Serve a web page and an HTTP API that translate uploaded images.

        Models are loaded once; inference runs in a worker pool behind a bounded queue. Binds
        127.0.0.1 unless told otherwise; SIGTERM or Ctrl-C finishes queued requests and stops.
        """
        from .._extras import require
        from ..serve import ServeConfig
        from ..serve._server import open_served, serve

        require("serve")
        config = ServeConfig(host=host, port=port, expose=expose, token=token or None,
                             workers=workers, queue=queue, timeout=timeout,
                             max_upload_bytes=int(max_upload_mb * 1024 * 1024),
                             max_pixels=max_pixels or None, shutdown_grace=shutdown_grace)
        config.validate()  # before loading anything
        models = open_served(sources, target=target, device=device, providers=providers,
                             precision=precision, compile=compile, ema=ema)
        for model in models:
            console.print(f"model [bold]{model.id}[/bold]: {model.description}",
                          highlight=False)

        def ready(url: str) -> None:
            console.print(f"[green]serving on {url}[/green] (API {url}api/v1, schema "
                          f"{url}api/v1/openapi.json); Ctrl-C or SIGTERM stops",
                          highlight=False, soft_wrap=True)

        stopped_by = serve(models, config, on_ready=ready)
        console.print(f"stopped{f' ({stopped_by})' if stopped_by else ''}", highlight=False)
