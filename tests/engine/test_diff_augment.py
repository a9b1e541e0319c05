"""Differentiable augmentation of discriminator inputs (TrainConfig.d_augment, ctx.discriminate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import gantransfer
from gantransfer.data import DataConfig
from gantransfer.data.demo import make_single
from gantransfer.engine import TrainConfig, Trainer
from gantransfer.nn import AUGMENT_POLICIES, diff_augment, discriminate, parse_policy

ALL = "color,translation,cutout"


def images(n: int = 4, c: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_parse_policy_accepts_subsets_and_names_unknown_ones() -> None:
    assert parse_policy("") == parse_policy(None) == parse_policy("none") == ()
    assert parse_policy(" color , cutout") == ("color", "cutout")
    assert parse_policy(["translation"]) == ("translation",)
    with pytest.raises(ValueError, match=r"'colour'.*color,translation,cutout"):
        parse_policy("colour")
    with pytest.raises(ValueError, match="repeat"):
        parse_policy("color,color")
    with pytest.raises(ValueError, match="colour"):
        TrainConfig(steps=1, d_augment="colour")


@pytest.mark.parametrize("policy", [*AUGMENT_POLICIES, ALL])
def test_augmentation_is_reproducible_from_the_seed_and_changes_images(policy: str) -> None:
    x = images()
    torch.manual_seed(3)
    a = diff_augment(x, policy)
    torch.manual_seed(3)
    b = diff_augment(x, policy)
    c = diff_augment(x, policy)  # the RNG moved on: another draw
    assert torch.equal(a, b)
    assert not torch.equal(a, x) and not torch.equal(a, c)
    assert a.shape == x.shape


def test_translation_shifts_whole_images_and_cutout_zeroes_one_square() -> None:
    x = images(n=64, size=16)
    torch.manual_seed(0)
    t = diff_augment(x, "translation")
    for i in range(x.shape[0]):  # each output is its input shifted by (dy, dx), zero-padded
        found = False
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                shifted = torch.zeros_like(x[i])
                ys, yd = slice(max(0, dy), 16 + min(0, dy)), slice(max(0, -dy), 16 + min(0, -dy))
                xs, xd = slice(max(0, dx), 16 + min(0, dx)), slice(max(0, -dx), 16 + min(0, -dx))
                shifted[:, yd, xd] = x[i][:, ys, xs]
                found = found or torch.equal(shifted, t[i])
        assert found, f"image {i} is not a shift of its input by at most 2 pixels"
    c = diff_augment(x, "cutout")
    zeroed = (c == 0).all(dim=1)  # pixels cut out in every channel
    kept = ~zeroed
    assert torch.equal(c[kept.unsqueeze(1).expand_as(c)], x[kept.unsqueeze(1).expand_as(x)])
    per_image = zeroed.flatten(1).sum(1)
    assert per_image.max() == 64 and per_image.min() >= 16  # an 8×8 square, clipped at edges


def test_empty_policy_is_the_identity_and_draws_nothing() -> None:
    x = images()
    torch.manual_seed(1)
    assert diff_augment(x, "") is x
    after = torch.rand(3)
    torch.manual_seed(1)
    assert torch.equal(after, torch.rand(3))  # the RNG did not move


def test_gradients_flow_through_every_augmentation_to_the_generator() -> None:
    torch.manual_seed(0)
    g = nn.Conv2d(3, 3, 3, padding=1)
    d = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(1))
    z = images()
    (pred,) = discriminate(d, g(z), augment=ALL)
    pred.mean().backward()
    assert g.weight.grad is not None and g.weight.grad.abs().sum() > 0
    # Against finite differences in the input: the augmentation is differentiable, not just
    # connected (the RNG is reset so both sides draw the same transform).
    x = images(n=2, size=8).double().requires_grad_(True)

    def f(inp: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(5)
        return diff_augment(inp, ALL)

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5)


def test_tuple_batches_augment_only_the_image() -> None:
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    class Conditional(nn.Module):
        def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            seen.append((x, labels))
            return x.mean((1, 2, 3)) + labels

    x, labels = images(n=3), torch.tensor([0, 1, 2])
    torch.manual_seed(4)
    discriminate(Conditional(), (x, labels), augment=ALL)
    torch.manual_seed(4)
    expected = diff_augment(x, ALL)
    assert torch.equal(seen[0][1], labels)
    assert torch.equal(seen[0][0], expected)


def test_channel_groups_share_geometry_and_colour_each_part_as_one_image() -> None:
    a = images(n=8, seed=1)
    pair = torch.cat([a, a], 1)  # the two parts equal: they must stay equal
    torch.manual_seed(2)
    out = diff_augment(pair, ALL, channel_groups=(3, 3))
    assert torch.equal(out[:, :3], out[:, 3:])
    torch.manual_seed(2)
    alone = diff_augment(a, ALL)
    assert torch.allclose(out[:, :3], alone, atol=1e-6)  # each part = the image augmented alone
    # Without the groups, saturation mixes all six channels: a different result.
    b = images(n=8, seed=2)
    torch.manual_seed(2)
    grouped = diff_augment(torch.cat([a, b], 1), "color", channel_groups=(3, 3))
    torch.manual_seed(2)
    whole = diff_augment(torch.cat([a, b], 1), "color")
    assert not torch.allclose(grouped, whole)
    with pytest.raises(ValueError, match="sum to"):
        diff_augment(pair, "color", channel_groups=(3, 2))


class Recorder(nn.Module):
    """A D that records the images it sees (instance-norm-free: one concatenated forward)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        return self.conv(x).flatten(1).mean(1)


