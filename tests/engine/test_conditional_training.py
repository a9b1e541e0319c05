"""Conditional models through the unchanged engine: labels must be the data's classes, and
data-parallel training on 2 CPU processes keeps the ranks identical (the existing DDP tests'
helpers)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from test_distributed import _digests, _run

import gantransfer
from gantransfer.data import DataConfig
from gantransfer.data.demo import make_styles
from gantransfer.engine import TrainConfig, Trainer
from gantransfer.testing import make_fake_data

STAR = ["--set", "ngf=4", "--set", "ndf=4", "--set", "n_layers_D=2", "--set", "load_size=16",
        "--set", "crop_size=16"]


def test_trainer_refuses_labels_that_are_not_the_data_classes(tmp_path):
    data = make_fake_data("labelled", tmp_path / "d", size=16, n=2, labels=["cat", "dog"])
    model = gantransfer.get("stargan", labels=["cat", "owl"], ngf=4, ndf=4, n_layers_D=2,
                            load_size=16, crop_size=16)
    with pytest.raises(ValueError, match=r"labels \(cat, owl\) are not the classes of the data "
                                         r"\(cat, dog\).*labels=\['cat', 'dog'\]"):
        Trainer(model, DataConfig(root=str(data)), TrainConfig(steps=1, device="cpu"),
                tmp_path / "run", callbacks=())


def test_stargan_under_torchrun_keeps_ranks_identical(tmp_path):
    data = make_styles(tmp_path / "styles", n_train=4, n_test=1, size=16, styles=2)
    run, dump = tmp_path / "run", tmp_path / "dump"
    _run(["stargan", "--data", str(data / "train"), "-o", str(run), "--steps", "2", "-b", "2",
          *STAR], dump=dump)
    start, end = _digests(dump, "start"), _digests(dump, "end")
    assert start[0] == start[1], "DDP did not start every rank from rank 0's weights"
    assert end[0] == end[1], "ranks' weights diverged: gradients were not synchronised"
    assert start[0] != end[0], "training did not change the weights"
    model = gantransfer.load(run)
    assert model.label_names == ("invert", "photo")


def test_conditional_models_train_with_ema_and_bf16_autocast(tmp_path):
    """The engine's EMA and bf16 autocast apply to conditional nets unchanged: the EMA copy of
    the generator differs from the trained one, the sample grid has a row per style, and the
    losses stay finite."""
    data = make_fake_data("labelled", tmp_path / "d", size=16, n=4, labels=["a", "b"])
    model = gantransfer.get("stargan", labels=["a", "b"], ngf=4, ndf=4, n_layers_D=2,
                            load_size=16, crop_size=16)
    config = TrainConfig(steps=3, batch_size=2, device="cpu", precision="bf16", ema_decay=0.5,
                         sample_every=0, sample_count=2, checkpoint_every=0, num_workers=0,
                         log_every=1)
    trainer = Trainer(model, DataConfig(root=str(data)), config, tmp_path / "run", callbacks=())
    trainer.fit()
    ema = gantransfer.load(tmp_path / "run", ema=True)
    raw = gantransfer.load(tmp_path / "run", ema=False)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    assert not torch.allclose(ema.translate(x, style="b"), raw.translate(x, style="b"))
    (grid,) = (tmp_path / "run" / "samples").glob("*.png")
    assert Image.open(grid).size[1] == 3 * 16  # the inputs, then one row per style
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3 and "NaN" not in "".join(lines)
