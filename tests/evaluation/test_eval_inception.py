"""The FID Inception-v3 against torch-fidelity, its weights file, and FID/KID end to end.

No real weights exist on these machines: the network is run with deterministic random weights
saved in the published file's format. tests/data/inception_reference.npz holds what
torch-fidelity computed with the same weights on the same inputs (tests/data/README.md). The full
network at 299×299 takes about half a second per image on one CPU thread, so few images are used.
"""

from __future__ import annotations

from pathlib import Path

import _eval_reference as ref
import numpy as np
import pytest
import torch

from gantransfer.evaluation import (
    INCEPTION_WEIGHTS,
    FeatureCache,
    InceptionV3Features,
    WeightsFormatError,
    WeightsNotFoundError,
    evaluate_folders,
    extract_features,
    load_inception,
    random_inception_weights,
    resize_tf1_bilinear,
)


@pytest.fixture(scope="module")
def weights() -> dict[str, torch.Tensor]:
    return random_inception_weights(seed=ref.WEIGHTS_SEED)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory,
                 weights: dict[str, torch.Tensor]) -> Path:
    path = tmp_path_factory.mktemp("weights") / INCEPTION_WEIGHTS.filename
    torch.save(weights, path)
    return path


@pytest.fixture(scope="module")
def net(weights_file: Path) -> InceptionV3Features:
    return load_inception(weights_file)


@pytest.fixture(scope="module")
def fixture() -> dict[str, np.ndarray]:
    with np.load(ref.FIXTURE, allow_pickle=False) as data:
        return dict(data)


def test_resize_is_tensorflow1_bilinear_bit_for_bit(fixture: dict[str, np.ndarray]) -> None:
    image = ref.fixture_images()[1].unsqueeze(0).float()  # 64×48, resized to 299×299
    resized = resize_tf1_bilinear(image)
    assert resized.shape == (1, 3, 299, 299)
    np.testing.assert_array_equal(resized[0, 0, :8].numpy(), fixture["resized_rows"])
    # Unlike F.interpolate (half-pixel centres), the output starts exactly on the first pixel.
    assert torch.equal(resized[..., 0, 0], image[..., 0, 0])
    same = torch.rand(1, 3, 299, 299) * 255
    assert torch.equal(resize_tf1_bilinear(same), same)


def test_features_equal_torch_fidelity(net: InceptionV3Features,
                                       fixture: dict[str, np.ndarray]) -> None:
    images = ref.fixture_images()  # 32×32, 64×48 and 299×299 in one call
    ours = extract_features(images, net, batch_size=2)
    expected = fixture["features"]
    assert ours.shape == expected.shape == (3, 2048)
    # Measured: bit-identical on this CPU (torch 2.13 vs torch-fidelity 0.4.0 on torch 2.14).
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


def test_fid_and_kid_match_torch_fidelity_and_rise_with_noise(
        net: InceptionV3Features, fixture: dict[str, np.ndarray], tmp_path: Path) -> None:
    real, fakes = ref.write_folders(tmp_path / "folders")
    cache = FeatureCache(tmp_path / "cache")  # the real folder is extracted once
    results = [evaluate_folders(real, fakes[level], metrics=["fid", "kid"], extractor=net,
                                kid_subsets=3, kid_subset_size=ref.FOLDER_IMAGES, cache=cache)
               for level in ref.NOISE_LEVELS]
    fids = [r.fid.value for r in results]  # type: ignore[union-attr]
    kids = [r.kid.mean for r in results]  # type: ignore[union-attr]
    # torch-fidelity's calculate_metrics on the same folders and weights. Its KID kernel runs in
    # float32 (ours in float64): measured relative differences 1e-8 (FID) and 6e-6 (KID).
    np.testing.assert_allclose(fids, fixture["folder_fid"], rtol=1e-5)
    np.testing.assert_allclose(kids, fixture["folder_kid_mean"], rtol=1e-4)
    # Each FID at 2048-d costs a 2048×2048 eigendecomposition (~6 s on one loaded CPU thread),
    # so FID(folder, itself) ~ 0 is checked with a small extractor in test_eval_metrics.py.
    assert 0 < fids[0] < fids[1] < fids[2]
    assert 0 < kids[0] < kids[1] < kids[2]


def test_missing_weights_say_how_to_get_them(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    expected = tmp_path / "torch" / "hub" / "checkpoints" / INCEPTION_WEIGHTS.filename
    with pytest.raises(WeightsNotFoundError) as info:
        load_inception()
    message = str(info.value)
    assert "gtx weights download inception" in message
    assert INCEPTION_WEIGHTS.url in message and str(expected) in message
    with pytest.raises(WeightsNotFoundError, match=r"elsewhere\.pth"):
        load_inception(tmp_path / "elsewhere.pth")


def test_wrong_weights_files_are_refused(tmp_path: Path,
                                         weights: dict[str, torch.Tensor]) -> None:
    broken = dict(weights)
    del broken["Mixed_7c.branch_pool.conv.weight"]
    broken["fc.weight"] = torch.zeros(1000, 2048)  # torchvision's Inception has 1000 classes
    broken["AuxLogits.fc.weight"] = torch.zeros(1)
    torch.save(broken, tmp_path / "broken.pth")
    with pytest.raises(WeightsFormatError) as info:
        load_inception(tmp_path / "broken.pth")
    message = str(info.value)
    assert "1 missing (Mixed_7c.branch_pool.conv.weight)" in message
    assert "1 unexpected (AuxLogits.fc.weight)" in message
    assert "fc.weight: (1000, 2048) (expected (1008, 2048))" in message

    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(WeightsFormatError, match="not a state dict of tensors"):
        load_inception(tmp_path / "list.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsFormatError, match=r"cannot read .*junk\.pth"):
        load_inception(tmp_path / "junk.pth")


def test_loaded_weights_identify_the_file(net: InceptionV3Features, weights_file: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    from gantransfer.hub import sha256_file

    assert net.weights_id == sha256_file(weights_file)
    assert net.weights_id in net.cache_key
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    # Files without BatchNorm step counters (as converted weights often are) load too, and a
    # file that is not the published one is flagged.
    stripped = {k: v for k, v in torch.load(weights_file, weights_only=True).items()
                if not k.endswith("num_batches_tracked")}
    torch.save(stripped, weights_file.with_name("stripped.pth"))
    with caplog.at_level("WARNING", logger="gantransfer"):
        other = load_inception(weights_file.with_name("stripped.pth"))
    assert "not the published FID Inception file" in caplog.text
    for key, value in net.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(other.state_dict()[key], value), key
