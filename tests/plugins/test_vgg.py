"""VGG discriminator plugin: torchvision layout, normalisation, freezing, frozen-by-reference
checkpoints, and use as the DCGAN discriminator."""

from __future__ import annotations

import hashlib
import logging
import sys
from pathlib import Path

import pytest
import torch
from test_dcgan import FakeContext  # the minimal StepContext shared with the DCGAN tests
from torch import nn

import gantransfer
from gantransfer.hub import WeightsFile

VGG16_CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
VGG16_WIDTHS = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
VGG19_CONVS = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]


def torchvision_state_dict(convs: list[int], widths: list[int], *, seed: int = 0
                           ) -> dict[str, torch.Tensor]:
    """A state dict with torchvision's VGG keys and shapes, classifier included.

    The classifier tensors are zero-stride views (right shapes, one stored element) so the file
    stays small; the loader must ignore them anyway.
    """
    gen = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    c_in = 3
    for i, w in zip(convs, widths, strict=True):
        sd[f"features.{i}.weight"] = torch.randn(w, c_in, 3, 3, generator=gen) * 0.05
        sd[f"features.{i}.bias"] = torch.randn(w, generator=gen) * 0.05
        c_in = w
    for i, (out_f, in_f) in {0: (4096, 512 * 7 * 7), 3: (4096, 4096), 6: (1000, 4096)}.items():
        sd[f"classifier.{i}.weight"] = torch.zeros(1).expand(out_f, in_f)
        sd[f"classifier.{i}.bias"] = torch.zeros(out_f)
    return sd


@pytest.fixture(scope="module")
def vgg16_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    sd = torchvision_state_dict(VGG16_CONVS, VGG16_WIDTHS)
    path = tmp_path_factory.mktemp("weights") / "vgg16-fake.pth"
    torch.save(sd, path)
    return path, sd


@pytest.fixture(autouse=True)
def empty_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never touch the real torchvision cache."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def test_trunk_has_torchvision_layout_for_vgg16_and_vgg19() -> None:
    d16 = gantransfer.get_network("vgg16", weights=None)
    convs = [i for i, m in enumerate(d16.features) if isinstance(m, nn.Conv2d)]
    pools = [i for i, m in enumerate(d16.features) if isinstance(m, nn.MaxPool2d)]
    assert convs == VGG16_CONVS and pools == [4, 9, 16, 23]  # cut before the final pool (30)
    assert [d16.features[i].out_channels for i in convs] == VGG16_WIDTHS
    assert all(isinstance(d16.features[i + 1], nn.ReLU) for i in convs)
    d19 = gantransfer.get_network("vgg19", weights=None)
    assert [i for i, m in enumerate(d19.features) if isinstance(m, nn.Conv2d)] == VGG19_CONVS


def test_torchvision_state_dict_loads_strictly(vgg16_file) -> None:
    path, sd = vgg16_file
    d = gantransfer.get_network("vgg16", weights=str(path))
    for i in VGG16_CONVS:
        assert torch.equal(d.features[i].weight, sd[f"features.{i}.weight"])
        assert torch.equal(d.features[i].bias, sd[f"features.{i}.bias"])
    assert d.weights_record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # A shallower tap takes the first layers of the same file.
    shallow = gantransfer.get_network("vgg16", weights=str(path), tap_block=2)
    assert torch.equal(shallow.features[7].weight, sd["features.7.weight"])


def test_wrong_or_foreign_state_dicts_are_rejected_with_reasons(tmp_path: Path) -> None:
    from gantransfer_vgg._weights import WeightsFileError

    d = gantransfer.get_network("vgg16", weights=None, tap_block=4)
    vgg19_sd = torchvision_state_dict(VGG19_CONVS, VGG16_WIDTHS[:7] + [256] + [512] * 8)
    with pytest.raises(WeightsFileError, match=r"non-conv positions: features\.16\.bias"):
        d.load_torchvision_state_dict(vgg19_sd)
    sd = torchvision_state_dict(VGG16_CONVS, VGG16_WIDTHS)
    sd["fc.weight"] = torch.zeros(2)
    with pytest.raises(WeightsFileError, match=r"unexpected keys: fc\.weight"):
        d.load_torchvision_state_dict(sd)
    del sd["fc.weight"], sd["features.19.bias"]
    with pytest.raises(WeightsFileError, match=r"missing keys: features\.19\.bias"):
        d.load_torchvision_state_dict(sd)
    with pytest.raises(FileNotFoundError, match="gtx weights download vgg16"):
        gantransfer.get_network("vgg16", weights=str(tmp_path / "absent.pth"))


