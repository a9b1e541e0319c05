"""Conditional models through the unchanged engine: labels must be the data's classes, and
data-parallel training on 2 CPU processes keeps the ranks identical (the existing DDP tests'
helpers)."""

from __future__ import annotations

import pytest
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
