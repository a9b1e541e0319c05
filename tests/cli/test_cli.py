"""The `gtx` CLI end to end, as a user runs it (subprocess: real exit codes and output)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gantransfer.data import demo as demo_data


def gtx(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "gantransfer", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


def test_version_and_help():
    from gantransfer import __version__

    out = gtx("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"gantransfer {__version__}"
    helptext = gtx("--help").stdout
    for command in ("train", "demo", "export", "translate", "generate", "data", "list", "info",
                    "plugins"):
        assert command in helptext


def test_list_info_and_plugins():
    out = gtx("list")
    assert out.returncode == 0
    assert "cyclegan" in out.stdout and "dcgan" in out.stdout and "resnet_9blocks" in out.stdout
    info = gtx("info", "cyclegan")
    assert info.returncode == 0
    assert "lambda_A" in info.stdout and "resnet_9blocks" in info.stdout
    assert "from: gantransfer" in info.stdout
    plugins = gtx("plugins")
    assert plugins.returncode == 0, plugins.stdout + plugins.stderr
    assert "ok" in plugins.stdout and "broken" not in plugins.stdout


def test_unknown_name_is_one_clear_line_and_exit_1():
    out = gtx("info", "cycelgan")
    assert out.returncode == 1
    assert "unknown architecture 'cycelgan'" in out.stderr and "Did you mean 'cyclegan'" in out.stderr
    assert "Traceback" not in out.stderr


def test_usage_error_exits_2():
    out = gtx("train", "dcgan", "--steps", "many")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    demo_data.make_single(root, n=16, size=16, seed=0)
    return root


def test_train_then_resume_without_repeating_flags(shapes, tmp_path):
    run = tmp_path / "run"
    common = ["--set", "checkpoint_every=2", "--set", "sample_every=2", "--set", "log_every=1",
              "--progress", "log"]
    first = gtx("train", "dcgan", "--data", str(shapes), "-o", str(run), "--steps", "2",
                "--batch-size", "4", "--set", "image_size=16", "--set", "ngf=4", "--set",
                "ndf=4", "--set", "data.load_size=16", "--set", "data.crop_size=16", *common)
    assert first.returncode == 0, first.stderr
    assert (run / "checkpoints" / "step_0000002.pt").is_file()
    assert (run / "config.toml").is_file() and (run / "samples" / "step_0000002.png").is_file()

    # Only the new length is given: architecture, model config and data come from the run.
    second = gtx("train", "-o", str(run), "--resume", "auto", "--steps", "4", "--progress", "log")
    assert second.returncode == 0, second.stderr
    assert (run / "checkpoints" / "step_0000004.pt").is_file()
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    ckpt = torch.load(run / "checkpoints" / "step_0000004.pt", weights_only=True)
    assert ckpt["config"]["ngf"] == 4 and ckpt["architecture"] == "dcgan"


def test_train_errors_are_clear(shapes, tmp_path):
    bad_key = gtx("train", "dcgan", "--data", str(shapes), "-o", str(tmp_path / "r"), "--steps",
                  "1", "--set", "ngff=3")
    assert bad_key.returncode == 1
    assert "no config field 'ngff'" in bad_key.stderr and "Traceback" not in bad_key.stderr

    missing = gtx("train", "cyclegan", "--data", str(tmp_path / "nowhere"), "-o",
                  str(tmp_path / "r2"), "--steps", "1")
    assert missing.returncode == 1
    assert "trainA" in missing.stderr and "Traceback" not in missing.stderr

    no_length = gtx("train", "dcgan", "--data", str(shapes), "-o", str(tmp_path / "r3"))
    assert no_length.returncode == 2 and "--steps N or --epochs N" in no_length.stderr


def test_train_from_toml_config(shapes, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        'architecture = "dcgan"\n[model]\nimage_size = 16\nngf = 4\nndf = 4\n'
        f'[train]\nsteps = 1\nbatch_size = 2\n[data]\nroot = "{shapes.as_posix()}"\n'
        "load_size = 16\ncrop_size = 16\n"
    )
    out = gtx("train", "--config", str(config), "-o", str(tmp_path / "run"), "--progress", "none")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "run" / "checkpoints" / "step_0000001.pt").is_file()


def test_demo_runs_end_to_end(tmp_path):
    out = gtx("demo", "-o", str(tmp_path / "demo"), "--steps", "20", "--progress", "none")
    assert out.returncode == 0, out.stderr
    assert "PSNR against ground truth" in out.stdout and "identity baseline" in out.stdout
    assert (tmp_path / "demo" / "comparison.png").is_file()
    assert (tmp_path / "demo" / "demo_a2b.onnx").is_file()
    assert list((tmp_path / "demo" / "run" / "samples").glob("step_*.png"))
