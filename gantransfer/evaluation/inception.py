"""The FID Inception-v3: the network behind FID and KID, as the reference implementations run it.

FID (Heusel et al. 2017) and KID (Bińkowski et al. 2018) are defined on the 2048-d pool features of
the Inception-v3 graph TensorFlow released on 2015-12-05, not on torchvision's retrained Inception.
pytorch-fid and torch-fidelity ported that graph to PyTorch and publish its weights as one state
dict; this module rebuilds the same graph with the same parameter names, so that file loads as it
is, and reproduces the two details that change the numbers:

* the resize to 299×299 is TensorFlow 1.x's bilinear kernel (``align_corners=False`` and no
  half-pixel centres), which is *not* ``F.interpolate(mode="bilinear")`` (see
  :func:`resize_tf1_bilinear`);
* the TF graph differs from the Inception paper in three places that torchvision's model follows:
  the average pools exclude their zero padding, and the last block pools with max, not average.

Equivalence with torch-fidelity is checked by tests/evaluation/test_eval_inception.py against
features that torch-fidelity itself computed (tests/data/README.md says how).

Nothing here downloads. :data:`INCEPTION_WEIGHTS` describes the file for the explicit download
command; :func:`load_inception` only reads a local file.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..hub import WeightsFile, cache_dir, sha256_file

__all__ = [
    "INCEPTION_WEIGHTS",
    "INPUT_SIZE",
    "NUM_FEATURES",
    "PREPROCESSING",
    "InceptionV3Features",
    "WeightsFormatError",
    "WeightsNotFoundError",
    "default_weights_path",
    "load_inception",
    "random_inception_weights",
    "resize_tf1_bilinear",
]

log = logging.getLogger(__name__)

INPUT_SIZE = 299
NUM_FEATURES = 2048
_NUM_LOGITS = 1008  # the 2015 graph's logits layer (the weights file holds it)

# torch-fidelity's conversion of the TF graph's weights. Like torchvision's files the name ends in
# the first 8 hex digits of the SHA-256; two public projects record the full digest as
# 6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2 (95,628,359 bytes), but that
# has not been checked here (no machine of this project reaches the URL), so only the prefix is
# enforced. torch-fidelity caches it under this same name in torch's hub cache, so a file it
# downloaded is found as it is. (pytorch-fid's pt_inception-2015-12-05-6726825d.pth has the same
# keys and hash suffix, presumably the same file; not checked.)
INCEPTION_WEIGHTS = WeightsFile(
    url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
        "weights-inception-2015-12-05-6726825d.pth",
    filename="weights-inception-2015-12-05-6726825d.pth",
    sha256_prefix="6726825d",
)

# What the numbers depend on besides the weights; part of the statistics cache key, so a change
# to the preprocessing must change this string.
PREPROCESSING = "tf1-bilinear-299,(x-128)/128,fp32"


class WeightsNotFoundError(FileNotFoundError):
    """The Inception weights file is not on this machine; the message says how to get it."""


class WeightsFormatError(ValueError):
    """A file that is not an FID Inception-v3 state dict (wrong keys or shapes, not a state dict)."""


# -- resize --------------------------------------------------------------------------------------
def _tf1_source_index(in_size: int, out_size: int, device: torch.device
                      ) -> tuple[Tensor, Tensor, Tensor]:
    # TF1 maps output pixel i to source coordinate i * in/out (no half-pixel offset) and computes
    # it in float32; doing the same in float32 keeps floor() and the weights bit-identical.
    coord = torch.arange(out_size, dtype=torch.float32, device=device) * torch.tensor(
        in_size / out_size, dtype=torch.float32, device=device)
    lo = coord.long()  # coordinates are >= 0, so truncation is floor
    hi = (lo + 1).clamp_max(in_size - 1)
    return lo, hi, coord - lo.float()


def resize_tf1_bilinear(images: Tensor, size: int = INPUT_SIZE) -> Tensor:
    """Resize ``N×C×H×W`` float images to ``size×size`` with TensorFlow 1.x's bilinear kernel.

    This is the resize of the original FID code (``tf.image.resize_bilinear`` with
    ``align_corners=False``): output pixel ``i`` samples source coordinate ``i·in/out``, so the
    image is shifted by up to half a pixel compared with ``F.interpolate`` and, when shrinking,
    pixels are skipped rather than averaged (no antialiasing). The values are interpolated first
    along the width, then along the height, as ``a + (b - a)·t``, in the order TF does.

    An image already ``size×size`` is returned unchanged (the weights are 0).

    Raises:
        ValueError: ``images`` is not a 4-d floating point tensor.
    """
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"resize_tf1_bilinear expects an N×C×H×W float tensor, got "
                         f"{tuple(images.shape)} {images.dtype}")
    h, w = images.shape[-2:]
    x_lo, x_hi, dx = _tf1_source_index(w, size, images.device)
    y_lo, y_hi, dy = _tf1_source_index(h, size, images.device)
    rows_lo, rows_hi = images[:, :, y_lo, :], images[:, :, y_hi, :]
    top = rows_lo[..., x_lo] + (rows_lo[..., x_hi] - rows_lo[..., x_lo]) * dx
    bottom = rows_hi[..., x_lo] + (rows_hi[..., x_hi] - rows_hi[..., x_lo]) * dx
    return top + (bottom - top) * dy.view(-1, 1)


# -- network -------------------------------------------------------------------------------------
# Module and attribute names below are the state-dict keys of the published weights file; they
# must not be renamed.
class _Conv(nn.Module):
    """Convolution without bias, batch norm with TF's epsilon 1e-3, ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], *,
                 stride: int = 1, padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _avg_pool_3x3(x: Tensor) -> Tensor:
    # TF's SAME average pool divides by the number of real pixels under the window, so the zero
    # padding does not darken the borders (PyTorch's default counts the padding).
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class _BlockA(nn.Module):  # 35×35 grid: Mixed_5b/5c/5d
    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = _Conv(cin, 64, 1)
        self.branch5x5_1 = _Conv(cin, 48, 1)
        self.branch5x5_2 = _Conv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _Conv(cin, 64, 1)
        self.branch3x3dbl_2 = _Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _Conv(96, 96, 3, padding=1)
        self.branch_pool = _Conv(cin, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool_3x3(x)),
        ], 1)


