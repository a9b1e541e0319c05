"""ONNX files of conditional generators: the label/style is a second int64 batch-sized input,
batch/height/width stay dynamic, the metadata lists the label names, every label is verified,
int8 works, and the runtime refuses missing, unknown or unexpected labels with the names."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

import gantransfer
from gantransfer.data.demo import make_styles
from gantransfer.inference import translator
from gantransfer.inference.onnx_backend import load

STYLES = ["cool", "invert", "photo"]
STAR = {"labels": STYLES, "ngf": 4, "ndf": 4, "n_layers_D": 2, "load_size": 16,
        "crop_size": 16}


@pytest.fixture(scope="module")
def stargan_file(tmp_path_factory):
    torch.manual_seed(0)
    model = gantransfer.get("stargan", **STAR).eval()
    with torch.no_grad():  # distinct styles, as after training
        for name, p in model.nets["g"].named_parameters():
            if "embedding" in name:
                p.normal_(1.0, 0.3)
    path = tmp_path_factory.mktemp("export") / "star.onnx"
    (result,) = gantransfer.export_onnx(model, path)
    return model, path, result


def test_stargan_file_takes_the_style_as_a_second_dynamic_int64_input(stargan_file):
    _, path, result = stargan_file
    graph = onnx.load(str(path)).graph
    image, label = graph.input
    assert (image.name, label.name) == ("image", "label")
    assert label.type.tensor_type.elem_type == onnx.TensorProto.INT64
    dims = [d.dim_param for d in image.type.tensor_type.shape.dim]
    assert dims[0] == "batch" and dims[2:] == ["height", "width"]
    assert [d.dim_param for d in label.type.tensor_type.shape.dim] == ["batch"]
    # Verified for every style at every shape.
    assert {key.rpartition("@")[2] for key in result.max_abs_error} == set(STYLES)
    assert load(path, providers="cpu").label_names == tuple(STYLES)


def test_onnx_translation_matches_pytorch_for_every_style(stargan_file):
    model, path, _ = stargan_file
    onnx_model = load(path, providers="cpu")
    x = torch.rand(2, 3, 20, 24) * 2 - 1  # not a multiple of 4: padded and cropped back
    outputs = []
    for style in STYLES:
        want = model.translate(x, style=style)
        got = onnx_model.translate(x, style=style)
        assert got.shape == x.shape
        assert (got - want).abs().max() < 1e-4
        outputs.append(got)
    assert not torch.allclose(outputs[0], outputs[1], atol=1e-3)  # the style is used
    by_index = translator(onnx_model, style=1).translate(x)
    assert torch.equal(by_index, outputs[1])


def test_missing_unknown_and_out_of_range_styles_list_the_names(stargan_file):
    model, path, _ = stargan_file
    onnx_model = load(path, providers="cpu")
    x = torch.rand(1, 3, 16, 16)
    for runner in (model, onnx_model):
        with pytest.raises(ValueError, match=r"name a style.*cool, invert, photo"):
            runner.translate(x)
        with pytest.raises(ValueError, match=r"unknown style 'monet'.*0=cool, 1=invert, 2=photo"):
            runner.translate(x, style="monet")
        with pytest.raises(ValueError, match=r"style index 3 is out of range.*3 styles"):
            runner.translate(x, style=3)
    plain = gantransfer.get("cyclegan", netG="resnet_6blocks", ngf=4, ndf=4)
    with pytest.raises(ValueError, match="takes no style: it is not conditional"):
        plain.translate(x, style="monet")


def test_int8_export_of_a_multi_style_generator_calibrates_every_style(stargan_file, tmp_path):
    model, _, _ = stargan_file
    data = make_styles(tmp_path / "data", n_train=1, n_test=12, size=16, styles=3)
    (result,) = gantransfer.export_onnx(model, tmp_path / "star_int8.onnx", precision="int8",
                                        calib=data / "test" / "photo", calib_size=16,
                                        min_psnr=20)
    int8 = load(result.path, providers="cpu")
    assert int8.metadata.precision == "int8" and int8.label_names == tuple(STYLES)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    for style in STYLES:
        err = (int8.translate(x, style=style) - model.translate(x, style=style)).abs().mean()
        assert err < 0.1


def test_conditional_dcgan_file_generates_each_class_like_pytorch(tmp_path):
    torch.manual_seed(0)
    model = gantransfer.get("dcgan", image_size=16, ngf=4, ndf=4, nz=8,
                            labels=["cat", "dog"]).eval()
    (result,) = gantransfer.export_onnx(model, tmp_path / "g.onnx")
    assert {key.rpartition("@")[2] for key in result.max_abs_error} == {"cat", "dog"}
    onnx_model = load(result.path, providers="cpu")
    assert onnx_model.label_names == ("cat", "dog")
    for label in ("cat", 1, ["dog", "cat", "cat"]):
        want = model.generate(3, generator=torch.Generator().manual_seed(3), label=label)
        got = onnx_model.generate(3, seed=3, label=label)
        assert np.abs(got.numpy() - want.numpy()).max() < 1e-4
    with pytest.raises(ValueError, match=r"unknown label 'owl'.*0=cat, 1=dog"):
        onnx_model.generate(2, label="owl")
    with pytest.raises(ValueError, match="got 1 labels for 2 images"):
        model.generate(2, label=["cat"])
    plain = gantransfer.get("dcgan", image_size=16, ngf=4, ndf=4, nz=8)
    with pytest.raises(ValueError, match="takes no label"):
        plain.generate(2, label="cat")
