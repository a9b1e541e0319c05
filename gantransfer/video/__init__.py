"""Video translation: ``gtx translate clip.mp4 -o out/`` and :func:`translate_video`.

    >>> import gantransfer
    >>> from gantransfer.video import translate_video
    >>> model = gantransfer.onnx.load("h2z_int8.onnx")                     # doctest: +SKIP
    >>> stats = translate_video(model, "clip.mp4", "out/clip.mp4")         # doctest: +SKIP
    >>> print(f"{stats.frames} frames, {stats.frames_per_second:.1f} frames/s")  # doctest: +SKIP

Frames go through the same translator as images (ONNX, int8, bf16, compiled), in batches, with
decoding and encoding overlapped; frame rate, size, duration and the audio (copied, not
re-encoded) are kept. Needs the ``video`` extra (``pip install 'gantransfer[video]'``: PyAV);
importing this package does not import it. See docs/video.md.
"""

from __future__ import annotations

from ._codecs import CONTAINERS, choose_codec, is_video_file
from ._translate import VideoError, VideoStats, frame_count, translate_video

__all__ = ["CONTAINERS", "VideoError", "VideoStats", "choose_codec", "frame_count",
           "is_video_file", "translate_video"]
