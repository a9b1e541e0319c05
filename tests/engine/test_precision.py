"""Mixed precision: ``auto`` resolution, what stays fp32 under bf16, bf16 training and resume,
and the CycleGAN step doing no redundant work (tiny sizes, CPU)."""

from __future__ import annotations

import gc
import json
import logging
import os
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

import gantransfer
from gantransfer import precision
from gantransfer.engine import TrainConfig, Trainer
from gantransfer.engine.context import EngineContext
from gantransfer.precision import Precision

CYCLEGAN = dict(netG="resnet_6blocks", ngf=4, ndf=4, n_layers_D=2, pool_size=2,
                load_size=16, crop_size=16)
DCGAN = dict(image_size=16, ngf=4, ndf=4, nz=8)


class Unpaired(Dataset):
    """Four random 16 px A/B pairs; a sample is a pure function of (index, seed)."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, key: Any) -> dict[str, torch.Tensor]:
        index, seed = key if isinstance(key, tuple) else (key, key)
        g = torch.Generator().manual_seed(int(index) * 1000 + int(seed) % 1000)
        return {"A": torch.rand(3, 16, 16, generator=g) * 2 - 1,
                "B": torch.rand(3, 16, 16, generator=g) * 2 - 1}


class Single(Dataset):
    """Eight random 16 px images (the ``single`` data kind)."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, key: Any) -> dict[str, torch.Tensor]:
        index, seed = key if isinstance(key, tuple) else (key, key)
        g = torch.Generator().manual_seed(int(index) * 1000 + int(seed) % 1000)
        return {"image": torch.rand(3, 16, 16, generator=g) * 2 - 1}


def make(arch: str) -> tuple[Any, Dataset, int]:
    torch.manual_seed(0)  # the same initial weights for every precision
    if arch == "cyclegan":
        return gantransfer.get("cyclegan", **CYCLEGAN), Unpaired(), 1
    return gantransfer.get("dcgan", **DCGAN), Single(), 4


def train(arch: str, run_dir: Path, steps: int, *, prec: str, resume: str | None = None,
          ) -> Trainer:
    model, data, batch = make(arch)
    config = TrainConfig(steps=steps, batch_size=batch, device="cpu", precision=prec, seed=3,
                         log_every=1, sample_every=0, checkpoint_every=100, num_workers=0)
    trainer = Trainer(model, data, config, run_dir, callbacks=())
    trainer.fit(resume=resume)
    return trainer


def first_losses(run_dir: Path) -> dict[str, float]:
    return json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])["losses"]


def bf16_context(model: Any) -> EngineContext:
    return EngineContext(model, optimizers=model.make_optimizers(),
                         groups=model.optimizer_groups(), scalers={}, precision="bf16",
                         device=torch.device("cpu"), grad_clip=None, ema=None)


# -- auto ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_resolves_per_device_and_logs_the_choice(monkeypatch, caplog, native, expected):
    monkeypatch.setattr(precision, "native_bf16", lambda device: native)
    with caplog.at_level(logging.INFO, logger="gantransfer.precision"):
        assert Precision.resolve("auto", torch.device("cpu"), job="training") == expected
    assert f"precision auto: {expected} on cpu" in caplog.text
    # explicit requests are taken as given, and the Trainer uses the resolved one
    assert Precision.resolve("fp32", torch.device("cpu"), job="training") == "fp32"
    model, data, _ = make("cyclegan")
    trainer = Trainer(model, data, TrainConfig(steps=1, device="cpu", precision="auto"),
                      "unused-run-dir", callbacks=())
    assert trainer.precision == expected and trainer.config.precision == "auto"


def test_native_bf16_on_cuda_needs_compute_capability_8(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for capability, native in (((7, 5), False), ((8, 0), True), ((9, 0), True)):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d, c=capability: c)
        assert precision.native_bf16(torch.device("cuda")) is native
    assert precision.native_bf16(torch.device("mps")) is False
    with pytest.raises(ValueError, match="fp16"):
        Precision.resolve("fp16", torch.device("cpu"), job="training")


