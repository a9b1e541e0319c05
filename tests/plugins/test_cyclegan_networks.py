"""CycleGAN networks vs the official layer list; official checkpoint loading and import.

The reference below re-states the official networks (junyanz/pytorch-CycleGAN-and-pix2pix,
models/networks.py) layer by layer, including its quirks: in-place activations (so the U-Net
skip carries LeakyReLU(x)) and no conv biases at all with ``norm="none"``.
"""

from __future__ import annotations

import functools
import logging

import pytest
import torch
from gantransfer_cyclegan import CycleGAN, load_official_generator
from torch import nn

import gantransfer

# -- the reference: official layouts written from the documented layer list ----------------------


def _ref_norm(kind):
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True), False
    if kind == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False), True
    return (lambda c: nn.Identity()), False  # official: a lambda is not InstanceNorm -> no bias


class RefResBlock(nn.Module):
    def __init__(self, dim, norm, dropout):
        super().__init__()
        nl, b = _ref_norm(norm)
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=b), nl(dim), nn.ReLU(True)]
        layers += [nn.Dropout(0.5)] if dropout else []
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=b), nl(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class RefResnet(nn.Module):
    def __init__(self, cin, cout, ngf, n_blocks, norm="instance", dropout=False):
        super().__init__()
        nl, b = _ref_norm(norm)
        m = [nn.ReflectionPad2d(3), nn.Conv2d(cin, ngf, 7, bias=b), nl(ngf), nn.ReLU(True)]
        m += [nn.Conv2d(ngf, 2 * ngf, 3, 2, 1, bias=b), nl(2 * ngf), nn.ReLU(True)]
        m += [nn.Conv2d(2 * ngf, 4 * ngf, 3, 2, 1, bias=b), nl(4 * ngf), nn.ReLU(True)]
        m += [RefResBlock(4 * ngf, norm, dropout) for _ in range(n_blocks)]
        m += [nn.ConvTranspose2d(4 * ngf, 2 * ngf, 3, 2, 1, output_padding=1, bias=b),
              nl(2 * ngf), nn.ReLU(True)]
        m += [nn.ConvTranspose2d(2 * ngf, ngf, 3, 2, 1, output_padding=1, bias=b), nl(ngf),
              nn.ReLU(True)]
        m += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, cout, 7), nn.Tanh()]
        self.model = nn.Sequential(*m)

    def forward(self, x):
        return self.model(x)


class RefUnetBlock(nn.Module):
    def __init__(self, outer, inner, cin=None, sub=None, outermost=False, innermost=False,
                 norm="instance", dropout=False):
        super().__init__()
        self.outermost = outermost
        nl, b = _ref_norm(norm)
        cin = outer if cin is None else cin
        down = nn.Conv2d(cin, inner, 4, 2, 1, bias=b)
        if outermost:
            m = [down, sub, nn.ReLU(True), nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1), nn.Tanh()]
        elif innermost:
            m = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                 nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=b), nl(outer)]
        else:
            m = [nn.LeakyReLU(0.2, True), down, nl(inner), sub, nn.ReLU(True),
                 nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1, bias=b), nl(outer)]
            m += [nn.Dropout(0.5)] if dropout else []
        self.model = nn.Sequential(*m)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)  # x is overwritten in place first, as official


class RefUnet(nn.Module):
    def __init__(self, cin, cout, num_downs, ngf, norm="instance", dropout=False):
        super().__init__()
        blk = RefUnetBlock(8 * ngf, 8 * ngf, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            blk = RefUnetBlock(8 * ngf, 8 * ngf, sub=blk, norm=norm, dropout=dropout)
        blk = RefUnetBlock(4 * ngf, 8 * ngf, sub=blk, norm=norm)
        blk = RefUnetBlock(2 * ngf, 4 * ngf, sub=blk, norm=norm)
        blk = RefUnetBlock(ngf, 2 * ngf, sub=blk, norm=norm)
        self.model = RefUnetBlock(cout, ngf, cin=cin, sub=blk, outermost=True, norm=norm)

    def forward(self, x):
        return self.model(x)


def ref_patchgan(cin, ndf, n_layers, norm="instance"):
    nl, b = _ref_norm(norm)
    m = [nn.Conv2d(cin, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers):
        prev, mult = mult, min(2**n, 8)
        m += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1, bias=b), nl(ndf * mult),
              nn.LeakyReLU(0.2, True)]
    prev, mult = mult, min(2**n_layers, 8)
    m += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=b), nl(ndf * mult),
          nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
    net = nn.Module()
    net.model = nn.Sequential(*m)
    net.forward = net.model.forward
    return net


