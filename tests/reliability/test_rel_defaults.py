"""Issue 12, item 19: translation defaults chosen from the hardware and the job's size by the
measured rules of gantransfer/inference/defaults.py (numbers in docs/performance.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _rel_cli import run_gtx

import gantransfer
import gantransfer.precision as precision_rules
from gantransfer.config import to_plain
from gantransfer.data.demo import make_single
from gantransfer.engine.checkpoint import save_checkpoint
from gantransfer.inference import runner, translate_files, translator
from gantransfer.inference.defaults import (
    CPU_TIMES,
    compile_min_images,
    default_batch_size,
    int8_hint,
)
from gantransfer.inference.runner import resolve_compile

CPU = torch.device("cpu")


@pytest.fixture
def bf16(monkeypatch):
    """Pretend this CPU does (True) or does not (False) compute bf16 natively."""
    def set_native(value: bool) -> None:
        monkeypatch.setattr(precision_rules, "cpu_has_native_bf16", lambda: value)
    return set_native


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = gantransfer.get("cyclegan", ngf=2, ndf=2, netG="resnet_6blocks")
    path = tmp_path_factory.mktemp("defaults") / "c.pt"
    save_checkpoint({"architecture": "cyclegan", "config": to_plain(model.config),
                     "model": model.state_dict(), "ema": None, "step": 1, "epoch": 0,
                     "versions": {}}, path)
    return path


# -- rule 1: batch size ----------------------------------------------------------------------
def test_batch_is_one_on_cpus_and_eight_on_gpus() -> None:
    assert default_batch_size("cpu") == 1 and default_batch_size(torch.device("cuda", 1)) == 8
    assert default_batch_size("mps") == 1


def test_library_translation_on_cpu_runs_one_image_per_batch_by_default(tmp_path: Path) -> None:
    model = gantransfer.get("cyclegan", ngf=2, ndf=2, netG="resnet_6blocks").eval()
    runner = translator(model)
    runner.translate([torch.zeros(3, 16, 16)] * 5)
    assert runner.batch_size == 1 and runner.shapes == {(1, 3, 16, 16)}  # was one batch of 5
    make_single(tmp_path / "in", n=3, size=16, seed=0)
    pairs = [(p, tmp_path / "out" / p.name) for p in sorted((tmp_path / "in").glob("*.png"))]
    assert translate_files(model, pairs).batches == 3


def test_gtx_translate_defaults_to_batch_one_on_cpu(tmp_path: Path, checkpoint: Path,
                                                    capsys) -> None:
    make_single(tmp_path / "in", n=3, size=16, seed=0)
    code, out = run_gtx(capsys, "translate", checkpoint, tmp_path / "in", "-o", tmp_path / "out",
                        "--device", "cpu")
    assert code == 0, out
    assert "fp32, eager, batch 1" in out
    assert "hint:" not in out  # 3 images: an int8 export would not repay itself


# -- rule 2: compile only when the images repay it -------------------------------------------
def test_compile_break_even_follows_the_measured_times(bf16) -> None:
    bf16(True)
    native = CPU_TIMES[True]
    assert compile_min_images(CPU) == 96  # 30 s / (0.575 - 0.261) s per image
    assert native.compile_s / (native.eager_fp32 - native.compiled) == pytest.approx(95.5, 0.01)
    bf16(False)
    assert compile_min_images(CPU) == 517  # 61 s / (0.981 - 0.863) s per image
    assert compile_min_images("cuda") == 512 and compile_min_images("mps") is None


def test_without_native_bf16_64_images_are_not_compiled(bf16, monkeypatch) -> None:
    # The case: 64 images on a Xeon without bf16, where compiling did not repay itself.
    monkeypatch.setattr(runner, "compile_available", lambda d: True)
    bf16(False)
    assert resolve_compile("auto", CPU, images=64) is False
    assert resolve_compile("auto", CPU, images=516) is False
    assert resolve_compile("auto", CPU, images=517) is True
    bf16(True)  # compiled bf16 is 2.2x faster: about 100 images repay a compile
    assert resolve_compile("auto", CPU, images=64) is False
    assert resolve_compile("auto", CPU, images=96) is True


def test_onednn_isa_cap_without_bf16_means_no_native_bf16() -> None:
    code = ("import gantransfer.precision as p, gantransfer.inference.defaults as t;"
            "print(p.cpu_has_native_bf16(), t.compile_min_images('cpu'))")
    env = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI", "PATH": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "517"]


# -- rule 3: point to int8 when it is several times faster -----------------------------------
def test_int8_hint_where_the_int8_file_is_about_twice_as_fast(bf16) -> None:
    bf16(False)
    text = int8_hint(CPU, source="torch", images=64)
    assert text is not None and "2.0x faster" in text and "without native bf16" in text
    assert int8_hint(CPU, source="onnx-fp32", images=200) is not None  # 1.9x
    assert int8_hint(CPU, source="onnx-int8", images=200) is None  # already there
    assert int8_hint(CPU, source="torch", images=63) is None  # an export would not repay
    assert int8_hint("cuda", source="torch", images=10_000) is None
    bf16(True)
    assert "2.7x" in int8_hint(CPU, source="torch", images=64)  # vs eager fp32
    assert int8_hint(CPU, source="torch", images=500, compiled=True) is None  # 1.2x vs bf16


def test_gtx_translate_prints_the_int8_hint_for_a_large_job(tmp_path: Path, checkpoint: Path,
                                                            capsys, bf16) -> None:
    bf16(False)
    make_single(tmp_path / "in", n=64, size=8, seed=0)
    code, out = run_gtx(capsys, "translate", checkpoint, tmp_path / "in", "-o", tmp_path / "out",
                        "--device", "cpu")
    assert code == 0, out
    assert "fp32, eager, batch 1" in out  # not compiled: 64 < 517 images
    assert "hint: an int8 ONNX export ran 2.0x faster than this path" in out
    assert f"gtx export {checkpoint} --int8 --calib DIR --onnx model_int8.onnx" in out
