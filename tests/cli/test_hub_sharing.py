"""`gtx push` and hf://user/repo sources (issue 16) against a local stand-in for the Hub
(HF_ENDPOINT on 127.0.0.1): push then load round trip, explicit downloads only, files checked
against the Hub's listing."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from _hub_standin import HubStandIn
from _local_http import FileServer, local_server
from PIL import Image
from typer.testing import CliRunner

import gantransfer
from gantransfer import hf
from gantransfer._download import IntegrityError, NotDownloadedError
from gantransfer._pin import ChangedFileError
from gantransfer.cli.app import app
from gantransfer.engine.checkpoint import checkpoint_path, save_model

pytest.importorskip("huggingface_hub")

TRANSLATE = ("--device", "cpu", "--precision", "fp32", "--compile", "off")


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    HubStandIn.reset()
    with local_server(HubStandIn) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        monkeypatch.setenv("HF_TOKEN", "hf_test_token")
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        yield url


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run directory as training leaves it: a checkpoint, config, metrics, a sample grid."""
    torch.manual_seed(0)
    model = gantransfer.get("cyclegan", netG="resnet_6blocks", ngf=4, ndf=4)
    run = tmp_path / "runs" / "h2z"
    save_model(model, checkpoint_path(run, 7))
    (run / "config.toml").write_text('architecture = "cyclegan"\n')
    (run / "metrics.jsonl").write_text(
        json.dumps({"step": 5, "loss_g": 3.5, "loss_d": 0.5}) + "\n"
        + json.dumps({"step": 7, "loss_g": 2.25}) + "\n")
    (run / "samples").mkdir()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(run / "samples" / "step_0000007.png")
    return run


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(folder / "p.png")
    return folder


def _run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_push_then_download_then_load_round_trip(hub: str, run_dir: Path, photos: Path,
                                                 tmp_path: Path) -> None:
    pushed = _run("push", str(run_dir), "--repo", "alice/h2z")
    assert pushed.exit_code == 0, pushed.output
    files = HubStandIn.repos["alice/h2z"]["files"]
    assert sorted(files) == ["README.md", "config.toml", "model.pt", "samples/step_0000007.png"]
    assert files["model.pt"] == checkpoint_path(run_dir, 7).read_bytes()
    card = files["README.md"].decode()
    assert "| loss_g | 2.25 |" in card and "| loss_d | 0.5 |" in card  # last value of each
    assert "![step_0000007](samples/step_0000007.png)" in card
    assert "gtx translate hf://alice/h2z" in card and "library_name: gantransfer" in card

    # Not downloaded: a clear error with the command, and nothing fetched.
    before = len(HubStandIn.requests)
    result = _run("translate", "hf://alice/h2z", str(photos), "-o", str(tmp_path / "o1"))
    assert result.exit_code == 1 and isinstance(result.exception, NotDownloadedError)
    assert "gtx weights download hf://alice/h2z" in str(result.exception)
    assert HubStandIn.requests[before:] == []

    got = _run("weights", "download", "hf://alice/h2z")
    assert got.exit_code == 0, got.output
    assert "1 SHA-256 (LFS) and 3 git blob id(s)" in " ".join(got.output.split())

    model = gantransfer.load("hf://alice/h2z")
    original = gantransfer.load(run_dir)
    loaded = model.nets.state_dict()
    for key, value in original.nets.state_dict().items():
        assert torch.equal(loaded[key], value), key

    local, remote = tmp_path / "local", tmp_path / "remote"
    assert _run("translate", str(run_dir), str(photos), "-o", str(local), *TRANSLATE
                ).exit_code == 0
    result = _run("translate", "hf://alice/h2z", str(photos), "-o", str(remote), *TRANSLATE)
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.array(Image.open(local / "p.png")),
                                  np.array(Image.open(remote / "p.png")))


