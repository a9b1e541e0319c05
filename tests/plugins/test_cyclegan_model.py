"""The cyclegan architecture: losses, step structure, pools, LR schedule, config, export specs."""

from __future__ import annotations

import contextlib
import itertools

import pytest
import torch
from gantransfer_cyclegan import GANLoss, ImagePool, gradient_penalty
from gantransfer_cyclegan.model import CycleGAN
from torch import nn

import gantransfer
import gantransfer.nn

TINY = dict(netG="resnet_6blocks", ngf=4, ndf=4, n_layers_D=2, pool_size=4)


class FakeContext:
    """A minimal StepContext: plain fp32 steps, frozen nets via requires_grad, a call log."""

    def __init__(self, model: CycleGAN) -> None:
        self.model = model
        self.optimizers = model.make_optimizers()
        self.calls: list[tuple[str, dict[str, bool]]] = []
        self.step, self.epoch, self.rank, self.world_size = 0, 0, 0, 1
        self.device = torch.device("cpu")

    def optimize(self, group: str, loss: torch.Tensor) -> bool:
        opt = self.optimizers[group]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        # which nets hold gradients right after this group's step
        has_grad = {name: any(p.grad is not None for p in net.parameters())
                    for name, net in self.model.nets.items()}
        self.calls.append((group, has_grad))
        return True

    @contextlib.contextmanager
    def frozen(self, *nets):
        params = [p for n in nets for p in self.model.nets[n].parameters()]
        saved = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p, s in zip(params, saved, strict=True):
                p.requires_grad_(s)

    def autocast(self):
        return contextlib.nullcontext()

    def discriminate(self, d, *batches, real=None, threshold=0.0, **options):
        # real/threshold feed the engine's adaptive augmentation, which this fake has not.
        return gantransfer.nn.discriminate(d, *batches, **options)


def _batch(n=1, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"A": torch.rand(n, 3, size, size, generator=g) * 2 - 1,
            "B": torch.rand(n, 3, size, size, generator=g) * 2 - 1}


def _count_calls(model):
    counts = {name: 0 for name in model.nets}
    sizes = {name: [] for name in model.nets}

    def hook(name):
        def fn(module, args, output):
            counts[name] += 1
            sizes[name].append(args[0].shape[0])
        return fn

    for name, net in model.nets.items():
        net.register_forward_hook(hook(name))
    return counts, sizes


@pytest.mark.parametrize("mode", ["lsgan", "vanilla", "wgangp"])
def test_every_gan_mode_trains_with_finite_losses(mode):
    torch.manual_seed(0)
    model = gantransfer.get("cyclegan", gan_mode=mode, **TINY)
    ctx = FakeContext(model)
    before = model.nets["d_a"].model[0].weight.detach().clone()
    logs = model.train_step(_batch(), ctx)
    assert set(logs) == {"loss_G", "loss_G_A", "loss_G_B", "loss_cycle_A", "loss_cycle_B",
                         "loss_idt_A", "loss_idt_B", "loss_D_A", "loss_D_B"}
    # Detached scalar tensors, left on the device: the trainer reads them once per log line.
    assert all(torch.is_tensor(v) and v.ndim == 0 and not v.requires_grad
               and torch.isfinite(v) for v in logs.values())
    assert logs["loss_cycle_A"] > 0 and logs["loss_idt_A"] > 0
    assert not torch.equal(before, model.nets["d_a"].model[0].weight)
    assert [g for g, _ in ctx.calls] == ["g", "d"]


def test_gan_losses_match_their_definitions():
    x = torch.tensor([[0.5, -1.0]])
    assert float(GANLoss("lsgan")(x, True)) == pytest.approx(((0.5 - 1) ** 2 + 4) / 2)
    assert float(GANLoss("lsgan")(x, False)) == pytest.approx((0.25 + 1) / 2)
    sig = torch.sigmoid(x)
    assert float(GANLoss("vanilla")(x, True)) == pytest.approx(float(-sig.log().mean()), rel=1e-6)
    assert float(GANLoss("wgangp")(x, True)) == pytest.approx(0.25)
    assert float(GANLoss("wgangp")(x, False)) == pytest.approx(-0.25)
    assert float(GANLoss("hinge")(x, True, discriminator=True)) == pytest.approx((0.5 + 2) / 2)
    with pytest.raises(ValueError, match="gan_mode"):
        GANLoss("wgan")


