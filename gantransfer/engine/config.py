"""``TrainConfig``: how the engine runs a model (length, batch, device, precision, outputs).

What a model computes lives in the architecture's own ``Config``; everything here is about the
run and is independent of the architecture, so the same fields work for every plugin.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import check_choices, field
from ..device import check_device_name, resolve_device
from ..nn import parse_policy
from ..precision import ALLOWED

__all__ = ["TrainConfig", "check_device_name", "resolve_device"]


@dataclass(kw_only=True)
class TrainConfig:
    """Run settings for :class:`gantransfer.engine.Trainer`.

    Exactly one of ``steps`` and ``epochs`` must be given. One step is one batch (one call of the
    model's ``train_step``); an epoch is one pass over the data with ``drop_last`` batching.

    Raises:
        ValueError: from ``__post_init__`` when a value is out of range (the message says which).
    """

    steps: int | None = field(None, help="total optimisation steps (one step = one batch)")
    epochs: int | None = field(None, help="total passes over the data (alternative to steps)")
    batch_size: int = field(1, help="images per step and per process")
    device: str = field(
        "auto", help="where to train: auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps",
    )
    precision: str = field(
        "fp32", help="fp32; bf16 (autocast); fp16 (autocast + grad scaler, CUDA only); "
        "auto (bf16 where the hardware computes it natively, else fp32)",
        choices=ALLOWED["training"],
    )
    seed: int = field(0, help="seed for data order, noise and crops (gtx train also builds the "
                      "model's initial weights from it)")
    ema_decay: float | None = field(
        None, help="EMA of the generator weights (e.g. 0.999); None disables it"
    )
    grad_clip: float | None = field(None, help="max gradient L2 norm per optimizer group")
    log_every: int = field(50, help="steps between lines in metrics.jsonl")
    sample_every: int = field(500, help="steps between sample grids, the first at step 0 "
                              "(0 = only at the end)")
    sample_count: int = field(8, help="images per row of a sample grid")
    checkpoint_every: int = field(1000, help="steps between checkpoints (0 = only at the end)")
    keep_checkpoints: int | None = field(3, help="checkpoints kept on disk (None keeps all)")
    num_workers: int | None = field(None, help="DataLoader worker processes (None = automatic)")
    max_nonfinite_steps: int = field(
        20, help="consecutive steps with a NaN/inf loss or gradient before training stops"
    )
    shuffle: bool = field(True, help="reshuffle the data every epoch")
    drop_last: bool = field(True, help="drop the last incomplete batch of an epoch")
    d_augment: str = field(
        "", help="differentiable augmentation of every discriminator input, real and fake "
        "(DiffAugment): a comma-separated subset of color,translation,cutout; empty = off",
    )
    d_augment_p: float = field(
        1.0, help="probability in [0, 1] that each d_augment op is applied to each sample "
        "(1 = always, DiffAugment); fixed unless d_augment_target is set",
    )
    d_augment_target: float = field(
        0.0, help="adaptive augmentation (ADA): target in (0, 1) for r_t = E[sign(D(real))], "
        "the paper uses 0.6; p starts at 0 and rises while D is more confident on real images "
        "than this; 0 = off (p fixed at d_augment_p)",
    )
    d_augment_interval: int = field(4, help="ADA: steps between adjustments of p")
    # ADA's 500k images suit runs of tens of millions of images; with 10k, p can cover [0, 1]
    # within a few thousand images, the length of the short small-data runs this is for.
    d_augment_speed: int = field(
        10_000, help="ADA: training images over which p can go from 0 to 1 (the paper: 500k)",
    )
    sync_batchnorm: bool = field(
        False, help="distributed runs: convert BatchNorm layers to SyncBatchNorm (CUDA/nccl)"
    )
    eval_every: int = field(0, help="steps between evaluations on held-out images (0 = off); "
                            "results go to metrics.jsonl and the loggers")
    eval_metrics: str = field(
        "auto", help="comma list of fid, kid, psnr, ssim, stats; auto: fid and kid when the "
        "Inception weights are downloaded, psnr/ssim where ground truth exists, stats (a "
        "weights-free distance) always")
    eval_best: str = field(
        "auto", help="metric that picks checkpoints/best.pt, e.g. fid or a2b/psnr; auto: fid, "
        "else kid, psnr, ssim, stats (the first that ran); none: keep no best")
    eval_images: int = field(100, help="most held-out images evaluated per direction")
    eval_holdout: float = field(
        0.1, help="fraction of the training images held out for evaluation (fixed seed) when "
        "the data has no test split (testA/testB, test/A, test/B)")
    loggers: tuple[str, ...] = field(
        (), help="loggers beside metrics.jsonl (always on): tensorboard")

    def __post_init__(self) -> None:
        check_choices(self)
        check_device_name(self.device, owner="TrainConfig.device")
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(
                "TrainConfig needs exactly one of steps and epochs "
                f"(got steps={self.steps!r}, epochs={self.epochs!r})"
            )
        for name in ("steps", "epochs"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        for name in ("batch_size", "log_every", "sample_count", "max_nonfinite_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("sample_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0 (0 = only at the end)")
        if self.keep_checkpoints is not None and self.keep_checkpoints < 1:
            raise ValueError("TrainConfig.keep_checkpoints must be >= 1, or None to keep all")
        if self.num_workers is not None and self.num_workers < 0:
            raise ValueError("TrainConfig.num_workers must be >= 0, or None for automatic")
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ValueError(
                f"TrainConfig.ema_decay must be in (0, 1), e.g. 0.999, got {self.ema_decay!r}"
            )
        self._check_eval()
        if not isinstance(self.d_augment, str):
            raise ValueError("TrainConfig.d_augment must be a string such as "
                             f"'color,translation,cutout' (empty = off); got {self.d_augment!r}")
        policy = parse_policy(self.d_augment)  # names checked here, not at the first step
        self._check_augment_strength(bool(policy))
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"TrainConfig.grad_clip must be > 0 or None, got {self.grad_clip!r}")

    def _check_augment_strength(self, augmenting: bool) -> None:
        for name in ("d_augment_p", "d_augment_target"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"TrainConfig.{name} must be a number, got {value!r}")
            setattr(self, name, float(value))
        if not 0.0 <= self.d_augment_p <= 1.0:
            raise ValueError("TrainConfig.d_augment_p must be a probability in [0, 1] (1 = "
                             f"always augment), got {self.d_augment_p!r}")
        if not 0.0 <= self.d_augment_target < 1.0:
            raise ValueError("TrainConfig.d_augment_target must be in [0, 1): 0 = fixed p, "
                             f"e.g. 0.6 for adaptive augmentation (ADA); got "
                             f"{self.d_augment_target!r}")
        for name in ("d_augment_interval", "d_augment_speed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        if self.d_augment_target > 0 and not augmenting:
            raise ValueError("TrainConfig.d_augment_target adapts the strength of d_augment, "
                             "which is off: name the augmentations too, e.g. "
                             "d_augment='translation,cutout', or set d_augment_target=0")
        if self.d_augment_target > 0 and self.d_augment_p != 1.0:
            raise ValueError("TrainConfig.d_augment_p fixes p, d_augment_target adapts it "
                             "(starting at 0): set one of them (d_augment_p=1 with a target)")

    def _check_eval(self) -> None:
        from .evaluator import EVAL_METRICS, LOGGERS

        if self.eval_every < 0:
            raise ValueError("TrainConfig.eval_every must be >= 0 (0 = no evaluation)")
        if self.eval_images < 2:
            raise ValueError(f"TrainConfig.eval_images must be >= 2, got {self.eval_images!r}")
        if not 0.0 <= self.eval_holdout < 1.0:
            raise ValueError("TrainConfig.eval_holdout must be in [0, 1), e.g. 0.1, got "
                             f"{self.eval_holdout!r}")
        if self.eval_metrics != "auto":
            names = [m.strip() for m in self.eval_metrics.split(",") if m.strip()]
            unknown = sorted(set(names) - set(EVAL_METRICS))
            if unknown or not names:
                raise ValueError(f"TrainConfig.eval_metrics: unknown metric(s) "
                                 f"{', '.join(unknown) or '(none)'}; choose from "
                                 f"{', '.join(EVAL_METRICS)}, or auto")
        best = self.eval_best.rsplit("/", 1)[-1]
        if best not in (*EVAL_METRICS, "auto", "none"):
            raise ValueError(f"TrainConfig.eval_best: unknown metric {self.eval_best!r}; "
                             f"choose from {', '.join(EVAL_METRICS)} (optionally as "
                             "DIRECTION/METRIC, e.g. a2b/psnr), auto or none")
        unknown = sorted(set(self.loggers) - set(LOGGERS))
        if unknown:
            raise ValueError(f"TrainConfig.loggers: unknown logger(s) {', '.join(unknown)}; "
                             f"choose from {', '.join(LOGGERS)} (metrics.jsonl is always "
                             "written)")
