"""`gtx translate SOURCE INPUT... -o OUT`: translate image files/folders with a model or ONNX file.

SOURCE is a run directory or checkpoint (PyTorch) or an ``.onnx`` file (onnxruntime), resolved by
:func:`gantransfer.inference.open_source`; :func:`gantransfer.inference.translator` picks what
runs it. Both use the same image plumbing, so they give the same pixels within the export
tolerance. Files go through :func:`gantransfer.inference.translate_files` (decoding, inference
and saving overlapped).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ._console import console
from ._options import Download, Overwrite, SkipExisting, download_if_asked, existing_from_flags

if TYPE_CHECKING:  # pragma: no cover
    from ..inference import Source

__all__ = ["register"]


def _int8_hint(src: Source, source: Path, runner: Any, *, images: int) -> str | None:
    """The measured rule's pointer to the int8 ONNX path, with the commands (or None)."""
    from ..inference.defaults import int8_hint

    if src.kind == "onnx":
        on_cpu = src.model.providers[0] == "CPUExecutionProvider"
        text = int8_hint("cpu" if on_cpu else "cuda",
                         source=f"onnx-{src.model.metadata.precision}", images=images)
        export = "gtx export RUN --int8 --calib DIR --onnx model_int8.onnx"
    else:
        text = int8_hint(src.model.device, source="torch", images=images,
                         compiled=runner.compiled)
        export = f"gtx export {source} --int8 --calib DIR --onnx model_int8.onnx"
    if text is None:
        return None
    return (f"hint: {text}. For large jobs: {export} (DIR: real input images of the model), "
            "then gtx translate model_int8.onnx ...")


def _plan(inputs: list[Path], out: Path, ext: str | None) -> list[tuple[Path, Path]]:
    """(input file, output file) pairs; outputs mirror inputs' relative paths under ``out``.

    Raises ``ValueError`` when ``out`` is an input folder or inside one (the outputs would mix
    with the inputs and be read as inputs by the next run) or two inputs map to one output.
    """
    from ..data.folders import is_image_file, list_images

    pairs: list[tuple[Path, Path]] = []
    for item in inputs:
        if item.is_dir():
            if out.resolve().is_relative_to(item.resolve()):
                raise ValueError(
                    f"the output folder {out} is inside the input folder {item}: outputs would "
                    "mix with the inputs (and be translated again by the next run); choose an "
                    "output folder outside it")
            base = Path() if len(inputs) == 1 else Path(item.name)
            files = [(f, base / f.relative_to(item)) for f in list_images(item)]
            if not files:
                raise FileNotFoundError(f"no images found under {item}")
        elif item.is_file():
            if not is_image_file(item):
                raise ValueError(f"{item} is not an image file (jpg, png, bmp, tif, webp)")
            files = [(item, Path(item.name))]
        else:
            raise FileNotFoundError(f"input {item} does not exist")
        pairs.extend((f, out / rel.with_suffix(ext or rel.suffix)) for f, rel in files)
    seen: dict[Path, Path] = {}
    for src, dst in pairs:
        if dst in seen:
            raise ValueError(f"{src} and {seen[dst]} would both be written to {dst}; "
                             "translate them in separate calls")
        seen[dst] = src
    return pairs


def _select(pairs: list[tuple[Path, Path]], existing: str) -> list[tuple[Path, Path]]:
    """The pairs to translate under the output rule (see gantransfer._outputs)."""
    from .._outputs import select_outputs

    keep = select_outputs([d for _, d in pairs], inputs=[s for s, _ in pairs],
                          existing=existing)  # type: ignore[arg-type]
    return [pair for pair, k in zip(pairs, keep, strict=True) if k]