def test_gtx_train_precision_auto_says_what_it_picked(tmp_path):
    from gantransfer.data import demo as demo_data

    demo_data.make_two_domain(tmp_path / "data", n_train=2, n_test=1, size=16, seed=0)
    run = tmp_path / "run"
    args = ["train", "cyclegan", "--data", str(tmp_path / "data"), "-o", str(run), "--steps", "1",
            "--precision", "auto", "--progress", "log", "--device", "cpu"]
    for key, value in CYCLEGAN.items():
        args += ["--set", f"{key}={value}"]
    env = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="200")
    out = subprocess.run([sys.executable, "-m", "gantransfer", *args], capture_output=True,
                         text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    expected = "bf16" if precision.native_bf16(torch.device("cpu")) else "fp32"
    assert f"precision auto: {expected} on cpu" in out.stdout + out.stderr
    assert (run / "checkpoints" / "step_0000001.pt").is_file()


# -- what stays fp32 -----------------------------------------------------------------------
def test_norm_layers_compute_in_fp32_inside_autocast_only():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.InstanceNorm2d(8), nn.Conv2d(8, 8, 1),
                        nn.BatchNorm2d(8))
    holder = nn.Module()
    holder.nets = nn.ModuleDict({"g": net})
    ctx = bf16_context_for(holder)
    seen: list[torch.dtype] = []
    for norm in (net[1], net[3]):
        norm.register_forward_hook(lambda m, args, out: seen.extend([args[0].dtype, out.dtype]))
    x = torch.randn(2, 3, 12, 12) * 4 + 20
    with ctx.autocast():
        out = net(x)
        assert net[0](x).dtype == torch.bfloat16  # convolutions do run in bf16
        with torch.autocast("cpu", enabled=False):  # a region the model keeps fp32 stays so
            net(x)
            net[1](x[:, :1].repeat(1, 8, 1, 1).bfloat16())  # and nothing is upcast there
    assert seen[:4] == [torch.float32] * 4 and seen[4:8] == [torch.float32] * 4
    assert seen[8:] == [torch.bfloat16] * 2
    assert out.dtype == torch.float32 and net[3].running_mean.dtype == torch.float32
    # the hooks live only inside the block
    assert not net[1]._forward_pre_hooks and not net[3]._forward_pre_hooks
    # fp32 statistics: closer to an all-fp32 InstanceNorm of the same bf16 conv output than
    # torch's plain bf16 autocast, which keeps the norm in bf16
    y = net[0](x).bfloat16()
    exact = torch.nn.functional.instance_norm(y.float())
    with ctx.autocast():
        ours = net[1](y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = net[1](y)
    assert plain.dtype == torch.bfloat16
    assert (ours - exact).abs().max() < 1e-5 < (plain.float() - exact).abs().max()


def bf16_context_for(holder: nn.Module) -> EngineContext:
    return EngineContext(holder, optimizers={}, groups={}, scalers={}, precision="bf16",
                         device=torch.device("cpu"), grad_clip=None, ema=None)


class RecordingContext(EngineContext):
    """The engine's context, recording each optimized loss and the grads it produced."""

    def __init__(self, model: Any) -> None:
        super().__init__(model, optimizers=model.make_optimizers(),
                         groups=model.optimizer_groups(), scalers={}, precision="bf16",
                         device=torch.device("cpu"), grad_clip=None, ema=None)
        self.record: list[tuple[str, torch.dtype, dict[str, bool]]] = []

    def optimize(self, group: str, loss: torch.Tensor) -> bool:
        for p in self.model.nets.parameters():  # so "has a grad" means "got one from this loss"
            p.grad = None
        done = super().optimize(group, loss)
        grads = {name: any(p.grad is not None for p in net.parameters())
                 for name, net in self.model.nets.items()}
        self.record.append((group, loss.dtype, grads))
        return done


@pytest.mark.parametrize("arch", ["cyclegan", "dcgan"])
def test_bf16_losses_are_fp32_and_each_update_touches_only_its_nets(arch):
    model, data, batch = make(arch)
    ctx = RecordingContext(model)
    items = torch.utils.data.default_collate([data[i] for i in range(batch)])
    model.train_step(items, ctx)
    generators = set(model.optimizer_groups()["g"])
    for group, dtype, grads in ctx.record:
        assert dtype == torch.float32
        trained = {n for n, has in grads.items() if has}
        assert trained == set(model.optimizer_groups()[group]), (group, trained)
    assert {g for g, _, _ in ctx.record} == {"g", "d"} and generators


def test_generator_step_graph_is_released_before_the_discriminator_step():
    """Even when the G update is skipped (non-finite loss: no backward frees the graph), no
    activation of the G step is alive during the D step."""
    model, data, _ = make("cyclegan")
    alive: list[weakref.ref] = []

    def keep(module: nn.Module, args: Any, out: torch.Tensor) -> None:
        alive.append(weakref.ref(out))

    for name in ("g_ab", "g_ba"):
        for module in model.nets[name].modules():
            if not list(module.children()):  # every layer's output: the graph saves most
                module.register_forward_hook(keep)

    class SkipG(RecordingContext):
        def optimize(self, group: str, loss: torch.Tensor) -> bool:
            if group == "g":
                self.alive_in_g_step = sum(r() is not None for r in alive)
                return self._skip(group, "loss")  # what a NaN G loss does: no backward
            gc.collect()
            self.alive_in_d_step = sum(r() is not None for r in alive)
            return super().optimize(group, loss)

    ctx = SkipG(model)
    model.train_step(torch.utils.data.default_collate([data[0]]), ctx)
    assert ctx.alive_in_g_step > 20 and ctx.alive_in_d_step == 0


# -- bf16 training -------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["cyclegan", "dcgan"])
def test_bf16_training_keeps_fp32_state_and_first_losses_match_fp32(tmp_path, arch):
    bf16 = train(arch, tmp_path / "bf16", 3, prec="bf16")
    train(arch, tmp_path / "fp32", 1, prec="fp32")
    model = bf16.model
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(b.dtype == torch.float32 for b in model.buffers() if b.is_floating_point())
    for opt in bf16.optimizers.values():
        for state in opt.state.values():
            assert state["exp_avg"].dtype == state["exp_avg_sq"].dtype == torch.float32
    lines = [json.loads(x) for x in (tmp_path / "bf16" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and lines[0]["nonfinite"] == lines[-1]["nonfinite"] == 0
    assert all(isinstance(v, float) for line in lines for v in line["losses"].values())
    # Step 1's losses come from the same initial weights and data: they differ only by the
    # forward pass's bf16 rounding.
    ours, ref = first_losses(tmp_path / "bf16"), first_losses(tmp_path / "fp32")
    assert ours.keys() == ref.keys()
    for key in ref:
        assert ours[key] == pytest.approx(ref[key], rel=0.03, abs=2e-3), key
    assert ours != ref  # bf16 really ran


def test_bf16_resume_is_bit_exact(tmp_path):
    straight = train("cyclegan", tmp_path / "straight", 4, prec="bf16")
    train("cyclegan", tmp_path / "split", 2, prec="bf16")
    resumed = train("cyclegan", tmp_path / "split", 4, prec="bf16", resume="auto")
    assert resumed.start_step == 2
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        if torch.is_tensor(a[key]):
            assert torch.equal(a[key], b[key]), key
    for group in straight.optimizers:
        sa = straight.optimizers[group].state_dict()["state"]
        sb = resumed.optimizers[group].state_dict()["state"]
        assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)


def test_fp16_scaler_overflow_is_not_counted_as_divergence_until_the_scale_is_tiny():
    w = nn.Parameter(torch.ones(3))
    holder = nn.Module()
    holder.nets = nn.ModuleDict({"g": nn.ParameterList([w])})
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    ctx = EngineContext(holder, optimizers={"g": torch.optim.SGD([w], lr=0.1)},
                        groups={"g": ["g"]}, scalers={"g": scaler}, precision="fp16",
                        device=torch.device("cpu"), grad_clip=None, ema=None)
    # gradients of 1e36: finite in fp32, infinite once scaled by 2**16
    assert ctx.optimize("g", (w * 1e36).sum()) is False
    assert scaler.get_scale() == 2.0**15 and torch.equal(w.detach(), torch.ones(3))
    assert ctx.nonfinite_total == 0 and not ctx.skipped_this_step
    # once the scale is below 1 the gradients are non-finite whatever the scale: counted
    scaler.update(0.5)
    assert ctx.optimize("g", torch.sqrt(w - 1).sum()) is False  # finite loss, infinite grads
    assert ctx.nonfinite_total == 1 and ctx.skipped_this_step
    # and a normal step goes through, unscaled
    scaler.update(1.0)
    assert ctx.optimize("g", w.sum()) is True
    assert torch.allclose(w.detach(), torch.full((3,), 0.9))
