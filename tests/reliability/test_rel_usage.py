"""Issue 12, item 18: options that are advertised work, options out of range are usage errors
(exit 2), and what the CLI prints is what it means to print."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _rel_cli import run_gtx

from gantransfer.device import resolve_device
from gantransfer.engine import TrainConfig


# -- --device cuda:N -------------------------------------------------------------------------
def test_train_config_accepts_cuda_n_and_refuses_misspellings() -> None:
    assert TrainConfig(steps=1, device="cuda:1").device == "cuda:1"
    for bad in ("cuda:", "cuda:-1", "cuda:x", "gpu", "CUDA", "cuda:1:2"):
        with pytest.raises(ValueError, match=r"auto, cpu, cuda, cuda:N"):
            TrainConfig(steps=1, device=bad)


def test_cuda_n_is_checked_against_the_visible_devices(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(RuntimeError, match=r"'cuda:2' requested but 2 CUDA device\(s\) are "
                       r"visible \(CUDA_VISIBLE_DEVICES=3,5\): use one of cuda:0, cuda:1"):
        resolve_device("cuda:2")


def test_cuda_n_without_cuda_says_so(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="'cuda:0' requested but CUDA is not available"):
        resolve_device("cuda:0")


def test_gtx_train_with_a_missing_gpu_fails_before_writing(tmp_path: Path, capsys,
                                                          monkeypatch) -> None:
    from gantransfer.testing import make_fake_data

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    data = make_fake_data("single", tmp_path / "data", size=16, n=2)
    run = tmp_path / "run"
    code, out = run_gtx(capsys, "train", "dcgan", "-d", data, "-o", run, "--steps", "1",
                        "--device", "cuda:3", "--set", "image_size=16")
    assert code == 1
    assert "'cuda:3' requested but 1 CUDA device(s) are visible" in out
    assert "is not allowed" not in out  # the old config refusal of any cuda:N
    assert not run.exists()


def test_nproc_with_cuda_n_is_a_usage_error(capsys) -> None:
    code, out = run_gtx(capsys, "train", "dcgan", "--nproc", "2", "--device", "cuda:1")
    assert code == 2 and "use --device cuda" in out


# -- out-of-range numbers are usage errors -----------------------------------------------------
@pytest.mark.parametrize("nproc", ["0", "-1"])
def test_nproc_below_one_exits_2(tmp_path: Path, capsys, nproc: str) -> None:
    from gantransfer.testing import make_fake_data

    data = make_fake_data("single", tmp_path / "data", size=16, n=2)
    run = tmp_path / "run"
    code, out = run_gtx(capsys, "train", "dcgan", "-d", data, "-o", run, "--steps", "1",
                        "--set", "image_size=16", "--nproc", nproc)
    assert code == 2 and "--nproc" in out
    assert not run.exists()


@pytest.mark.parametrize("args", [
    ("bench", "resnet_6blocks", "--batch", "0"),
    ("bench", "resnet_6blocks", "--batch", "1,-4"),
    ("bench", "resnet_6blocks", "--threads", "0"),
    ("bench", "resnet_6blocks", "--size", "0"),
])
def test_out_of_range_counts_exit_2(capsys, args) -> None:
    code, out = run_gtx(capsys, *args)
    assert code == 2, out
    assert "Traceback" not in out


# -- what is printed -------------------------------------------------------------------------
def test_info_prints_the_model_table_name(capsys) -> None:
    code, out = run_gtx(capsys, "info", "cyclegan")
    assert code == 0
    assert "or a TOML `[model]` table" in out


def test_import_gantransfer_onnx_works_and_stays_light() -> None:
    code = ("import sys, gantransfer.onnx; from gantransfer.onnx import load, OnnxModel;"
            "import gantransfer; assert gantransfer.onnx.load is load;"
            "print(sorted(m for m in ('onnx', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_training_docs_do_not_say_ddp_is_missing() -> None:
    text = (Path(__file__).parents[2] / "docs" / "training.md").read_text()
    assert "not implemented" not in text
    assert "DistributedDataParallel" in text and "distributed.md" in text
