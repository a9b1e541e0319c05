"""Video translation: frame count, rate, size, duration and audio kept; every output frame is
the single-image translation of its input frame; damaged inputs leave nothing behind."""

from __future__ import annotations

import os

import numpy as np
import pytest
from _video_clips import audio_packets, describe, read_frames, write_clip
from typer.testing import CliRunner

import gantransfer
from gantransfer.cli.app import app
from gantransfer.video import VideoError, translate_video


@pytest.fixture(scope="module")
def toy():
    from _export_toy import make

    return make().eval()


@pytest.fixture(scope="module")
def onnx_file(toy, tmp_path_factory):
    folder = tmp_path_factory.mktemp("video_onnx")
    return gantransfer.export_onnx(toy, folder / "toy.onnx", target="a2b")[0].path


def test_lossless_clip_frames_equal_single_image_translations(toy, tmp_path):
    src = tmp_path / "clip.mkv"
    written = write_clip(src, frames=9, width=38, height=30)  # sizes not divisible by 4
    assert all((a == b).all() for a, b in zip(read_frames(src), written, strict=True))
    seen: list[tuple[int, int | None]] = []
    stats = translate_video(toy, src, tmp_path / "out" / "clip.mkv", target="a2b",
                            codec="ffv1", progress=lambda d, t: seen.append((d, t)))
    out = tmp_path / "out" / "clip.mkv"
    assert (stats.frames_read, stats.frames, stats.codec) == (9, 9, "ffv1")
    assert seen[-1] == (9, 9)
    before, after = describe(src), describe(out)
    assert after["frames"] == 9
    for key in ("fps", "width", "height", "duration", "audio"):
        assert after[key] == before[key], key
    assert audio_packets(out) == audio_packets(src)  # copied, not re-encoded
    for got, frame in zip(read_frames(out), written, strict=True):
        np.testing.assert_array_equal(got, toy.translate(frame, direction="a2b"))


def test_onnx_model_and_batches_of_frames(onnx_file, toy, tmp_path):
    src = tmp_path / "clip.mkv"
    written = write_clip(src, frames=7, audio=None)
    model = gantransfer.onnx.load(onnx_file)
    stats = translate_video(model, src, tmp_path / "b.mkv", codec="ffv1", batch_size=3)
    assert stats.frames == 7 and stats.audio_streams == 0
    for got, frame in zip(read_frames(tmp_path / "b.mkv"), written, strict=True):
        expected = model.translate(frame)
        assert np.abs(got.astype(int) - expected).max() <= 1  # batched runs: float rounding


def test_every_nth_frame_keeps_duration_and_audio(toy, tmp_path):
    src = tmp_path / "clip.mkv"
    written = write_clip(src, frames=10)
    stats = translate_video(toy, src, tmp_path / "p.mkv", target="a2b", every=3, codec="ffv1")
    assert (stats.frames_read, stats.frames) == (10, 4)  # frames 0, 3, 6, 9
    after = describe(tmp_path / "p.mkv")
    assert after["frames"] == 4
    assert after["duration"] == describe(src)["duration"]
    assert float(after["fps"]) == pytest.approx(10 / 3, rel=0.01)
    assert audio_packets(tmp_path / "p.mkv") == audio_packets(src)
    for got, k in zip(read_frames(tmp_path / "p.mkv"), (0, 3, 6, 9), strict=True):
        np.testing.assert_array_equal(got, toy.translate(written[k], direction="a2b"))


def test_default_mp4_output_is_h264_with_the_aac_audio_copied(tmp_path):
    from gantransfer.inference import Translator

    src = tmp_path / "clip.mp4"
    write_clip(src, frames=12, lossless=False, audio="aac", smooth=True)
    # a smooth "style" (halve the brightness), so H.264's loss can be told from a wrong frame
    halve = Translator(lambda x: (x + 1) * 0.5 - 1, channels=3, divisor=1, min_size=1)
    stats = translate_video(halve, src, tmp_path / "out.mp4")
    assert stats.codec == "libx264"
    before, after = describe(src), describe(tmp_path / "out.mp4")
    assert (after["codec"], after["frames"], after["audio"]) == ("h264", 12, ["aac"])
    for key in ("fps", "width", "height", "duration"):
        assert after[key] == before[key], key
    assert audio_packets(tmp_path / "out.mp4") == audio_packets(src)
    ref = [np.rint(f.astype(float) / 2) for f in read_frames(src)]
    got = [f.astype(float) for f in read_frames(tmp_path / "out.mp4")]
    for i, frame in enumerate(got):
        own = float(10 * np.log10(255**2 / np.mean((frame - ref[i]) ** 2)))
        assert own > 35, (i, own)  # CRF 18: visually lossless, and frames stay in order


