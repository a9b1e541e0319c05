"""The onnxruntime runtime (gantransfer.onnx): same pixels as PyTorch, quiet providers, errors."""

from __future__ import annotations

import logging

import numpy as np
import onnx
import pytest
import torch
from _export_toy import make
from PIL import Image

import gantransfer
from gantransfer.inference._providers import CUDA, provider_usable
from gantransfer.onnx import OnnxLoadError, ProviderUnavailableError

CUDA_OK = provider_usable(CUDA)[0]


@pytest.fixture(scope="module")
def model():
    return make()


@pytest.fixture(scope="module")
def files(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("runtime")
    a2b = gantransfer.export_onnx(model, out / "a2b.onnx", target="a2b")[0].path
    gen = gantransfer.export_onnx(model, out / "gen.onnx", target="generator")[0].path
    return {"a2b": a2b, "generator": gen, "dir": out}


def test_runtime_matches_pytorch_on_odd_sizes_and_types(model, files):
    runtime = gantransfer.onnx.load(files["a2b"])
    x = torch.rand(2, 3, 37, 53) * 2 - 1
    torch.testing.assert_close(runtime.translate(x), model.translate(x), atol=1e-4, rtol=0)
    tiny = torch.rand(3, 3, 2) * 2 - 1  # smaller than min_size: padded up, cropped back
    assert runtime.translate(tiny).shape == (3, 3, 2)
    torch.testing.assert_close(runtime.translate(tiny), model.translate(tiny), atol=1e-4, rtol=0)
    arr = np.random.default_rng(0).integers(0, 256, (19, 30, 3), dtype=np.uint8)
    got, want = runtime.translate([arr, Image.fromarray(arr)]), model.translate(arr)
    assert got[0].shape == (19, 30, 3) and isinstance(got[1], Image.Image)
    assert np.abs(got[0].astype(int) - want.astype(int)).max() <= 1  # uint8 rounding only


def test_runtime_generate_matches_pytorch_for_a_seed(model, files):
    runtime = gantransfer.onnx.load(files["generator"])
    got = runtime.generate(5, seed=3)
    want = model.generate(5, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="latent generator"):
        runtime.translate(torch.zeros(3, 8, 8))


@pytest.mark.skipif(CUDA_OK, reason="checks the CPU-only fallback; this machine has CUDA")
def test_auto_providers_pick_cpu_without_writing_to_stderr(files, capfd):
    capfd.readouterr()
    runtime = gantransfer.onnx.load(files["a2b"], providers="auto")
    runtime.translate(torch.zeros(3, 8, 8))
    out, err = capfd.readouterr()
    assert runtime.providers == ["CPUExecutionProvider"]
    assert err == "" and out == ""


@pytest.mark.skipif(CUDA_OK, reason="checks the missing-CUDA errors; this machine has CUDA")
def test_unavailable_provider_is_an_error_when_strict_else_a_warning(files, caplog, capfd,
                                                                     monkeypatch):
    with pytest.raises(ProviderUnavailableError, match="CUDAExecutionProvider"):
        gantransfer.onnx.load(files["a2b"], providers=["CUDAExecutionProvider"], strict=True)
    # Route our logger to caplog only (a CLI test may have left a handler on a closed stream).
    monkeypatch.setattr(logging.getLogger("gantransfer"), "propagate", True)
    monkeypatch.setattr(logging.getLogger("gantransfer"), "handlers", [])
    capfd.readouterr()
    with caplog.at_level(logging.WARNING, logger="gantransfer"):
        runtime = gantransfer.onnx.load(files["a2b"], providers="cuda")
    assert runtime.providers == ["CPUExecutionProvider"]
    assert "CUDAExecutionProvider unavailable" in caplog.text
    assert capfd.readouterr().err == ""  # onnxruntime never tried to load the CUDA library


@pytest.mark.skipif(not CUDA_OK, reason="needs a CUDA GPU with onnxruntime-gpu's libraries")
def test_cuda_provider_with_io_binding_matches_cpu(files):
    gpu = gantransfer.onnx.load(files["a2b"], providers=["cuda"], strict=True)
    cpu = gantransfer.onnx.load(files["a2b"], providers="cpu")
    assert gpu.providers[0] == CUDA
    x = torch.rand(2, 3, 24, 20) * 2 - 1
    torch.testing.assert_close(gpu.translate(x), cpu.translate(x), atol=1e-3, rtol=0)


def test_not_onnx_and_missing_files_are_clear_errors(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_text("this is not a protobuf")
    with pytest.raises(OnnxLoadError, match="not a valid ONNX model"):
        gantransfer.onnx.load(bad)
    with pytest.raises(OnnxLoadError, match="does not exist"):
        gantransfer.onnx.load(tmp_path / "missing.onnx")


def test_file_without_metadata_needs_and_accepts_explicit_options(model, files, tmp_path):
    proto = onnx.load(files["a2b"])
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, bare)
    with pytest.raises(OnnxLoadError, match="input_kind='image' with size_divisor="):
        gantransfer.onnx.load(bare)
    runtime = gantransfer.onnx.load(bare, input_kind="image", size_divisor=4, min_size=8)
    assert runtime.metadata.in_channels == 3
    x = torch.rand(1, 3, 13, 17) * 2 - 1
    torch.testing.assert_close(runtime.translate(x), model.translate(x), atol=1e-4, rtol=0)
    with pytest.raises(OnnxLoadError, match="rank 4"):
        gantransfer.onnx.load(bare, input_kind="latent")


def test_importing_the_export_modules_does_not_import_onnx():
    import subprocess
    import sys

    code = ("import sys, gantransfer, gantransfer.cli.app, gantransfer.export, gantransfer.inference;"
            "gantransfer.onnx;"
            "print(sorted(m for m in ('onnx', 'onnxruntime', 'onnxscript') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
