"""`gtx weights download inception` and `gtx eval`, end to end and offline.

A randomly initialised FID Inception-v3, saved in the published file's format, is served by the
local HTTP server and downloaded through `gtx weights download inception --url ... --sha256 ...`
(the hash of this random file, since it is not the published one); `gtx eval` then runs with it.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from _local_http import FileServer, local_server, unused_port
from PIL import Image
from typer.testing import CliRunner

import gantransfer
from gantransfer.cli.app import app
from gantransfer.data import demo
from gantransfer.engine.checkpoint import save_model
from gantransfer.evaluation import INCEPTION_WEIGHTS, random_inception_weights

pytest.importorskip("torchmetrics")

runner = CliRunner()


class _Weights(FileServer):
    pass


@pytest.fixture(scope="module")
def weights_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save(random_inception_weights(seed=3), buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server(weights_bytes: bytes) -> Iterator[str]:
    _Weights.reset({"/inception.pth": weights_bytes})
    with local_server(_Weights) as url:
        yield url


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # the feature cache
    return home


def _download(server: str, digest: str) -> object:
    return runner.invoke(app, ["weights", "download", "inception", "--url",
                               f"{server}/inception.pth", "--sha256", digest])


def _noisy_folder(src: Path, dst: Path, sigma: float) -> Path:
    rng = np.random.default_rng(0)
    dst.mkdir(parents=True)
    for path in sorted(src.glob("*.png")):
        x = np.asarray(Image.open(path).convert("RGB"), np.float64)
        x = np.clip(x + rng.normal(0, 255 * sigma, x.shape), 0, 255).round().astype(np.uint8)
        Image.fromarray(x).save(dst / path.name)
    return dst


def test_download_inception_is_verified_and_atomic(server: str, weights_bytes: bytes,
                                                    torch_home: Path) -> None:
    expected = torch_home / "hub" / "checkpoints" / INCEPTION_WEIGHTS.filename
    wrong = runner.invoke(app, ["weights", "download", "inception", "--url",
                                f"{server}/inception.pth", "--sha256", "0" * 64])
    assert wrong.exit_code == 1
    assert "expected 0000" in str(wrong.exception) or "expected 0000" in wrong.output
    assert not expected.exists() and not list(expected.parent.glob("*"))  # nothing half-written
    # Without --sha256 the published prefix is checked, which this random file cannot match.
    published = runner.invoke(app, ["weights", "download", "inception", "--url",
                                     f"{server}/inception.pth"])
    assert published.exit_code == 1 and not expected.exists()
    bad = runner.invoke(app, ["weights", "download", "inception", "--sha256", "abc"])
    assert bad.exit_code != 0 and not expected.exists()

    digest = hashlib.sha256(weights_bytes).hexdigest()
    ok = _download(server, digest)
    assert ok.exit_code == 0, ok.output
    assert expected.read_bytes() == weights_bytes
    assert "not comparable with published" in ok.output


def test_offline_download_names_the_url_and_the_path(torch_home: Path) -> None:
    url = f"http://127.0.0.1:{unused_port()}/inception.pth"
    result = runner.invoke(app, ["weights", "download", "inception", "--url", url,
                                 "--timeout", "2"])
    assert result.exit_code == 1
    message = str(result.exception)
    assert url in message
    assert str(torch_home / "hub" / "checkpoints" / INCEPTION_WEIGHTS.filename) in message


def test_eval_without_weights_names_the_download_command(tmp_path: Path,
                                                         torch_home: Path) -> None:
    demo.make_two_domain(tmp_path / "d", n_train=2, n_test=3, size=32, seed=0)
    result = runner.invoke(app, ["eval", "--real", str(tmp_path / "d" / "testB"), "--fake",
                                 str(tmp_path / "d" / "testA"), "--metrics", "fid"])
    assert result.exit_code == 1
    assert "gtx weights download inception" in str(result.exception)


def test_fid_rises_monotonically_with_noise(server: str, weights_bytes: bytes, tmp_path: Path,
                                            torch_home: Path) -> None:
    demo.make_two_domain(tmp_path / "d", n_train=2, n_test=8, size=32, seed=0)
    # Library code logs nothing after a CliRunner call: its log handler's stream is closed then.
    assert _download(server, hashlib.sha256(weights_bytes).hexdigest()).exit_code == 0
    real = tmp_path / "d" / "testB"
    values = []
    for i, sigma in enumerate((0.0, 0.1, 0.3, 0.6)):
        fake = _noisy_folder(real, tmp_path / f"fake{i}", sigma)
        out = tmp_path / f"eval{i}.json"
        result = runner.invoke(app, ["eval", "--real", str(real), "--fake", str(fake),
                                     "--metrics", "fid,psnr", "-o", str(out)])
        assert result.exit_code == 0, result.output
        report = json.loads(out.read_text())
        assert report["fid"]["n_real"] == report["fid"]["n_fake"] == 8
        assert report["psnr"]["n_pairs"] == 8
        values.append(report["fid"]["value"])
    assert values[0] == pytest.approx(0.0, abs=1e-3)
    assert values == sorted(values) and len(set(values)) == 4, values
    # An existing report is not replaced without --overwrite (a usage error).
    again = runner.invoke(app, ["eval", "--real", str(real), "--fake", str(real), "-o",
                                str(tmp_path / "eval0.json"), "--metrics", "psnr"])
    assert again.exit_code == 2


def test_eval_model_on_held_out_data(server: str, weights_bytes: bytes, tmp_path: Path,
                                     torch_home: Path) -> None:
    data = tmp_path / "d"
    demo.make_two_domain(data, n_train=2, n_test=4, size=32, seed=0)
    torch.manual_seed(0)
    model = gantransfer.get("cyclegan", netG="resnet_6blocks", ngf=4, ndf=4)
    ckpt = save_model(model, tmp_path / "model.pt")
    assert _download(server, hashlib.sha256(weights_bytes).hexdigest()).exit_code == 0
    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["eval", str(ckpt), "--data", str(data), "--device", "cpu",
                                 "--metrics", "fid,kid,psnr,ssim", "--kid-subset-size", "2",
                                 "--kid-subsets", "5", "-o", str(out),
                                 "--save-fakes", str(tmp_path / "fakes")])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert sorted(report["targets"]) == ["a2b", "b2a"]
    a2b = report["targets"]["a2b"]
    assert a2b["generated"] == 4 and a2b["inputs"] == str(data / "testA")
    assert a2b["fid"]["n_real"] == a2b["fid"]["n_fake"] == 4
    assert a2b["kid"]["subset_size"] == 2 and a2b["kid"]["subsets"] == 5
    # The demo's testB is the ground truth of testA (same names): PSNR/SSIM apply.
    assert a2b["psnr"]["n_pairs"] == 4 and a2b["ssim"]["value"] is not None
    saved = sorted(p.name for p in (tmp_path / "fakes" / "a2b").iterdir())
    assert saved == sorted(p.name for p in (data / "testA").iterdir())
    # The numbers equal those of the saved outputs evaluated as two folders.
    folders = tmp_path / "folders.json"
    again = runner.invoke(app, ["eval", "--real", str(data / "testB"), "--fake",
                                str(tmp_path / "fakes" / "a2b"), "--metrics", "fid,psnr",
                                "-o", str(folders)])
    assert again.exit_code == 0, again.output
    two = json.loads(folders.read_text())
    assert two["fid"]["value"] == pytest.approx(a2b["fid"]["value"], rel=1e-9)
    assert two["psnr"]["value"] == pytest.approx(a2b["psnr"]["value"], rel=1e-9)


def test_eval_errors_are_clear(tmp_path: Path, torch_home: Path) -> None:
    data = tmp_path / "d"
    demo.make_two_domain(data, n_train=2, n_test=2, size=32, seed=0)
    model = gantransfer.get("cyclegan", netG="resnet_6blocks", ngf=4, ndf=4)
    ckpt = save_model(model, tmp_path / "model.pt")
    cases = [
        (["eval", str(ckpt)], 2, "--data"),
        (["eval", "--fake", str(data / "testA")], 2, "--real"),
        (["eval", str(ckpt), "--data", str(data), "--metrics", "fid,bogus"], 2, "bogus"),
        (["eval", str(ckpt), "--data", str(data), "--direction", "x2y", "--metrics", "psnr"],
         1, "x2y"),
        (["eval", str(ckpt), "--data", str(tmp_path / "nothing"), "--metrics", "psnr"], 1,
         "testA"),
        (["eval", str(ckpt), "--data", str(data), "--metrics", "psnr", "--label", "3"], 1,
         "is not conditional"),
    ]
    (tmp_path / "empty").mkdir()
    cases.append((["eval", "--real", str(tmp_path / "empty"), "--fake", str(data / "testA"),
                   "--metrics", "psnr"], 1, "contains no images"))
    for args, code, text in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == code, (args, result.output)
        assert text in (result.output + str(result.exception)), (args, result.output)


def test_eval_latent_generator_draws_seeded_samples(server: str, weights_bytes: bytes,
                                                    tmp_path: Path, torch_home: Path) -> None:
    demo.make_single(tmp_path / "faces", n=6, size=32, seed=0)
    model = gantransfer.get("dcgan", image_size=32, ngf=4, ndf=4, nz=8, seed=0)
    ckpt = save_model(model, tmp_path / "dcgan.pt")
    assert _download(server, hashlib.sha256(weights_bytes).hexdigest()).exit_code == 0
    reports = []
    for i in range(2):
        out = tmp_path / f"e{i}.json"
        result = runner.invoke(app, ["eval", str(ckpt), "--data", str(tmp_path / "faces"),
                                     "--samples", "4", "--metrics", "fid,psnr", "--device",
                                     "cpu", "-o", str(out), "--save-fakes",
                                     str(tmp_path / f"fakes{i}")])
        assert result.exit_code == 0, result.output
        reports.append(json.loads(out.read_text()))
    generator = reports[0]["targets"]["generator"]
    assert generator["kind"] == "latent" and generator["generated"] == 4
    assert generator["fid"]["n_real"] == 6 and generator["fid"]["n_fake"] == 4
    assert generator["psnr"]["status"] == "not applicable"  # drawn samples have no ground truth
    assert reports[1]["targets"]["generator"]["fid"] == generator["fid"]  # seeded: the same
    images = sorted((tmp_path / "fakes0" / "generator").iterdir())
    assert len(images) == 4 and Image.open(images[0]).size == (32, 32)


def test_eval_onnx_file_matches_its_checkpoint(tmp_path: Path, torch_home: Path) -> None:
    pytest.importorskip("onnxruntime")
    from gantransfer.export import export_onnx

    data = tmp_path / "d"
    demo.make_two_domain(data, n_train=2, n_test=3, size=32, seed=0)
    model = gantransfer.get("cyclegan", netG="resnet_6blocks", ngf=4, ndf=4, seed=0)
    ckpt = save_model(model, tmp_path / "model.pt")
    export_onnx(ckpt, tmp_path / "a2b.onnx", target="a2b")
    reports = {}
    for name, source in (("torch", ckpt), ("onnx", tmp_path / "a2b.onnx")):
        out = tmp_path / f"{name}.json"
        result = runner.invoke(app, ["eval", str(source), "--data", str(data), "--direction",
                                     "a2b", "--metrics", "psnr,ssim", "--device", "cpu", "-o",
                                     str(out)])
        assert result.exit_code == 0, result.output
        reports[name] = json.loads(out.read_text())["targets"]["a2b"]
    assert reports["onnx"]["psnr"]["n_pairs"] == 3
    # Within the export tolerance: the PNGs may differ by a rounding step here and there.
    assert reports["onnx"]["psnr"]["value"] == pytest.approx(reports["torch"]["psnr"]["value"],
                                                             abs=0.05)
