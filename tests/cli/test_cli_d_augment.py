"""`gtx train --set d_augment=...`: the engine option from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from gantransfer.data import demo as demo_data


def gtx(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "gantransfer", *args], capture_output=True,
                          text=True, env=env, timeout=300)


TINY = ["--set", "image_size=16", "--set", "ngf=4", "--set", "ndf=4", "--set", "nz=8",
        "--batch-size", "4", "--progress", "none"]


def test_d_augment_is_a_run_setting_and_bad_names_are_reported(tmp_path: Path) -> None:
    demo_data.make_single(tmp_path / "data", n=8, size=16, seed=0)
    out = gtx("train", "dcgan", "--data", str(tmp_path / "data"), "-o", str(tmp_path / "run"),
              "--steps", "2", "--set", "d_augment=translation,cutout", "--set",
              "d_augment_target=0.6", "--set", "d_augment_interval=1", "--set", "log_every=1",
              *TINY)
    assert out.returncode == 0, out.stderr
    config = tomllib.loads((tmp_path / "run" / "config.toml").read_text())
    assert config["train"]["d_augment"] == "translation,cutout"
    assert (config["train"]["d_augment_target"], config["train"]["d_augment_interval"]) == (0.6, 1)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(0.0 <= x["aug_p"] <= 1.0 for x in lines) and len(lines) == 2
    bad = gtx("train", "dcgan", "--data", str(tmp_path / "data"), "-o", str(tmp_path / "bad"),
              "--steps", "1", "--set", "d_augment=colour", *TINY)
    assert bad.returncode == 1, bad.stdout + bad.stderr  # a bad config value, as for any field
    message = bad.stdout + bad.stderr
    assert "'colour'" in message and "color,translation,cutout" in message
    assert "Traceback" not in message

    # Adaptive strength of no augmentation: a config error, said before training starts.
    off = gtx("train", "dcgan", "--data", str(tmp_path / "data"), "-o", str(tmp_path / "off"),
              "--steps", "1", "--set", "d_augment_target=0.6", *TINY)
    assert off.returncode == 1, off.stdout + off.stderr
    message = off.stdout + off.stderr
    assert "d_augment_target" in message and "Traceback" not in message
