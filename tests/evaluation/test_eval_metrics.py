"""FID/KID statistics, paired metrics, feature plumbing, the feature cache and error messages.

No Inception here: a tiny extractor stands in (test_eval_inception.py runs the real network).
"""

from __future__ import annotations

import ast
import json
import logging
import os
import sys
from pathlib import Path

import _eval_reference as ref
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchmetrics.functional.image import structural_similarity_index_measure

from gantransfer.data.metrics import frechet_distance, psnr
from gantransfer.evaluation import (
    EvaluationError,
    FeatureCache,
    evaluate_features,
    evaluate_folders,
    extract_features,
    fid,
    folder_features,
    kid,
    paired_metrics,
)


class CountingExtractor:
    """A cheap stand-in for the Inception: resize to 4×4, flatten to 48 features; counts the
    images it embeds."""

    cache_key = "counting-test-extractor-v1"

    def __init__(self) -> None:
        self.embedded = 0

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        return F.interpolate(images.float(), size=(4, 4), mode="area")

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        self.embedded += len(x)
        return x.flatten(1) / 255.0


def _write(folder: Path, images: dict[str, np.ndarray]) -> Path:
    for name, array in images.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(path)
    return folder


def _rgb(seed: int, h: int = 16, w: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _with_moments(z: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Transform samples so their sample mean and unbiased covariance are exactly mean and cov."""
    z = z - z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # sample cov = I
    return mean + z @ np.linalg.cholesky(cov).T


# -- statistics ----------------------------------------------------------------------------------
def test_fid_equals_closed_form_for_two_gaussians() -> None:
    rng = np.random.default_rng(0)
    d = 8
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    # Diagonal covariances: FID = ‖m1 − m2‖² + Σ (√a − √b)² exactly.
    a, b = rng.uniform(0.5, 2.0, d), rng.uniform(0.5, 2.0, d)
    x = _with_moments(rng.normal(size=(300, d)), m1, np.diag(a))
    y = _with_moments(rng.normal(size=(200, d)), m2, np.diag(b))
    expected = float(((m1 - m2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())
    result = fid(x, y)
    assert result.value == pytest.approx(expected, rel=1e-9)
    assert (result.n_real, result.n_fake) == (300, 200)

    # Full covariances: the same as the project's eigen-decomposition closed form.
    g1, g2 = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = g1 @ g1.T / d + 0.1 * np.eye(d), g2 @ g2.T / d + 0.1 * np.eye(d)
    x = _with_moments(rng.normal(size=(300, d)), m1, s1)
    y = _with_moments(rng.normal(size=(300, d)), m2, s2)
    assert fid(x, y).value == pytest.approx(frechet_distance(m1, s1, m2, s2), rel=1e-8)


def test_fid_of_a_folder_with_itself_is_zero(tmp_path: Path) -> None:
    x = np.random.default_rng(1).normal(size=(100, 16))
    assert abs(fid(x, x).value) < 1e-9
    real = _write(tmp_path / "real", {f"{i}.png": _rgb(i) for i in range(60)})
    result = evaluate_folders(real, real, metrics=["fid", "kid"], extractor=CountingExtractor(),
                              cache=False, kid_subsets=5, kid_subset_size=30)
    assert result.fid is not None and result.kid is not None
    # KID's subsets of the two sides differ, so it scatters around 0 (-8e-4 here; a folder of
    # other images scores 0.3).
    assert abs(result.fid.value) < 1e-9 and abs(result.kid.mean) < 5e-3


def _brute_force_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with k(a, b) = (aᵀb / d + 1)³, written out term by term."""
    d, m, n = x.shape[1], len(x), len(y)

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float((a @ b / d + 1.0) ** 3)

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2.0 * xy


def test_kid_equals_brute_force_unbiased_mmd() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(25, 12)), rng.normal(0.3, 1.2, size=(25, 12))
    result = kid(x, y, subsets=4, subset_size=25)  # every subset is the whole set
    assert result.mean == pytest.approx(_brute_force_mmd2(x, y), rel=1e-10)
    assert result.std == pytest.approx(0.0, abs=1e-12)
    assert (result.subsets, result.subset_size, result.n_real, result.n_fake) == (4, 25, 25, 25)


def test_kid_subsets_are_seeded_and_spread() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(60, 8)), rng.normal(0.5, 1.0, size=(50, 8))
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = kid(x, y, subsets=20, subset_size=20, seed=7)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's generator is untouched
    assert kid(x, y, subsets=20, subset_size=20, seed=7) == first
    other = kid(x, y, subsets=20, subset_size=20, seed=8)
    assert other.mean != first.mean and first.std > 0
    # The subset estimates scatter around the full-set estimate.
    full = _brute_force_mmd2(x[:50], y)
    assert abs(first.mean - full) < 4 * first.std
    assert kid(x, y, subsets=3).subset_size == 50  # default: min(1000, n_real, n_fake)