def _leftovers(folder) -> list[str]:
    return sorted(os.listdir(folder)) if folder.exists() else []


@pytest.mark.parametrize("damage", ["garbage", "truncated", "scrambled", "audio only"])
def test_damaged_or_unsupported_videos_fail_clearly_and_leave_nothing(toy, tmp_path, damage):
    good = tmp_path / "good.mp4"
    write_clip(good, frames=12, lossless=False, audio="aac")
    data = good.read_bytes()
    bad = tmp_path / "in" / "bad.mp4"
    bad.parent.mkdir()
    if damage == "garbage":
        bad.write_bytes(os.urandom(4000))
    elif damage == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "scrambled":  # the header survives, the coded frames do not
        rng = np.random.default_rng(0)
        body = bytearray(data)
        body[1500:-800] = rng.integers(0, 256, len(body) - 2300, dtype=np.uint8).tobytes()
        bad.write_bytes(bytes(body))
    else:
        import av

        with av.open(str(bad), "w") as out:
            sound = out.add_stream("aac", rate=44100)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                               layout="mono")
            frame.sample_rate = 44100
            out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
    out_dir = tmp_path / "out"
    with pytest.raises(VideoError) as info:
        translate_video(toy, bad, out_dir / "bad.mp4", target="a2b")
    message = str(info.value)
    assert str(bad) in message
    assert any(w in message for w in ("damaged", "no video stream", "not a video"))
    assert _leftovers(out_dir) == []  # no output and no temporary file


def test_gtx_translate_takes_videos_and_images_together(onnx_file, tmp_path):
    src = tmp_path / "clip.mkv"
    write_clip(src, frames=5)
    photo = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray(read_frames(src)[0]).save(photo)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["translate", str(onnx_file), str(src), str(photo), "-o",
                                      str(out), "--video-codec", "ffv1"])
    assert result.exit_code == 0, (result.output, result.exception)
    said = " ".join(result.output.split())
    assert "wrote" in said and "5 frame(s)" in said and "1 audio stream(s) copied" in said
    assert sorted(os.listdir(out)) == ["clip.mkv", "photo.png"]
    # the video's first frame and the photo (the same picture) translate to the same pixels
    first = read_frames(out / "clip.mkv")[0]
    np.testing.assert_array_equal(first, np.asarray(Image.open(out / "photo.png")))
    again = CliRunner().invoke(app, ["translate", str(onnx_file), str(src), "-o", str(out)])
    assert again.exit_code == 1 and "exist already" in str(again.exception)
    skip = CliRunner().invoke(app, ["translate", str(onnx_file), str(src), "-o", str(out),
                                    "--skip-existing"])
    assert skip.exit_code == 0 and "nothing to do" in skip.output


def test_gtx_translate_video_errors_are_clear(onnx_file, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    result = CliRunner().invoke(app, ["translate", str(onnx_file), str(bad), "-o",
                                      str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "is not a video FFmpeg can read" in str(result.exception)
    assert _leftovers(tmp_path / "out") == []
    usage = CliRunner().invoke(app, ["translate", str(onnx_file), str(tmp_path), "-o",
                                     str(tmp_path / "o2"), "--every", "2"])
    assert usage.exit_code == 2
    assert "apply to video inputs" in usage.output
    good = tmp_path / "good.mkv"
    write_clip(good, frames=2)
    unknown = CliRunner().invoke(app, ["translate", str(onnx_file), str(good), "-o",
                                       str(tmp_path / "o3"), "--video-codec", "nonesuch"])
    assert unknown.exit_code == 1 and "not a video encoder" in str(unknown.exception)
