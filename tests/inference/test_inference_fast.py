"""Fast PyTorch inference: bf16, precision/compile resolution, shape buckets, one compile per bucket.

torch.compile runs here with dynamo's ``eager`` backend: it traces, guards and recompiles exactly
like inductor (which is what bucketing is about) without minutes of C++ compilation on 2 cores.
The inductor-compiled bf16 PSNR is checked by ``benchmarks/bench_translate.py``.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

import gantransfer
import gantransfer.precision as precision_rules
from gantransfer.data.metrics import psnr
from gantransfer.inference import runner, translate, translator
from gantransfer.inference.defaults import compile_min_images
from gantransfer.inference.images import bucket_size, pad_to_multiple
from gantransfer.inference.runner import resolve_compile
from gantransfer.precision import Precision

EAGER_BACKEND = {"backend": "eager"}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return gantransfer.get("cyclegan", ngf=8, ndf=8, netG="resnet_6blocks").eval()


def test_bf16_translation_is_close_to_fp32_and_returns_float32(model):
    x = torch.rand(2, 3, 48, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    fp32 = model.translate(x)
    bf16 = model.translate(x, precision="bf16")
    assert bf16.dtype == torch.float32 and bf16.shape == x.shape
    assert not torch.equal(bf16, fp32)  # it really ran in bf16
    assert psnr(bf16, fp32) >= 45.0


def test_default_translate_is_fp32_eager_exactly(model):
    x = torch.rand(1, 3, 37, 53) * 2 - 1
    padded, _ = pad_to_multiple(x, 4, 8)
    with torch.no_grad():
        expected = model.nets["g_ab"](padded)[..., :37, :53]
    torch.testing.assert_close(model.translate(x), expected, rtol=0, atol=0)
    torch.testing.assert_close(translate(model, x, precision="fp32", compile="off"), expected,
                               rtol=0, atol=0)


@pytest.mark.parametrize(("native", "device", "compiled", "expected"), [
    (True, "cpu", True, "bf16"),
    (True, "cpu", False, "fp32"),  # eager bf16 autocast is slower than fp32 on CPUs
    (False, "cpu", True, "fp32"),
    (True, "cuda", False, "bf16"),
    (False, "cuda", True, "fp32"),
])
def test_precision_auto_resolution(monkeypatch, native, device, compiled, expected):
    monkeypatch.setattr(precision_rules, "native_bf16", lambda d: native)
    dev = torch.device(device)
    assert Precision.resolve("auto", dev, job="translation", compiled=compiled) == expected
    assert Precision.resolve("fp32", dev, job="translation", compiled=compiled) == "fp32"
    assert Precision.resolve("bf16", dev, job="translation", compiled=compiled) == "bf16"


def test_unknown_precision_or_compile_value_is_rejected(model):
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, auto"):
        model.translate(torch.zeros(3, 8, 8), precision="fp16")
    with pytest.raises(ValueError, match="compile must be one of"):
        model.translate(torch.zeros(3, 8, 8), compile="sometimes")


def test_compile_auto_needs_enough_images_and_a_usable_compiler(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(runner, "compile_available", lambda d: True)
    threshold = compile_min_images(cpu)  # the measured break-even (tests/reliability)
    assert resolve_compile("auto", cpu, images=threshold) is True
    assert resolve_compile("auto", cpu, images=threshold - 1) is False
    assert resolve_compile("auto", cpu, images=None) is False
    assert resolve_compile("auto", torch.device("mps"), images=10_000) is False
    monkeypatch.setattr(runner, "compile_available", lambda d: False)
    assert resolve_compile("auto", cpu, images=10_000) is False
    assert resolve_compile("on", cpu, images=1) is True
    assert resolve_compile("off", cpu, images=10_000) is False


@pytest.mark.parametrize(("h", "w", "bucket", "expected"), [
    (37, 53, 1, (40, 56)),       # divisor only
    (37, 53, 64, (64, 64)),      # fixed step
    (65, 3, 64, (128, 64)),      # min_size 8 rounds up to one step
    (256, 256, 0, (256, 256)),   # relative: step 32 at 256 px, no padding needed
    (375, 500, 0, (384, 512)),   # relative: steps 32, padding < 1/8 of each side
    (1000, 40, 0, (1024, 40)),   # relative: step 64 at 1000 px, 4 (the divisor) at 40 px
    (30, 30, 6, (36, 36)),       # the step is a multiple of the divisor: lcm(4, 6) = 12
])
def test_bucket_sizes(h, w, bucket, expected):
    ph, pw = bucket_size(h, w, divisor=4, min_size=8, bucket=bucket)
    assert (ph, pw) == expected
    assert ph % 4 == 0 and pw % 4 == 0 and ph >= h and pw >= w
    if bucket == 0 and min(h, w) >= 32:
        assert ph - h < h / 8 and pw - w < w / 8


def test_bucketed_translation_crops_back_to_each_input(model):
    images = [torch.rand(3, 40, 50) * 2 - 1, torch.rand(3, 64, 33) * 2 - 1]
    out = model.translate(images, bucket=64)
    assert [tuple(o.shape) for o in out] == [(3, 40, 50), (3, 64, 33)]
    for image, got in zip(images, out, strict=True):
        padded, size = pad_to_multiple(image[None], 4, 8, bucket=64)
        assert tuple(padded.shape[-2:]) == (64, 64) and size == tuple(image.shape[-2:])
        with torch.no_grad():
            expected = model.nets["g_ab"](padded)[0, :, : size[0], : size[1]]
        torch.testing.assert_close(got, expected, rtol=0, atol=0)  # the top-left crop, exactly


def test_images_of_several_sizes_in_one_bucket_compile_once(model):
    torch._dynamo.reset()
    counters.clear()
    runner = translator(model, precision="bf16", compile="on", bucket=64,
                        compile_options=EAGER_BACKEND)
    assert runner.compiled and "compiled" in runner.description
    # 3 + 2 + 1 images of three sizes: batches of 2, 1, 2 and 1 rows, all padded to 64x64;
    # the partial batches are filled up to the first batch's size, so one shape is compiled.
    sizes = [(50, 60)] * 3 + [(64, 64)] * 2 + [(33, 41)]
    images = [torch.rand(3, h, w) * 2 - 1 for h, w in sizes]
    with model.evaluating():
        out = runner.translate(images, batch_size=2)
        runner.translate(images[:1], batch_size=2)  # a later call reuses the compiled shape
    assert counters["stats"]["unique_graphs"] == 1
    assert runner.shapes == {(2, 3, 64, 64)}
    assert [tuple(o.shape[-2:]) for o in out] == sizes
    eager = translator(model, precision="bf16", compile="off", bucket=64)
    with model.evaluating():
        want = eager.translate(images, batch_size=2)
    for got, ref in zip(out, want, strict=True):
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-2)  # bf16 kernels may differ


def test_a_failing_compile_falls_back_to_eager_with_one_warning(model, caplog):
    torch._dynamo.reset()

    def broken_backend(graph, example_inputs):
        raise RuntimeError("no C++ compiler in this test")

    runner = translator(model, compile="on", compile_options={"backend": broken_backend})
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with caplog.at_level(logging.WARNING, logger="gantransfer.inference.runner"), model.evaluating():
        first = runner.translate(x)
        second = runner.translate(x)
    warnings = [r for r in caplog.records if "torch.compile failed" in r.getMessage()]
    assert len(warnings) == 1
    assert not runner.compiled and "compile failed" in runner.description
    expected = model.translate(x, bucket=runner.bucket)
    torch.testing.assert_close(first, expected, rtol=0, atol=0)
    torch.testing.assert_close(second, expected, rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (1, 3, 2, 5), (2, 3, 37, 53), (1, 1, 3, 40)])
@pytest.mark.parametrize("bucket", [1, 0, 64])
def test_numpy_padding_equals_torch_padding(shape, bucket):
    # The pipeline pads with numpy in its decoder threads; translate() pads tensors with torch.
    x = torch.randn(*shape)
    t, size_t = pad_to_multiple(x, 4, 16, bucket=bucket)
    n, size_n = pad_to_multiple(x.numpy(), 4, 16, bucket=bucket)
    assert isinstance(n, np.ndarray) and size_t == size_n
    np.testing.assert_array_equal(t.numpy(), n)


def test_bf16_keeps_the_input_conv_float32_without_changing_the_model(model):
    net = model.nets["g_ab"]
    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    seen: dict[int, torch.dtype] = {}

    def record(k: int):
        def hook(module, inputs, output) -> None:
            seen[k] = output.dtype
        return hook

    hooks = [c.register_forward_hook(record(k)) for k, c in enumerate(convs)]
    try:
        model.translate(torch.rand(3, 32, 32) * 2 - 1, precision="bf16")
    finally:
        for h in hooks:
            h.remove()
    assert seen[0] == torch.float32  # the image is not rounded to bf16
    assert {seen[k] for k in range(1, len(convs))} == {torch.bfloat16}
    # the model itself is untouched: no wrapper layers, the same parameters
    assert not any(name.endswith("inner") for name, _ in net.named_modules())
    assert [type(c) for c in convs] == [type(m) for m in net.modules()
                                        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