def test_imagenet_normalisation_is_exact() -> None:
    d = gantransfer.get_network("vgg16", weights=None, tap_block=1)
    x = torch.tensor([-1.0, 0.0, 0.5, 1.0]).view(1, 1, 2, 2).repeat(1, 3, 1, 1)
    out = d.normalize(x)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    for c in range(3):
        expected = torch.tensor([(v - mean[c]) / std[c] for v in (0.0, 0.5, 0.75, 1.0)])
        torch.testing.assert_close(out[0, c].flatten(), expected, rtol=0, atol=1e-6)
    gray = gantransfer.get_network("vgg16", weights=None, tap_block=1, in_channels=1)
    torch.testing.assert_close(gray.normalize(x[:, :1]), out, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"N×1×H×W"):
        gray(x)


def test_heads_give_one_logit_per_image_or_a_patch_map() -> None:
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    dense = gantransfer.get_network("vgg16", weights=None, tap_block=2)
    assert dense(x).shape == (2,)
    assert dense(torch.rand(2, 3, 48, 40)).shape == (2,)  # adaptive pooling: any size
    patch = gantransfer.get_network("vgg16", weights=None, tap_block=2, head="patch")
    assert patch(x).shape == (2, 1, 16, 16)
    with pytest.raises(ValueError, match=r"trainable_layers must be 0\.\.4"):
        gantransfer.get_network("vgg16", weights=None, tap_block=2, trainable_layers=5)


def test_frozen_layers_get_no_gradient_and_stay_out_of_the_dcgan_optimizer() -> None:
    model = gantransfer.get("dcgan", image_size=16, ngf=4, nz=8, discriminator="vgg16",
                            discriminator_kwargs={"weights": "none", "tap_block": 2,
                                                  "trainable_layers": 1})
    d = model.nets["d"]
    assert [d.features[i].weight.requires_grad for i in (0, 2, 5, 7)] == [False] * 3 + [True]
    assert d.frozen_keys == [f"features.{i}.{p}" for i in (0, 2, 5) for p in ("weight", "bias")]
    d(torch.rand(2, 3, 16, 16)).sum().backward()
    assert all(d.features[i].weight.grad is None for i in (0, 2, 5))
    assert d.features[7].weight.grad is not None and d.head[2].weight.grad is not None
    opt_ids = {id(p) for g in model.make_optimizers()["d"].param_groups for p in g["params"]}
    assert opt_ids == {id(p) for p in d.parameters() if p.requires_grad}
    assert not any(id(d.features[i].weight) in opt_ids for i in (0, 2, 5))


def test_dcgan_with_vgg16_trains_only_trainable_weights(vgg16_file) -> None:
    path, sd = vgg16_file
    torch.manual_seed(0)
    model = gantransfer.get("dcgan", image_size=32, channels=3, ngf=8, nz=16,
                            discriminator="vgg16",
                            discriminator_kwargs={"weights": str(path), "tap_block": 3})
    d = model.nets["d"]
    assert model.generator_names() == ["g"]  # the VGG is not exported nor averaged
    before = {k: v.clone() for k, v in d.named_parameters()}
    ctx = FakeContext(model)
    for _ in range(2):
        out = model.train_step({"image": torch.rand(2, 3, 32, 32) * 2 - 1}, ctx)
        assert torch.isfinite(out["loss_d"]) and torch.isfinite(out["loss_g"])
    assert ctx.grads["g"]["d"] is False
    changed = {k for k, v in d.named_parameters() if not torch.equal(v, before[k])}
    trainable = {k for k, v in d.named_parameters() if v.requires_grad}
    assert changed == trainable  # default: the tapped block (convs 10, 12, 14) and the head
    assert {k for k in trainable if k.startswith("features.")} == {
        f"features.{i}.{p}" for i in (10, 12, 14) for p in ("weight", "bias")}
    for i in VGG16_CONVS[:4]:
        assert torch.equal(d.features[i].weight, sd[f"features.{i}.weight"])


def _tiny_vgg_model(weights: str) -> gantransfer.GANModel:
    return gantransfer.get("dcgan", image_size=16, ngf=4, nz=8, discriminator="vgg16",
                           discriminator_kwargs={"weights": weights, "tap_block": 2})


