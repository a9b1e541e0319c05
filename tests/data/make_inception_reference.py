"""Write tests/data/inception_reference.npz: FID Inception features and FID/KID values computed by
torch-fidelity (the reference implementation) on deterministic inputs with deterministic random
weights. tests/evaluation/test_eval_inception.py recomputes them with gantransfer.evaluation.

Not run by the test suite: it needs torch-fidelity, which needs torchvision, which the project's
environment does not have. Run it in a separate environment (see tests/data/README.md)::

    python -m venv /tmp/fidref
    /tmp/fidref/bin/pip install torch==2.14.1 torchvision==0.29.1 torch-fidelity==0.4.0
    /tmp/fidref/bin/python tests/data/make_inception_reference.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "evaluation")]

import _eval_reference as ref  # noqa: E402
import torch_fidelity  # noqa: E402
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3  # noqa: E402
from torch_fidelity.interpolate_compat_tensorflow import (  # noqa: E402
    interpolate_bilinear_2d_like_tensorflow1x,
)
from torch_fidelity.metric_fid import (  # noqa: E402
    fid_features_to_statistics,
    fid_statistics_to_metric,
)
from torch_fidelity.metric_kid import kid_features_to_metric  # noqa: E402

from gantransfer.evaluation.inception import random_inception_weights  # noqa: E402

KID_SUBSETS = 3


def main() -> None:
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        weights_path = tmp_path / "random-inception.pth"
        torch.save(random_inception_weights(seed=ref.WEIGHTS_SEED), weights_path)
        # torch-fidelity loads the file with a strict load_state_dict: this fails unless our
        # network has exactly its keys and shapes.
        model = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                            feature_extractor_weights_path=str(weights_path))
        # The random procedure applied to torch-fidelity's own key list gives the same tensors.
        theirs = random_inception_weights(
            seed=ref.WEIGHTS_SEED, shapes={k: v.shape for k, v in model.state_dict().items()})
        ours = torch.load(weights_path, weights_only=True)
        assert theirs.keys() == ours.keys() and all(torch.equal(theirs[k], ours[k]) for k in ours)

        images = ref.fixture_images()
        with torch.no_grad():
            features = torch.cat([model(img.unsqueeze(0))[0] for img in images]).numpy()
            resized = interpolate_bilinear_2d_like_tensorflow1x(
                images[1].unsqueeze(0).float(), size=(299, 299), align_corners=False)
        resized_rows = resized[0, 0, :8].numpy()

        real, fakes = ref.write_folders(tmp_path / "folders")
        folder_fid, folder_kid_mean, folder_kid_std = [], [], []
        for level in ref.NOISE_LEVELS:
            out = torch_fidelity.calculate_metrics(
                input1=str(real), input2=str(fakes[level]), cuda=False, fid=True, kid=True,
                kid_subsets=KID_SUBSETS, kid_subset_size=ref.FOLDER_IMAGES,
                feature_extractor_weights_path=str(weights_path), cache=False, verbose=False,
                batch_size=ref.FOLDER_IMAGES)
            folder_fid.append(out["frechet_inception_distance"])
            folder_kid_mean.append(out["kernel_inception_distance_mean"])
            folder_kid_std.append(out["kernel_inception_distance_std"])

    # The statistics alone, on feature sets that need no network.
    f1 = ref.random_features(40, 64, seed=10)
    f2 = ref.random_features(40, 64, seed=11, shift=0.3)
    stats_fid = fid_statistics_to_metric(fid_features_to_statistics(f1),
                                         fid_features_to_statistics(f2), False)
    stats_kid = kid_features_to_metric(f1, f2, kid_subsets=KID_SUBSETS, kid_subset_size=40,
                                       verbose=False)

    out_path = ref.FIXTURE
    np.savez_compressed(
        out_path,
        features=features.astype(np.float32),
        resized_rows=resized_rows.astype(np.float32),
        noise_levels=np.array(ref.NOISE_LEVELS),
        folder_fid=np.array(folder_fid),
        folder_kid_mean=np.array(folder_kid_mean),
        folder_kid_std=np.array(folder_kid_std),
        stats_fid=np.float64(stats_fid["frechet_inception_distance"]),
        stats_kid_mean=np.float64(stats_kid["kernel_inception_distance_mean"]),
        stats_kid_std=np.float64(stats_kid["kernel_inception_distance_std"]),
        versions=np.array(f"torch {torch.__version__}, torch-fidelity {torch_fidelity.__version__}"),
    )
    print(f"wrote {out_path} ({out_path.stat().st_size} bytes)")
    print("folder FID", folder_fid, "KID", folder_kid_mean, folder_kid_std)
    print("stats FID", stats_fid, "KID", stats_kid)


if __name__ == "__main__":
    main()
