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
