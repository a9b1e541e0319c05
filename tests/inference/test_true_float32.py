"""fp32 translation on a GPU is IEEE float32, not TF32 (issue 18): the flags are switched off
around each call and restored, and the summary says so. Runs on the CPU (the CUDA device is
only named; the flags are plain Python settings)."""

from __future__ import annotations

import pytest
import torch

from gantransfer.inference import torch_backend
from gantransfer.precision import Precision, exact_float32

CUDA = torch.device("cuda")


def _flags() -> tuple[bool, bool]:
    return torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32


@pytest.fixture
def tf32_on():
    saved = _flags()
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_fp32_forward_on_cuda_runs_without_tf32_and_restores_the_flags(tf32_on) -> None:
    seen = []

    def net(x):
        seen.append(_flags())
        return x * 2

    run = torch_backend.true_float32(net, CUDA)
    assert torch.equal(run(torch.ones(2)), torch.full((2,), 2.0))
    assert seen == [(False, False)] and _flags() == (True, True)


def test_flags_are_restored_after_an_error(tf32_on) -> None:
    torch.backends.cuda.matmul.allow_tf32 = False  # a user's own mix is kept as it was

    def fails(x):
        assert _flags() == (False, False)
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        torch_backend.true_float32(fails, CUDA)(torch.ones(1))
    assert _flags() == (True, False)


def test_other_devices_are_left_alone(tf32_on) -> None:
    with exact_float32(torch.device("cpu")):
        assert _flags() == (True, True)


def test_the_summary_names_true_fp32_on_cuda_only() -> None:
    assert torch_backend.precision_text(Precision.FP32, CUDA) == "fp32 (TF32 off)"
    assert torch_backend.precision_text(Precision.FP32, torch.device("cpu")) == "fp32"
    assert torch_backend.precision_text(Precision.BF16, CUDA) == "bf16"


def test_a_cuda_fp32_translator_wraps_its_forward(tf32_on, monkeypatch) -> None:
    """torch_translator on a model whose device says cuda: its forward runs with TF32 off.
    (The tiny net runs on the CPU; only the device the translator believes in is cuda.)"""
    import gantransfer

    model = gantransfer.get("cyclegan", netG="resnet_6blocks", ngf=4, ndf=4, n_layers_D=2)
    seen = []
    g = model.nets["g_ab"]
    g.register_forward_pre_hook(lambda m, args: seen.append(_flags()))
    monkeypatch.setattr(type(model), "device", property(lambda self: CUDA))
    monkeypatch.setattr(torch.Tensor, "to", lambda self, *a, **k: self)  # stay on the CPU
    translator = torch_backend.torch_translator(model, precision="fp32")
    assert translator.description.startswith("fp32 (TF32 off), eager")
    with torch.no_grad():
        translator.forward(torch.zeros(1, 3, 8, 8))
    assert seen == [(False, False)] and _flags() == (True, True)
