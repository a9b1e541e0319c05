"""The video side of `gtx translate`: video inputs go to :func:`gantransfer.video.translate_video`.

``gtx translate SOURCE clip.mp4 photos/ -o out/`` writes ``out/clip.mp4`` (same container) and
translates the images as before. Only this module knows about videos; ``cli/translate.py`` calls
:func:`split_videos` and :func:`translate_videos`.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ._console import console, err_console

__all__ = ["split_videos", "translate_videos"]


def split_videos(inputs: list[Path], *, every: int, codec: str | None
                 ) -> tuple[list[Path], list[Path]]:
    """(video files, other inputs) among ``inputs``, by suffix (see ``gantransfer.video``).
    ``--every``/``--video-codec`` without a video is a usage error."""
    from ..video._codecs import is_video_file

    videos = [p for p in inputs if p.is_file() and is_video_file(p)]
    if not videos and (every != 1 or codec is not None):
        raise typer.BadParameter("--every and --video-codec apply to video inputs (.mp4, .mov, "
                                 ".mkv, .webm, .avi); none was given", param_hint="--every")
    return videos, [p for p in inputs if p not in videos]


def translate_videos(source: Path, videos: list[Path], out: Path, *, existing: str, every: int,
                     codec: str | None, target: str | None, device: str, providers: str,
                     precision: str, compile: str, batch_size: int | None,
                     ema: bool | None) -> None:
    """Translate each video into ``out/<name>`` with a progress bar in frames per second."""
    from .._extras import require
    from .._outputs import select_outputs
    from ..inference import open_source, translator
    from ..video import frame_count, translate_video

    require("video")
    pairs = [(v, out / v.name) for v in videos]
    keep = select_outputs([d for _, d in pairs], inputs=videos, existing=existing)  # type: ignore[arg-type]
    pairs = [p for p, k in zip(pairs, keep, strict=True) if k]
    if not pairs:
        console.print(f"[green]nothing to do[/green]: the video output(s) exist in {out} "
                      "(--skip-existing)", highlight=False)
        return
    frames = sum(-(-(frame_count(src) or 0) // every) for src, _ in pairs)
    src_model = open_source(source, device=device, providers=providers, ema=ema)
    runner = translator(src_model.model, target=target, precision=precision, compile=compile,
                        images=frames)
    console.print(f"translating {len(pairs)} video(s) with {src_model.description}: "
                  f"{runner.description}", highlight=False)
    for src, dst in pairs:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("frames {task.fields[rate]}"), TimeElapsedColumn(),
                      TextColumn("ETA"), TimeRemainingColumn(), console=err_console) as bar:
            task = bar.add_task(src.name, total=None, rate="")

            def report(done: int, total: int | None, task=task, bar=bar) -> None:
                speed = bar.tasks[0].speed
                bar.update(task, completed=done, total=total,
                           rate=f"{speed:.1f}/s" if speed else "")

            stats = translate_video(runner, src, dst, every=every, codec=codec,
                                    batch_size=batch_size, existing="overwrite",
                                    progress=report)
        audio = (f", {stats.audio_streams} audio stream(s) copied" if stats.audio_streams
                 else "")
        kept = f" (every {every}th of {stats.frames_read})" if every > 1 else ""
        console.print(
            f"[green]wrote {dst}[/green]: {stats.frames} frame(s){kept}, {stats.width}x"
            f"{stats.height} at {stats.fps:.3g} fps, {stats.codec}{audio}, in "
            f"{stats.wall_seconds:.2f} s: {stats.frames_per_second:.2f} frames/s; time in the "
            f"model {stats.model_seconds:.2f} s", highlight=False)
