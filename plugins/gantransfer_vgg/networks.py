"""VGG-backed discriminators: an ImageNet VGG feature stack with a small trainable head.

The trunk has exactly torchvision's module layout (``features.<index>.weight/bias``), so
torchvision's VGG16/VGG19 state dicts load directly (their ``classifier.*`` keys are ignored).
Inputs arrive in [-1, 1] and are mapped to ImageNet normalisation inside the network.

Frozen trunk layers loaded from a weights file are not written into every checkpoint: the
network's state dict holds a small record (file name, path, SHA-256) in their place, and loading
re-reads and hash-checks the file. This lives entirely in the network's state-dict hooks, so the
engine and checkpoints need no special case.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import torch
from torch import Tensor, nn

from gantransfer.nn import SizeContract, check_labels, init_weights, projection

from ._weights import (
    WEIGHTS,
    LoadedWeights,
    WeightsFileError,
    find_recorded_file,
    read_weights,
    resolve_weights,
)

__all__ = ["CONVS_PER_BLOCK", "VGGDiscriminator", "vgg16", "vgg19"]

log = logging.getLogger(__name__)

CONVS_PER_BLOCK = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Head = Literal["dense", "patch"]


class VGGDiscriminator(nn.Module):
    """VGG feature stack up to ``tap_block`` plus a ``dense`` or ``patch`` head; raw logits out.

    Inputs: ``N×in_channels×H×W`` in [-1, 1] (grayscale is repeated to 3 channels).
    Outputs: ``N`` logits (``dense``) or an ``N×1×h×w`` logit map (``patch``).

    Build it through :func:`vgg16` / :func:`vgg19`, which document the options.
    """

    def __init__(self, *, arch: str = "vgg16", in_channels: int = 3,
                 weights: str | None = "auto", trainable_layers: int | None = None,
                 tap_block: int = 5, head: str = "dense", head_width: int | None = None,
                 dense_pool: int = 4, image_size: int | None = None, n_classes: int = 0
                 ) -> None:
        super().__init__()
        if n_classes < 0:
            raise ValueError(f"{arch} n_classes must be >= 0; got {n_classes!r}")
        # Class-conditional (n_classes > 0): a projection head on the tapped features (Miyato &
        # Koyama 2018, Eq. 3), called d(x, labels).
        self.n_classes = n_classes
        self.accepts_labels = n_classes > 0
        if arch not in CONVS_PER_BLOCK:
            raise ValueError(f"arch must be one of {', '.join(CONVS_PER_BLOCK)}; got {arch!r}")
        if in_channels not in (1, 3):
            raise ValueError(f"{arch} takes 1 or 3 input channels; got in_channels={in_channels}")
        if tap_block not in range(1, 6):
            raise ValueError(f"{arch} tap_block must be 1..5 (which block feeds the head); "
                             f"got {tap_block!r}")
        if head not in ("dense", "patch"):
            raise ValueError(f"{arch} head must be 'dense' or 'patch'; got {head!r}")
        if image_size is not None and image_size < 2 ** (tap_block - 1):
            raise ValueError(f"{arch} tapped at block {tap_block} needs images of at least "
                             f"{2 ** (tap_block - 1)} px; got image_size={image_size}")
        self.arch, self.in_channels, self.head_kind = arch, in_channels, head
        # Each block after the first starts with a 2x2 max-pool: the tapped block needs >= 1 px.
        self.size_contract = SizeContract(
            min_size=2 ** (tap_block - 1), reason=f"{arch} discriminator tapped at block "
            f"{tap_block} ({tap_block - 1} max-pools)")

        # 1. Trunk: torchvision's layout, cut after the last ReLU of the tapped block (its pool
        # would only halve the map the head sees). Indices are torchvision's, so keys match.
        layers: list[nn.Module] = []
        self.conv_indices: list[int] = []
        c_in = 3
        for block, n_convs in enumerate(CONVS_PER_BLOCK[arch][:tap_block]):
            if block > 0:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            for _ in range(n_convs):
                self.conv_indices.append(len(layers))
                layers += [nn.Conv2d(c_in, WIDTHS[block], 3, padding=1), nn.ReLU(inplace=True)]
                c_in = WIDTHS[block]
        self.features = nn.Sequential(*layers)
        for i in self.conv_indices:  # torchvision's VGG init, for runs without weights
            conv = self.features[i]
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)

        # 2. Head (always trainable), DCGAN-style N(0, 0.02) init.
        if head == "dense":
            width = head_width or 1024
            self.head = nn.Sequential(
                nn.AdaptiveAvgPool2d(dense_pool),  # any image size -> a fixed-size vector
                nn.Flatten(1),
                nn.Linear(c_in * dense_pool * dense_pool, width),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Dropout(0.5),
                nn.Linear(width, 1),
            )
        else:
            width = head_width or 256
            self.head = nn.Sequential(
                nn.Conv2d(c_in, width, 3, padding=1), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(width, 1, 3, padding=1),
            )
        init_weights(self.head, kind="normal", gain=0.02)
        if n_classes:  # V of Eq. 3: one vector per class over the tapped features' channels
            self.embedding = nn.Embedding(n_classes, c_in)
            nn.init.normal_(self.embedding.weight, 0.0, 0.02)

        # 3. ImageNet normalisation as non-persistent buffers: they follow .to(device) but are
        # constants, not state.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

        # 4. Weights, then freezing: the last `trainable_layers` convs stay trainable.
        self._weights_record: dict[str, str] | None = None
        path = resolve_weights(weights, arch=arch)
        if path is not None:
            known = WEIGHTS[arch]
            # The torchvision file is checked against its known hash; other files are recorded.
            expected = (known.sha256 or known.sha256_prefix) if path.name == known.filename \
                else None
            self._use_file(read_weights(path, arch=arch, expected_sha256=expected))
        n_convs = len(self.conv_indices)
        n_trainable = CONVS_PER_BLOCK[arch][tap_block - 1] if trainable_layers is None \
            else trainable_layers
        if not 0 <= n_trainable <= n_convs:
            raise ValueError(f"{arch} trainable_layers must be 0..{n_convs} (convs up to block "
                             f"{tap_block}); got {trainable_layers!r}")
        frozen = self.conv_indices[: n_convs - n_trainable]
        for i in frozen:
            self.features[i].requires_grad_(False)
        self.frozen_keys = [f"features.{i}.{p}" for i in frozen for p in ("weight", "bias")]

        self.register_state_dict_post_hook(_drop_frozen_from_state_dict)
        self.register_load_state_dict_pre_hook(_restore_frozen_from_file)

    # -- weights -------------------------------------------------------------------------------
    def load_torchvision_state_dict(self, state_dict: dict[str, Tensor], *,
                                    source: str = "state dict") -> None:
        """Load a torchvision VGG state dict into the trunk, strictly.

        ``classifier.*`` keys and ``features.*`` layers past the tapped block are ignored; every
        trunk key must be present with its exact shape.

        Raises:
            WeightsFileError: a missing, misplaced or mis-shaped key (e.g. a VGG19 file for vgg16).
        """
        own = self.features.state_dict()
        foreign = sorted(k for k in state_dict if not k.startswith(("features.", "classifier.")))
        trunk = {k.removeprefix("features."): v for k, v in state_dict.items()
                 if k.startswith("features.")}
        depth = len(self.features)
        foreign += sorted(f"features.{k}" for k in trunk if not k.split(".")[0].isdigit())
        misplaced = sorted(f"features.{k}" for k in trunk if k not in own
                           and k.split(".")[0].isdigit() and int(k.split(".")[0]) < depth)
        missing = sorted(k for k in own if k not in trunk)
        wrong = sorted(k for k in own if k in trunk and trunk[k].shape != own[k].shape)
        if foreign or misplaced or missing or wrong:
            raise WeightsFileError(
                f"{source} is not a torchvision {self.arch} state dict: "
                + "; ".join(f"{what}: {', '.join(keys[:4])}" for what, keys in (
                    ("unexpected keys", foreign), ("keys at non-conv positions", misplaced),
                    ("missing keys", [f"features.{k}" for k in missing]),
                    ("wrong shapes", [f"features.{k}" for k in wrong])) if keys)
                + f". Use the {self.arch} file (e.g. {WEIGHTS[self.arch].filename})."
            )
        self.features.load_state_dict({k: trunk[k] for k in own}, strict=True)

    def _use_file(self, loaded: LoadedWeights) -> None:
        self.load_torchvision_state_dict(loaded.state_dict, source=str(loaded.path))
        self._weights_record = loaded.record()
        log.info("%s trunk loaded from %s (SHA-256 %s)", self.arch, loaded.path, loaded.sha256)

    @property
    def weights_record(self) -> dict[str, str] | None:
        """``{"path", "filename", "sha256"}`` of the loaded weights file, or None (random init)."""
        return None if self._weights_record is None else dict(self._weights_record)

    def get_extra_state(self) -> dict[str, Any]:
        record = self._weights_record
        return {"weights": None if record is None else dict(record),
                "frozen_keys": list(self.frozen_keys) if record is not None else []}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        record = state.get("weights") if isinstance(state, dict) else None
        self._weights_record = None if record is None else dict(record)

    # -- forward -------------------------------------------------------------------------------
    def normalize(self, x: Tensor) -> Tensor:
        """Map images in [-1, 1] to ImageNet normalisation, repeating grayscale to RGB."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{self.arch} discriminator expects N×{self.in_channels}×H×W images; "
                             f"got {tuple(x.shape)}")
        if self.in_channels == 1:
            x = x.expand(-1, 3, -1, -1)
        return ((x + 1) * 0.5 - self.mean) / self.std

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        features = self.features(self.normalize(x))
        logits = self.head(features)
        if self.n_classes:
            if labels is None:
                raise ValueError(f"this {self.arch} discriminator is class-conditional "
                                 f"({self.n_classes} classes): call it as d(x, labels)")
            labels = check_labels(labels, self.n_classes, batch=x.shape[0], owner=self.arch)
            # The projection term y^T V φ(x): averaged over locations for the dense head (one
            # logit per image), per location for the patch head (a logit map of the same size).
            term = projection(features, labels, self.embedding)
            logits = logits + (term.mean(dim=(2, 3)) if self.head_kind == "dense" else term)
        return logits.flatten() if self.head_kind == "dense" else logits


