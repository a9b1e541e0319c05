"""The one [-1, 1] <-> uint8 conversion (gantransfer.pixels), tested once, for numpy and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gantransfer.pixels import from_uint8, to_uint8

# Any image layout: HxW, HxWxC, CxHxW, NxCxHxW (the conversion is elementwise).
SHAPES = hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=6)
PIXELS = hnp.arrays(np.uint8, SHAPES)
FLOATS = hnp.arrays(np.float32, SHAPES, elements=st.floats(-3, 3, width=32))


def test_end_points_and_the_middle():
    assert from_uint8(np.array([0, 255], np.uint8)).tolist() == [-1.0, 1.0]
    assert from_uint8(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [-1.0, 1.0]
    # 0.0 is 127.5 levels: ties go to even, 128 (what every copy of this code did before).
    assert to_uint8(np.array([-1.0, 0.0, 1.0], np.float32)).tolist() == [0, 128, 255]
    assert to_uint8(torch.tensor([-1.0, 0.0, 1.0])).tolist() == [0, 128, 255]


@settings(max_examples=200, deadline=None)
@given(PIXELS)
def test_round_trip_is_exact_and_numpy_equals_torch(pixels):
    x_np = from_uint8(pixels)
    x_pt = from_uint8(torch.from_numpy(pixels))
    assert x_np.dtype == np.float32 and x_pt.dtype == torch.float32
    assert x_np.shape == pixels.shape and tuple(x_pt.shape) == pixels.shape
    assert np.array_equal(x_np, x_pt.numpy())  # the same float32 arithmetic, bit for bit
    assert x_np.min() >= -1.0 and x_np.max() <= 1.0
    assert np.array_equal(to_uint8(x_np), pixels)
    back = to_uint8(x_pt)
    assert back.dtype == torch.uint8 and torch.equal(back, torch.from_numpy(pixels))


@settings(max_examples=200, deadline=None)
@given(FLOATS)
def test_floats_clamp_and_round_alike_in_numpy_and_torch(images):
    got_np = to_uint8(images)
    got_pt = to_uint8(torch.from_numpy(images))
    assert got_np.dtype == np.uint8 and np.array_equal(got_np, got_pt.numpy())
    # The nearest level of the clamped value: at most half a level (1/255 of the range) off.
    clamped = np.clip(images.astype(np.float64), -1, 1)
    assert np.abs(from_uint8(got_np).astype(np.float64) - clamped).max() <= 1 / 255 + 1e-6


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.uint8, hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=5)))
def test_channel_layout_is_the_callers(hwc):
    # Converting then moving channels first equals moving them first then converting.
    chw = np.ascontiguousarray(hwc.transpose(2, 0, 1))
    assert np.array_equal(from_uint8(hwc).transpose(2, 0, 1), from_uint8(chw))
    t = torch.from_numpy(hwc)
    assert torch.equal(from_uint8(t).permute(2, 0, 1), from_uint8(t.permute(2, 0, 1)))
    assert np.array_equal(to_uint8(from_uint8(chw)), chw)


def test_wider_and_narrower_floats():
    x = np.array([-1.0, -0.5, 0.25, 1.0])
    assert to_uint8(x).tolist() == to_uint8(x.astype(np.float32)).tolist() == [0, 64, 159, 255]
    half = torch.tensor([-1.0, 0.0, 1.0], dtype=torch.bfloat16)
    assert to_uint8(half).tolist() == [0, 128, 255]
    assert to_uint8(torch.tensor([0.5], dtype=torch.float64)).tolist() == [191]


def test_tensors_keep_their_device_and_drop_gradients():
    x = torch.zeros(1, 3, 2, 2, requires_grad=True)
    out = to_uint8(x)
    assert out.device == x.device and not out.requires_grad


@pytest.mark.parametrize("bad", [np.zeros(3, np.float32), torch.zeros(3), np.zeros(3, np.int16)])
def test_from_uint8_refuses_other_dtypes(bad):
    with pytest.raises(TypeError, match="uint8"):
        from_uint8(bad)


@pytest.mark.parametrize("bad", [np.zeros(3, np.uint8), torch.zeros(3, dtype=torch.uint8), [0.5]])
def test_to_uint8_refuses_integers_and_other_types(bad):
    with pytest.raises(TypeError, match="to_uint8 expects"):
        to_uint8(bad)