def test_checkpoint_keeps_frozen_weights_by_reference_and_reloads_them(
        vgg16_file, tmp_path: Path) -> None:
    path, sd = vgg16_file
    local = tmp_path / path.name
    local.write_bytes(path.read_bytes())
    model = _tiny_vgg_model(str(local))
    state = model.state_dict()
    frozen = {"nets.d." + k for k in model.nets["d"].frozen_keys}
    assert frozen == {f"nets.d.features.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")}
    assert not frozen & set(state)
    assert "nets.d.features.5.weight" in state  # trainable trunk layers are saved
    record = state["nets.d._extra_state"]["weights"]
    assert record == {"path": str(local), "filename": local.name,
                      "sha256": hashlib.sha256(local.read_bytes()).hexdigest()}
    ckpt = tmp_path / "ckpt.pt"
    torch.save(state, ckpt)

    # A model built without the file gets the frozen layers back from the record.
    fresh = _tiny_vgg_model("none")
    fresh.load_state_dict(torch.load(ckpt, weights_only=True), strict=True)
    assert torch.equal(fresh.nets["d"].features[0].weight, sd["features.0.weight"])
    assert fresh.nets["d"].weights_record == record
    assert "nets.d.features.0.weight" not in fresh.state_dict()  # still by reference

    from gantransfer_vgg._weights import WeightsFileError

    local.write_bytes(local.read_bytes() + b"\0")
    with pytest.raises(WeightsFileError, match="was changed or is corrupt"):
        _tiny_vgg_model("none").load_state_dict(torch.load(ckpt, weights_only=True))
    local.unlink()
    with pytest.raises(WeightsFileError, match=rf"{local.name}.*in neither"):
        _tiny_vgg_model("none").load_state_dict(torch.load(ckpt, weights_only=True))


def test_random_init_saves_every_weight_and_warns_how_to_get_weights(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gantransfer_vgg"):
        model = _tiny_vgg_model("auto")
    assert "gtx weights download vgg16" in caplog.text
    d = model.nets["d"]
    assert d.weights_record is None
    state = model.state_dict()
    assert {"nets.d." + k for k in d.frozen_keys} <= set(state)
    assert state["nets.d._extra_state"] == {"weights": None, "frozen_keys": []}


def test_auto_weights_come_from_the_torchvision_cache(
        vgg16_file, empty_torch_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gantransfer_vgg import _weights

    path, sd = vgg16_file
    cache = empty_torch_home / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    name = f"vgg16-{digest[:8]}.pth"
    (cache / name).write_bytes(path.read_bytes())
    monkeypatch.setitem(_weights.WEIGHTS, "vgg16", WeightsFile(
        url="http://127.0.0.1:1/unused", filename=name, sha256_prefix=digest[:8]))
    d = gantransfer.get_network("vgg16", tap_block=1)
    assert d.weights_record["path"] == str(cache / name)
    assert torch.equal(d.features[2].weight, sd["features.2.weight"])
    (cache / name).write_bytes(b"not the file")
    with pytest.raises(_weights.WeightsFileError, match=f"expected {digest[:8]}"):
        gantransfer.get_network("vgg16", tap_block=1)


def test_safetensors_without_the_package_says_how_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "vgg16.safetensors"
    path.write_bytes(b"{}")
    monkeypatch.setitem(sys.modules, "safetensors", None)  # import fails even if installed
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(ImportError, match="pip install safetensors"):
        gantransfer.get_network("vgg16", weights=str(path))


def test_dcgan_accepts_vgg16_by_name_with_one_logit_per_image() -> None:
    model = gantransfer.get("dcgan", image_size=16, ngf=4, nz=8, discriminator="vgg16",
                            discriminator_kwargs={"weights": "none", "tap_block": 1})
    assert model.nets["d"].in_channels == 3
    images = model.nets["g"](torch.randn(3, 8))
    assert model.nets["d"](images).shape == (3,)
    with pytest.raises(ValueError, match="at least 16 px"):
        gantransfer.get_network("vgg16", weights=None, image_size=8)


def test_cyclegan_with_vgg16_patch_head_trains_through_the_engine(vgg16_file, tmp_path: Path
                                                                  ) -> None:
    """CycleGAN picks the VGG by registry name; the unchanged engine trains it, only trainable
    VGG weights move, and the generators still export."""
    from gantransfer.data.demo import make_two_domain

    path, sd = vgg16_file
    data = make_two_domain(tmp_path / "data", n_train=4, n_test=2, size=16, seed=0)
    model = gantransfer.get("cyclegan", netG="resnet_6blocks", ngf=4, discriminator="vgg16",
                            discriminator_kwargs={"weights": str(path), "tap_block": 2,
                                                  "head": "patch"},
                            load_size=16, crop_size=16, pool_size=2)
    d = model.nets["d_b"]
    before = {k: v.clone() for k, v in d.named_parameters()}
    config = gantransfer.TrainConfig(steps=2, batch_size=1, device="cpu", sample_every=0,
                                     checkpoint_every=0, num_workers=0)
    gantransfer.Trainer(model, gantransfer.DataConfig(root=str(data)), config,
                        tmp_path / "run").fit()
    changed = {k for k, v in d.named_parameters() if not torch.equal(v, before[k])}
    trainable = {k for k, v in d.named_parameters() if v.requires_grad}
    assert changed == trainable and changed
    assert all(torch.equal(d.features[i].weight, sd[f"features.{i}.weight"]) for i in (0, 2))
    assert model.generator_names() == ["g_ab", "g_ba"]
    exported = gantransfer.export_onnx(model, tmp_path / "a2b.onnx", target="a2b")
    assert exported[0].worst_error < 1e-4