def ref_pixel(cin, ndf, norm="instance"):
    nl, b = _ref_norm(norm)
    net = nn.Module()
    net.net = nn.Sequential(nn.Conv2d(cin, ndf, 1), nn.LeakyReLU(0.2, True),
                            nn.Conv2d(ndf, 2 * ndf, 1, bias=b), nl(2 * ndf),
                            nn.LeakyReLU(0.2, True), nn.Conv2d(2 * ndf, 1, 1, bias=b))
    net.forward = net.net.forward
    return net


def _randomise(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=g) * 0.2)
            if t.dtype == torch.long:  # num_batches_tracked
                t.fill_(3)
    for m in net.modules():  # keep BN variances positive
        if isinstance(m, nn.BatchNorm2d):
            m.running_var.abs_().add_(0.5)
    return net


def _shapes(net):
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


# -- structure ------------------------------------------------------------------------------

CASES = [
    ("resnet_9blocks", dict(ngf=4), lambda: RefResnet(3, 3, 4, 9)),
    ("resnet_6blocks", dict(ngf=4, norm="batch", in_channels=1, out_channels=3),
     lambda: RefResnet(1, 3, 4, 6, norm="batch")),
    ("resnet_6blocks", dict(ngf=4, dropout=True), lambda: RefResnet(3, 3, 4, 6, dropout=True)),
    ("unet_128", dict(ngf=2, dropout=True), lambda: RefUnet(3, 3, 7, 2, dropout=True)),
    ("unet_256", dict(ngf=2, norm="batch"), lambda: RefUnet(3, 3, 8, 2, norm="batch")),
    ("patchgan", dict(ndf=4), lambda: ref_patchgan(3, 4, 3)),
    ("patchgan", dict(ndf=4, n_layers=2, norm="batch"), lambda: ref_patchgan(3, 4, 2, "batch")),
    ("pixel", dict(ndf=4), lambda: ref_pixel(3, 4)),
    ("pixel", dict(ndf=4, norm="batch", in_channels=1), lambda: ref_pixel(1, 4, "batch")),
]


@pytest.mark.parametrize(("name", "kwargs", "ref"), CASES)
def test_state_dict_keys_and_shapes_match_official_layout(name, kwargs, ref):
    assert _shapes(gantransfer.get_network(name, **kwargs)) == _shapes(ref())


