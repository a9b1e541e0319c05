"""Old import paths keep working for one release: each warns (DeprecationWarning, naming the new
place) and gives the object of the new place itself."""

from __future__ import annotations

import importlib

import pytest
import torch

# (old module, name, new module, new name)
MOVED = [
    ("gantransfer.engine.precision", "cpu_has_native_bf16", "gantransfer.precision",
     "cpu_has_native_bf16"),
    ("gantransfer.engine.precision", "native_bf16", "gantransfer.precision", "native_bf16"),
    ("gantransfer.pipeline", "translate_files", "gantransfer.inference.pipeline",
     "translate_files"),
    ("gantransfer.pipeline", "PipelineStats", "gantransfer.inference.pipeline", "PipelineStats"),
    ("gantransfer.pipeline", "TranslationMemoryError", "gantransfer.inference.pipeline",
     "TranslationMemoryError"),
    ("gantransfer.pipeline", "save_image", "gantransfer.inference.pipeline", "save_image"),
    ("gantransfer.pipeline", "as_translator", "gantransfer.inference.dispatch", "translator"),
    ("gantransfer.pipeline", "onnx_translator", "gantransfer.inference.onnx_backend",
     "onnx_translator"),
    *[("gantransfer.registry", name, "gantransfer.factory", name)
      for name in ("get", "get_network", "build_network", "spec", "PluginSpec", "FieldSpec")],
    ("gantransfer.registry", "make_config", "gantransfer.config", "build_config"),
    ("gantransfer.export.metadata", "OnnxMetadata", "gantransfer.targets", "OnnxMetadata"),
    ("gantransfer.export.metadata", "METADATA_PREFIX", "gantransfer.targets", "METADATA_PREFIX"),
    *[("gantransfer.export._providers", name, "gantransfer.inference._providers", name)
      for name in ("ALIASES", "ProviderUnavailableError", "choose_providers", "provider_usable")],
    ("gantransfer.export.runtime", "load", "gantransfer.onnx", "load"),
    ("gantransfer.export.runtime", "OnnxModel", "gantransfer.onnx", "OnnxModel"),
    ("gantransfer.export.runtime", "OnnxLoadError", "gantransfer.onnx", "OnnxLoadError"),
    ("gantransfer.export.runtime", "ProviderUnavailableError", "gantransfer.onnx",
     "ProviderUnavailableError"),
    *[("gantransfer.inference", name, "gantransfer.inference.images", name)
      for name in ("bucket_size", "crop_to", "from_batch", "pad_to_multiple", "padded_size",
                   "to_batch", "to_channels")],
    *[("gantransfer.inference", name, "gantransfer.inference.runner", name)
      for name in ("check_finite", "map_images", "resolve_compile", "DEFAULT_BATCH_SIZE")],
    *[("gantransfer.inference", name, "gantransfer.inference.defaults", name)
      for name in ("compile_min_images", "default_batch_size")],
    *[("gantransfer.inference", name, "gantransfer.inference.torch_backend", name)
      for name in ("model_source", "resolve_target", "torch_translator")],
]


@pytest.mark.parametrize(("old", "name", "new", "new_name"), MOVED,
                         ids=[f"{o}.{n}" for o, n, _, _ in MOVED])
def test_old_path_warns_and_gives_the_new_object(old, name, new, new_name):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=f"{name} is deprecated: use {new}"):
        value = getattr(module, name)
    assert value is getattr(importlib.import_module(new), new_name)


def test_unknown_names_of_a_shim_are_attribute_errors():
    module = importlib.import_module("gantransfer.engine.precision")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        module.nope  # noqa: B018


def test_old_precision_helpers_keep_their_meaning():
    from gantransfer.engine import precision

    with pytest.warns(DeprecationWarning, match="Precision.resolve"):
        resolve = precision.resolve_precision
    assert resolve("fp32", torch.device("cpu")) == "fp32"
    with pytest.warns(DeprecationWarning):
        assert precision.PRECISIONS == ("fp32", "bf16", "fp16", "auto")


def test_old_inference_precision_helpers_keep_their_meaning():
    import gantransfer.inference as inference

    with pytest.warns(DeprecationWarning, match="job='translation'"):
        resolve = inference.resolve_inference_precision
    assert resolve("auto", torch.device("cpu"), compiled=False) == "fp32"  # eager CPU: fp32
    with pytest.warns(DeprecationWarning):
        assert inference.INFERENCE_PRECISIONS == ("fp32", "bf16", "auto")


def test_from_plain_is_build_config():
    from gantransfer import config
    from gantransfer.engine import TrainConfig

    with pytest.warns(DeprecationWarning, match="build_config"):
        from_plain = config.from_plain
    assert from_plain(TrainConfig, {"steps": 3}) == TrainConfig(steps=3)

