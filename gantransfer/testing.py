"""Conformance checks for architecture plugins: run them with pytest against your own model.

Every check builds the architecture by registry name with small ``overrides``, trains on tiny
generated image folders of the model's ``data_kind`` and asserts one contract the library relies
on. In a plugin's test file::

    from gantransfer.testing import conformance_tests

    test_conformance = conformance_tests("pix2pix", {"netG": "resnet_6blocks", "ngf": 4})

gives one pytest test per check. The checks are also plain functions
(``check_train_steps(name, overrides, tmp_path)`` ...) for use in your own tests. They raise
``AssertionError`` with a message naming the architecture and what differed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

import gantransfer

from .config import build_config, read_toml, to_plain, write_toml

__all__ = [
    "CHECKS",
    "check_augmented_discriminator",
    "check_config_roundtrip",
    "check_exact_resume",
    "check_export",
    "check_load_from_checkpoint",
    "check_train_steps",
    "conformance_tests",
    "make_fake_data",
    "shift_outputs",
]

Overrides = Mapping[str, Any] | None
Check = Callable[[str, Overrides, "str | os.PathLike[str]"], None]

_SEED = 0
_BATCH = 2


# -- fake data ---------------------------------------------------------------------------------
def _scene(seed: int, index: int, size: int) -> np.ndarray:
    from .data.demo import render_scene

    return render_scene(np.random.default_rng([seed, index]), size)


def _save(path: Path, array: np.ndarray, channels: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array, "RGB")
    image.convert("L" if channels == 1 else "RGB").save(path)


def make_fake_data(kind: str, root: str | os.PathLike[str], *, size: int = 16, n: int = 4,
                   channels: int = 3, channels_b: int | None = None, seed: int = 0,
                   labels: Sequence[str] | None = None) -> Path:
    """Write a tiny image folder of the layout ``kind`` needs and return ``root``.

    * ``single``: ``root/00000.png`` ...
    * ``unpaired``: ``root/trainA/`` and ``root/trainB/`` (B restyled, independent scenes)
    * ``paired``: ``root/A/x.png`` and ``root/B/x.png`` where B is the restyled A
    * ``labelled``: ``root/<label>/00000.png`` ... for every name of ``labels`` (default
      ``a``, ``b``), ``n`` images each; odd labels are restyled, so classes differ

    Args:
        kind: ``"single"``, ``"unpaired"``, ``"paired"`` or ``"labelled"`` (a model's
            ``data_kind``).
        root: output folder (created).
        size: width and height of every image (at least 8).
        n: images per folder.
        channels, channels_b: 1 writes grayscale files, 3 RGB (``channels_b`` defaults to
            ``channels``).
        seed: the same seed writes the same pixels.

    Raises:
        ValueError: an unknown kind.
    """
    from .data.demo import restyle

    root = Path(root)
    channels_b = channels if channels_b is None else channels_b
    for i in range(n):
        name = f"{i:05d}.png"
        if kind == "single":
            _save(root / name, _scene(seed, i, size), channels)
        elif kind == "unpaired":
            _save(root / "trainA" / name, _scene(seed, i, size), channels)
            _save(root / "trainB" / name, restyle(_scene(seed + 1, i, size)), channels_b)
        elif kind == "paired":
            scene = _scene(seed, i, size)
            _save(root / "A" / name, scene, channels)
            _save(root / "B" / name, restyle(scene), channels_b)
        elif kind == "labelled":
            for k, label in enumerate(labels or ("a", "b")):
                scene = _scene(seed + k, i, size)
                _save(root / label / name, restyle(scene) if k % 2 else scene, channels)
        else:
            raise ValueError(f"unknown data kind {kind!r}; expected single, unpaired, paired or "
                             "labelled")
    return root


# -- helpers -----------------------------------------------------------------------------------
def _build(name: str, overrides: Overrides) -> Any:
    # Weights are initialised from torch's global RNG: seed it so two builds are identical.
    torch.manual_seed(_SEED)
    return gantransfer.get(name, **dict(overrides or {}))


def _data_for(model: Any, root: Path) -> Path:
    """Fake data sized for the model: its load size (or crop size) from ``data_defaults()``."""
    defaults = model.data_defaults()
    size = int(defaults.get("load_size") or defaults.get("crop_size") or 32)
    channels = int(defaults.get("channels") or 3)
    # 6 images at batch 2 is 3 steps per epoch: the resume check stops mid-epoch.
    return make_fake_data(model.data_kind, root, size=max(size, 8), n=6, channels=channels,
                          channels_b=int(defaults.get("channels_b") or channels),
                          labels=model.label_names)


def _train(name: str, overrides: Overrides, data_root: Path, run_dir: Path, steps: int, *,
           resume: str | None = None, d_augment: str = "",
           adaptive: Mapping[str, Any] | None = None, shift_d: float = 0.0) -> Any:
    """Train ``steps`` steps at batch 2; ``adaptive``: TrainConfig's d_augment_* settings;
    ``shift_d``: a constant added to every discriminator output (see :func:`shift_outputs`)."""
    from .data import DataConfig
    from .engine import TrainConfig, Trainer

    model = _build(name, overrides)
    if shift_d:
        shift_outputs(model, shift_d)
    # No workers: spawning them costs more than these tiny batches. Samples and checkpoint are
    # written at the end only.
    config = TrainConfig(steps=steps, batch_size=_BATCH, device="cpu", seed=_SEED, log_every=1,
                         sample_every=0, sample_count=2, checkpoint_every=0, num_workers=0,
                         d_augment=d_augment, **dict(adaptive or {}))
    trainer = Trainer(model, DataConfig(root=str(data_root)), config, run_dir, callbacks=())
    trainer.fit(resume=resume)
    return trainer


def shift_outputs(model: Any, shift: float) -> list[Any]:
    """Add ``shift`` to the output (the first head, for a net that returns several) of every
    discriminator of ``model`` (its nets outside :meth:`GANModel.generator_names`), with forward
    hooks; returns the hook handles (``.remove()`` undoes it).

    A large positive ``shift`` makes every discriminator call everything real, confidently: the
    overfitting that adaptive augmentation reacts to, without training a model until it
    overfits. A large negative one makes them call everything fake.
    """
    def hook(module: Any, args: Any, out: Any) -> Any:
        if isinstance(out, torch.Tensor):
            return out + shift
        if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
            return type(out)([out[0] + shift, *out[1:]])
        return out

    generators = set(model.generator_names())
    return [net.register_forward_hook(hook) for name, net in model.nets.items()
            if name not in generators]


def _assert_equal_states(name: str, a: Mapping[str, Any], b: Mapping[str, Any],
                         what: str) -> None:
    assert list(a) == list(b), f"{name}: {what} keys differ: {sorted(set(a) ^ set(b))}"
    for key, value in a.items():
        other = b[key]
        if isinstance(value, torch.Tensor):
            assert isinstance(other, torch.Tensor) and torch.equal(value, other), (
                f"{name}: {what} tensor {key!r} differs")


def _tiny_input(spec: Any, *, batch: int = 1) -> tuple[torch.Tensor, ...]:
    """The arguments of the target's net: an input batch, and a conditional net's labels (every
    label once, so each label's path is checked)."""
    if spec.labels is not None:
        batch = max(batch, len(spec.labels))
    if spec.input == "latent":
        x = torch.randn(batch, int(spec.latent_dim), generator=torch.Generator().manual_seed(1))
    else:
        side = max(spec.min_size, spec.size_divisor)
        side = math.ceil(side / spec.size_divisor) * spec.size_divisor
        g = torch.Generator().manual_seed(1)
        x = torch.rand(batch, spec.in_channels, side, side, generator=g) * 2 - 1
    return (x,) if spec.labels is None else (x, torch.arange(batch) % len(spec.labels))


# -- the checks --------------------------------------------------------------------------------
def check_train_steps(name: str, overrides: Overrides, tmp_path: str | os.PathLike[str], *,
                      steps: int = 2) -> None:
    """The model trains ``steps`` steps on fake data: finite logged losses, every optimizer group
    changed its nets' weights, a checkpoint and a sample grid are written."""
    tmp = Path(tmp_path)
    model = _build(name, overrides)
    before = {k: v.clone() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
    trainer = _train(name, overrides, _data_for(model, tmp / "data"), tmp / "run", steps)
    assert trainer.step == steps, f"{name}: trained {trainer.step} steps, expected {steps}"
    assert (tmp / "run" / "checkpoints" / f"step_{steps:07d}.pt").is_file(), (
        f"{name}: no checkpoint after {steps} steps")
    assert list((tmp / "run" / "samples").glob("*.png")), f"{name}: no sample grid written"
    lines = [json.loads(line) for line in
             (tmp / "run" / "metrics.jsonl").read_text().splitlines() if line.strip()]
    losses = {k: v for line in lines for k, v in line.get("losses", {}).items()
              if isinstance(v, (int, float))}
    assert len(lines) == steps and losses, (
        f"{name}: expected {steps} metrics.jsonl lines with numeric losses from train_step")
    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
    assert not bad, f"{name}: non-finite losses {bad}"
    for group, nets in trainer.model.optimizer_groups().items():
        changed = any(not torch.equal(before[f"nets.{net}.{k}"], v)
                      for net in nets for k, v in trainer.model.nets[net].state_dict().items()
                      if v.is_floating_point())
        assert changed, f"{name}: optimizer group {group!r} ({nets}) did not change any weight"


def check_exact_resume(name: str, overrides: Overrides, tmp_path: str | os.PathLike[str], *,
                       steps: int = 4) -> None:
    """``steps`` straight == ``steps/2``, a restart from the checkpoint, ``steps/2`` more: every
    weight, buffer and optimizer state is bit-identical (``torch.equal``)."""
    tmp = Path(tmp_path)
    data = _data_for(_build(name, overrides), tmp / "data")
    straight = _train(name, overrides, data, tmp / "straight", steps)
    _train(name, overrides, data, tmp / "split", steps // 2)
    resumed = _train(name, overrides, data, tmp / "split", steps, resume="auto")
    assert resumed.step == steps, f"{name}: resumed run ended at step {resumed.step}"
    _assert_equal_states(name, straight.model.state_dict(), resumed.model.state_dict(),
                         "model state after resume")
    for group, opt in straight.optimizers.items():
        a, b = opt.state_dict()["state"], resumed.optimizers[group].state_dict()["state"]
        assert a.keys() == b.keys(), f"{name}: optimizer {group!r} state keys differ"
        for key in a:
            _assert_equal_states(name, a[key], b[key], f"optimizer {group!r} state {key}")


def check_augmented_discriminator(name: str, overrides: Overrides,
                                  tmp_path: str | os.PathLike[str], *, steps: int = 4) -> None:
    """With ``TrainConfig.d_augment`` on, the model's discriminators see augmented images (its
    D-step weights after one step differ from a run without augmentation, which is what happens
    when every D call goes through ``ctx.discriminate``). With adaptive strength (ADA,
    ``d_augment_target``) on as well, the model marks its real batch in the D step
    (``ctx.discriminate(d, real, fake, real=0, threshold=...)``): while its discriminators are
    made to call everything real (:func:`shift_outputs`), ``p`` rises by the images of every
    step over ``d_augment_speed``, as ADA says; and exact resume holds, weights and ``p``."""
    tmp = Path(tmp_path)
    data = _data_for(_build(name, overrides), tmp / "data")
    policy = "color,translation,cutout"
    plain = _train(name, overrides, data, tmp / "plain", 1)
    augmented = _train(name, overrides, data, tmp / "augmented", 1, d_augment=policy)
    a, b = plain.model.state_dict(), augmented.model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a
               if isinstance(a[k], torch.Tensor) and a[k].is_floating_point()), (
        f"{name}: d_augment changed nothing; call every discriminator through "
        "ctx.discriminate(d, real, fake) so the engine can augment its inputs")
    # p = images / speed after every step (interval 1): 0 at the first D step, ends at 0.5, so
    # the runs cover p = 0, masks with 0 < p < 1, and the restore of p at the split.
    speed = 2 * steps * _BATCH
    adaptive = {"d_augment_target": 0.6, "d_augment_interval": 1, "d_augment_speed": speed}
    runs = {}
    try:
        for run, n, resume in (("straight", steps, None), ("split", steps // 2, None),
                               ("split", steps, "auto")):
            runs[run] = _train(name, overrides, data, tmp / run, n, resume=resume,
                               d_augment=policy, adaptive=adaptive, shift_d=100.0)
    except ValueError as exc:  # the engine's "mark the real batch" error, or another
        raise AssertionError(f"{name}: training with adaptive augmentation failed: {exc}") from exc
    straight, resumed = runs["straight"], runs["split"]
    expected = min(1.0, steps * _BATCH / speed)
    assert straight.augment.p == expected, (
        f"{name}: with discriminators that call every real image real, ADA's p should be "
        f"{expected} after {steps} steps, got {straight.augment.p}; pass real=<index of the "
        "real batch> and threshold=<the loss's decision point> to ctx.discriminate in the "
        "discriminator step")
    assert resumed.augment.p == straight.augment.p, (
        f"{name}: ADA's p after resume is {resumed.augment.p}, straight {straight.augment.p}")
    _assert_equal_states(name, straight.model.state_dict(), resumed.model.state_dict(),
                         "model state after resume with d_augment and ADA")


def check_load_from_checkpoint(name: str, overrides: Overrides,
                               tmp_path: str | os.PathLike[str]) -> None:
    """``gantransfer.load(run_dir)`` alone rebuilds the trained model: same class, config and
    weights, in eval mode, and every export target gives the same output as the trained model."""
    tmp = Path(tmp_path)
    data = _data_for(_build(name, overrides), tmp / "data")
    trained = _train(name, overrides, data, tmp / "run", 1).model
    loaded = gantransfer.load(tmp / "run", device="cpu")
    assert type(loaded) is type(trained), f"{name}: load gave {type(loaded).__name__}"
    assert loaded.arch_name == name, f"{name}: loaded arch_name is {loaded.arch_name!r}"
    assert loaded.config == trained.config, f"{name}: config changed through the checkpoint"
    assert not loaded.training, f"{name}: gantransfer.load must return a model in eval mode"
    _assert_equal_states(name, trained.state_dict(), loaded.state_dict(), "loaded weights")
    trained.eval()
    with torch.no_grad():
        for target, spec in trained.export_targets().items():
            x = _tiny_input(spec)
            out_a, out_b = trained.nets[spec.net](*x), loaded.nets[spec.net](*x)
            assert torch.equal(out_a, out_b), f"{name}: target {target!r} output differs"


def check_export(name: str, overrides: Overrides, tmp_path: str | os.PathLike[str]) -> None:
    """Every export target exports to ONNX and passes ``gantransfer.export_onnx``'s parity check
    against PyTorch (it raises ``ExportVerificationError`` past the tolerance); a conditional
    target is checked for every label and its file lists the label names."""
    tmp = Path(tmp_path)
    model = _build(name, overrides).eval()
    targets = model.export_targets()
    assert targets, f"{name}: export_targets() is empty; name at least one generator"
    for target, spec in targets.items():
        assert spec.net in model.nets, f"{name}: target {target!r} names unknown net {spec.net!r}"
        results = gantransfer.export_onnx(model, tmp / f"{target}.onnx", target=target)
        assert len(results) == 1 and results[0].path.is_file(), f"{name}: {target} not written"
        assert results[0].max_abs_error, f"{name}: {target} export was not verified"
        if spec.labels is not None:
            from .inference.onnx_backend import load

            listed = load(results[0].path, providers="cpu").label_names
            assert listed == spec.labels, (
                f"{name}: {target} file lists labels {listed}, the model {spec.labels}")
            checked = {key.rpartition("@")[2] for key in results[0].max_abs_error}
            assert checked == set(spec.labels), (
                f"{name}: {target} verified for labels {sorted(checked)}, not all of "
                f"{list(spec.labels)}")


def check_config_roundtrip(name: str, overrides: Overrides,
                           tmp_path: str | os.PathLike[str]) -> None:
    """The config survives ``to_plain`` -> TOML file -> ``build_config`` unchanged, and
    ``gantransfer.get(name, **plain)`` rebuilds the same config (what run dirs and checkpoints
    rely on)."""
    config = _build(name, overrides).config
    plain = to_plain(config)
    path = Path(tmp_path) / "config.toml"
    write_toml(path, {"model": plain})
    back = read_toml(path)["model"]
    again = build_config(type(config), back)
    assert again == config, f"{name}: config changed through TOML: {config!r} -> {again!r}"
    assert gantransfer.get(name, **back).config == config, (
        f"{name}: gantransfer.get(name, **config-from-TOML) built a different config")


CHECKS: tuple[Check, ...] = (check_config_roundtrip, check_train_steps, check_exact_resume,
                             check_augmented_discriminator, check_load_from_checkpoint,
                             check_export)


def conformance_tests(name: str, overrides: Overrides = None, *,
                      checks: Sequence[Check] = CHECKS) -> Callable[..., None]:
    """A pytest test function parametrized over ``checks`` for architecture ``name``.

    Assign it to a ``test_*`` name in a test module::

        test_conformance = conformance_tests("pix2pix", {"netG": "resnet_6blocks", "ngf": 4})

    Args:
        name: the registered architecture name.
        overrides: config overrides that keep it tiny (small images and widths) for CPU tests.
        checks: the checks to run (default: all of :data:`CHECKS`).
    """
    import pytest

    selected = list(checks)

    @pytest.mark.parametrize("check", selected, ids=[c.__name__ for c in selected])
    def test_conformance(check: Check, tmp_path: Path) -> None:
        check(name, overrides, tmp_path)

    return test_conformance
