"""Data-parallel training under torchrun: 2 CPU processes on gloo, tiny models, a few steps.

Each rank's weights are read back through the engine's debug hook ``GANTRANSFER_DEBUG_STATE_DIR``
(every rank writes its state dict and a parameter digest at the start and end of ``fit``), so the
tests compare real per-rank weights rather than trusting rank 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gantransfer
from gantransfer.data import DataConfig
from gantransfer.data.demo import make_single, make_two_domain
from gantransfer.engine import TrainConfig, Trainer

DCGAN = ["--set", "image_size=16", "--set", "ngf=4", "--set", "ndf=4", "--set", "nz=8"]
CYCLEGAN = dict(netG="resnet_6blocks", ngf=4, ndf=4, n_layers_D=2, pool_size=0, dropout=False)
COMMON = ["--device", "cpu", "--progress", "none", "--set", "log_every=1",
          "--set", "sample_every=0", "--set", "num_workers=0"]


def _run(args: list[str], *, dump: Path, torchrun: bool = True) -> subprocess.CompletedProcess:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone",
                 "--nproc-per-node", "2", "-m", "gantransfer"] if torchrun
                else [sys.executable, "-m", "gantransfer"])
    env = dict(os.environ, GANTRANSFER_DEBUG_STATE_DIR=str(dump), OMP_NUM_THREADS="1")
    proc = subprocess.run([*launcher, "train", *args, *COMMON], env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _digests(dump: Path, when: str) -> list[str]:
    return [(dump / f"{when}_rank{r}.sha256").read_text().strip() for r in range(2)]


def _files(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())


def _logged_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def single_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("single")
    make_single(root, n=16, size=16, seed=0)
    return root


@pytest.fixture(scope="module")
def two_domain(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("two")
    make_two_domain(root, n_train=8, n_test=2, size=16, seed=0)
    return root


def test_dcgan_under_torchrun_keeps_ranks_identical_writes_once_and_resumes(tmp_path,
                                                                             single_data):
    run, dump = tmp_path / "run", tmp_path / "dump"
    _run(["dcgan", "--data", str(single_data), "-o", str(run), "--steps", "2", "-b", "2", *DCGAN],
         dump=dump)
    start, end = _digests(dump, "start"), _digests(dump, "end")
    assert start[0] == start[1], "DDP did not start every rank from rank 0's weights"
    assert end[0] == end[1], "ranks' weights diverged: gradients were not synchronised"
    assert start[0] != end[0], "training did not change the weights"
    # Rank 0 alone writes: each step logged exactly once, and nothing beyond the expected files.
    assert _logged_steps(run) == [1, 2]
    assert _files(run) == ["checkpoints/step_0000002.pt", "config.toml", "metrics.jsonl",
                           "samples/step_0000002.png"]
    model = gantransfer.load(run)  # a DDP checkpoint loads in one process: no "module." keys
    saved = torch.load(dump / "end_rank0.pt", weights_only=True)
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key
    data = torch.load(run / "checkpoints" / "step_0000002.pt", weights_only=True)
    assert data["world_size"] == 2 and len(data["rng_ranks"]) == 2
    assert not torch.equal(data["rng_ranks"][0]["torch"], data["rng_ranks"][1]["torch"])

    _run(["-o", str(run), "--steps", "3", "--resume", "auto"], dump=dump)
    resumed = torch.load(run / "checkpoints" / "step_0000003.pt", weights_only=True)
    assert resumed["step"] == 3
    # Per rank: 3 steps x batch 2 of this rank's 8 samples (the sampler position was restored).
    assert (resumed["epoch"], resumed["data_position"]) == (0, 6)
    assert _logged_steps(run) == [1, 2, 3]
    assert _digests(dump, "start")[0] == end[0], "resume did not start from the saved weights"
    assert len(set(_digests(dump, "end"))) == 1


def test_cyclegan_two_processes_batch_one_equal_one_process_batch_two(tmp_path, two_domain):
    run, dump = tmp_path / "run", tmp_path / "dump"
    sets = [a for k, v in CYCLEGAN.items() for a in ("--set", f"{k}={str(v).lower()}")]
    _run(["cyclegan", "--data", str(two_domain), "-o", str(run), "--steps", "1", "-b", "1",
          "--set", "load_size=16", "--set", "crop_size=16", "--nproc", "2", *sets],
         dump=dump, torchrun=False)  # through `gtx train --nproc 2`
    assert len(set(_digests(dump, "end"))) == 1
    assert _files(run) == ["checkpoints/step_0000001.pt", "config.toml", "metrics.jsonl",
                           "samples/step_0000001.png"]

    # One process, batch 2, from the same initial weights: the strided sampler gives rank r the
    # global positions r, r+2, ... so step k of both runs sees the same two (image, seed) keys.
    model = gantransfer.get("cyclegan", **CYCLEGAN)
    start = torch.load(dump / "start_rank0.pt", weights_only=True)
    model.load_state_dict(start)
    data = DataConfig(root=str(two_domain), load_size=16, crop_size=16)
    config = TrainConfig(steps=1, batch_size=2, device="cpu", seed=0, sample_every=0,
                         num_workers=0)
    Trainer(model, data, config, tmp_path / "single", callbacks=[]).fit()
    # DDP's averaged gradients equal the batch-2 gradients (losses are batch means): a sum
    # instead of a mean, or a rank training on its own samples only, would be far off.
    grads = torch.load(dump / "end_rank0_grads.pt", weights_only=True)
    single_grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert sorted(grads) == sorted(single_grads) and len(grads) == len(list(model.parameters()))
    # Tolerance per net, relative to its largest gradient: the two runs sum in different orders
    # (measured in one process, batch-2 vs mean of two batch-1 gradients: ~2e-5 of the maximum;
    # biases in front of InstanceNorm have zero true gradient and only carry that noise).
    scale = {net: max(g.abs().max().item() for n, g in single_grads.items()
                      if n.startswith(f"nets.{net}.")) for net in model.nets}
    tol = {n: 1e-4 * scale[n.split(".")[1]] for n in single_grads}
    for name, g in single_grads.items():
        torch.testing.assert_close(grads[name], g, atol=tol[name], rtol=0,
                                   msg=lambda m, n=name: f"gradient of {n}: {m}")
    # Weights: Adam's first step is lr * g / (|g| + eps), i.e. about lr * sign(g), so entries
    # whose gradient is within noise of zero may move either way; all the others must match.
    distributed = torch.load(dump / "end_rank0.pt", weights_only=True)
    solid_total = count = 0
    for name, p in model.named_parameters():
        key = name
        # 10 x tol is ~50 x the measured summation noise, so the sign of these entries is stable.
        solid = p.grad.abs() > 10 * tol[name]
        solid_total, count = solid_total + int(solid.sum()), count + solid.numel()
        torch.testing.assert_close(p.detach()[solid], distributed[key][solid], atol=1e-7,
                                   rtol=1e-5, msg=lambda m, n=name: f"{n}: {m}")
        assert not torch.equal(p.detach(), start[key]), f"{name} did not train"
    assert solid_total > 0.5 * count, f"only {solid_total}/{count} weights were compared"
