"""Which containers are videos, and which codec and pixel format a translated video is written in.

Default: the input's container, video in H.264 (``libx264``, CRF 18: visually lossless, 4:2:0,
plays everywhere) for mp4/mov/mkv/avi and VP9 for webm. A lossless codec (``ffv1``, ``png``,
``utvideo``, ``libx264rgb``) is written in an RGB pixel format, so its frames are exactly the
model's outputs (the tests compare them pixel for pixel).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CONTAINERS", "VideoCodec", "choose_codec", "container_for", "is_video_file"]

# file suffix -> FFmpeg muxer
CONTAINERS: dict[str, str] = {
    ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
    ".avi": "avi",
}
_DEFAULT_CODEC = {"webm": "libvpx-vp9"}  # others: libx264
_OPTIONS = {
    "libx264": {"crf": "18", "preset": "medium"},
    "libvpx-vp9": {"crf": "24", "b": "0", "row-mt": "1", "cpu-used": "4"},
}
# Lossless codecs and the RGB formats they take, in order of preference.
_RGB_FORMATS = ("rgb24", "bgr0", "gbrp", "bgr24", "rgba", "bgra")
_LOSSLESS = ("ffv1", "png", "utvideo", "libx264rgb", "qtrle", "huffyuv", "ffvhuff")


def is_video_file(path: str | Path) -> bool:
    """Whether ``path`` names a video by its suffix (``.mp4 .m4v .mov .mkv .webm .avi``)."""
    return Path(path).suffix.lower() in CONTAINERS


def container_for(path: Path) -> str:
    """The FFmpeg muxer for ``path``'s suffix; ``ValueError`` for another suffix."""
    try:
        return CONTAINERS[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"{path}: unknown video container {path.suffix!r}; write one of "
                         f"{', '.join(CONTAINERS)}") from None


@dataclass(frozen=True)
class VideoCodec:
    """An encoder name, its pixel format and encoder options."""

    name: str
    pix_fmt: str
    options: dict[str, str] = field(default_factory=dict)


def choose_codec(muxer: str, *, width: int, height: int, codec: str | None = None) -> VideoCodec:
    """The encoder for a ``width x height`` video in ``muxer`` (see the module docstring).

    4:2:0 needs even sides; an odd-sized video is written 4:4:4 (exact size kept).

    Raises:
        ValueError: ``codec`` is not an encoder this FFmpeg build has (the message lists some).
    """
    import av

    name = codec or _DEFAULT_CODEC.get(muxer, "libx264")
    if name == "libx264" and "libx264" not in av.codecs_available:  # pragma: no cover
        name = "mpeg4"
    try:
        formats = [f.name for f in (av.Codec(name, "w").video_formats or ())]
    except Exception:  # av raises UnknownCodecError (a ValueError) or FFmpeg errors
        raise ValueError(f"{name!r} is not a video encoder of this FFmpeg build; try "
                         "libx264 (H.264), libvpx-vp9 (VP9), mpeg4, or ffv1 (lossless)") from None
    if name in _LOSSLESS:
        pix_fmt = next((f for f in _RGB_FORMATS if f in formats), formats[0] if formats else "")
    elif width % 2 == 0 and height % 2 == 0 and (not formats or "yuv420p" in formats):
        pix_fmt = "yuv420p"
    elif "yuv444p" in formats:
        pix_fmt = "yuv444p"
    else:
        pix_fmt = formats[0] if formats else "yuv420p"
    return VideoCodec(name, pix_fmt, dict(_OPTIONS.get(name, {})))
