"""Label-conditioned networks: conditional instance norm, the label contract, projection and
concatenation discriminators, the conditional DCGAN and StarGAN configs and their errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import gantransfer
from gantransfer.nn import (
    ConcatLabels,
    ConditionalInstanceNorm2d,
    accepts_labels,
    norm_layer,
)

TINY = {"image_size": 16, "ngf": 4, "ndf": 4, "nz": 8}
STAR = {"ngf": 4, "ndf": 4, "n_layers_D": 2, "load_size": 16, "crop_size": 16}


def test_conditional_instance_norm_starts_as_instance_norm_and_learns_a_scale_per_label():
    torch.manual_seed(0)
    cin = ConditionalInstanceNorm2d(4, n_labels=3)
    x = torch.randn(3, 4, 5, 5)
    labels = torch.tensor([0, 1, 2])
    plain = nn.InstanceNorm2d(4)(x)
    assert torch.allclose(cin(x, labels), plain, atol=1e-6)
    with torch.no_grad():
        cin.embedding.weight[1, :4] = 2.0  # γ of label 1
        cin.embedding.weight[1, 4:] = 0.5  # β of label 1
    out = cin(x, labels)
    assert torch.allclose(out[0], plain[0], atol=1e-6)
    assert torch.allclose(out[1], 2.0 * plain[1] + 0.5, atol=1e-5)
    with pytest.raises(ValueError, match="needs the labels"):
        cin(x)


def test_norm_factory_makes_conditional_norms_only_with_a_label_count():
    assert isinstance(norm_layer("conditional_instance", n_labels=2)(8), ConditionalInstanceNorm2d)
    with pytest.raises(ValueError, match="n_labels"):
        norm_layer("conditional_instance")


def test_resnet_generator_with_conditional_norm_gives_each_style_its_own_output():
    torch.manual_seed(0)
    g = gantransfer.get_network("resnet_6blocks", ngf=4, norm="conditional_instance", n_labels=3)
    assert accepts_labels(g)
    assert not accepts_labels(gantransfer.get_network("resnet_6blocks", ngf=4))
    with torch.no_grad():  # give the styles different scales, as training does
        for m in g.modules():
            if isinstance(m, ConditionalInstanceNorm2d):
                m.embedding.weight.normal_(1.0, 0.5)
    x = torch.rand(1, 3, 16, 16).repeat(3, 1, 1, 1) * 2 - 1
    y = g(x, torch.tensor([0, 1, 2]))
    assert not torch.allclose(y[0], y[1]) and not torch.allclose(y[1], y[2])
    # The same style gives the same output, whatever else is in the batch (instance norm).
    assert torch.allclose(g(x[:1], torch.tensor([1])), y[1:2], atol=1e-5)


def test_concat_labels_feeds_tiled_one_hot_planes():
    seen = {}

    class Probe(nn.Module):
        def forward(self, x):
            seen["x"] = x
            return x.sum(dim=(1, 2, 3))

    d = ConcatLabels(Probe(), 3)
    d(torch.zeros(2, 1, 4, 4), torch.tensor([2, 0]))
    planes = seen["x"][:, 1:]
    assert planes.shape == (2, 3, 4, 4)
    assert torch.equal(planes[0, 2], torch.ones(4, 4)) and planes[0, :2].abs().sum() == 0
    assert torch.equal(planes[1, 0], torch.ones(4, 4)) and planes[1, 1:].abs().sum() == 0
    with pytest.raises(ValueError, match="int64 labels"):
        d(torch.zeros(2, 1, 4, 4), torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize("disc", ["projection", "concat"])
def test_conditional_dcgan_discriminator_depends_on_the_label(disc):
    torch.manual_seed(0)
    model = gantransfer.get("dcgan", **TINY, labels=["a", "b"], d_conditioning=disc)
    d = model.nets["d"].eval()
    if disc == "projection":
        with torch.no_grad():
            d.embedding.weight.normal_(0.0, 1.0)
    x = torch.rand(2, 3, 16, 16).repeat(2, 1, 1, 1)
    out = d(x, torch.tensor([0, 0, 1, 1]))
    assert out.shape == (4,)
    assert not torch.allclose(out[:2], out[2:])


def test_conditional_dcgan_generator_follows_the_label_and_dataset_kind():
    torch.manual_seed(0)
    for conditioning in ("concat", "embedding"):
        model = gantransfer.get("dcgan", **TINY, labels=["a", "b", "c"],
                                g_conditioning=conditioning).eval()
        assert model.data_kind == "labelled" and model.label_names == ("a", "b", "c")
        z = torch.randn(1, 8).repeat(3, 1)
        with torch.no_grad():
            y = model.nets["g"](z, torch.tensor([0, 1, 2]))
        assert not torch.allclose(y[0], y[1])
    assert gantransfer.get("dcgan", **TINY).data_kind == "single"
    assert gantransfer.get("dcgan", **TINY).label_names is None


def test_conditional_dcgan_config_errors_say_how_to_fix():
    with pytest.raises(ValueError, match="3 classes but 2 label names"):
        gantransfer.get("dcgan", **TINY, n_classes=3, labels=["a", "b"])
    with pytest.raises(ValueError, match="distinct"):
        gantransfer.get("dcgan", **TINY, labels=["a", "a"])
    assert gantransfer.get("dcgan", **TINY, n_classes=2).label_names == ("0", "1")
    with pytest.raises(ValueError, match=r"does not accept labels.*d_conditioning=concat"):
        gantransfer.get("dcgan", **TINY, labels=["a", "b"], discriminator="patchgan",
                        discriminator_kwargs={"n_layers": 1})
    # ... and with concat any registered discriminator works.
    model = gantransfer.get("dcgan", **TINY, labels=["a", "b"], discriminator="patchgan",
                            d_conditioning="concat", discriminator_kwargs={"n_layers": 1})
    assert model.nets["d"](torch.rand(2, 3, 16, 16), torch.tensor([0, 1])).shape[0] == 2


def test_vgg_discriminator_takes_a_projection_head():
    torch.manual_seed(0)
    model = gantransfer.get("dcgan", image_size=32, ngf=4, nz=8, labels=["a", "b"],
                            discriminator="vgg16",
                            discriminator_kwargs={"weights": None, "tap_block": 2})
    d = model.nets["d"].eval()
    assert accepts_labels(d)
    with torch.no_grad():
        d.embedding.weight.normal_(0.0, 1.0)
    x = torch.rand(1, 3, 32, 32).repeat(2, 1, 1, 1) * 2 - 1
    out = d(x, torch.tensor([0, 1]))
    assert out.shape == (2,) and not torch.allclose(out[0], out[1])


def test_stargan_builds_both_style_inputs_and_refuses_bad_configs():
    for style_input in ("cin", "onehot"):
        model = gantransfer.get("stargan", labels=["a", "b", "c"], style_input=style_input,
                                **STAR)
        assert model.label_names == ("a", "b", "c") and model.data_kind == "labelled"
        assert accepts_labels(model.nets["g"])
        src, cls = model.nets["d"](torch.rand(2, 3, 16, 16))
        assert cls.shape == (2, 3) and src.shape[0] == 2
    with pytest.raises(ValueError, match="at least 2 style names"):
        gantransfer.get("stargan", **STAR)
    with pytest.raises(ValueError, match="does not take a style"):
        gantransfer.get("stargan", labels=["a", "b"], netG="unet_128", **STAR)


@pytest.mark.parametrize("style_input", ["cin", "onehot"])
def test_stargan_passes_generator_kwargs_to_its_generator(style_input):
    model = gantransfer.get("stargan", labels=["a", "b"], style_input=style_input,
                            generator_kwargs={"n_downsampling": 0}, **STAR)
    g = model.nets["g"]
    # Full resolution: no stride-2 conv in the generator, and it still follows the style.
    assert all(m.stride == (1, 1) for m in g.modules() if isinstance(m, torch.nn.Conv2d))
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        for p in g.parameters():  # a non-trivial style response for the check below
            p.add_(torch.randn_like(p) * 0.1)
        out_a, out_b = g(x, torch.tensor([0, 0])), g(x, torch.tensor([1, 1]))
    assert out_a.shape == x.shape and not torch.allclose(out_a, out_b)
    with pytest.raises(ValueError, match="generator_kwargs"):
        gantransfer.get("stargan", labels=["a", "b"], generator_kwargs=[1], **STAR)
