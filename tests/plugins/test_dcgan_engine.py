"""DCGAN through the real Trainer: a few steps on tiny demo data, checkpoints and reloading,
also with a VGG discriminator whose frozen layers are kept by reference to the weights file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_vgg import VGG16_CONVS, VGG16_WIDTHS, torchvision_state_dict

import gantransfer
from gantransfer.data.demo import make_single
from gantransfer.engine.checkpoint import read_checkpoint


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_single(tmp_path_factory.mktemp("single"), n=8, size=16, seed=0)


def _train(model: gantransfer.GANModel, images: Path, run_dir: Path, *, steps: int) -> None:
    config = gantransfer.TrainConfig(steps=steps, batch_size=4, device="cpu", num_workers=0,
                                     log_every=1, sample_every=0, sample_count=2,
                                     checkpoint_every=0)
    gantransfer.Trainer(model, gantransfer.DataConfig(root=str(images)), config, run_dir,
                        callbacks=[]).fit()


def test_dcgan_trains_through_the_trainer_and_reloads(images: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = gantransfer.get("dcgan", image_size=16, channels=3, ngf=4, ndf=4, nz=8)
    g_before = {k: v.clone() for k, v in model.nets["g"].state_dict().items()}
    _train(model, images, tmp_path / "run", steps=3)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3]
    assert set(lines[-1]["losses"]) == {"loss_d", "loss_g", "d_real", "d_fake"}
    assert all(torch.isfinite(torch.tensor(list(x["losses"].values()))).all() for x in lines)
    g_after = model.nets["g"].state_dict()
    assert any(not torch.equal(g_before[k], g_after[k]) for k in g_before)

    loaded = gantransfer.load(tmp_path / "run")
    assert loaded.arch_name == "dcgan"
    for k, v in model.nets["g"].state_dict().items():
        torch.testing.assert_close(loaded.nets["g"].state_dict()[k], v.cpu())
    assert loaded.generate(2).shape == (2, 3, 16, 16)


def test_vgg_discriminator_checkpoint_refers_to_the_weights_file(
        images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    weights = tmp_path / "vgg16-fake.pth"
    sd = torchvision_state_dict(VGG16_CONVS, VGG16_WIDTHS)
    torch.save(sd, weights)
    torch.manual_seed(0)
    model = gantransfer.get("dcgan", image_size=16, ngf=4, nz=8, discriminator="vgg16",
                            discriminator_kwargs={"weights": str(weights), "tap_block": 2,
                                                  "trainable_layers": 1})
    _train(model, images, tmp_path / "run", steps=2)

    (ckpt,) = (tmp_path / "run" / "checkpoints").glob("*.pt")
    state = read_checkpoint(ckpt)["model"]
    assert not any(k.startswith(("nets.d.features.0.", "nets.d.features.2.",
                                 "nets.d.features.5.")) for k in state)
    assert "nets.d.features.7.weight" in state  # trainable trunk layer, changed by training
    assert not torch.equal(state["nets.d.features.7.weight"], sd["features.7.weight"])

    loaded = gantransfer.load(tmp_path / "run")
    assert torch.equal(loaded.nets["d"].features[0].weight, sd["features.0.weight"])
    torch.testing.assert_close(loaded.nets["d"].features[7].weight,
                               model.nets["d"].features[7].weight)

    # Another valid file under the same name: the model builds, the checkpoint refuses it.
    torch.save(torchvision_state_dict(VGG16_CONVS, VGG16_WIDTHS, seed=1), weights)
    with pytest.raises(Exception, match="was changed or is corrupt"):
        gantransfer.load(tmp_path / "run")
