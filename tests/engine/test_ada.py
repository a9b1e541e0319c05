"""The strength of the discriminator augmentation: a probability per sample (d_augment_p) and
its adaptive control (ADA, Karras et al. 2020: d_augment_target, _interval, _speed)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from _toy import ToyGAN, ToyImages
from torch import nn

import gantransfer
from gantransfer.data import DataConfig
from gantransfer.data.demo import make_single, make_two_domain
from gantransfer.engine import TrainConfig, Trainer
from gantransfer.engine.ada import AugmentStrength
from gantransfer.engine.context import EngineContext
from gantransfer.nn import GANLoss, diff_augment, discriminate
from gantransfer.nn._augment import _color, _cutout, _translation
from gantransfer.testing import shift_outputs

ALL = "color,translation,cutout"
POLICY = ("color", "translation", "cutout")


def images(n: int = 4, c: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# -- p per sample ------------------------------------------------------------------------------
def test_p_one_is_the_unmasked_code_path_bit_for_bit() -> None:
    x = images(n=6)
    torch.manual_seed(7)
    reference = _cutout(_translation(_color(x, (3,)), (3,)), (3,))  # DiffAugment before p
    after_reference = torch.rand(4)
    for kwargs in ({}, {"p": 1.0}):
        torch.manual_seed(7)
        out = diff_augment(x, ALL, **kwargs)
        assert torch.equal(out, reference)
        assert torch.equal(torch.rand(4), after_reference)  # the same draws, no mask drawn


def test_p_zero_is_the_identity_and_draws_nothing() -> None:
    x = images()
    torch.manual_seed(1)
    assert diff_augment(x, ALL, p=0.0) is x
    after = torch.rand(3)
    torch.manual_seed(1)
    assert torch.equal(after, torch.rand(3))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        diff_augment(x, ALL, p=1.5)


@pytest.mark.parametrize("p", [0.2, 0.7])
def test_each_op_is_applied_to_a_fraction_p_of_the_samples(p: float) -> None:
    x = images(n=4000, size=8)
    torch.manual_seed(0)
    out = diff_augment(x, "cutout", p=p)
    changed = (out != x).flatten(1).any(1).float().mean().item()
    assert abs(changed - p) < 0.03  # 4000 samples: the standard error is under 0.008
    torch.manual_seed(0)
    out = diff_augment(x, ALL, p=p)
    untouched = (out == x).flatten(1).all(1).float().mean().item()
    assert abs(untouched - (1 - p) ** 3) < 0.03  # three independent ops


def test_gradients_flow_through_masked_augmentation() -> None:
    torch.manual_seed(0)
    g = nn.Conv2d(3, 3, 3, padding=1)
    d = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(1))
    (pred,) = discriminate(d, g(images(n=8)), augment=ALL, p=0.5)
    pred.mean().backward()
    assert g.weight.grad is not None and g.weight.grad.abs().sum() > 0
    x = images(n=4, size=8).double().requires_grad_(True)

    def f(inp: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(5)
        return diff_augment(inp, ALL, p=0.5)

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5)


def test_gan_loss_threshold_is_the_decision_point_of_each_mode() -> None:
    assert {m: GANLoss(m).threshold for m in ("vanilla", "lsgan", "hinge", "wgangp")} == {
        "vanilla": 0.0, "lsgan": 0.5, "hinge": 0.0, "wgangp": 0.0}
    assert GANLoss("lsgan", real_label=0.9).threshold == 0.5
    with pytest.raises(AttributeError):
        GANLoss("lsgan").threshold = 0.3  # type: ignore[misc]


# -- ADA in the context ------------------------------------------------------------------------
class Constant(nn.Module):
    """A D whose output is ``value`` for every image (a trainable parameter, so it counts as
    being in a D step unless frozen); ``heads`` returns (value, -value) as two heads."""

    def __init__(self, value: float, *, heads: bool = False) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.tensor(float(value)))
        self.heads = heads

    def forward(self, x: torch.Tensor) -> Any:
        out = self.bias.expand(x.shape[0], 1, 2, 2)  # a 2×2 patch map per image
        return (out, -out.flatten(1)) if self.heads else out


def _ctx(strength: AugmentStrength) -> EngineContext:
    return EngineContext(nn.Module(), optimizers={}, groups={}, scalers={}, precision="fp32",
                         device=torch.device("cpu"), grad_clip=None, ema=None, d_augment=ALL,
                         augment=strength)


def _run_steps(d: nn.Module, steps: int, *, threshold: float = 0.0, interval: int = 2,
               speed: int = 100, target: float = 0.6, batch: int = 4,
               call: str = "d_step") -> AugmentStrength:
    strength = AugmentStrength(POLICY, target=target, interval=interval, speed=speed,
                               arch="constant")
    ctx = _ctx(strength)
    real, fake = images(n=batch, seed=1), images(n=batch, seed=2)
    for step in range(1, steps + 1):
        if call == "d_step":
            ctx.discriminate(d, real, fake, real=0, threshold=threshold)
        elif call == "frozen":
            with ctx.frozen(d):
                ctx.discriminate(d, real, fake, real=0, threshold=threshold)
        elif call == "no_grad":
            with torch.no_grad():
                ctx.discriminate(d, real, fake, real=0, threshold=threshold)
        strength.end_step(step=step, images=batch)
    return strength


def test_an_overfitting_discriminator_raises_p_by_the_images_over_speed() -> None:
    strength = _run_steps(Constant(3.0), 6)  # 3 intervals of 2 steps × 4 images, speed 100
    assert strength.r_t == 1.0
    assert strength.p == pytest.approx(3 * 8 / 100, abs=1e-12)
    assert _run_steps(Constant(3.0), 5).p == pytest.approx(2 * 8 / 100, abs=1e-12)  # mid-interval
    assert _run_steps(Constant(3.0), 40, speed=50).p == 1.0  # clamped at 1


def test_a_discriminator_that_calls_reals_fake_keeps_p_at_zero() -> None:
    strength = _run_steps(Constant(-3.0), 6)
    assert strength.r_t == -1.0 and strength.p == 0.0


def test_the_threshold_is_honoured() -> None:
    # An lsgan D outputting 0.3 on reals is closer to the fake target 0 than to 1.
    assert _run_steps(Constant(0.3), 4, threshold=0.5).p == 0.0
    assert _run_steps(Constant(0.3), 4, threshold=0.0).p > 0.0
    assert _run_steps(Constant(0.7), 4, threshold=0.5).p > 0.0


def test_the_first_head_of_a_several_headed_discriminator_is_counted() -> None:
    assert _run_steps(Constant(3.0, heads=True), 4).p > 0.0  # first head +3, second -3


def test_p_falls_when_the_discriminator_stops_overfitting() -> None:
    strength = AugmentStrength(POLICY, target=0.6, interval=1, speed=100)
    strength.p = 0.5
    strength.record(torch.full((4, 1), -1.0), threshold=0.0)
    strength.end_step(step=1, images=10)
    assert strength.p == pytest.approx(0.4, abs=1e-12)


def test_the_signs_are_read_from_the_device_once_per_interval(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # On a GPU each read is a host sync; the counting must not add one per step.
    reads: list[str] = []
    for name in ("tolist", "item", "__bool__", "__int__", "__float__"):
        def spy(self: torch.Tensor, *args: Any, _original: Any = getattr(torch.Tensor, name),
                _name: str = name, **kwargs: Any) -> Any:
            reads.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, spy)
    strength = _run_steps(Constant(3.0), 6, interval=2)
    monkeypatch.undo()
    assert reads == ["tolist"] * 3 and strength.p > 0


@pytest.mark.parametrize("call", ["frozen", "no_grad"])
def test_outputs_outside_a_discriminator_step_are_not_counted(call: str) -> None:
    with pytest.raises(ValueError, match=r"constant.*real=0.*d_augment_target=0"):
        _run_steps(Constant(3.0), 2, call=call)


def test_real_must_index_a_batch() -> None:
    ctx = _ctx(AugmentStrength(POLICY, target=0.6))
    d = Constant(1.0)
    for bad in (2, -1, True):
        with pytest.raises(ValueError, match="index of the real batch"):
            ctx.discriminate(d, images(), images(), real=bad)


def test_fixed_p_is_used_by_the_context_and_p_one_equals_no_strength() -> None:
    d = Constant(1.0)
    seen: list[torch.Tensor] = []
    d.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    x = images(n=8)
    for strength in (None, AugmentStrength(POLICY, p=1.0)):
        torch.manual_seed(0)
        _ctx(strength).discriminate(d, x)  # type: ignore[arg-type]
    assert torch.equal(seen[0], seen[1])
    torch.manual_seed(0)
    _ctx(AugmentStrength(POLICY, p=0.0)).discriminate(d, x)
    assert torch.equal(seen[2], x)


def test_partial_interval_sums_survive_a_state_round_trip() -> None:
    # Step 1 sees 8 confident real outputs, step 2 (after a "resume") 2 unconfident ones:
    # r_t = (8 - 2) / 10 = 0.6 > 0.5 raises p; had step 1 been forgotten, r_t = -1 would not.
    first = AugmentStrength(POLICY, target=0.5, interval=2, speed=100)
    first.record(torch.ones(8), threshold=0.0)
    first.end_step(step=1, images=4)
    state = first.state_dict()
    assert (state["signs"], state["count"], state["images"]) == (8, 8, 4)
    second = AugmentStrength(POLICY, target=0.5, interval=2, speed=100)
    second.load_state_dict(state)
    second.record(-torch.ones(2), threshold=0.0)
    second.end_step(step=2, images=4)
    assert second.r_t == pytest.approx(0.6) and second.p == pytest.approx(0.08, abs=1e-12)
    fresh = AugmentStrength(POLICY, target=0.5, interval=2, speed=100)
    fresh.load_state_dict({**state, "recorded": True, "signs": 0, "count": 0, "images": 0})
    fresh.record(-torch.ones(2), threshold=0.0)
    fresh.end_step(step=2, images=4)
    assert fresh.p == 0.0


# -- config ------------------------------------------------------------------------------------
def test_config_validates_the_strength_settings() -> None:
    with pytest.raises(ValueError, match=r"d_augment_target.*d_augment='translation,cutout'"):
        TrainConfig(steps=1, d_augment_target=0.6)
    with pytest.raises(ValueError, match="d_augment_p must be a probability"):
        TrainConfig(steps=1, d_augment="cutout", d_augment_p=1.5)
    with pytest.raises(ValueError, match=r"d_augment_target must be in \[0, 1\)"):
        TrainConfig(steps=1, d_augment="cutout", d_augment_target=1.0)
    with pytest.raises(ValueError, match="set one of them"):
        TrainConfig(steps=1, d_augment="cutout", d_augment_p=0.5, d_augment_target=0.6)
    for name in ("d_augment_interval", "d_augment_speed"):
        with pytest.raises(ValueError, match=f"{name} must be a positive integer"):
            TrainConfig(steps=1, d_augment="cutout", **{name: 0})
    config = TrainConfig(steps=1, d_augment="cutout", d_augment_target=1 - 0.4, d_augment_p=1)
    assert isinstance(config.d_augment_p, float) and config.d_augment_speed == 10_000


# -- training ----------------------------------------------------------------------------------
class _Unmarked(ToyGAN):
    """Calls D through ctx.discriminate but never says which batch is real."""

    def train_step(self, batch: dict[str, torch.Tensor], ctx: Any) -> dict[str, Any]:
        real = batch["image"]
        z = torch.randn(real.shape[0], self.config.nz)
        fake = self.nets["g"](z)
        real_logits, fake_logits = ctx.discriminate(self.nets["d"], real, fake.detach())
        ctx.optimize("d", nn.functional.softplus(fake_logits).mean()
                     + nn.functional.softplus(-real_logits).mean())
        return {}


def test_a_model_that_never_marks_its_real_batch_is_told_to(tmp_path: Path) -> None:
    gantransfer.register("unmarked_toy", _Unmarked)
    try:
        model = gantransfer.get("unmarked_toy")
        config = TrainConfig(steps=4, batch_size=2, device="cpu", sample_every=0,
                             num_workers=0, d_augment="translation", d_augment_target=0.6)
        trainer = Trainer(model, ToyImages(), config, tmp_path, callbacks=())
        with pytest.raises(ValueError, match=r"unmarked_toy.*real=0.*d_augment_target=0"):
            trainer.fit()
    finally:
        gantransfer.unregister("unmarked_toy")


TINY: dict[str, dict[str, Any]] = {
    "cyclegan": {"netG": "resnet_6blocks", "ngf": 4, "ndf": 4, "n_layers_D": 2,
                 "load_size": 16, "crop_size": 16},
    "dcgan": {"image_size": 16, "ngf": 4, "ndf": 4, "nz": 8},
    "dcgan_conditional": {"image_size": 16, "ngf": 4, "ndf": 4, "nz": 8, "n_classes": 2},
    "stargan": {"labels": ["a", "b"], "ngf": 4, "ndf": 4, "n_layers_D": 2, "load_size": 16,
                "crop_size": 16},
}


def _data(arch: str, root: Path) -> DataConfig:
    if arch == "cyclegan":
        make_two_domain(root, n_train=4, n_test=2, size=16, seed=0)
    elif arch == "dcgan":
        make_single(root, n=8, size=16, seed=0)
    else:  # labelled: one folder per class
        for k, label in enumerate(("a", "b")):
            make_single(root / label, n=4, size=16, seed=k)
    return DataConfig(root=str(root), load_size=16, crop_size=16)


def _fit(arch: str, data: DataConfig, run: Path, steps: int, *, shift: float = 0.0,
         resume: str | None = None, model: dict[str, Any] | None = None,
         **train: Any) -> Trainer:
    overrides = {**TINY[arch], **(model or {})}
    if arch == "dcgan_conditional":
        overrides["labels"] = ["a", "b"]
    torch.manual_seed(0)
    net = gantransfer.get(arch.split("_")[0], **overrides)
    if shift:
        shift_outputs(net, shift)
    settings = {"d_augment": "translation,cutout", "d_augment_target": 0.6,
                "d_augment_interval": 2, "d_augment_speed": 40, **train}
    config = TrainConfig(steps=steps, batch_size=2, device="cpu", seed=0, log_every=1,
                         sample_every=0, sample_count=2, checkpoint_every=3, num_workers=0,
                         **settings)
    trainer = Trainer(net, data, config, run, callbacks=())
    trainer.fit(resume=resume)
    return trainer


@pytest.mark.parametrize("arch", list(TINY))
def test_every_builtin_marks_its_real_batch_so_p_moves(arch: str, tmp_path: Path) -> None:
    data = _data(arch, tmp_path / "data")
    # D calls everything real: p rises by 2 steps × 2 images / 40 per interval.
    confident = _fit(arch, data, tmp_path / "up", 4, shift=100.0)
    assert confident.augment.r_t == 1.0 and confident.augment.p == pytest.approx(0.2)
    lines = [json.loads(x) for x in (tmp_path / "up" / "metrics.jsonl").read_text().splitlines()]
    assert [x["aug_p"] for x in lines] == pytest.approx([0.0, 0.1, 0.1, 0.2])
    # D calls everything fake: p stays at 0.
    doubtful = _fit(arch, data, tmp_path / "down", 2, shift=-100.0)
    assert doubtful.augment.r_t == -1.0 and doubtful.augment.p == 0.0


def test_an_overfitting_dcgan_raises_p_without_any_help(tmp_path: Path) -> None:
    # A real run: with a high learning rate D soon calls the few real images real.
    data = _data("dcgan", tmp_path / "data")
    trainer = _fit("dcgan", data, tmp_path / "run", 8, model={"lr": 5e-3},
                   d_augment_interval=1, d_augment_target=0.1)
    assert trainer.augment.p > 0.0


def test_exact_resume_with_ada_restores_p_and_the_running_interval(tmp_path: Path) -> None:
    from test_resume import assert_same

    data = _data("cyclegan", tmp_path / "data")
    # interval 2, checkpoint at step 3: the split falls inside an interval.
    straight = _fit("cyclegan", data, tmp_path / "straight", 6, shift=100.0)
    _fit("cyclegan", data, tmp_path / "split", 3, shift=100.0)
    saved = torch.load(tmp_path / "split" / "checkpoints" / "step_0000003.pt",
                       weights_only=True)["augment"]
    assert saved["p"] == pytest.approx(0.1) and saved["images"] == 2 and saved["count"] > 0
    resumed = _fit("cyclegan", data, tmp_path / "split", 6, shift=100.0, resume="auto")
    assert resumed.start_step == 3
    assert resumed.augment.p == straight.augment.p == pytest.approx(0.3)
    assert_same(straight.model.state_dict(), resumed.model.state_dict(), "model")
    for g in straight.optimizers:
        assert_same(straight.optimizers[g].state_dict(), resumed.optimizers[g].state_dict(), g)


def test_aug_p_is_logged_only_when_p_is_not_simply_one(tmp_path: Path) -> None:
    data = _data("dcgan", tmp_path / "data")
    for name, settings, logged in (
            ("fixed_half", {"d_augment_target": 0.0, "d_augment_p": 0.5}, True),
            ("fixed_one", {"d_augment_target": 0.0}, False)):
        _fit("dcgan", data, tmp_path / name, 1, **settings)
        line = json.loads((tmp_path / name / "metrics.jsonl").read_text().splitlines()[0])
        assert ("aug_p" in line) is logged
        if logged:
            assert line["aug_p"] == 0.5


# -- DDP ---------------------------------------------------------------------------------------
def _rank_worker(rank: int, init: str, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        strength = AugmentStrength(POLICY, target=0.5, interval=1, speed=100)
        # Rank 0: 8 confident real outputs; rank 1: 2 unconfident ones. Over both ranks
        # r_t = (8 - 2) / 10 = 0.6 > 0.5; rank 1 alone (r_t = -1) would keep p at 0.
        strength.record(torch.ones(8) if rank == 0 else -torch.ones(2), threshold=0.0)
        state = strength.state_dict()  # a collective: every rank's partial sums together
        strength.end_step(step=1, images=4)
        torch.save({"p": strength.p, "r_t": strength.r_t, "state": state},
                   os.path.join(out, f"rank{rank}.pt"))
    finally:
        torch.distributed.destroy_process_group()


def test_r_t_is_taken_over_all_ranks_so_p_is_the_same_everywhere(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    init = f"file://{tmp_path / 'rendezvous'}"
    mp.start_processes(_rank_worker, args=(init, str(tmp_path)), nprocs=2, start_method="spawn")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for r in ranks:
        assert r["r_t"] == pytest.approx(0.6) and r["p"] == pytest.approx(0.08, abs=1e-12)
        assert (r["state"]["signs"], r["state"]["count"], r["state"]["images"]) == (6, 10, 0)
