"""`gtx export --int8 --calib DIR`: static int8 QDQ files calibrated on real images.

A tiny CycleGAN (resnet_6blocks, ngf 8, random weights) at 32 px on the built-in demo images.
Random weights give a low int8 PSNR (~30 dB), so the success path runs with ``--min-psnr 0``;
what is checked here is the mechanics (graph, metadata, PSNR bookkeeping, refusals, shapes).
The quality on a trained model is in docs/export.md.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import helper, numpy_helper
from PIL import Image
from typer.testing import CliRunner

import gantransfer
from gantransfer.cli.app import app
from gantransfer.config import to_plain
from gantransfer.data import demo
from gantransfer.engine.checkpoint import save_checkpoint
from gantransfer.export.quantize import (
    CalibrationError,
    QuantizationError,
    fp32_conv_nodes,
    quantize_int8,
)

runner = CliRunner()
SIZE = 32


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("int8")
    torch.manual_seed(0)
    model = gantransfer.get("cyclegan", ngf=8, ndf=4, netG="resnet_6blocks")
    ckpt = root / "cyclegan.pt"
    save_checkpoint({"architecture": "cyclegan", "config": to_plain(model.config),
                     "model": model.state_dict(), "ema": None, "step": 0, "epoch": 0,
                     "versions": {}}, ckpt)
    data = demo.make_two_domain(root / "data", n_train=1, n_test=10, size=SIZE, seed=0)
    calib = data / "testA"
    result = runner.invoke(app, ["export", str(ckpt), "--onnx", str(root / "a2b_int8.onnx"),
                                 "--target", "a2b", "--int8", "--calib", str(calib),
                                 "--calib-size", str(SIZE), "--min-psnr", "0"])
    assert result.exit_code == 0, (result.output, result.exception)
    fp32 = gantransfer.export_onnx(ckpt, root / "a2b_fp32.onnx", target="a2b")[0].path
    return {"root": root, "ckpt": ckpt, "calib": calib, "int8": root / "a2b_int8.onnx",
            "fp32": fp32, "output": result.output}


def _props(path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean(((a.astype(np.float64) + 1) / 2 - (b.astype(np.float64) + 1) / 2) ** 2)
    return float(10 * np.log10(1.0 / mse))


def test_int8_graph_quantises_inner_convs_only(run):
    fp32_convs = [n.name for n in onnx.load(str(run["fp32"])).graph.node if n.op_type == "Conv"]
    graph = onnx.load(str(run["int8"])).graph
    ops = [n.op_type for n in graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}

    def weight_is_int8(node) -> bool:
        dq = producer.get(node.input[1])
        return (dq is not None and dq.op_type == "DequantizeLinear"
                and inits[dq.input[0]].data_type == onnx.TensorProto.INT8)

    convs = {n.name: n for n in graph.node if n.op_type == "Conv"}
    first, last = fp32_convs[0], fp32_convs[-1]
    for name in (first, last):  # kept in float: weight straight from an fp32 initializer
        assert inits[convs[name].input[1]].data_type == onnx.TensorProto.FLOAT
    inner = [convs[n] for n in fp32_convs[1:-1]]
    assert len(inner) == 14 and all(weight_is_int8(n) for n in inner)
    # per-channel: one scale per output channel of each quantised weight
    dq = producer[inner[0].input[1]]
    assert numpy_helper.to_array(inits[dq.input[1]]).shape == (
        numpy_helper.to_array(inits[dq.input[0]]).shape[0],)
    transposed = [n for n in graph.node if n.op_type == "ConvTranspose"]
    assert len(transposed) == 2
    for node in transposed:
        assert inits[node.input[1]].data_type == onnx.TensorProto.FLOAT
        assert producer[node.input[0]].op_type != "DequantizeLinear"


def test_int8_metadata_and_reported_psnr_match_independent_recomputation(run):
    props = _props(run["int8"])
    assert props["gantransfer.precision"] == "int8"
    assert props["gantransfer.target"] == "a2b"
    reported = float(props["gantransfer.psnr_db"])
    held = float(props["gantransfer.heldout_psnr_db"])
    assert f"{reported:.2f} dB" in run["output"] and f"{held:.2f} dB" in run["output"]
    # recompute: documented split (every 5th file held out), inputs normalised like inference
    files = sorted(run["calib"].glob("*.png"))
    assert len(files) == 10
    held_files = files[4::5]
    calib_files = [f for f in files if f not in held_files]
    sessions = [ort.InferenceSession(str(run[k]), providers=["CPUExecutionProvider"])
                for k in ("int8", "fp32")]

    def outputs(paths):
        x = [np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 127.5 - 1 for p in paths]
        batch = [a.transpose(2, 0, 1)[None] for a in x]
        return [np.concatenate([s.run(None, {"image": b})[0] for b in batch]) for s in sessions]

    assert abs(_psnr(*outputs(calib_files)) - reported) < 0.01
    assert abs(_psnr(*outputs(held_files)) - held) < 0.01
    meta = gantransfer.onnx.load(run["int8"], providers="cpu").metadata
    assert meta.precision == "int8" and meta.psnr_db == reported
    assert meta.quantization["calib_images"] == 8 and meta.quantization["heldout_images"] == 2
    assert len(meta.quantization["fp32_nodes"]) == 2


def test_int8_file_runs_at_dynamic_shapes_through_the_runtime(run):
    model = gantransfer.onnx.load(run["int8"], providers="cpu")
    for shape in ((1, 3, 8, 8), (2, 3, 16, 24), (1, 3, 64, 40)):
        x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
        y = model.run(x)
        assert y.shape == shape and np.isfinite(y).all()
    img = np.random.default_rng(1).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    assert model.translate(img).shape == (37, 53, 3)  # padded to the divisor and cropped back


def test_translate_cli_runs_int8_file(run):
    out = run["root"] / "translated"
    result = runner.invoke(app, ["translate", str(run["int8"]), str(run["calib"]), "-o", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    written = sorted(out.rglob("*.png"))
    assert len(written) == 10 and Image.open(written[0]).size == (SIZE, SIZE)


def test_refused_quantisation_names_psnr_and_keeps_existing_file(run):
    dest = run["root"] / "refused.onnx"
    dest.write_bytes(b"old file")
    with pytest.raises(QuantizationError, match=r"PSNR vs fp32 \d+\.\d\d dB.*below the required "
                                                r"200 dB.*--min-psnr"):
        quantize_int8(run["fp32"], dest, calib=run["calib"], size=SIZE, min_psnr=200)
    assert dest.read_bytes() == b"old file"
    leftovers = [p.name for p in run["root"].iterdir() if p.name.startswith(".refused")]
    assert leftovers == []  # no temporary file left behind
    fresh = run["root"] / "never.onnx"
    with pytest.raises(QuantizationError):
        quantize_int8(run["fp32"], fresh, calib=run["calib"], size=SIZE, min_psnr=200)
    assert not fresh.exists()


def test_bad_calibration_folders_give_errors_naming_the_folder(run, tmp_path):
    missing, empty, broken = tmp_path / "missing", tmp_path / "empty", tmp_path / "broken"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    (broken / "sub").mkdir(parents=True)
    (broken / "sub" / "a.png").write_bytes(b"not a png")
    for folder, what in ((missing, "does not exist"), (empty, "has no image files"),
                         (broken, "has no readable images")):
        with pytest.raises(CalibrationError, match=what) as info:
            quantize_int8(run["fp32"], tmp_path / "x.onnx", calib=folder, size=SIZE)
        assert str(folder) in str(info.value)
        assert not (tmp_path / "x.onnx").exists()


def test_int8_option_errors(run, tmp_path):
    ckpt, calib = str(run["ckpt"]), str(run["calib"])
    cases = [
        (["--int8"], "--int8 needs --calib"),
        (["--int8", "--calib", calib, "--precision", "fp16"], "cannot be combined"),
        (["--calib", calib], "only apply with --int8"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, ["export", ckpt, "--onnx", str(tmp_path / "x.onnx"), *extra])
        assert result.exit_code != 0 and message in result.output, result.output
    with pytest.raises(ValueError, match="one target at a time"):
        gantransfer.export_onnx(run["ckpt"], tmp_path / "x.onnx", target="all",
                                precision="int8", calib=run["calib"])
    with pytest.raises(CalibrationError, match="does not exist"):  # checked before exporting
        gantransfer.export_onnx(run["ckpt"], tmp_path / "x.onnx", precision="int8",
                                calib=tmp_path / "nowhere")
    with pytest.raises(ValueError, match="needs calib="):
        gantransfer.export_onnx(run["ckpt"], tmp_path / "x.onnx", precision="int8")
    torch.manual_seed(0)
    dcgan = gantransfer.get("dcgan", ngf=4, ndf=4, nz=8, image_size=16)
    with pytest.raises(ValueError, match="latent vectors"):
        gantransfer.export_onnx(dcgan, tmp_path / "x.onnx", precision="int8",
                                calib=run["calib"])
    assert not (tmp_path / "x.onnx").exists()


def test_fp32_convs_found_by_topology_not_names_or_order():
    def conv(name, x, y):
        return helper.make_node("Conv", [x, f"w_{y}"], [y], name=name)

    # x -> A -> B -> (C | T) ; C -> add ; T(ConvTranspose) -> D -> add -> E -> out
    nodes = [conv("", "x", "a"), conv("mid1", "a", "b"), conv("mid2", "b", "c"),
             helper.make_node("ConvTranspose", ["b", "w_t"], ["t"], name="up"),
             conv("mid3", "t", "d"), helper.make_node("Add", ["c", "d"], ["s"], name="add"),
             conv("tail", "s", "out")]
    model = helper.make_model(helper.make_graph(list(reversed(nodes)), "g", [], []))
    keep = fp32_conv_nodes(model)  # reversed node order: must not matter
    first = next(n.name for n in model.graph.node if n.output[0] == "a")
    assert first  # the unnamed first conv was given a name so it can be excluded
    assert sorted(keep) == sorted([first, "tail"])


def test_static_shape_int8_export_fills_fixed_batches(run, tmp_path):
    dest = tmp_path / "static.onnx"
    result = gantransfer.export_onnx(run["ckpt"], dest, target="a2b", static_shape=(3, 32, 32),
                                     precision="int8", calib=run["calib"], min_psnr=0)[0]
    assert list(result.max_abs_error) == ["3x3x32x32"]
    meta = gantransfer.onnx.load(dest, providers="cpu").metadata
    # 8 calibration images in fixed batches of 3: the last batch is padded, not counted twice
    assert meta.quantization["calib_images"] == 8 and meta.psnr_db == round(result.psnr, 3)
    with pytest.raises(ValueError, match="fixed input size 32x32"):
        gantransfer.export_onnx(run["ckpt"], tmp_path / "bad.onnx", target="a2b",
                                static_shape=(1, 32, 32), precision="int8",
                                calib=run["calib"], calib_size=64)
