"""The pix2pix example plugin (examples/gantransfer-pix2pix), used only through public paths.

CI installs it (``pip install ./examples/gantransfer-pix2pix``); without it every test here fails
with a message that says so, instead of skipping.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from torch import nn

import gantransfer
import gantransfer.nn
from gantransfer.testing import make_fake_data, shift_outputs

PLUGIN_SRC = Path(__file__).resolve().parents[1]
INSTALL = f"pip install {PLUGIN_SRC}"
TINY = ["--set", "netG=resnet_6blocks", "--set", "ngf=4", "--set", "ndf=4", "--set",
        "n_layers_D=2", "--set", "load_size=16", "--set", "crop_size=16"]


@pytest.fixture(autouse=True, scope="module")
def _plugin_installed() -> None:
    if "pix2pix" not in gantransfer.list():
        pytest.fail(f"the pix2pix example plugin is not installed; run `{INSTALL}`",
                    pytrace=False)


def gtx(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "gantransfer", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def tiny(**overrides: Any) -> Any:
    torch.manual_seed(0)
    values = {"netG": "resnet_6blocks", "ngf": 4, "ndf": 4, "n_layers_D": 2, "load_size": 16,
              "crop_size": 16, **overrides}
    return gantransfer.get("pix2pix", **values)


def first_conv(net: nn.Module) -> nn.Conv2d:
    return next(m for m in net.modules() if isinstance(m, nn.Conv2d))


def test_info_shows_the_plugin_and_its_fields() -> None:
    out = gtx("info", "pix2pix")
    assert out.returncode == 0, out.stderr
    assert "from: gantransfer-pix2pix" in out.stdout and "data: paired" in out.stdout
    assert "lambda_L1" in out.stdout and "unet_256" in out.stdout


def test_networks_come_from_the_registry_with_a_conditional_discriminator() -> None:
    model = tiny(in_channels=1, out_channels=3)
    assert type(model.nets["g"]) is type(gantransfer.get_network("resnet_6blocks", ngf=4))
    # D judges (input, output) pairs: 1 + 3 channels in.
    assert first_conv(model.nets["d"]).in_channels == 4
    assert first_conv(model.nets["g"]).in_channels == 1
    assert model.config.lambda_L1 == 100.0 and model.config.lr == 2e-4
    assert model.config.beta1 == 0.5
    opt = model.make_optimizers()["g"]
    assert opt.defaults["betas"] == (0.5, 0.999)


def test_export_target_takes_size_rules_from_the_generator() -> None:
    unet = gantransfer.get("pix2pix", ngf=1, ndf=1)  # default netG: unet_256
    assert unet.export_targets()["a2b"].size_divisor == 256
    resnet = tiny()
    spec = resnet.export_targets()["a2b"]
    assert (spec.net, spec.size_divisor, spec.min_size, spec.direction) == ("g", 4, 8, "a2b")


class RecordingContext:
    """A StepContext that records, per optimize call, which nets received gradients."""

    step, epoch, rank, world_size = 0, 0, 0, 1
    device = torch.device("cpu")

    def __init__(self, model: Any) -> None:
        self.model = model
        self.grads: dict[str, set[str]] = {}

    def optimize(self, group: str, loss: torch.Tensor) -> bool:
        self.model.zero_grad(set_to_none=True)
        loss.backward()
        self.grads[group] = {name for name, net in self.model.nets.items()
                             if any(p.grad is not None for p in net.parameters())}
        return True

    def frozen(self, *nets: str) -> Any:
        import contextlib

        @contextlib.contextmanager
        def block() -> Any:
            params = [p for n in nets for p in self.model.nets[n].parameters()]
            flags = [p.requires_grad for p in params]
            for p in params:
                p.requires_grad_(False)
            try:
                yield
            finally:
                for p, flag in zip(params, flags, strict=True):
                    p.requires_grad_(flag)
        return block()

    def autocast(self) -> Any:
        import contextlib

        return contextlib.nullcontext()

    def discriminate(self, d, *batches, real=None, threshold=0.0, **options):
        # real/threshold feed the engine's adaptive augmentation, which this fake has not.
        return gantransfer.nn.discriminate(d, *batches, **options)


def test_train_step_freezes_d_for_g_and_judges_real_and_fake_pairs_apart() -> None:
    model = tiny().train()
    batch_sizes: list[int] = []
    model.nets["d"].register_forward_hook(lambda m, i, o: batch_sizes.append(i[0].shape[0]))
    ctx = RecordingContext(model)
    batch = {"A": torch.rand(2, 3, 16, 16) * 2 - 1, "B": torch.rand(2, 3, 16, 16) * 2 - 1}
    logs = model.train_step(batch, ctx)
    assert ctx.grads == {"d": {"d"}, "g": {"g"}}
    # Default D has BatchNorm: real and fake pairs get their own forwards, then the G step's.
    assert batch_sizes == [2, 2, 2]
    assert logs["loss_G"] == pytest.approx(logs["loss_G_GAN"] + logs["loss_G_L1"], rel=1e-5)
    assert logs["loss_D"] == pytest.approx(0.5 * (logs["loss_D_real"] + logs["loss_D_fake"]),
                                           rel=1e-5)


def test_network_plugin_is_usable_by_name_as_the_conditional_discriminator() -> None:
    model = tiny(discriminator="multiscale_patchgan", discriminator_kwargs={"scales": 2},
                 load_size=32, crop_size=32)
    d = model.nets["d"]
    assert len(d.scales) == 2 and all(first_conv(s).in_channels == 6 for s in d.scales)
    # n_layers 2: scale 0 gives a 6x6 logit map at 32 px, scale 1 a 2x2 map at the pooled 16 px.
    assert d(torch.rand(2, 6, 32, 32)).shape == (2, 36 + 4)
    ctx = RecordingContext(model.train())
    batch = {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    logs = model.train_step(batch, ctx)
    assert ctx.grads == {"d": {"d"}, "g": {"g"}}
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values()), logs


@pytest.mark.parametrize(("shift", "expected_p"), [(100.0, 0.2), (-100.0, 0.0)])
def test_adaptive_augmentation_counts_the_real_pairs(tmp_path: Path, shift: float,
                                                     expected_p: float) -> None:
    # D made to call every pair real (or fake): ADA's p rises by 2 steps × 2 pairs / 40 per
    # interval (or stays at 0), which needs the D step to mark its real pairs (real=0).
    from gantransfer.data import DataConfig
    from gantransfer.engine import TrainConfig, Trainer

    data = make_fake_data("paired", tmp_path / "d", size=16, n=4)
    model = tiny()
    shift_outputs(model, shift)
    config = TrainConfig(steps=4, batch_size=2, device="cpu", seed=0, sample_every=0,
                         num_workers=0, d_augment="translation,cutout", d_augment_target=0.6,
                         d_augment_interval=2, d_augment_speed=40)
    trainer = Trainer(model, DataConfig(root=str(data)), config, tmp_path / "run", callbacks=())
    trainer.fit()
    assert trainer.augment.r_t == (1.0 if shift > 0 else -1.0)
    assert trainer.augment.p == pytest.approx(expected_p)


def test_train_resume_export_translate_through_the_cli(tmp_path: Path) -> None:
    data = make_fake_data("paired", tmp_path / "facades", size=16, n=6)
    run = tmp_path / "run"
    first = gtx("train", "pix2pix", "--data", str(data), "-o", str(run), "--steps", "2",
                "--batch-size", "2", *TINY, "--progress", "log")
    assert first.returncode == 0, first.stderr
    assert (run / "checkpoints" / "step_0000002.pt").is_file()
    second = gtx("train", "-o", str(run), "--resume", "auto", "--steps", "4", "--progress", "log")
    assert second.returncode == 0, second.stderr
    assert (run / "checkpoints" / "step_0000004.pt").is_file()
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x]
    assert [x["step"] for x in lines if "losses" in x][-1] == 4
    assert {"loss_G_GAN", "loss_G_L1", "loss_D"} <= set(lines[-1]["losses"])

    onnx_file = tmp_path / "p2p.onnx"
    exported = gtx("export", str(run), "--onnx", str(onnx_file))
    assert exported.returncode == 0, exported.stderr
    assert onnx_file.is_file()

    out = tmp_path / "out"
    translated = gtx("translate", str(onnx_file), str(data / "A"), "-o", str(out))
    assert translated.returncode == 0, translated.stderr
    inputs = sorted(p.name for p in (data / "A").iterdir())
    outputs = sorted(p.name for p in out.rglob("*.png"))
    assert outputs == inputs
    assert Image.open(out / inputs[0]).size == (16, 16)


def test_plugin_imports_only_gantransfers_public_api() -> None:
    public = {"gantransfer", "gantransfer.model", "gantransfer.config", "gantransfer.nn"}
    files = sorted((PLUGIN_SRC / "gantransfer_pix2pix").glob("*.py"))
    assert files, f"no plugin sources under {PLUGIN_SRC}"
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not name.startswith("gantransfer_cyclegan"), f"{path} imports {name}"
                if name.split(".")[0] == "gantransfer":
                    assert name in public, f"{path} imports non-public {name}"
                assert not name.startswith("gantransfer_"), f"{path} imports plugin {name}"