def test_gradient_penalty_is_nonzero_and_changes_the_discriminator_gradient():
    torch.manual_seed(0)
    d = gantransfer.get_network("patchgan", ndf=4, n_layers=2)
    real, fake = _batch(n=2)["A"], _batch(n=2, seed=1)["B"]
    critic = -d(real).mean() + d(fake).mean()

    torch.manual_seed(5)
    gp = gradient_penalty(d, real, fake, weight=10.0)
    # the same value computed by hand from the same interpolation
    torch.manual_seed(5)
    eps = torch.rand(2, 1, 1, 1)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(mixed).sum(), mixed)
    expected = 10.0 * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert float(gp.detach()) == pytest.approx(float(expected), rel=1e-4)
    assert float(gp.detach()) > 0

    w = d.model[0].weight
    (g_plain,) = torch.autograd.grad(critic, w, retain_graph=True)
    (g_pen,) = torch.autograd.grad(critic + gp, w)
    assert (g_pen - g_plain).abs().max() > 1e-6


@pytest.mark.parametrize(("identity", "g_calls"), [(0.0, 4), (0.5, 6)])
def test_generator_forwards_and_one_discriminator_forward_per_update(identity, g_calls):
    model = gantransfer.get("cyclegan", lambda_identity=identity, **TINY)
    counts, sizes = _count_calls(model)
    logs = model.train_step(_batch(n=2), FakeContext(model))
    assert counts["g_ab"] + counts["g_ba"] == g_calls
    # one forward per D in the G update, one (real and fake concatenated) in the D update
    assert counts["d_a"] == counts["d_b"] == 2
    assert sizes["d_a"] == [2, 4] and sizes["d_b"] == [2, 4]
    if identity == 0:
        assert logs["loss_idt_A"] == logs["loss_idt_B"] == 0.0


def test_identity_is_skipped_when_channel_counts_differ():
    model = gantransfer.get("cyclegan", in_channels=1, out_channels=3, **TINY)
    counts, _ = _count_calls(model)
    batch = {"A": torch.rand(1, 1, 16, 16) * 2 - 1, "B": torch.rand(1, 3, 16, 16) * 2 - 1}
    logs = model.train_step(batch, FakeContext(model))
    assert counts["g_ab"] + counts["g_ba"] == 4 and logs["loss_idt_A"] == 0.0
    assert model.nets["d_a"].model[0].in_channels == 1
    assert model.nets["d_b"].model[0].in_channels == 3


def test_discriminators_get_no_gradient_from_the_generator_step():
    model = gantransfer.get("cyclegan", **TINY)
    ctx = FakeContext(model)
    model.train_step(_batch(), ctx)
    (g_group, after_g), (d_group, after_d) = ctx.calls
    assert g_group == "g" and after_g == {"g_ab": True, "g_ba": True, "d_a": False, "d_b": False}
    assert d_group == "d" and after_d["d_a"] and after_d["d_b"]
    assert all(p.requires_grad for p in model.nets.parameters())  # unfrozen afterwards


def test_image_pool_follows_the_official_rule_and_is_deterministic_under_a_seed():
    def run(seed):
        torch.manual_seed(seed)
        pool = ImagePool(3)
        outs = [pool.query(torch.full((1, 1, 2, 2), float(i))) for i in range(40)]
        return [float(o[0, 0, 0, 0]) for o in outs], pool

    values, pool = run(0)
    assert values[:3] == [0.0, 1.0, 2.0]  # filling: stored and returned
    assert len(pool) == 3
    later = values[3:]
    assert any(v < i + 3 for i, v in enumerate(later))  # some returns are older images
    assert any(v == i + 3 for i, v in enumerate(later))  # some are the new image
    assert values == run(0)[0]
    assert values != run(1)[0]
    assert ImagePool(0).query(torch.ones(2, 1, 2, 2)).shape == (2, 1, 2, 2)


def test_pools_are_saved_in_the_model_state_dict_and_resume_identically():
    torch.manual_seed(0)
    cfg = {**TINY, "pool_size": 2}
    model = gantransfer.get("cyclegan", **cfg)
    for i in range(2):
        model.train_step(_batch(seed=i), FakeContext(model))
    state = model.state_dict()
    assert len(state["_extra_state"]["pool_a"]["images"]) == 2
    clone = gantransfer.get("cyclegan", **cfg)
    clone.load_state_dict(state)
    rng = torch.get_rng_state()
    fake = torch.rand(1, 3, 16, 16)
    a = model.pool_a.query(fake)
    torch.set_rng_state(rng)
    torch.rand(1, 3, 16, 16)
    b = clone.pool_a.query(fake)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="pool_size"):
        gantransfer.get("cyclegan", **{**TINY, "pool_size": 3}).load_state_dict(state)