@pytest.mark.parametrize(("name", "kwargs", "ref"), CASES)
def test_official_weights_give_official_output(name, kwargs, ref):
    reference = _randomise(ref()).eval()
    net = gantransfer.get_network(name, **kwargs)
    net.load_state_dict(reference.state_dict())
    net.eval()
    size = {"unet_256": 256, "unet_128": 128, "patchgan": 32}.get(name, 16)
    cin = kwargs.get("in_channels", 3)
    x = torch.rand(2, cin, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        expected = reference(x.clone())  # the reference's in-place ops may touch its input
        got = net(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_resnet_9blocks_keys_are_the_documented_official_ones():
    keys = set(gantransfer.get_network("resnet_9blocks", ngf=4).state_dict())
    convs = ["model.1", "model.4", "model.7", "model.19", "model.22", "model.26"]
    convs += [f"model.{i}.conv_block.{j}" for i in range(10, 19) for j in (1, 5)]
    assert keys == {f"{c}.{p}" for c in convs for p in ("weight", "bias")}


def test_dropout_shifts_the_second_residual_conv_index():
    on = set(gantransfer.get_network("resnet_6blocks", ngf=4, dropout=True).state_dict())
    off = set(gantransfer.get_network("resnet_6blocks", ngf=4).state_dict())
    assert "model.10.conv_block.6.weight" in on and "model.10.conv_block.5.weight" not in on
    assert "model.10.conv_block.5.weight" in off and "model.10.conv_block.6.weight" not in off


def test_patchgan_conv_keys_and_full_size_parameter_counts():
    d = gantransfer.get_network("patchgan")
    convs = sorted({k.rsplit(".", 1)[0] for k in d.state_dict()})
    assert convs == ["model.0", "model.11", "model.2", "model.5", "model.8"]
    assert sum(p.numel() for p in d.parameters()) == 2_764_737
    g = gantransfer.get_network("resnet_9blocks")
    assert sum(p.numel() for p in g.parameters()) == 11_378_179


@pytest.mark.parametrize(("name", "size"), [("unet_128", 128), ("unet_256", 256)])
def test_unet_maps_size_to_size_and_nests_blocks(name, size):
    g = gantransfer.get_network(name, ngf=2, in_channels=1, out_channels=3)
    assert g(torch.zeros(1, 1, size, size)).shape == (1, 3, size, size)
    assert "model.model.1.model.3.model.3.model.1.weight" in g.state_dict()
    assert g.size_divisor == g.min_size == size


def test_resnet_runs_at_its_minimum_size_and_rejects_smaller():
    g = gantransfer.get_network("resnet_6blocks", ngf=2)
    assert g(torch.zeros(1, 3, 8, 12)).shape == (1, 3, 8, 12)
    with pytest.raises((RuntimeError, ValueError)):
        g(torch.zeros(1, 3, 4, 4))  # a 1x1 bottleneck: no instance statistics, no reflection


@pytest.mark.parametrize(("n_down", "divisor"), [(0, 1), (1, 2), (2, 4), (3, 8)])
def test_resnet_n_downsampling_sets_the_trunk_resolution_width_and_size_contract(n_down, divisor):
    g = gantransfer.get_network("resnet_6blocks", ngf=4, n_downsampling=n_down)
    seen = []
    block = next(m for m in g.modules() if type(m).__name__ == "ResnetBlock")
    block.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    assert g(torch.zeros(1, 3, 16, 24)).shape == (1, 3, 16, 24)
    # The residual blocks run at 1/2**n of the input and 4 * 2**n channels.
    assert seen == [(1, 4 * divisor, 16 // divisor, 24 // divisor)]
    assert (g.size_contract.divisor, g.size_contract.min_size) == (divisor, max(8, 2 * divisor))
    assert g.size_divisor == divisor


def test_resnet_default_is_the_official_two_downsamplings():
    assert (gantransfer.get_network("resnet_6blocks", ngf=4).state_dict().keys()
            == gantransfer.get_network("resnet_6blocks", ngf=4, n_downsampling=2)
            .state_dict().keys())


@pytest.mark.parametrize("bad", [-1, 5, 1.5, True])
def test_resnet_rejects_a_bad_n_downsampling_naming_it(bad):
    with pytest.raises(ValueError, match="n_downsampling"):
        gantransfer.get_network("resnet_6blocks", ngf=4, n_downsampling=bad)


@pytest.mark.parametrize(("name", "size", "kwargs"), [
    ("unet_32", 32, {}), ("unet_128", 128, {}), ("resnet_6blocks", 16, {}),
    ("resnet_6blocks", 16, {"n_downsampling": 1})])
def test_resize_upsampling_replaces_every_transposed_conv_and_keeps_sizes(name, size, kwargs):
    g = gantransfer.get_network(name, ngf=2, upsample="resize", **kwargs)
    official = gantransfer.get_network(name, ngf=2, **kwargs)
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in g.modules())
    n_up = sum(isinstance(m, nn.ConvTranspose2d) for m in official.modules())
    assert sum(isinstance(m, nn.Upsample) for m in g.modules()) == n_up > 0
    x = torch.rand(2, 3, size, size) * 2 - 1
    assert g(x).shape == official(x).shape == (2, 3, size, size)


def test_resize_upsampling_has_no_checkerboard_from_a_constant_input():
    # A transposed conv with stride 2 gives the even and odd output pixels different kernel
    # taps, so a constant input comes out with a 2-pixel period (Odena et al. 2016); a
    # resize-convolution gives every interior pixel the same taps.
    from gantransfer_cyclegan.unet import upsampling_layer

    torch.manual_seed(0)
    x = torch.ones(1, 4, 8, 8)
    for kind, periodic in (("transpose", True), ("resize", False)):
        y = upsampling_layer(4, 1, kind=kind, bias=False)(x)[0, 0, 2:-2, 2:-2].detach()
        spread = float(y.max() - y.min())
        assert (spread > 1e-3) is periodic, (kind, spread)
    with pytest.raises(ValueError, match="upsample must be one of transpose, resize"):
        gantransfer.get_network("unet_32", upsample="bilinear")
    with pytest.raises(ValueError, match="upsample"):
        gantransfer.get_network("resnet_9blocks", upsample="bilinear")
    with pytest.raises(ValueError, match="upsample"):  # checked even where nothing upsamples
        gantransfer.get_network("resnet_6blocks", n_downsampling=0, upsample="bilinear")


def test_cyclegan_passes_generator_kwargs_to_both_generators():
    model = gantransfer.get("cyclegan", netG="resnet_6blocks", ngf=4, ndf=4,
                            generator_kwargs={"n_downsampling": 0})
    for name in ("g_ab", "g_ba"):
        assert model.nets[name].size_contract.divisor == 1
        # No stride-2 conv anywhere: the whole generator runs at full resolution.
        assert all(m.stride == (1, 1) for m in model.nets[name].modules()
                   if isinstance(m, nn.Conv2d))
    with pytest.raises(ValueError, match="generator_kwargs"):
        gantransfer.get("cyclegan", generator_kwargs=[("n_downsampling", 0)])
    with pytest.raises(TypeError, match="nope"):
        gantransfer.get("cyclegan", netG="resnet_6blocks", generator_kwargs={"nope": 1})


def test_factories_apply_init_gain():
    g = gantransfer.get_network("patchgan", ndf=8, init="normal", init_gain=0.02)
    w = g.model[2].weight.detach()
    assert 0.01 < float(w.std()) < 0.03
    assert float(g.model[2].bias.detach().abs().max()) == 0.0


# -- official checkpoints --------------------------------------------------------------------


def _official_state(ref, *, prefix="", legacy_stats=False):
    state = {prefix + k: v.clone() for k, v in ref.state_dict().items()}
    if legacy_stats:  # what PyTorch < 0.4 saved for every InstanceNorm
        for i in (2, 5):
            state[f"{prefix}model.{i}.running_mean"] = torch.zeros(4 * (i // 2))
            state[f"{prefix}model.{i}.running_var"] = torch.ones(4 * (i // 2))
            state[f"{prefix}model.{i}.num_batches_tracked"] = torch.tensor(0)
    return state


def test_load_official_generator_strips_module_prefix_and_legacy_stats(caplog, tmp_path):
    ref = _randomise(RefResnet(3, 3, 4, 6)).eval()
    path = tmp_path / "latest_net_G_A.pth"
    torch.save(_official_state(ref, prefix="module.", legacy_stats=True), path)
    with caplog.at_level(logging.INFO, logger="gantransfer_cyclegan"):
        g = load_official_generator(path)
    assert "running-stat" in caplog.text
    assert isinstance(g, nn.Module) and g.model[1].weight.shape == (4, 3, 7, 7)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(g.eval()(x), ref(x), rtol=1e-5, atol=1e-5)


def test_load_official_norm_none_fills_missing_biases_with_zero():
    ref = _randomise(RefResnet(3, 3, 4, 6, norm="none")).eval()
    g = load_official_generator(ref.state_dict()).eval()
    assert g.model[1].bias is not None and float(g.model[1].bias.detach().abs().sum()) == 0.0
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(g(x), ref(x), rtol=1e-5, atol=1e-5)


def test_load_official_rejects_mismatched_options_with_a_hint():
    ref = RefResnet(3, 3, 4, 6)
    with pytest.raises(ValueError, match="ngf"):
        load_official_generator(ref.state_dict(), ngf=8)


def test_cyclegan_load_official_maps_official_names_to_ours():
    g_a, g_b = _randomise(RefResnet(3, 1, 4, 9), 1), _randomise(RefResnet(1, 3, 4, 9), 2)
    d_a, d_b = _randomise(ref_patchgan(1, 4, 2), 3), _randomise(ref_patchgan(3, 4, 2), 4)
    model = CycleGAN.load_official(g_a=g_a.state_dict(), g_b=g_b.state_dict(),
                                   d_a=d_a.state_dict(), d_b=d_b.state_dict())
    c = model.config
    assert (c.netG, c.ngf, c.in_channels, c.out_channels) == ("resnet_9blocks", 4, 3, 1)
    assert (c.discriminator, c.ndf, c.n_layers_D) == ("patchgan", 4, 2)
    # official D_A judges domain B (1 channel here) and becomes our d_b
    for ours, theirs in (("g_ab", g_a), ("g_ba", g_b), ("d_b", d_a), ("d_a", d_b)):
        for k, v in theirs.state_dict().items():
            assert torch.equal(model.nets[ours].state_dict()[k], v), (ours, k)


def test_import_cli_writes_a_checkpoint_that_reproduces_the_official_output(tmp_path):
    from typer.testing import CliRunner

    from gantransfer.cli.app import app

    ref = _randomise(RefResnet(3, 3, 4, 6)).eval()
    src = tmp_path / "latest_net_G_A.pth"
    torch.save(_official_state(ref, prefix="module."), src)
    out = tmp_path / "imported.pt"
    result = CliRunner().invoke(app, ["import-cyclegan", str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    model = gantransfer.load(out)
    assert model.arch_name == "cyclegan" and model.config.netG == "resnet_6blocks"
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model.nets["g_ab"](x), ref(x), rtol=1e-5, atol=1e-5)
