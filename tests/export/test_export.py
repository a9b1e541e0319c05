"""ONNX export: verification, dynamic shapes, metadata, fp16, atomic replace, every architecture."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnx
import pytest
import torch
from _export_toy import NAME, make

import gantransfer
from gantransfer.config import to_plain
from gantransfer.export import ExportVerificationError, OnnxMetadata
from gantransfer.targets import ExportSpec


@pytest.fixture(scope="module")
def model():
    return make()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    """All toy targets in fp32 plus a2b in fp16, exported once for this module."""
    out = tmp_path_factory.mktemp("export")
    fp32 = gantransfer.export_onnx(model, out / "toy.onnx", target="all")
    fp16 = gantransfer.export_onnx(model, out / "toy16.onnx", target="a2b", precision="fp16")
    return {"dir": out, "fp32": {r.target: r for r in fp32}, "fp16": fp16[0]}


def _dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_all_targets_exported_and_verified(exported):
    results = exported["fp32"]
    assert set(results) == {"a2b", "b2a", "generator"}
    assert results["a2b"].path == exported["dir"] / "toy_a2b.onnx"
    for r in results.values():
        assert r.path.is_file()
        assert r.max_abs_error and r.worst_error < 1e-4
    # image targets: batch 1 and 2, square and non-square; latent: batch 1 and 2
    assert set(results["a2b"].max_abs_error) == {"1x3x8x8", "2x3x8x12", "1x3x40x16"}
    assert set(results["generator"].max_abs_error) == {"1x8", "2x8"}


def test_exported_axes_are_named_and_dynamic(exported):
    proto = onnx.load(exported["fp32"]["a2b"].path)
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == ["output"]
    assert _dims(proto.graph.input[0]) == ["batch", 3, "height", "width"]
    assert _dims(proto.graph.output[0]) == ["batch", 3, "height", "width"]
    latent = onnx.load(exported["fp32"]["generator"].path)
    assert _dims(latent.graph.input[0]) == ["batch", 8]
    assert latent.graph.input[0].name == "latent"


def test_weights_are_stored_inside_the_file(exported):
    files = sorted(p.name for p in exported["dir"].iterdir())
    assert files == ["toy16.onnx", "toy_a2b.onnx", "toy_b2a.onnx", "toy_generator.onnx"]


def test_metadata_round_trip(exported, model):
    proto = onnx.load(exported["fp32"]["b2a"].path)
    props = {p.key: p.value for p in proto.metadata_props}
    meta = OnnxMetadata.from_props(props)
    spec = model.export_targets()["b2a"]
    assert (meta.input_kind, meta.size_divisor, meta.min_size) == ("image", 4, 8)
    assert (meta.in_channels, meta.out_channels) == (spec.in_channels, spec.out_channels)
    assert (meta.architecture, meta.target, meta.direction) == (NAME, "b2a", "b2a")
    assert (meta.value_range, meta.channel_order, meta.layout) == ("[-1,1]", "RGB", "NCHW")
    assert meta.version == gantransfer.__version__ and meta.precision == "fp32"
    assert json.loads(props["gantransfer.config"]) == to_plain(model.config)
    gen = OnnxMetadata.from_props({p.key: p.value for p in
                                   onnx.load(exported["fp32"]["generator"].path).metadata_props})
    assert (gen.input_kind, gen.latent_dim, gen.image_size) == ("latent", 8, 16)


@pytest.mark.parametrize("target", ["a2b", "b2a", "generator"])
def test_a_file_carries_its_targets_export_spec(exported, model, target):
    """The model's export target and the exported file carry one description (ExportSpec):
    every field the file stores comes back equal, with no conversion in between."""
    spec = model.export_targets()[target]
    meta = OnnxMetadata.from_props({p.key: p.value for p in
                                    onnx.load(exported["fp32"][target].path).metadata_props})
    assert isinstance(meta, ExportSpec) and meta.net == ""
    stored = [f.name for f in dataclasses.fields(ExportSpec)
              if f.name not in ("net", "description")]  # the model's side only: not in files
    want = {n: getattr(spec, n) for n in stored}
    want["direction"] = spec.direction or target  # a target without a direction names itself
    assert {n: getattr(meta, n) for n in stored} == want
    again = OnnxMetadata.from_props(OnnxMetadata.from_spec(spec, target=target).to_props())
    assert {n: getattr(again, n) for n in stored} == {n: getattr(spec, n) for n in stored}


def test_fp16_keeps_normalisation_and_io_in_fp32(exported, model):
    result = exported["fp16"]
    assert 0 < result.worst_error < 2e-2  # fp16 differs from fp32, but boundedly
    proto = onnx.load(result.path)
    fp32, fp16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    assert proto.graph.input[0].type.tensor_type.elem_type == fp32
    assert proto.graph.output[0].type.tensor_type.elem_type == fp32
    conv_weights = {n.input[1] for n in proto.graph.node if n.op_type == "Conv"}
    inits = {i.name: i.data_type for i in proto.graph.initializer}
    assert {inits[w] for w in conv_weights} == {fp16}
    # every InstanceNormalization input comes from an fp32 source (a Cast to float or fp32 init)
    cast_to = {o: next(a.i for a in n.attribute if a.name == "to")
               for n in proto.graph.node if n.op_type == "Cast" for o in n.output}
    norms = [n for n in proto.graph.node if n.op_type == "InstanceNormalization"]
    assert len(norms) == 6
    for n in norms:
        for name in n.input:
            assert cast_to.get(name, inits.get(name)) == fp32, (n.name, name)
    import onnxruntime as ort

    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    x = (torch.rand(1, 3, 24, 20) * 2 - 1).numpy()
    y = session.run(None, {"image": x})[0]
    assert y.dtype == np.float32 and np.isfinite(y).all()
    with torch.no_grad():
        expected = model.eval().nets["g_ab"](torch.from_numpy(x)).numpy()
    assert np.abs(y - expected).max() < 2e-2


def test_failed_verification_leaves_existing_file_untouched(exported, model, monkeypatch):
    from gantransfer.export import exporter

    path = exported["fp32"]["generator"].path
    before = path.read_bytes()
    seen = []

    def failing_compare(tmp, *args, **kwargs):
        seen.append(tmp)
        assert tmp != path and tmp.is_file()  # verification runs on the temporary file
        raise ExportVerificationError("forced mismatch")

    monkeypatch.setattr(exporter, "compare", failing_compare)
    with pytest.raises(ExportVerificationError, match="forced mismatch"):
        gantransfer.export_onnx(model, path, target="generator")
    assert seen and path.read_bytes() == before
    assert not seen[0].exists()  # the temporary file is cleaned up


def test_tolerance_is_enforced(model, tmp_path):
    with pytest.raises(ExportVerificationError, match=r"tolerance 1e-12"):
        gantransfer.export_onnx(model, tmp_path / "m.onnx", target="a2b", atol=1e-12)
    assert not list(tmp_path.iterdir())


def test_static_shape_export(model, tmp_path):
    (r,) = gantransfer.export_onnx(model, tmp_path / "s.onnx", target="a2b",
                                   static_shape=(2, 12, 16))
    assert _dims(onnx.load(r.path).graph.input[0]) == [2, 3, 12, 16]
    assert list(r.max_abs_error) == ["2x3x12x16"]
    with pytest.raises(ValueError, match="multiples of 4"):
        gantransfer.export_onnx(model, tmp_path / "t.onnx", target="a2b", static_shape=(1, 10, 16))


def test_unknown_target_and_precision_are_clear_errors(model, tmp_path):
    with pytest.raises(ValueError, match="unknown export target 'x2y'"):
        gantransfer.export_onnx(model, tmp_path / "m.onnx", target="x2y")
    with pytest.raises(ValueError, match="precision"):
        gantransfer.export_onnx(model, tmp_path / "m.onnx", precision="int8")


# Tiny settings for the built-in architectures; a third-party architecture is built with defaults.
TINY = {
    "cyclegan": {"ngf": 4, "ndf": 4, "netG": "resnet_6blocks"},
    "dcgan": {"ngf": 4, "ndf": 4, "nz": 8, "image_size": 32},
    "stargan": {"labels": ["a", "b"], "ngf": 4, "ndf": 4},
    NAME: {},
}


def _installed_architectures() -> list[str]:
    """Entry-point architectures (every installed plugin); the toy is covered above, and other
    tests' in-process registrations are not ours to export."""
    from gantransfer import registry

    return [n for n in gantransfer.list() if registry.entry(n).distribution is not None]


@pytest.mark.parametrize("name", _installed_architectures())
def test_every_architecture_exports_all_targets(name, tmp_path):
    torch.manual_seed(0)
    model = gantransfer.get(name, **TINY.get(name, {}))
    results = gantransfer.export_onnx(model, tmp_path, target="all")
    assert {r.target for r in results} == set(model.export_targets())
    for r in results:
        assert r.path == tmp_path / f"{r.target}.onnx" and r.worst_error < 1e-4
        meta = gantransfer.onnx.load(r.path).metadata
        assert meta.architecture == name and meta.target == r.target