class _BlockB(nn.Module):  # 35×35 -> 17×17 reduction: Mixed_6a
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = _Conv(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = _Conv(cin, 64, 1)
        self.branch3x3dbl_2 = _Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _Conv(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, stride=2),
        ], 1)


class _BlockC(nn.Module):  # 17×17 grid with factorised 7×7 convolutions: Mixed_6b..6e
    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = _Conv(cin, 192, 1)
        self.branch7x7_1 = _Conv(cin, c7, 1)
        self.branch7x7_2 = _Conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _Conv(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _Conv(cin, c7, 1)
        self.branch7x7dbl_2 = _Conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _Conv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _Conv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _Conv(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = _Conv(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        dbl = self.branch7x7dbl_3(self.branch7x7dbl_2(self.branch7x7dbl_1(x)))
        return torch.cat([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            self.branch7x7dbl_5(self.branch7x7dbl_4(dbl)),
            self.branch_pool(_avg_pool_3x3(x)),
        ], 1)


class _BlockD(nn.Module):  # 17×17 -> 8×8 reduction: Mixed_7a
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = _Conv(cin, 192, 1)
        self.branch3x3_2 = _Conv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _Conv(cin, 192, 1)
        self.branch7x7x3_2 = _Conv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _Conv(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _Conv(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b7 = self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x)))
        return torch.cat([
            self.branch3x3_2(self.branch3x3_1(x)),
            self.branch7x7x3_4(b7),
            F.max_pool2d(x, 3, stride=2),
        ], 1)


class _BlockE(nn.Module):  # 8×8 grid with split 1×3/3×1 branches: Mixed_7b, Mixed_7c
    def __init__(self, cin: int, *, max_pool: bool) -> None:
        super().__init__()
        # The TF graph's last block (Mixed_7c) pools with max where the paper and torchvision
        # average; FID is defined on that graph, so the quirk stays.
        self.max_pool = max_pool
        self.branch1x1 = _Conv(cin, 320, 1)
        self.branch3x3_1 = _Conv(cin, 384, 1)
        self.branch3x3_2a = _Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _Conv(cin, 448, 1)
        self.branch3x3dbl_2 = _Conv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _Conv(cin, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_1(x)
        dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = (F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool
                  else _avg_pool_3x3(x))
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(b3), self.branch3x3_2b(b3),
            self.branch3x3dbl_3a(dbl), self.branch3x3dbl_3b(dbl),
            self.branch_pool(pooled),
        ], 1)


class InceptionV3Features(nn.Module):
    """The FID Inception-v3 up to its 2048-d average pool (randomly initialised; see
    :func:`load_inception` for the real weights).

    ``forward`` takes ``N×3×H×W`` images with values 0..255 (uint8, or float of the same scale)
    of any size, resizes them to 299×299 (:func:`resize_tf1_bilinear`), maps them to [-1, 1] and
    returns ``N×2048`` float32 features. The two halves are also available on their own:
    :meth:`prepare` (resize and scale, per image size) and :meth:`embed` (the network on prepared
    ``N×3×299×299`` batches), so images of different sizes can share a batch.

    ``num_features`` is the feature dimension (the attribute torchmetrics reads from a
    ``feature=`` module). The ``fc`` layer is kept only so the published file (which holds the logits layer) loads
    with matching keys; FID and KID do not use it.
    """

    num_features = NUM_FEATURES

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = _Conv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _Conv(32, 32, 3)
        self.Conv2d_2b_3x3 = _Conv(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _Conv(64, 80, 1)
        self.Conv2d_4a_3x3 = _Conv(80, 192, 3)
        self.Mixed_5b = _BlockA(192, pool_features=32)
        self.Mixed_5c = _BlockA(256, pool_features=64)
        self.Mixed_5d = _BlockA(288, pool_features=64)
        self.Mixed_6a = _BlockB(288)
        self.Mixed_6b = _BlockC(768, c7=128)
        self.Mixed_6c = _BlockC(768, c7=160)
        self.Mixed_6d = _BlockC(768, c7=160)
        self.Mixed_6e = _BlockC(768, c7=192)
        self.Mixed_7a = _BlockD(768)
        self.Mixed_7b = _BlockE(1280, max_pool=False)
        self.Mixed_7c = _BlockE(2048, max_pool=True)
        self.fc = nn.Linear(NUM_FEATURES, _NUM_LOGITS)
        # Identifies the weights in cache keys; load_inception sets it to the file's SHA-256.
        self.weights_id = "random-init"
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def prepare(images: Tensor) -> Tensor:
        """``N×3×H×W`` values 0..255 (one size) -> ``N×3×299×299`` float32 in [-1, 1]."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"Inception features need N×3×H×W RGB images, got shape "
                             f"{tuple(images.shape)}")
        x = resize_tf1_bilinear(images.to(torch.float32), INPUT_SIZE)
        # The TF graph computes (x - 128) * 0.0078125; dividing by 128 is bit-identical.
        return (x - 128.0) / 128.0

    def embed(self, x: Tensor) -> Tensor:
        """Prepared ``N×3×299×299`` input -> ``N×2048`` float32 pool features."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                      self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                      self.Mixed_7c):
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1).to(torch.float32)

    def forward(self, images: Tensor) -> Tensor:
        return self.embed(self.prepare(images))

    @property
    def cache_key(self) -> str:
        """What the features depend on: the weights and the preprocessing."""
        return f"fid-inception-v3:{self.weights_id}:{PREPROCESSING}"


# -- weights -------------------------------------------------------------------------------------
def default_weights_path() -> Path:
    """Where the download command puts the file: torch's hub cache (see :mod:`gantransfer.hub`)."""
    return cache_dir() / INCEPTION_WEIGHTS.filename


def _missing_message(path: Path) -> str:
    return (f"the Inception-v3 weights for FID/KID are not at {path}. Download them with "
            f"`gtx weights download inception`, or on a machine with internet access download "
            f"{INCEPTION_WEIGHTS.url} and copy it to {default_weights_path()} (or pass its path). "
            "Nothing is downloaded automatically.")


def _check_state_dict(state: object, expected: Mapping[str, Tensor], path: Path) -> None:
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise WeightsFormatError(f"{path} is not a state dict of tensors (got "
                                 f"{type(state).__name__}); expected the FID Inception-v3 file "
                                 f"{INCEPTION_WEIGHTS.filename}")
    # BatchNorm's step counter is not a weight: files may or may not carry it.
    def needed(key: str) -> bool:
        return not key.endswith("num_batches_tracked")

    missing = sorted(k for k in expected if needed(k) and k not in state)
    unexpected = sorted(k for k in state if needed(k) and k not in expected)
    wrong = sorted(f"{k}: {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
                   for k in expected if needed(k) and k in state
                   and state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        parts = []
        for title, items in (("missing", missing), ("unexpected", unexpected),
                             ("wrong shape", wrong)):
            if items:
                more = f" ... and {len(items) - 3} more" if len(items) > 3 else ""
                parts.append(f"{len(items)} {title} ({', '.join(items[:3])}{more})")
        raise WeightsFormatError(
            f"{path} is not an FID Inception-v3 state dict: {'; '.join(parts)}. Expected "
            f"{INCEPTION_WEIGHTS.filename} from {INCEPTION_WEIGHTS.url}")


def load_inception(path: str | os.PathLike[str] | None = None, *,
                   device: str | torch.device = "cpu") -> InceptionV3Features:
    """Build the FID Inception-v3 with the weights file at ``path`` (default:
    :func:`default_weights_path`), in eval mode without gradients, on ``device``.

    The file is read with ``torch.load(weights_only=True)`` (no code runs). Its SHA-256 becomes
    the model's ``weights_id`` (and so part of cached statistics' keys); a file whose hash does
    not start with the published prefix loads with a warning, because its numbers are not
    comparable with published FID/KID (the tests use such files with random weights).

    Raises:
        WeightsNotFoundError: no file at ``path``; the message gives the download command, the
            URL and the path to copy the file to by hand.
        WeightsFormatError: the file is not a state dict with the network's keys and shapes.
    """
    path = Path(path).expanduser() if path is not None else default_weights_path()
    if not path.is_file():
        raise WeightsNotFoundError(_missing_message(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated zip archives, refused globals ...
        raise WeightsFormatError(f"cannot read {path} as a PyTorch state dict ({exc}); expected "
                                 f"{INCEPTION_WEIGHTS.filename} from {INCEPTION_WEIGHTS.url}"
                                 ) from exc
    model = InceptionV3Features()
    _check_state_dict(state, model.state_dict(), path)
    model.load_state_dict(state, strict=False)  # keys checked above, step counters optional
    digest = sha256_file(path)
    if not digest.startswith(INCEPTION_WEIGHTS.sha256_prefix or ""):
        log.warning("%s is not the published FID Inception file (SHA-256 %s...); its FID/KID "
                    "values are not comparable with published ones", path, digest[:12])
    model.weights_id = digest
    return model.to(device)


def random_inception_weights(*, seed: int = 0,
                             shapes: Mapping[str, Sequence[int]] | None = None) -> dict[str, Tensor]:
    """Deterministic random weights in the published file's format, for tests and offline checks.

    One ``torch.Generator`` seeded with ``seed`` fills the tensors key by key in sorted key order:
    convolution weights ``N(0, 2/fan_in)`` (He init, so activations keep their scale through the
    94 layers), batch-norm weight ``1 + 0.1·N(0,1)``, bias ``0.1·N(0,1)``, running mean
    ``0.1·N(0,1)``, running variance ``U(0.5, 1.5)``, the logits layer ``0.01·N(0,1)``, step
    counters 0. ``shapes`` defaults to this module's network; passing another implementation's
    (torch-fidelity's) gives the same tensors when its keys and shapes agree. The features are
    meaningless as image statistics but exercise every layer.
    """
    if shapes is None:
        shapes = {k: tuple(v.shape) for k, v in InceptionV3Features().state_dict().items()}
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, Tensor] = {}
    for key in sorted(shapes):
        shape = tuple(shapes[key])
        if key.endswith("num_batches_tracked"):
            out[key] = torch.zeros(shape, dtype=torch.long)
        elif key.endswith("conv.weight"):
            fan_in = math.prod(shape[1:])
            out[key] = torch.randn(shape, generator=gen) * math.sqrt(2.0 / fan_in)
        elif key.endswith("bn.weight"):
            out[key] = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif key.endswith("running_var"):
            out[key] = 0.5 + torch.rand(shape, generator=gen)
        elif key.endswith(("bn.bias", "running_mean")):
            out[key] = 0.1 * torch.randn(shape, generator=gen)
        else:  # fc.weight, fc.bias
            out[key] = 0.01 * torch.randn(shape, generator=gen)
    return out