def test_statistics_match_torch_fidelity() -> None:
    """FID/KID from torch-fidelity's own code on the same features (tests/data/README.md)."""
    fixture = np.load(ref.FIXTURE, allow_pickle=False)
    f1 = ref.random_features(40, 64, seed=10).numpy()
    f2 = ref.random_features(40, 64, seed=11, shift=0.3).numpy()
    assert fid(f1, f2).value == pytest.approx(float(fixture["stats_fid"]), rel=1e-7)
    assert kid(f1, f2, subsets=3, subset_size=40).mean == pytest.approx(
        float(fixture["stats_kid_mean"]), rel=1e-9)


def test_evaluate_features_notes_small_sets(caplog: pytest.LogCaptureFixture) -> None:
    x = np.random.default_rng(4).normal(size=(10, 4))
    with caplog.at_level(logging.WARNING, logger="gantransfer"):
        result = evaluate_features(x, x + 1.0, kid_subset_size=10)
    assert result.fid is not None and result.fid.biased
    assert "biased" in caplog.text and "10 real and 10 fake" in caplog.text
    assert any("biased" in n for n in result.notes)
    assert any("std (0) says nothing" in n for n in result.notes)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["fid"]["n_real"] == 10 and data["kid"]["subset_size"] == 10


# -- errors --------------------------------------------------------------------------------------
def test_statistics_errors_name_the_limit() -> None:
    x = np.zeros((5, 3))
    with pytest.raises(EvaluationError, match=r"FID needs at least 2 images per set.*1 real"):
        fid(x[:1], x)
    with pytest.raises(EvaluationError, match=r"subset size 10 is larger.*at most 5"):
        kid(x, np.ones((8, 3)), subset_size=10)
    with pytest.raises(ValueError, match="differ in dimension"):
        fid(x, np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"unknown metric.*is"):
        evaluate_features(x, x, metrics=["fid", "is"])


def test_folder_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    good = _write(tmp_path / "good", {"a.png": _rgb(0), "b.png": _rgb(1)})
    extractor = CountingExtractor()
    with pytest.raises(EvaluationError, match="empty contains no images"):
        evaluate_folders(good, tmp_path / "empty", extractor=extractor, cache=False)
    with pytest.raises(EvaluationError, match="missing does not exist"):
        evaluate_folders(tmp_path / "missing", good, extractor=extractor, cache=False)
    (good / "c.png").write_bytes(b"not a png")
    with pytest.raises(EvaluationError, match=r"cannot read image .*c\.png"):
        folder_features(good, extractor)


def test_paired_mismatches_name_both_files(tmp_path: Path) -> None:
    real = _write(tmp_path / "real", {"x.png": _rgb(0), "y.png": _rgb(1)})
    fake = _write(tmp_path / "fake", {"x.png": _rgb(2, 16, 12)})
    with pytest.raises(EvaluationError, match=r"fake/x\.png is 12×16 .*real/x\.png is 16×16"):
        paired_metrics(real, fake)
    gray = _write(tmp_path / "gray", {"y.png": _rgb(3)[..., 0]})
    with pytest.raises(EvaluationError, match=r"gray/y\.png has 1 channel.*real/y\.png has 3"):
        paired_metrics(real, gray)


def test_missing_torchmetrics_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchmetrics", None)  # makes `import torchmetrics` fail
    with pytest.raises(ImportError, match=r"pip install 'gantransfer\[eval\]'"):
        fid(np.zeros((3, 2)), np.ones((3, 2)))


def test_evaluation_modules_import_torchmetrics_only_inside_functions() -> None:
    """Importing gantransfer.evaluation must work without torchmetrics (test_registry checks
    that `import gantransfer` imports no torch at all); checked on the source, as this test
    process has torchmetrics loaded already."""
    import gantransfer.evaluation

    package = Path(gantransfer.evaluation.__file__).parent
    for module in package.glob("*.py"):
        for node in ast.parse(module.read_text()).body:  # module level only
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "torchmetrics" for n in names), module


