"""The shipped config presets (examples/presets/*.toml) train through `gtx train --config`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from torch import nn

import gantransfer
from gantransfer.data import demo as demo_data
from gantransfer.runconfig import RunSpec

PRESETS = Path(__file__).parents[2] / "examples" / "presets"


def test_every_preset_builds_its_architecture():
    files = sorted(PRESETS.glob("*.toml"))
    assert files, f"no presets in {PRESETS}"
    for path in files:
        spec = RunSpec.from_toml(path)
        assert spec.architecture, f"{path.name} names no architecture"
        gantransfer.get(spec.architecture, **{**spec.model, "ngf": 4, "ndf": 4})


def test_small_image_preset_trains_a_full_resolution_norm_free_cyclegan(tmp_path):
    data = demo_data.make_two_domain(tmp_path / "data", n_train=4, n_test=1, size=24, seed=0)
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-m", "gantransfer", "train", "--config",
         str(PRESETS / "cyclegan-small.toml"), "--data", str(data), "-o", str(run), "--steps",
         "2", "--progress", "none", "--set", "ngf=4", "--set", "ndf=4", "--set", "crop_size=24",
         "--set", "load_size=24"],
        capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    model = gantransfer.load(run)
    assert model.config.norm == "none" and model.config.ngf == 4  # the command line wins
    g = model.nets["g_ab"]
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in g.modules())
    assert all(m.stride == (1, 1) for m in g.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("bad", ["{ n_downsampling = 7 }", "[1, 2]"])
def test_a_bad_generator_option_is_a_clear_cli_error(tmp_path, bad):
    data = demo_data.make_two_domain(tmp_path / "data", n_train=2, n_test=1, size=16, seed=0)
    out = subprocess.run(
        [sys.executable, "-m", "gantransfer", "train", "cyclegan", "--data", str(data), "-o",
         str(tmp_path / "run"), "--steps", "1", "--progress", "none", "--set",
         f"generator_kwargs={bad}"],
        capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert "n_downsampling" in out.stderr or "generator_kwargs" in out.stderr
