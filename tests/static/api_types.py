"""The types of the public entry points, checked by mypy (tests/test_types.py runs it on this
file with the package): a hint that gets vaguer (``Any``) or wrong fails the suite. Never run.
"""

from __future__ import annotations

from pathlib import Path
from typing import assert_type

import torch
from torch import nn

import gantransfer
from gantransfer import DataConfig, GANModel, TrainConfig, Trainer
from gantransfer.export import ExportResult
from gantransfer.inference import Translator, translate_files, translator
from gantransfer.inference.pipeline import PipelineStats
from gantransfer.onnx import OnnxModel
from gantransfer.onnx import load as load_onnx


def entry_points(run: Path, out: Path) -> None:
    model = gantransfer.get("cyclegan", ngf=8)
    assert_type(model, GANModel)
    assert_type(gantransfer.get_network("patchgan", input_nc=3), nn.Module)
    assert_type(gantransfer.build_network("patchgan", input_nc=3), nn.Module)
    assert_type(gantransfer.load(run), GANModel)
    assert_type(gantransfer.load(str(run), device="cpu", ema=True), GANModel)

    trainer = Trainer(model, DataConfig(root=str(run)), TrainConfig(steps=1), out)
    assert_type(trainer.fit(), GANModel)

    assert_type(gantransfer.export_onnx(model, out), list[ExportResult])
    assert_type(gantransfer.export_onnx(run, out, static_shape=(1, 64, 64)), list[ExportResult])

    onnx_model = load_onnx(out)
    assert_type(onnx_model, OnnxModel)
    assert_type(onnx_model.generate(2), torch.Tensor)
    assert_type(translator(model), Translator)
    assert_type(translator(onnx_model), Translator)
    assert_type(translator(translator(model)), Translator)
    assert_type(translate_files(translator(model), [(run, out)]), PipelineStats)