def _drop_frozen_from_state_dict(module: VGGDiscriminator, state_dict: dict[str, Any],
                                 prefix: str, local_metadata: Any) -> None:
    # Frozen layers that came from a file are recorded by reference in `_extra_state`.
    if module._weights_record is not None:
        for key in module.frozen_keys:
            state_dict.pop(prefix + key, None)


def _restore_frozen_from_file(module: VGGDiscriminator, state_dict: dict[str, Any], prefix: str,
                              local_metadata: Any, strict: bool, missing_keys: list[str],
                              unexpected_keys: list[str], error_msgs: list[str]) -> None:
    extra = state_dict.get(prefix + "_extra_state")
    record = extra.get("weights") if isinstance(extra, dict) else None
    if record is None:
        return
    needed = [k for k in extra.get("frozen_keys", []) if prefix + k not in state_dict]
    if not needed:
        return
    # Always re-read and hash-check: the checkpoint is only valid with the very same file.
    loaded = find_recorded_file(record, arch=module.arch)
    for key in needed:
        if key not in loaded.state_dict:
            raise WeightsFileError(f"{loaded.path} has no {key}, which the checkpoint needs")
        # Inserted in place: torch hands the same dict on to the child modules.
        state_dict[prefix + key] = loaded.state_dict[key]