def _dcgan(**overrides: Any) -> gantransfer.GANModel:
    return gantransfer.get("dcgan", image_size=16, ngf=4, ndf=4, nz=8, seed=0, **overrides)


def _fit(run_dir: Path, data: DataConfig, steps: int, *, resume: str | None = None,
         d_augment: str = ALL, model: gantransfer.GANModel | None = None) -> Trainer:
    config = TrainConfig(steps=steps, batch_size=4, device="cpu", seed=3, log_every=1,
                         sample_every=100, checkpoint_every=100, num_workers=0,
                         d_augment=d_augment)
    trainer = Trainer(model or _dcgan(), data, config, run_dir, callbacks=())
    trainer.fit(resume=resume)
    return trainer


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> DataConfig:
    root = tmp_path_factory.mktemp("shapes")
    make_single(root, n=16, size=16, seed=0)
    return DataConfig(root=str(root), load_size=16, crop_size=16)


def test_engine_augments_real_and_fake_in_the_d_and_the_g_step(shapes: DataConfig,
                                                                tmp_path: Path) -> None:
    from gantransfer.engine.context import EngineContext

    ctx = EngineContext(nn.Module(), optimizers={}, groups={}, scalers={}, precision="fp32",
                        device=torch.device("cpu"), grad_clip=None, ema=None, d_augment=ALL)
    d = Recorder()
    real, fake = images(seed=1), images(seed=2)
    torch.manual_seed(0)
    ctx.discriminate(d, real, fake)
    ctx.discriminate(d, fake)
    torch.manual_seed(0)
    expected = [diff_augment(real, ALL), diff_augment(fake, ALL), diff_augment(fake, ALL)]
    assert torch.equal(d.seen[0], torch.cat(expected[:2]))  # D step: both augmented
    assert torch.equal(d.seen[1], expected[2])  # G step: the fakes, augmented afresh
    off = EngineContext(nn.Module(), optimizers={}, groups={}, scalers={}, precision="fp32",
                        device=torch.device("cpu"), grad_clip=None, ema=None)
    off.discriminate(d, real)
    assert torch.equal(d.seen[2], real)


def test_augmentation_changes_training_and_resume_stays_bit_exact(shapes: DataConfig,
                                                                  tmp_path: Path) -> None:
    from test_resume import assert_same

    straight = _fit(tmp_path / "straight", shapes, 6)
    _fit(tmp_path / "split", shapes, 3)
    resumed = _fit(tmp_path / "split", shapes, 6, resume="auto")
    assert resumed.start_step == 3
    assert_same(straight.model.state_dict(), resumed.model.state_dict(), "model")
    for g in straight.optimizers:
        assert_same(straight.optimizers[g].state_dict(), resumed.optimizers[g].state_dict(), g)
    plain = _fit(tmp_path / "plain", shapes, 6, d_augment="")
    w = "nets.g.main.0.weight"
    assert not torch.equal(plain.model.state_dict()[w], straight.model.state_dict()[w])


@pytest.mark.parametrize("arch", ["cyclegan", "pix2pix"])
def test_augmentation_trains_the_image_to_image_architectures(arch: str, tmp_path: Path) -> None:
    from gantransfer.data.demo import make_two_domain

    make_two_domain(tmp_path / "data", n_train=4, n_test=4, size=16, seed=0)
    if arch == "pix2pix":  # paired: A and B with the same names
        (tmp_path / "data" / "A").symlink_to(tmp_path / "data" / "testA")
        (tmp_path / "data" / "B").symlink_to(tmp_path / "data" / "testB")
        model = gantransfer.get("pix2pix", netG="resnet_6blocks", ngf=4, ndf=4, n_layers_D=2,
                                load_size=16, crop_size=16, seed=0)
    else:
        model = gantransfer.get("cyclegan", netG="resnet_6blocks", ngf=4, ndf=4, n_layers_D=2,
                                load_size=16, crop_size=16, seed=0)
    data = DataConfig(root=str(tmp_path / "data"), load_size=16, crop_size=16)
    trainer = _fit(tmp_path / "run", data, 2, model=model)
    assert trainer.step == 2 and trainer.ctx.d_augment == ("color", "translation", "cutout")
    assert all(v == v for v in trainer.latest_losses.values())  # finite (not NaN)