# -- features ------------------------------------------------------------------------------------
def test_tensors_and_saved_files_give_the_same_features(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(5, 3, 12, 12, generator=gen) * 2 - 1  # a generator's output range
    uint8 = ((images + 1) * 127.5).round().to(torch.uint8)
    folder = _write(tmp_path / "out", {f"{i}.png": uint8[i].permute(1, 2, 0).numpy()
                                       for i in range(5)})
    seen: list[tuple[str, int, int | None]] = []
    from_files = folder_features(folder, CountingExtractor(), batch_size=2,
                                 progress=lambda *a: seen.append(a))
    assert [s[1:] for s in seen] == [(2, 5), (4, 5), (5, 5)]
    # In batches of 2 and 3 from an iterator, with another network batch size: same features.
    batches = iter([images[:2], images[2:]])
    from_tensors = extract_features(batches, CountingExtractor(), batch_size=3, total=5)
    np.testing.assert_array_equal(from_tensors, from_files)
    # A grayscale tensor is the gray value repeated in R, G and B.
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        extract_features(images, CountingExtractor(), batch_size=0)
    gray = extract_features(uint8[:, :1], CountingExtractor())
    rgb = extract_features(uint8[:, :1].expand(-1, 3, -1, -1), CountingExtractor())
    np.testing.assert_array_equal(gray, rgb)


def test_folders_of_mixed_sizes_and_modes(tmp_path: Path) -> None:
    folder = _write(tmp_path / "mixed", {"a.png": _rgb(0, 16, 16), "sub/b.jpg": _rgb(1, 24, 20),
                                         "c.png": _rgb(2, 10, 30)[..., 0]})
    features = folder_features(folder, CountingExtractor(), batch_size=2)
    assert features.shape == (3, 48)
    gray = features[1].reshape(3, 16)  # c.png sorts between a.png and sub/b.jpg
    np.testing.assert_array_equal(gray[0], gray[1])


# -- cache ---------------------------------------------------------------------------------------
def test_real_features_are_cached_across_evaluations(tmp_path: Path) -> None:
    real = _write(tmp_path / "real", {f"{i}.png": _rgb(i) for i in range(6)})
    fakes = [_write(tmp_path / f"fake{k}", {f"{i}.png": _rgb(10 * k + i) for i in range(6)})
             for k in range(2)]
    cache = FeatureCache(tmp_path / "cache")
    extractor = CountingExtractor()
    results = [evaluate_folders(real, fake, metrics=["fid", "kid"], extractor=extractor,
                                cache=cache, kid_subsets=2) for fake in fakes]
    assert extractor.embedded == 6 + 6 + 6  # real once, each fake once
    assert results[0].fid.value != results[1].fid.value  # type: ignore[union-attr]
    [entry] = cache.root.iterdir()  # one entry, no temporary files left behind
    with np.load(entry, allow_pickle=False) as data:
        assert data["features"].shape == (6, 48)

    # Same files: no extraction. Any change to the folder: extracted again.
    folder_features(real, extractor, cache=cache)
    assert extractor.embedded == 18
    _write(real, {"6.png": _rgb(6)})
    assert folder_features(real, extractor, cache=cache).shape == (7, 48)
    assert extractor.embedded == 25
    os.utime(real / "0.png", ns=(1, 1))
    folder_features(real, extractor, cache=cache)
    assert extractor.embedded == 32
    # Another extractor (other weights or preprocessing) never sees these features.
    other = CountingExtractor()
    other.cache_key = "another-extractor"
    folder_features(real, other, cache=cache)
    assert other.embedded == 7


def test_a_broken_cache_entry_is_recomputed(tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    real = _write(tmp_path / "real", {f"{i}.png": _rgb(i) for i in range(3)})
    cache = FeatureCache(tmp_path / "cache")
    extractor = CountingExtractor()
    expected = folder_features(real, extractor, cache=cache)
    [entry] = cache.root.iterdir()
    entry.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="gantransfer"):
        np.testing.assert_array_equal(folder_features(real, extractor, cache=cache), expected)
    assert extractor.embedded == 6 and "ignoring unreadable cached features" in caplog.text


# -- paired --------------------------------------------------------------------------------------
def test_paired_metrics_per_matching_relative_path(tmp_path: Path) -> None:
    truth = {"a": _rgb(0, 24, 24), "sub/b": _rgb(1, 24, 24)}
    real = _write(tmp_path / "real", {f"{k}.png": v for k, v in truth.items()})
    noisy = np.clip(truth["sub/b"].astype(int) + np.random.default_rng(5).integers(
        -20, 21, truth["sub/b"].shape), 0, 255).astype(np.uint8)
    # Extensions may differ (x.bmp pairs with x.png); extra.png has no ground truth.
    fake = _write(tmp_path / "fake", {"a.bmp": truth["a"], "sub/b.png": noisy,
                                      "extra.png": _rgb(9, 24, 24)})
    result = paired_metrics(real, fake)
    assert (result.n_pairs, result.n_unmatched) == (2, 1)
    assert result.per_image["a.bmp"] == {"psnr": float("inf"), "ssim": pytest.approx(1.0)}
    expected_ssim = float(structural_similarity_index_measure(
        torch.from_numpy(noisy).permute(2, 0, 1)[None].double() / 255,
        torch.from_numpy(truth["sub/b"]).permute(2, 0, 1)[None].double() / 255, data_range=1.0))
    assert result.per_image["sub/b.png"] == {"psnr": pytest.approx(psnr(noisy, truth["sub/b"])),
                                             "ssim": pytest.approx(expected_ssim)}
    assert 0 < expected_ssim < 0.99
    assert result.psnr == float("inf") and result.ssim == pytest.approx((1 + expected_ssim) / 2)


def test_paired_metrics_not_applicable_without_ground_truth(tmp_path: Path) -> None:
    real = _write(tmp_path / "real", {"a.png": _rgb(0), "b.png": _rgb(1)})
    fake = _write(tmp_path / "fake", {"c.png": _rgb(2), "d.png": _rgb(3)})
    result = evaluate_folders(real, fake, metrics=["fid", "psnr", "ssim"],
                              extractor=CountingExtractor(), cache=False)
    assert result.paired is not None and not result.paired.applicable
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["psnr"] == {"value": None, "status": "not applicable",
                            "reason": f"no image in {fake} has a ground truth of the same "
                                      f"relative path in {real}"}
    assert data["ssim"]["status"] == "not applicable"
    assert data["fid"]["n_real"] == 2 and "kid" not in data