def test_download_flag_fetches_on_first_use_only_when_given(hub: str, run_dir: Path,
                                                            photos: Path, tmp_path: Path) -> None:
    assert _run("push", str(run_dir), "--repo", "bob/h2z", "--samples", "0").exit_code == 0
    assert "samples/step_0000007.png" not in HubStandIn.repos["bob/h2z"]["files"]
    result = _run("translate", "hf://bob/h2z", str(photos), "-o", str(tmp_path / "out"),
                  "--download", *TRANSLATE)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "p.png").is_file()


def test_a_file_that_differs_from_the_hub_listing_is_refused(hub: str, run_dir: Path) -> None:
    assert _run("push", str(run_dir), "--repo", "eve/h2z").exit_code == 0
    HubStandIn.tamper["config.toml"] = b'architecture = "evilgan!"\n'  # same size
    result = _run("weights", "download", "hf://eve/h2z")
    assert result.exit_code == 1 and isinstance(result.exception, IntegrityError)
    assert "config.toml" in str(result.exception) and "git blob id" in str(result.exception)
    with pytest.raises(NotDownloadedError):  # nothing from that download is used
        gantransfer.load("hf://eve/h2z")


def test_a_cached_file_changed_after_the_download_is_refused(hub: str, run_dir: Path) -> None:
    assert _run("push", str(run_dir), "--repo", "carol/h2z").exit_code == 0
    snapshot = hf.download_hub("hf://carol/h2z")
    target = (snapshot.folder / "model.pt").resolve()  # the Hub cache links to a blob
    data = bytearray(target.read_bytes())
    data[-5] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(ChangedFileError, match="--force"):
        gantransfer.load("hf://carol/h2z")


def test_hub_addresses_parse_with_revision_and_file() -> None:
    assert hf.parse_address("hf://a/b") == hf.HubAddress("a/b", None, None)
    assert hf.parse_address("hf:/a/b@v1/x/a2b.onnx") == hf.HubAddress("a/b", "v1", "x/a2b.onnx")
    assert str(hf.parse_address("hf://a/b@main")) == "hf://a/b@main"
    with pytest.raises(ValueError, match="hf://user/repo"):
        hf.parse_address("hf://only-one-part")


class _Upstream(FileServer):
    pass


def test_pretrained_name_exports_and_its_onnx_file_round_trips_through_the_hub(
        hub: str, photos: Path, tmp_path: Path) -> None:
    torch.manual_seed(3)
    official = gantransfer.get_network("resnet_6blocks", ngf=4, norm="instance")
    buf = io.BytesIO()
    torch.save(official.state_dict(), buf)
    _Upstream.reset({"/style_monet.pth": buf.getvalue()})
    with local_server(_Upstream) as upstream:
        assert _run("weights", "download", "cyclegan/style_monet", "--mirror", upstream
                    ).exit_code == 0
    onnx = tmp_path / "monet.onnx"
    exported = _run("export", "cyclegan/style_monet", "--onnx", str(onnx))
    assert exported.exit_code == 0, exported.output
    pushed = _run("push", "cyclegan/style_monet", "--repo", "alice/monet-onnx", "--onnx",
                  str(onnx), "--no-checkpoint")
    assert pushed.exit_code == 0, pushed.output
    assert sorted(HubStandIn.repos["alice/monet-onnx"]["files"]) == ["README.md", "monet.onnx"]
    assert _run("weights", "download", "hf://alice/monet-onnx").exit_code == 0
    by_name, by_hub = tmp_path / "by_name", tmp_path / "by_hub"
    assert _run("translate", "cyclegan/style_monet", str(photos), "-o", str(by_name),
                *TRANSLATE).exit_code == 0
    result = _run("translate", "hf://alice/monet-onnx", str(photos), "-o", str(by_hub))
    assert result.exit_code == 0, result.output
    assert "onnxruntime" in result.output
    diff = np.abs(np.array(Image.open(by_name / "p.png"), dtype=int)
                  - np.array(Image.open(by_hub / "p.png"), dtype=int))
    assert diff.max() <= 1  # fp32 ONNX vs PyTorch: rounding at most
