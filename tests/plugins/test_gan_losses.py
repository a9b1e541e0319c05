"""The shared adversarial losses (gantransfer.nn), label smoothing/noise, the gradient penalty,
spectral norm, and the DCGAN stabiliser options that use them."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

import gantransfer
from gantransfer.nn import GAN_MODES, GANLoss, gradient_penalty, spectral_norm

X = torch.tensor([[0.5, -2.0], [3.0, 0.0]])


def sig(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


VALUES = [0.5, -2.0, 3.0, 0.0]


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def test_each_loss_equals_a_hand_computation() -> None:
    cases = {
        # (mode, real, discriminator) -> hand value
        ("vanilla", True, False): mean([-math.log(sig(v)) for v in VALUES]),
        ("vanilla", False, True): mean([-math.log(1 - sig(v)) for v in VALUES]),
        ("lsgan", True, True): mean([(v - 1) ** 2 for v in VALUES]),
        ("lsgan", False, True): mean([v**2 for v in VALUES]),
        ("hinge", True, True): mean([max(0.0, 1 - v) for v in VALUES]),  # (0.5+3+0+1)/4
        ("hinge", False, True): mean([max(0.0, 1 + v) for v in VALUES]),
        ("hinge", True, False): -mean(VALUES),  # generator: -D(G(z))
        ("wgangp", True, True): -mean(VALUES),
        ("wgangp", False, True): mean(VALUES),
        ("wgangp", True, False): -mean(VALUES),
    }
    for (mode, real, disc), expected in cases.items():
        got = float(GANLoss(mode)(X, real, discriminator=disc))
        assert got == pytest.approx(expected, rel=1e-6), (mode, real, disc)
    assert float(GANLoss("hinge")(X, True, discriminator=True)) == pytest.approx(4.5 / 4)
    assert set(GAN_MODES) == {"vanilla", "lsgan", "hinge", "wgangp"}


def test_fixed_smoothing_changes_only_the_discriminator_targets() -> None:
    loss = GANLoss("lsgan", real_label=0.9, fake_label=0.1)
    assert float(loss(X, True, discriminator=True)) == pytest.approx(
        mean([(v - 0.9) ** 2 for v in VALUES]))
    assert float(loss(X, False, discriminator=True)) == pytest.approx(
        mean([(v - 0.1) ** 2 for v in VALUES]))
    assert float(loss(X, True)) == pytest.approx(mean([(v - 1) ** 2 for v in VALUES]))


def test_label_noise_draws_the_tutorials_ranges_from_the_seed() -> None:
    loss = GANLoss("vanilla", label_noise=0.1)
    logits = torch.zeros(20000)
    torch.manual_seed(0)
    real = loss.target(logits, True, discriminator=True)
    fake = loss.target(logits, False, discriminator=True)
    assert float(real.min()) >= 0.9 and float(real.max()) <= 1.0
    assert float(fake.min()) >= 0.0 and float(fake.max()) <= 0.1
    assert float(real.mean()) == pytest.approx(0.95, abs=2e-3)
    assert float(fake.mean()) == pytest.approx(0.05, abs=2e-3)
    torch.manual_seed(0)
    assert torch.equal(real, loss.target(logits, True, discriminator=True))
    # BCE against the drawn targets, by hand.
    x = torch.tensor([0.3, -1.2])
    torch.manual_seed(1)
    t = torch.rand(2) * 0.1 + 0.9
    hand = mean([-(ti * math.log(sig(v)) + (1 - ti) * math.log(1 - sig(v)))
                 for ti, v in zip(t.tolist(), x.tolist(), strict=True)])
    torch.manual_seed(1)
    assert float(loss(x, True, discriminator=True)) == pytest.approx(hand, rel=1e-6)


def test_bad_labels_and_smoothing_of_target_free_losses_are_refused() -> None:
    with pytest.raises(ValueError, match="gan_mode must be one of"):
        GANLoss("wgan")
    with pytest.raises(ValueError, match=r"no targets|none"):
        GANLoss("hinge", label_noise=0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        GANLoss("vanilla", real_label=0.95, label_noise=0.1, fake_label=0.95)


def test_gradient_penalty_equals_the_hand_computed_value_for_a_linear_critic() -> None:
    # D(x) = <w, x> has gradient w everywhere: the penalty is λ (‖w‖ - 1)^2 for any ε.
    d = nn.Sequential(nn.Flatten(), nn.Linear(12, 1, bias=False))
    with torch.no_grad():
        d[1].weight.copy_(torch.arange(12.0).view(1, 12) / 10)
    real, fake = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2)
    w_norm = float(d[1].weight.detach().norm())
    gp = gradient_penalty(d, real, fake, weight=10.0)
    assert float(gp.detach()) == pytest.approx(10 * (w_norm - 1) ** 2, rel=1e-5)
    gp.backward()  # reaches D's parameters (create_graph): d/dw λ(‖w‖-1)^2 = 2λ(‖w‖-1) w/‖w‖
    expected = 2 * 10 * (w_norm - 1) * d[1].weight.detach() / w_norm
    assert torch.allclose(d[1].weight.grad, expected, rtol=1e-4)


def test_spectral_norm_bounds_the_largest_singular_value() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))
    with torch.no_grad():
        net[0].weight.mul_(10)
    assert torch.linalg.matrix_norm(net[0].weight, ord=2) > 2
    spectral_norm(net)
    for _ in range(30):  # power iterations run in training-mode forwards
        net(torch.randn(4, 8))
    net.eval()
    assert float(torch.linalg.matrix_norm(net[0].weight.detach(), ord=2)) == pytest.approx(1.0, abs=1e-3)


def test_dcgan_stabilisers_build_and_train(tmp_path: Path) -> None:
    from gantransfer.data import DataConfig
    from gantransfer.data.demo import make_single
    from gantransfer.engine import TrainConfig, Trainer

    make_single(tmp_path / "data", n=8, size=16, seed=0)
    data = DataConfig(root=str(tmp_path / "data"), load_size=16, crop_size=16)
    for i, options in enumerate([
        {"gan_mode": "hinge", "d_spectral_norm": True},
        {"gan_mode": "wgangp"},
        {"label_noise": 0.1, "d_dropout": 0.3},
        {"gan_mode": "lsgan", "real_label": 0.9},
    ]):
        model = gantransfer.get("dcgan", image_size=16, ngf=4, ndf=4, nz=8, seed=0, **options)
        if options.get("d_dropout"):
            assert sum(isinstance(m, nn.Dropout) for m in model.nets["d"].modules()) == 2
        if options.get("d_spectral_norm"):
            assert "parametrizations" in "".join(model.nets["d"].state_dict())
        trainer = Trainer(model, data, TrainConfig(steps=2, batch_size=4, device="cpu",
                                                   num_workers=0, sample_every=10,
                                                   checkpoint_every=10),
                          tmp_path / f"run{i}", callbacks=())
        trainer.fit()
        assert all(math.isfinite(v) for v in trainer.latest_losses.values()), options


def test_dcgan_options_are_checked() -> None:
    with pytest.raises(ValueError, match=r"no targets|none"):
        gantransfer.get("dcgan", gan_mode="hinge", label_noise=0.1)
    with pytest.raises(ValueError, match="d_dropout"):
        gantransfer.get("dcgan", d_dropout=1.5)


def test_conditional_dcgan_takes_the_stabilisers(tmp_path: Path) -> None:
    """The stabilisers and the class-conditional D together: the gradient penalty calls a
    projection D with its labels, dropout reaches it, concat D wraps a spectrally normed net."""
    from gantransfer.data import DataConfig
    from gantransfer.data.demo import make_classes
    from gantransfer.engine import TrainConfig, Trainer
    from gantransfer.nn import gradient_penalty

    make_classes(tmp_path / "data", n_per_class=4, size=16, classes=2, seed=0)
    data = DataConfig(root=str(tmp_path / "data"), load_size=16, crop_size=16)
    names = sorted(p.name for p in (tmp_path / "data").iterdir())
    for i, options in enumerate([
        {"gan_mode": "wgangp", "d_dropout": 0.3},
        {"gan_mode": "hinge", "d_spectral_norm": True, "d_conditioning": "concat"},
    ]):
        model = gantransfer.get("dcgan", image_size=16, ngf=4, ndf=4, nz=8, seed=0,
                                labels=names, **options)
        d = model.nets["d"]
        if options.get("d_dropout"):
            assert sum(isinstance(m, nn.Dropout) for m in d.modules()) == 2
        if options.get("d_spectral_norm"):
            assert "parametrizations" in "".join(d.state_dict())
        trainer = Trainer(model, data, TrainConfig(steps=2, batch_size=4, device="cpu",
                                                   num_workers=0, sample_every=10,
                                                   checkpoint_every=10),
                          tmp_path / f"run{i}", callbacks=())
        trainer.fit()
        assert all(math.isfinite(v) for v in trainer.latest_losses.values()), options

    # Without its labels a conditional D refuses the call: the penalty must pass them.
    real, fake = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    labels = torch.tensor([0, 1])
    projection_d = gantransfer.get("dcgan", image_size=16, ngf=4, ndf=4, nz=8,
                                   labels=names).nets["d"]
    with pytest.raises(ValueError, match="labels"):
        gradient_penalty(projection_d, real, fake)
    assert float(gradient_penalty(projection_d, real, fake, extra=(labels,))) >= 0