def _factory(arch: str, *, in_channels: int, image_size: int | None, weights: str | None,
             trainable_layers: int | None, tap_block: int, head: str,
             head_width: int | None, dense_pool: int, n_classes: int = 0) -> VGGDiscriminator:
    return VGGDiscriminator(arch=arch, in_channels=in_channels, weights=weights,
                            trainable_layers=trainable_layers, tap_block=tap_block, head=head,
                            head_width=head_width, dense_pool=dense_pool, image_size=image_size,
                            n_classes=n_classes)


def vgg16(*, in_channels: int = 3, image_size: int | None = None, weights: str | None = "auto",
          trainable_layers: int | None = None, tap_block: int = 5, head: str = "dense",
          head_width: int | None = None, dense_pool: int = 4, n_classes: int = 0
          ) -> VGGDiscriminator:
    """VGG16 discriminator on ImageNet features (torchvision layout), raw logits out.

    Args:
        in_channels: 1 or 3; grayscale is repeated to RGB.
        image_size: checked against the tap depth (images must reach the tapped block), else
            unused: the network takes any size.
        weights: ``"auto"`` (torchvision's cached ``vgg16-397923af.pth`` if present, otherwise
            random with a warning), a ``.pth``/``.safetensors`` path, or None/``"none"``.
        trainable_layers: how many of the last convs up to ``tap_block`` stay trainable;
            default: the convs of the tapped block. The others get ``requires_grad=False``.
        tap_block: which block's features (1..5, before its max-pool) feed the head.
        head: ``"dense"`` (adaptive pool -> Linear 1024 -> LeakyReLU 0.2 -> Dropout 0.5 ->
            Linear 1: one logit per image) or ``"patch"`` (two 3×3 convs: a logit map).
        head_width: hidden width of the head (default 1024 dense, 256 patch).
        dense_pool: side of the adaptive pooling grid before the dense head.
        n_classes: > 0 makes it a class-conditional projection discriminator (Miyato & Koyama
            2018): ``d(x, labels)`` adds ``y^T V φ(x)`` on the tapped features (averaged for the
            dense head, per location for the patch head); a conditional DCGAN passes it.

    Raises:
        ValueError: an option out of range. FileNotFoundError: a missing ``weights`` path.
        WeightsFileError: a file that is not a VGG16 state dict or fails its hash check.
    """
    return _factory("vgg16", in_channels=in_channels, image_size=image_size, weights=weights,
                    trainable_layers=trainable_layers, tap_block=tap_block, head=head,
                    head_width=head_width, dense_pool=dense_pool, n_classes=n_classes)


def vgg19(*, in_channels: int = 3, image_size: int | None = None, weights: str | None = "auto",
          trainable_layers: int | None = None, tap_block: int = 5, head: str = "dense",
          head_width: int | None = None, dense_pool: int = 4, n_classes: int = 0
          ) -> VGGDiscriminator:
    """VGG19 discriminator on ImageNet features (torchvision layout), raw logits out.

    Same options as :func:`vgg16`; ``weights="auto"`` looks for ``vgg19-dcbb9e9d.pth``.
    """
    return _factory("vgg19", in_channels=in_channels, image_size=image_size, weights=weights,
                    trainable_layers=trainable_layers, tap_block=tap_block, head=head,
                    head_width=head_width, dense_pool=dense_pool, n_classes=n_classes)


# Advertised to `gtx weights download NAME` through gantransfer.hub.weights_file_for.
vgg16.pretrained_weights = WEIGHTS["vgg16"]  # type: ignore[attr-defined]
vgg19.pretrained_weights = WEIGHTS["vgg19"]  # type: ignore[attr-defined]
