"""The model contract's defaults: what a plugin declares once and the library derives."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
import torch
from torch import nn

import gantransfer
from gantransfer import GANModel, field
from gantransfer.nn import INITS, NORMS, SizeContract


@dataclass(kw_only=True)
class _Config:
    lr: float = field(3e-4, help="Adam learning rate")
    beta1: float = field(0.5, help="Adam β1")
    freeze_d: bool = field(False, help="freeze every parameter of d")


class _Model(GANModel):
    Config = _Config

    def __init__(self, config: _Config) -> None:
        super().__init__(config)
        self.nets["g"] = nn.Conv2d(3, 3, 1)
        self.nets["d"] = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Conv2d(4, 1, 1))
        self.nets["d"][0].requires_grad_(False)  # a frozen trunk (like a pretrained VGG)
        if config.freeze_d:
            self.nets["d"].requires_grad_(False)

    def optimizer_groups(self) -> dict[str, list[str]]:
        return {"g": ["g"], "d": ["d"]}


def test_default_optimizers_are_adam_per_declared_group_over_trainable_parameters():
    model = _Model(_Config())
    opts = model.make_optimizers()
    assert sorted(opts) == ["d", "g"]
    for group, opt in opts.items():
        assert type(opt) is torch.optim.Adam
        assert opt.defaults["lr"] == 3e-4 and opt.defaults["betas"] == (0.5, 0.999)
        params = {id(p) for g in opt.param_groups for p in g["params"]}
        trainable = {id(p) for p in model.nets[group].parameters() if p.requires_grad}
        assert params == trainable
    assert len(opts["d"].param_groups[0]["params"]) == 2  # the frozen conv stays out


def test_a_group_without_trainable_parameters_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"optimizer group 'd' \(d\) has no trainable"):
        _Model(_Config(freeze_d=True)).make_optimizers()


def test_make_optimizer_is_the_override_hook():
    class Ttur(_Model):
        def make_optimizer(self, group, params):
            return torch.optim.SGD(params, lr=0.1 * (4 if group == "d" else 1))

    opts = Ttur(_Config()).make_optimizers()
    assert type(opts["g"]) is torch.optim.SGD
    assert (opts["g"].defaults["lr"], opts["d"].defaults["lr"]) == (0.1, pytest.approx(0.4))


def test_default_optimizer_needs_an_lr_field():
    @dataclass(kw_only=True)
    class NoLr:
        pass

    class Model(_Model):
        Config = NoLr

        def __init__(self, config):
            GANModel.__init__(self, config)
            self.nets["g"] = nn.Conv2d(3, 3, 1)

        def optimizer_groups(self):
            return {"g": ["g"]}

    with pytest.raises(TypeError, match=r"has no 'lr' field.*override make_optimizer"):
        Model(NoLr()).make_optimizers()


def test_image_target_takes_the_size_rules_from_the_net_contract():
    model = _Model(_Config())
    model.nets["g"].size_contract = SizeContract(divisor=4, min_size=8)
    spec = model.image_target("g", in_channels=1, out_channels=3, direction="a2b")
    assert (spec.net, spec.input, spec.in_channels, spec.out_channels) == ("g", "image", 1, 3)
    assert (spec.size_divisor, spec.min_size, spec.direction) == (4, 8, "a2b")
    # Networks written before contracts: the size_divisor / min_size attributes.
    legacy = nn.Conv2d(3, 3, 1)
    legacy.size_divisor, legacy.min_size = 2, 6
    model.nets["g"] = legacy
    assert model.image_target("g").size_divisor == 2 and model.image_target("g").min_size == 6
    model.nets["g"] = nn.Conv2d(3, 3, 1)
    assert (model.image_target("g").size_divisor, model.image_target("g").min_size) == (1, 1)


@pytest.mark.parametrize("arch", ["cyclegan", "pix2pix"])
def test_norm_and_init_choices_come_from_gantransfer_nn(arch):
    if arch not in gantransfer.list():
        pytest.skip(f"{arch} is not installed")
    fields = {f.name: f for f in dataclasses.fields(gantransfer.registry.load_class(arch).Config)}
    assert fields["norm"].metadata["choices"] is NORMS
    assert fields["init"].metadata["choices"] is INITS


def test_dcgan_passes_the_discriminator_only_the_arguments_it_declares():
    # vgg16 takes in_channels and image_size but no ndf; patchgan takes ndf, not image_size.
    vgg = gantransfer.get("dcgan", image_size=32, channels=1, ndf=8, discriminator="vgg16",
                          discriminator_kwargs={"weights": None})
    assert vgg.nets["d"].in_channels == 1
    # (and no ndf, which vgg16 does not take: passing it would be a TypeError)
    patch = gantransfer.get("dcgan", image_size=32, ndf=8, discriminator="patchgan",
                            discriminator_kwargs={"n_layers": 1})
    first = patch.nets["d"].model[0]
    assert first.out_channels == 8 and first.in_channels == 3