def register(app: typer.Typer) -> None:
    @app.command("translate")
    def translate_cmd(
        source: Annotated[Path, typer.Argument(
            help="Run directory, checkpoint, .onnx file, pretrained name (cyclegan/style_monet) "
                 "or hf://user/repo.")],
        inputs: Annotated[list[Path], typer.Argument(
            help="Image files and/or folders (recursive), and video files.")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")],
        target: Annotated[str | None, typer.Option(
            "--target", "--direction", help="Export target / direction, e.g. a2b or b2a.")] = None,
        batch_size: Annotated[int | None, typer.Option(
            "--batch-size", "-b", min=1,
            help="Images of equal (bucketed) size per run (default: 1 on CPUs, where batching "
                 "was measured slower, 8 on GPUs; docs/performance.md).")] = None,
        device: Annotated[str, typer.Option(
            help="PyTorch device: auto, cpu, cuda, cuda:N or mps.")] = "auto",
        precision: Annotated[str, typer.Option(
            help="PyTorch precision: fp32, bf16, or auto (bf16 where the device computes it "
                 "natively and, on CPUs, only when compiled).")] = "auto",
        compile: Annotated[str, typer.Option(
            "--compile", help="torch.compile: on, off, or auto (when the images repay a "
                              "compile: about 100 on CPUs with native bf16, 500 without, 512 on "
                              "CUDA; docs/performance.md).")] = "auto",
        bucket: Annotated[int | None, typer.Option(
            min=0, help="Pad sizes up to multiples of this many pixels so they share compiled "
                        "shapes; 0: steps relative to the size (padding < 1/8 of each side, the "
                        "default when compiled); 1: off (the default when eager).")] = None,
        workers: Annotated[int | None, typer.Option(
            min=1, help="Decoder threads (default: min(4, CPU count)).")] = None,
        skip_bad_images: Annotated[bool, typer.Option(
            "--skip-bad-images", help="Skip and count unreadable images instead of stopping.")
        ] = False,
        providers: Annotated[str, typer.Option(
            help="onnxruntime providers: auto, or a comma list (cpu,cuda,tensorrt).")] = "auto",
        keep_ext: Annotated[bool, typer.Option(
            "--keep-ext", help="Keep each input's extension (default: write .png).")] = False,
        ema: Annotated[bool | None, typer.Option("--ema/--no-ema", help="EMA weights.")] = None,
        max_side: Annotated[int | None, typer.Option(
            "--max-side", min=1,
            help="Downscale inputs whose longer side is larger than this many pixels (aspect "
                 "kept; outputs have the reduced size).")] = None,
        max_pixels: Annotated[int | None, typer.Option(
            "--max-pixels", min=0,
            help="Refuse images with more pixels than this, from their header (default "
                 "89478485, Pillow's decompression-bomb limit; 0: no limit).")] = None,
        memory_check: Annotated[bool, typer.Option(
            "--memory-check/--no-memory-check",
            help="Estimate the memory the largest batch needs and refuse the job when the "
                 "machine has less available.")] = True,
        style: Annotated[list[str] | None, typer.Option(
            "--style", help="Target style of a multi-style model (name or index; see `gtx "
                            "info`/the file's labels). Repeat it to write one subfolder of OUT "
                            "per style.")] = None,
        overwrite: Overwrite = False,
        skip_existing: SkipExisting = False,
        every: Annotated[int, typer.Option(
            "--every", min=1, help="Videos: translate every Nth frame (a preview as long as "
                                   "the input).")] = 1,
        video_codec: Annotated[str | None, typer.Option(
            "--video-codec", help="Videos: the encoder (default: H.264 for mp4/mov/mkv/avi, "
                                  "VP9 for webm; ffv1 is lossless). Audio is copied.")] = None,
        download: Download = False,
    ) -> None:
        """Translate every image of the inputs; outputs keep relative paths, stems and sizes.

        Video files (.mp4, .mov, .mkv, .webm, .avi) are translated frame by frame into a video
        of the same name, frame rate, size and duration, with the audio copied (docs/video.md).

        Existing outputs are not replaced without --overwrite, inputs never. Decoding, inference
        and saving overlap; the summary gives images per second and the time spent inside the
        model.
        """
        from ..data.images import set_max_pixels
        from ..inference import open_source

        if max_pixels is not None:
            set_max_pixels(max_pixels)
        existing = existing_from_flags(overwrite, skip_existing)
        from ._video import split_videos, translate_videos

        videos, inputs = split_videos(inputs, every=every, codec=video_codec)
        download_if_asked(source, download)
        if videos:
            translate_videos(source, videos, out, existing=existing, every=every,
                             codec=video_codec, target=target, device=device, providers=providers,
                             precision=precision, compile=compile, batch_size=batch_size, ema=ema)
            if not inputs:
                return
        src = open_source(source, device=device, providers=providers, ema=ema)
        jobs = _style_jobs(src, style or [], out)
        for name, folder in jobs:
            if len(jobs) > 1:
                console.print(f"style {name!r} -> {folder}", highlight=False)
            _translate_into(
                src, source, inputs, folder, style=name, existing=existing, keep_ext=keep_ext,
                target=target, precision=precision, compile=compile, bucket=bucket,
                batch_size=batch_size, workers=workers, skip_bad_images=skip_bad_images,
                max_side=max_side, memory_check=memory_check)


def _style_jobs(src: Source, styles: list[str], out: Path) -> list[tuple[str | None, Path]]:
    """(style name, output folder) per requested style: OUT for none or one, OUT/<style> for
    several. Unknown names, indexes out of range, or a style for a model without styles raise
    one ValueError listing the valid names."""
    from ..targets import resolve_label

    names = src.model.label_names
    if not styles:
        if names is not None:
            raise ValueError(f"{src.description} is a multi-style model: name a style with "
                             f"--style (one of {', '.join(names)}; repeat --style for several)")
        return [(None, out)]
    chosen = [names[resolve_label(s, names, what="style", source=src.description)]
              for s in styles]
    unique = list(dict.fromkeys(chosen))
    if len(unique) == 1:
        return [(unique[0], out)]
    return [(name, out / name) for name in unique]


def _translate_into(src: Source, source: Path, inputs: list[Path], out: Path, *,
                    style: str | None, existing: str, keep_ext: bool, target: str | None,
                    precision: str, compile: str, bucket: int | None, batch_size: int | None,
                    workers: int | None, skip_bad_images: bool, max_side: int | None,
                    memory_check: bool) -> None:
    """Translate every input into ``out`` (one style of a multi-style model, or the model's
    only translation)."""
    from ..inference import translate_files, translator

    planned = _plan(inputs, out, None if keep_ext else ".png")
    pairs = _select(planned, existing)
    kept = len(planned) - len(pairs)
    if not pairs:
        console.print(f"[green]nothing to do[/green]: all {kept} output(s) exist in {out} "
                      "(--skip-existing)", highlight=False)
        return
    runner = translator(src.model, target=target, precision=precision, compile=compile,
                        bucket=bucket, images=len(pairs), style=style)
    batch_size = batch_size or runner.batch_size
    console.print(f"translating {len(pairs)} image(s) with {src.description}: "
                  f"{runner.description}, batch {batch_size}", highlight=False)
    hint = _int8_hint(src, source, runner, images=len(pairs))
    if hint:
        console.print(hint, style="yellow", highlight=False)
    stats = translate_files(runner, pairs, batch_size=batch_size, workers=workers,
                            skip_bad_images=skip_bad_images, max_side=max_side,
                            check_memory=memory_check)
    skipped = f", skipped {stats.skipped} unreadable" if stats.skipped else ""
    if kept:
        skipped += f", kept {kept} existing"
    compiling = (f", {stats.compile_seconds:.1f} s of it in first runs of compiled shapes"
                 if stats.compile_seconds else "")
    console.print(
        f"[green]wrote {stats.images} image(s) to {out}{skipped}[/green] in "
        f"{stats.wall_seconds:.2f} s: {stats.images_per_second:.2f} img/s; time in the "
        f"model {stats.model_seconds:.2f} s{compiling}; pipeline overhead "
        f"{100 * stats.overhead:+.1f}%", highlight=False)
