"""Torch-side inference: padding helpers, input/output types, eval mode, generate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _export_toy import make
from PIL import Image

from gantransfer.inference.images import crop_to, pad_to_multiple, padded_size, to_channels


@pytest.fixture(scope="module")
def model():
    return make()


def test_padded_size_respects_divisor_and_minimum():
    assert padded_size(37, 53, 4, 8) == (40, 56)
    assert padded_size(3, 3, 4, 8) == (8, 8)
    assert padded_size(16, 9, 1, 1) == (16, 9)


@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (1, 3, 2, 5), (2, 3, 37, 53), (1, 1, 8, 8)])
def test_pad_then_crop_returns_the_input(shape):
    x = torch.randn(*shape)
    padded, size = pad_to_multiple(x, 4, 16)
    assert padded.shape[-2] % 4 == 0 and padded.shape[-1] % 4 == 0
    assert min(padded.shape[-2:]) >= 16
    assert torch.equal(crop_to(padded, size, tuple(padded.shape[-2:])), x)


def test_padding_reflects_rows_and_columns():
    x = torch.arange(6.0).view(1, 1, 2, 3)
    padded, _ = pad_to_multiple(x, 4, 1)
    assert padded.shape == (1, 1, 4, 4)
    # bottom row 2 mirrors row 0 (reflection excludes the edge), column 3 mirrors column 1
    assert torch.equal(padded[0, 0, 2, :3], x[0, 0, 0])
    assert torch.equal(padded[0, 0, :2, 3], x[0, 0, :, 1])


def test_pad_accepts_numpy_and_returns_numpy():
    x = np.random.default_rng(0).standard_normal((1, 3, 5, 7)).astype(np.float32)
    padded, size = pad_to_multiple(x, 4, 8)
    assert isinstance(padded, np.ndarray) and padded.shape == (1, 3, 8, 8) and size == (5, 7)
    np.testing.assert_array_equal(padded[..., :5, :7], x)


def test_translate_odd_size_equals_manual_pad_run_crop(model):
    x = torch.rand(2, 3, 37, 53) * 2 - 1
    y = model.translate(x)
    assert y.shape == (2, 3, 37, 53)
    padded, _ = pad_to_multiple(x, 4, 8)
    with torch.no_grad():
        expected = model.eval().nets["g_ab"](padded)[..., :37, :53]
    torch.testing.assert_close(y, expected)


def test_translate_output_mirrors_input_type(model):
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, (13, 21, 3), dtype=np.uint8)
    out_arr = model.translate(arr)
    assert isinstance(out_arr, np.ndarray) and out_arr.dtype == np.uint8
    assert out_arr.shape == (13, 21, 3)
    out_img = model.translate(Image.fromarray(arr))
    assert isinstance(out_img, Image.Image) and out_img.size == (21, 13) and out_img.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(out_img), out_arr)
    chw = torch.rand(3, 9, 10) * 2 - 1
    assert model.translate(chw).shape == (3, 9, 10)
    outs = model.translate([arr, chw, Image.fromarray(arr)])
    assert [type(o) for o in outs] == [np.ndarray, torch.Tensor, Image.Image]
    np.testing.assert_array_equal(outs[0], out_arr)


def test_translate_converts_grayscale_input_to_model_channels(model):
    grey = Image.fromarray(np.full((12, 12), 200, dtype=np.uint8), mode="L")
    rgb = Image.fromarray(np.full((12, 12, 3), 200, dtype=np.uint8), mode="RGB")
    np.testing.assert_array_equal(np.asarray(model.translate(grey)), np.asarray(model.translate(rgb)))


def test_to_channels_uses_luma_for_rgb_to_grey():
    x = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    assert to_channels(x, 1).item() == pytest.approx(0.299)
    assert to_channels(torch.zeros(1, 1, 2, 2), 3).shape == (1, 3, 2, 2)


def test_translate_runs_in_eval_mode_and_restores_training(model):
    model.train()
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    out = model.translate(x, direction="b2a")
    assert model.training
    with torch.no_grad():
        expected = model.eval().nets["g_ba"](x)
    torch.testing.assert_close(out, expected)


def test_generate_uses_eval_batchnorm_and_is_seeded(model):
    model.train()
    a = model.generate(3, generator=torch.Generator().manual_seed(5))
    assert model.training
    b = model.generate(3, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b)
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = model.eval().nets["g_z"](z)
    torch.testing.assert_close(a, expected)
    assert a.shape == (3, 3, 16, 16)


def test_wrong_target_kind_is_a_clear_error(model):
    with pytest.raises(ValueError, match="latent input"):
        model.translate(torch.zeros(3, 8, 8), direction="generator")
    with pytest.raises(ValueError, match="unknown target 'c2d'"):
        model.translate(torch.zeros(3, 8, 8), direction="c2d")
    with pytest.raises(TypeError, match="uint8"):
        model.translate(np.zeros((8, 8, 3), dtype=np.float32))


def test_translate_to_a_grey_domain_returns_grey_images():
    grey_b = make(channels_b=1)
    rgb = Image.fromarray(np.random.default_rng(2).integers(0, 256, (10, 14, 3), dtype=np.uint8))
    out = grey_b.translate(rgb, direction="a2b")
    assert out.mode == "L" and out.size == (14, 10)
    back = grey_b.translate(out, direction="b2a")
    assert back.mode == "RGB" and back.size == (14, 10)
    assert grey_b.translate(np.asarray(rgb), direction="a2b").shape == (10, 14, 1)
