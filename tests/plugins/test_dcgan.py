"""DCGAN plugin: network shapes and sizes, init, one training step, discriminator choice."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch
from torch import nn

import gantransfer
import gantransfer.nn
from gantransfer.model import ExportSpec


class FakeContext:
    """The smallest StepContext: plain fp32 steps on the CPU, recording which nets got grads."""

    def __init__(self, model: gantransfer.GANModel) -> None:
        self.model = model
        self.optimizers = model.make_optimizers()
        self.step, self.epoch, self.rank, self.world_size = 0, 0, 0, 1
        self.device = torch.device("cpu")
        self.grads: dict[str, dict[str, bool]] = {}  # group -> {net: received any grad}
        self.frozen_calls: list[tuple] = []

    def optimize(self, group: str, loss: torch.Tensor) -> bool:
        self.model.zero_grad(set_to_none=True)
        loss.backward()
        self.grads[group] = {
            name: any(p.grad is not None for p in net.parameters())
            for name, net in self.model.nets.items()
        }
        self.optimizers[group].step()
        return True

    @contextlib.contextmanager
    def frozen(self, *nets: str | nn.Module) -> Iterator[None]:
        self.frozen_calls.append(nets)
        modules = [self.model.nets[n] if isinstance(n, str) else n for n in nets]
        saved = [(p, p.requires_grad) for m in modules for p in m.parameters()]
        for p, _ in saved:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p, flag in saved:
                p.requires_grad_(flag)

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def discriminate(self, d, *batches, real=None, threshold=0.0, **options):
        # real/threshold feed the engine's adaptive augmentation, which this fake has not.
        return gantransfer.nn.discriminate(d, *batches, **options)


def _n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _snapshot(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.named_parameters()}


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("image_size", [16, 32, 64, 128])
def test_networks_produce_expected_shapes(image_size: int, channels: int) -> None:
    model = gantransfer.get("dcgan", image_size=image_size, channels=channels, ngf=4, ndf=4, nz=8)
    z = torch.randn(2, 8)
    images = model.nets["g"](z)
    assert images.shape == (2, channels, image_size, image_size)
    assert images.min() >= -1 and images.max() <= 1
    logits = model.nets["d"](images)
    assert logits.shape == (2,)


def test_generator_accepts_flat_and_4d_latents_equally() -> None:
    g = gantransfer.get_network("dcgan_generator", image_size=16, nz=8, ngf=4).eval()
    z = torch.randn(3, 8)
    torch.testing.assert_close(g(z), g(z[:, :, None, None]))
    with pytest.raises(ValueError, match=r"N×8"):
        g(torch.randn(3, 9))


@pytest.mark.parametrize("size", [48, 512, 8])
def test_unsupported_image_size_is_rejected_with_allowed_values(size: int) -> None:
    with pytest.raises(ValueError, match=r"16, 32, 64, 128, 256.*got " + str(size)):
        gantransfer.get("dcgan", image_size=size)
    with pytest.raises(ValueError, match=r"power of two"):
        gantransfer.get_network("dcgan_discriminator", image_size=size)


def test_bad_channels_and_label_are_rejected() -> None:
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        gantransfer.get("dcgan", channels=2)
    with pytest.raises(ValueError, match="real_label"):
        gantransfer.get("dcgan", real_label=1.5)


def test_parameter_counts_match_pytorch_examples_at_64px() -> None:
    model = gantransfer.get("dcgan")
    # pytorch/examples/dcgan with nz=100, ngf=ndf=64, nc=3, bias-free convolutions.
    assert _n_params(model.nets["g"]) == 3_576_704
    assert _n_params(model.nets["d"]) == 2_765_568
    # The reference layer layout: 5 transposed convs in G, 5 convs in D, BN on all hidden layers.
    g_layers = [type(m) for m in model.nets["g"].modules() if isinstance(m, nn.ConvTranspose2d)]
    d_layers = [m for m in model.nets["d"].modules() if isinstance(m, nn.Conv2d)]
    assert len(g_layers) == 5 and len(d_layers) == 5
    assert [m.out_channels for m in d_layers] == [64, 128, 256, 512, 1]


def test_weights_start_from_dcgan_normal_init() -> None:
    torch.manual_seed(0)
    model = gantransfer.get("dcgan")
    for net in model.nets.values():
        convs = torch.cat([m.weight.flatten() for m in net.modules()
                           if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
        assert abs(convs.std().item() - 0.02) < 1e-3
        assert abs(convs.mean().item()) < 1e-3
        bn = torch.cat([m.weight for m in net.modules() if isinstance(m, nn.BatchNorm2d)])
        assert abs(bn.mean().item() - 1.0) < 5e-3 and abs(bn.std().item() - 0.02) < 5e-3


def test_unknown_override_raises_type_error_listing_fields() -> None:
    with pytest.raises(TypeError, match=r"'bogus'.*Valid fields:.*image_size.*nz"):
        gantransfer.get("dcgan", bogus=1)


def test_train_step_updates_both_nets_and_freezes_d_during_g_step() -> None:
    torch.manual_seed(0)
    model = gantransfer.get("dcgan", image_size=16, ngf=4, ndf=4, nz=8)
    ctx = FakeContext(model)
    g0, d0 = _snapshot(model.nets["g"]), _snapshot(model.nets["d"])
    batch = {"image": torch.rand(4, 3, 16, 16) * 2 - 1}
    out = model.train_step(batch, ctx)

    assert set(out) == {"loss_d", "loss_g", "d_real", "d_fake"}
    assert all(not v.requires_grad and v.dim() == 0 and torch.isfinite(v) for v in out.values())
    assert 0 < out["d_real"] < 1 and 0 < out["d_fake"] < 1
    # D step: only D gets gradients (the fake batch is detached); G step: only G, D is frozen.
    assert ctx.grads == {"d": {"g": False, "d": True}, "g": {"g": True, "d": False}}
    assert ctx.frozen_calls == [("d",)]
    assert all(p.requires_grad for p in model.nets["d"].parameters())  # restored after the block
    for before, net in ((g0, model.nets["g"]), (d0, model.nets["d"])):
        changed = [k for k, v in net.named_parameters() if not torch.equal(v, before[k])]
        assert len(changed) == len(before)


def test_optimizers_hold_only_trainable_parameters() -> None:
    model = gantransfer.get("dcgan", image_size=16, ngf=4, ndf=4, nz=8)
    first_conv = model.nets["d"].main[0]
    first_conv.weight.requires_grad_(False)
    opts = model.make_optimizers()
    d_params = {id(p) for grp in opts["d"].param_groups for p in grp["params"]}
    assert id(first_conv.weight) not in d_params
    assert len(d_params) == sum(1 for p in model.nets["d"].parameters() if p.requires_grad)
    assert opts["g"].defaults["lr"] == 2e-4 and opts["g"].defaults["betas"] == (0.5, 0.999)


class _TinyPatchD(nn.Module):
    """A registered stand-in discriminator: a patch map of logits, no image_size argument."""

    def __init__(self, *, in_channels: int = 3, width: int = 4) -> None:
        super().__init__()
        self.in_channels, self.width = in_channels, width
        self.body = nn.Sequential(nn.Conv2d(in_channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(width, 1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@pytest.fixture
def tiny_patch_d() -> Iterator[str]:
    gantransfer.register("test_tiny_patch_d", _TinyPatchD, kind="network")
    yield "test_tiny_patch_d"
    gantransfer.unregister("test_tiny_patch_d", kind="network")


def test_discriminator_is_chosen_from_the_registry(tiny_patch_d: str) -> None:
    default = gantransfer.get("dcgan", image_size=16, channels=1, ngf=4, ndf=4, nz=8)
    assert type(default.nets["d"]).__name__ == "DCGANDiscriminator"
    model = gantransfer.get("dcgan", image_size=16, channels=1, ngf=4, nz=8,
                            discriminator=tiny_patch_d, discriminator_kwargs={"width": 6})
    d = model.nets["d"]
    assert isinstance(d, _TinyPatchD)
    # in_channels comes from the model; image_size/ndf are not passed (not declared); the
    # user's discriminator_kwargs reach the factory.
    assert (d.in_channels, d.width) == (1, 6)
    ctx = FakeContext(model)
    out = model.train_step({"image": torch.rand(2, 1, 16, 16) * 2 - 1}, ctx)
    assert torch.isfinite(out["loss_d"]) and ctx.grads["g"]["d"] is False


def test_discriminator_kwargs_override_model_arguments(tiny_patch_d: str) -> None:
    model = gantransfer.get("dcgan", image_size=16, channels=3, ngf=4, nz=8,
                            discriminator=tiny_patch_d, discriminator_kwargs={"in_channels": 3})
    assert model.nets["d"].in_channels == 3
    with pytest.raises(TypeError, match=r"does not accept 'bogus'"):
        gantransfer.get("dcgan", image_size=16, discriminator=tiny_patch_d,
                        discriminator_kwargs={"bogus": 1})


def test_patch_map_loss_uses_every_logit() -> None:
    from gantransfer.nn import GANLoss

    logits = torch.tensor([[[[0.0, 2.0], [-2.0, 0.0]]]])
    expected = torch.nn.functional.softplus(-logits).mean()  # BCE(l, 1) = log(1 + e^-l)
    torch.testing.assert_close(GANLoss("vanilla")(logits, True), expected)


def test_sampling_uses_fixed_noise_and_export_target_describes_generator() -> None:
    model = gantransfer.get("dcgan", image_size=16, channels=1, ngf=4, ndf=4, nz=8)
    z1 = model.sample_inputs({}, n=3, generator=torch.Generator().manual_seed(5))
    z2 = model.sample_inputs({}, n=3, generator=torch.Generator().manual_seed(5))
    assert z1.shape == (3, 8) and torch.equal(z1, z2)
    with model.evaluating(), torch.no_grad():
        rows = model.sample(z1)
    assert set(rows) == {"generated"} and rows["generated"].shape == (3, 1, 16, 16)
    assert model.export_targets() == {
        "generator": ExportSpec(net="g", input="latent", latent_dim=8, image_size=16,
                                out_channels=1,
                                description="DCGAN generator: N×nz noise -> images")
    }
    assert model.generator_names() == ["g"]
    assert model.data_defaults() == {"channels": 1, "preprocess": "center_crop",
                                     "load_size": 16, "crop_size": 16, "flip": False}
    assert model.data_kind == "single"