def test_lr_is_constant_for_n_epochs_then_decays_linearly_to_zero():
    model = gantransfer.get("cyclegan", n_epochs=2, n_epochs_decay=2, lr=1e-3, **TINY)
    opts = model.make_optimizers()
    scheds = model.make_schedulers(opts, steps_per_epoch=3)
    lrs = []
    for _ in range(14):
        lrs.append(opts["g"].param_groups[0]["lr"])
        opts["g"].step()
        opts["d"].step()
        for s in scheds.values():
            s.step()
    assert lrs[:7] == [1e-3] * 7  # 6 iterations of the constant epochs, then the decay starts
    assert lrs[9] == pytest.approx(0.5e-3)
    assert lrs[11] == pytest.approx(1e-3 / 6)
    assert lrs[12] == 0.0 and lrs[13] == 0.0
    assert all(a >= b for a, b in itertools.pairwise(lrs))
    assert opts["d"].param_groups[0]["lr"] == 0.0


def test_discriminator_is_chosen_from_the_registry():
    model = gantransfer.get("cyclegan", discriminator="pixel", ngf=4, ndf=4)
    assert type(model.nets["d_a"]).__name__ == "PixelDiscriminator"
    assert model.nets["d_a"].net[0].out_channels == 4
    logs = model.train_step(_batch(), FakeContext(model))
    assert torch.isfinite(logs["loss_D_A"])


def test_discriminator_kwargs_reach_the_factory_and_unknown_ones_fail():
    model = gantransfer.get("cyclegan", discriminator_kwargs={"n_layers": 1}, **TINY)
    convs = [m for m in model.nets["d_b"].modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3
    with pytest.raises(TypeError, match="does not accept"):
        gantransfer.get("cyclegan", discriminator_kwargs={"bogus": 1}, **TINY)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("norm", "layer", "norm"), ("lambda_A", -1.0, "lambda_A"), ("crop_size", 512, "load_size"),
    ("pool_size", -1, "pool_size"), ("gan_mode", "wgan", "gan_mode"), ("ngf", 0, "ngf"),
])
def test_invalid_config_values_are_rejected_with_a_fix(field, value, message):
    with pytest.raises(ValueError, match=message):
        gantransfer.get("cyclegan", **{field: value})


def test_export_targets_sample_rows_and_data_defaults():
    model = gantransfer.get("cyclegan", in_channels=1, crop_size=32, load_size=36, **TINY)
    targets = model.export_targets()
    a2b, b2a = targets["a2b"], targets["b2a"]
    assert (a2b.net, a2b.in_channels, a2b.out_channels, a2b.direction) == ("g_ab", 1, 3, "a2b")
    assert (b2a.net, b2a.in_channels, b2a.out_channels, b2a.direction) == ("g_ba", 3, 1, "b2a")
    assert (a2b.size_divisor, a2b.min_size) == (4, 8)
    unet = gantransfer.get("cyclegan", netG="unet_128", ngf=2, ndf=2)
    assert unet.export_targets()["a2b"].size_divisor == 128
    assert model.generator_names() == ["g_ab", "g_ba"]
    assert model.data_defaults() == {"channels": 1, "channels_b": 3,
                                     "preprocess": "resize_and_crop", "load_size": 36,
                                     "crop_size": 32, "flip": True}
    batch = {"A": torch.rand(2, 1, 16, 16) * 2 - 1, "B": torch.rand(2, 3, 16, 16) * 2 - 1}
    with torch.no_grad(), model.evaluating():
        rows = model.sample(batch)
    assert list(rows) == ["real_A", "fake_B", "rec_A", "real_B", "fake_A", "rec_B"]
    assert rows["fake_B"].shape == (2, 3, 16, 16) and rows["rec_A"].shape == (2, 1, 16, 16)
    assert model.data_kind == "unpaired"


class _TinyUnpaired(torch.utils.data.Dataset):
    """Six random 16 px pairs; every sample is a pure function of (index, seed)."""

    def __len__(self) -> int:
        return 6

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, key)
        g = torch.Generator().manual_seed(int(index) * 1000 + int(seed) % 1000)
        return {"A": torch.rand(3, 16, 16, generator=g) * 2 - 1,
                "B": torch.rand(3, 16, 16, generator=g) * 2 - 1}


def _assert_same(a, b, where=""):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_interrupted_training_resumes_exactly_including_image_pools(tmp_path):
    def run(run_dir, steps, resume=None):
        torch.manual_seed(0)
        model = gantransfer.get("cyclegan", **{**TINY, "pool_size": 2})
        config = gantransfer.TrainConfig(steps=steps, batch_size=1, device="cpu", seed=3,
                                         log_every=1, sample_every=0, checkpoint_every=100,
                                         num_workers=0)
        trainer = gantransfer.Trainer(model, _TinyUnpaired(), config, run_dir, callbacks=())
        trainer.fit(resume=resume)
        return model

    straight = run(tmp_path / "straight", 8)
    run(tmp_path / "split", 4)
    resumed = run(tmp_path / "split", 8, resume="auto")
    assert len(straight.pool_a) == 2
    _assert_same(straight.state_dict(), resumed.state_dict(), "model")
