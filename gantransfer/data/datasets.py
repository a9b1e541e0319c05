"""Datasets for the three data kinds, and :func:`build_dataset`.

``dataset[key]`` takes an int or a tuple ``(index, seed)``. Every random choice of a sample (crop,
flip, the B partner of unpaired data) comes from ``numpy.random.default_rng(seed)``, never from a
global RNG, so a sample is a pure function of ``(index, seed)``; an int key uses ``seed = index``.
Items are dicts of CPU float32 C×H×W tensors in [-1, 1]: ``{"image"}`` or ``{"A", "B"}``.

Construction reads every file header (cheap, Pillow opens lazily) to fail early on non-images and
on crops that cannot fit. With ``skip_bad_images=True`` each file is fully decoded once instead,
and unreadable files are left out and listed in ``dataset.skipped``.
"""

from __future__ import annotations

import logging
import operator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from .config import DataConfig
from .folders import DataError, DataLayoutError, ImageReadError, resolve_layout
from .images import probe_images, read_image
from .lock import check_sizes
from .transforms import (
    TransformParams,
    apply_transform,
    check_crop,
    check_image_sizes,
    check_model_size,
    output_size,
    resized_size,
    sample_params,
    to_tensor,
)

__all__ = [
    "ImageFolderDataset",
    "LabelledImageDataset",
    "PairedImageDataset",
    "SingleImageDataset",
    "UnpairedImageDataset",
    "build_dataset",
    "label_names",
]

if TYPE_CHECKING:  # pragma: no cover
    from ..nn import SizeContract

logger = logging.getLogger(__name__)

class ImageFolderDataset(Dataset):
    """Common machinery: file discovery, verification, size checks and per-sample seeding.

    Attributes:
        config: the resolved :class:`DataConfig` (no ``None`` options).
        files: ``{"image": [...]}`` or ``{"A": [...], "B": [...]}`` (readable files only).
        sizes: header (width, height) of every file in ``files``, same structure.
        skipped: ``(path, reason)`` of every file left out because it could not be read.
    """

    kind: ClassVar[str]
    domains: ClassVar[tuple[str, ...]]

    def __init__(self, config: DataConfig, *, defaults: dict[str, Any] | None = None,
                 size_contract: SizeContract | None = None) -> None:
        self.config = config.resolved(defaults)
        cfg = self.config
        # Options first: a crop the model cannot take fails before any file is read.
        check_model_size(size_contract, **self._size_options())
        found = self._resolve()
        # A downloaded dataset's lock: a file whose size changed since is an error (a stat each).
        check_sizes(cfg.root, (p for files in found.values() for p in files))
        self.skipped: list[tuple[Path, str]] = []
        infos = {d: probe_images(found[d], full=cfg.skip_bad_images) for d in self.domains}
        keep = self._select(found, infos)
        self.files = {d: [found[d][i] for i in keep[d]] for d in self.domains}
        self.sizes = {d: [infos[d][i].size for i in keep[d]] for d in self.domains}  # type: ignore[union-attr]
        if self.skipped:
            first_path, first_reason = self.skipped[0]
            logger.warning("skipped %d unreadable image(s) under %s (first: %s: %s); "
                           "see dataset.skipped for the list", len(self.skipped), cfg.root,
                           first_path, first_reason)
        for d in self.domains:
            if not self.files[d]:
                raise DataLayoutError(f"every image of domain {d} under {cfg.root} is unreadable "
                                      f"({len(found[d])} skipped); nothing left to train on")
            named = {str(p): s for p, s in zip(self.files[d], self.sizes[d], strict=True)}
            check_crop(named, contract=size_contract, **self._size_options())
            smallest = min(min(size) for size in self.sizes[d])
            check_model_size(size_contract, smallest_image=smallest, **self._size_options())
            check_image_sizes(named, size_contract, **self._size_options())
        self._warn_mixed_sizes()

    # -- construction helpers -------------------------------------------------------------------
    def _resolve(self) -> dict[str, list[Path]]:
        """The files of every domain under the layout of this kind."""
        return resolve_layout(self.kind, self.config.root, phase=self.config.phase)

    def _select(self, found: dict[str, list[Path]], infos: dict[str, list[Any]]
                ) -> dict[str, list[int]]:
        """Indices of usable files per domain; bad files raise, or are recorded when skipping."""
        keep: dict[str, list[int]] = {}
        for d in self.domains:
            keep[d] = []
            for i, info in enumerate(infos[d]):
                if isinstance(info, ImageReadError):
                    if not self.config.skip_bad_images:
                        raise info
                    self.skipped.append((info.path, info.reason))
                else:
                    keep[d].append(i)
        return keep

    def _size_options(self) -> dict[str, Any]:
        cfg = self.config
        return {"preprocess": cfg.preprocess, "load_size": cfg.load_size,
                "crop_size": cfg.crop_size}

    def _warn_mixed_sizes(self) -> None:
        if self.config.preprocess not in ("none", "scale_width"):
            return
        for d in self.domains:
            outs = {output_size(s, **self._size_options()) for s in self.sizes[d]}
            if len(outs) > 1:
                logger.warning(
                    "images in domain %s come out in %d different sizes with preprocess %r; "
                    "batches larger than 1 cannot be stacked. Use batch size 1, or preprocess "
                    "'resize_and_crop' / 'scale_width_and_crop'", d, len(outs),
                    self.config.preprocess)

    # -- item access ----------------------------------------------------------------------------
    def _key(self, key: int | tuple[int, int]) -> tuple[int, int]:
        if isinstance(key, tuple):
            index, seed = (operator.index(k) for k in key)
        else:
            index = seed = operator.index(key)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} samples")
        return index, seed

    def _load(self, path: Path, size: tuple[int, int], params: TransformParams, *,
              channels: int) -> torch.Tensor:
        img = read_image(path, channels=channels)
        if img.size != size:  # the file changed since the dataset was built
            raise DataError(f"{path} is now {img.size[0]}x{img.size[1]} but was "
                            f"{size[0]}x{size[1]} when the dataset was built; rebuild it")
        return to_tensor(apply_transform(img, params, **self._size_options()))

    def _params(self, rng: np.random.Generator, size: tuple[int, int]) -> TransformParams:
        return sample_params(rng, size, flip=bool(self.config.flip), **self._size_options())

    def __len__(self) -> int:
        return max(len(files) for files in self.files.values())

    def __repr__(self) -> str:
        counts = ", ".join(f"{d}={len(f)}" for d, f in self.files.items())
        return (f"{type(self).__name__}(root={str(self.config.root)!r}, phase={self.config.phase!r}"
                f", {counts}, skipped={len(self.skipped)})")


class SingleImageDataset(ImageFolderDataset):
    """``DIR/**`` images for unconditional models: items ``{"image": C×H×W}``."""

    kind = "single"
    domains = ("image",)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index, seed = self._key(key)
        rng = np.random.default_rng(seed)
        size = self.sizes["image"][index]
        image = self._load(self.files["image"][index], size, self._params(rng, size),
                           channels=int(self.config.channels))  # type: ignore[arg-type]
        return {"image": image}


class UnpairedImageDataset(ImageFolderDataset):
    """``DIR/<phase>A`` and ``DIR/<phase>B``: items ``{"A", "B"}`` with a seeded random B.

    The length is the larger domain (like the official code); A is ``index % len(A)``; B is drawn
    from the sample's RNG, and A and B get independent crops and flips.
    """

    kind = "unpaired"
    domains = ("A", "B")

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index, seed = self._key(key)
        rng = np.random.default_rng(seed)
        ia = index % len(self.files["A"])
        ib = int(rng.integers(0, len(self.files["B"])))
        size_a, size_b = self.sizes["A"][ia], self.sizes["B"][ib]
        params_a = self._params(rng, size_a)
        params_b = self._params(rng, size_b)
        cfg = self.config
        return {
            "A": self._load(self.files["A"][ia], size_a, params_a, channels=int(cfg.channels)),  # type: ignore[arg-type]
            "B": self._load(self.files["B"][ib], size_b, params_b, channels=int(cfg.channels_b)),  # type: ignore[arg-type]
        }


class PairedImageDataset(ImageFolderDataset):
    """``DIR/A`` and ``DIR/B`` (or ``DIR/<phase>/A|B``) with matching names: aligned pairs.

    A and B receive the *same* crop and flip. Unless preprocess is ``resize_and_crop`` (which
    scales both to load_size), partners must have the same size.
    """

    kind = "paired"
    domains = ("A", "B")

    def _select(self, found: dict[str, list[Path]], infos: dict[str, list[Any]]
                ) -> dict[str, list[int]]:
        keep = super()._select(found, infos)
        # A pair is usable only when both partners are: drop the partner of a skipped file.
        both = sorted(set(keep["A"]) & set(keep["B"]))
        if self.config.preprocess != "resize_and_crop":
            for i in both:
                sa, sb = infos["A"][i].size, infos["B"][i].size
                if resized_size(sa, **self._size_options()) != resized_size(sb, **self._size_options()):
                    raise DataError(
                        f"paired images differ in size: {found['A'][i]} is {sa[0]}x{sa[1]}, "
                        f"{found['B'][i]} is {sb[0]}x{sb[1]}; with preprocess "
                        f"{self.config.preprocess!r} they must match. Resize them, or use "
                        f"preprocess 'resize_and_crop'")
        return {"A": both, "B": both}

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index, seed = self._key(key)
        rng = np.random.default_rng(seed)
        size_a, size_b = self.sizes["A"][index], self.sizes["B"][index]
        params = self._params(rng, size_a)  # one draw shared by A and B keeps them aligned
        cfg = self.config
        return {
            "A": self._load(self.files["A"][index], size_a, params, channels=int(cfg.channels)),  # type: ignore[arg-type]
            "B": self._load(self.files["B"][index], size_b, params, channels=int(cfg.channels_b)),  # type: ignore[arg-type]
        }


class LabelledImageDataset(SingleImageDataset):
    """Labelled data for conditional models: items ``{"image": C×H×W, "label": int64 scalar}``.

    ``DIR/<label>/*.png`` (one folder per class or style, torchvision's ImageFolder convention;
    labels are the sorted folder names), or, with ``config.attributes``, CelebA read in place
    (``DIR/img_align_celeba/`` and ``list_attr_celeba.txt``; a class per chosen attribute).
    Classes with fewer than ``config.min_per_class`` images are reported with a warning, and
    left out only when ``config.drop_small_classes``.

    Attributes:
        classes: the label names; an item's label indexes into it.
        labels: the label of every file of ``files["image"]``.
        small_classes: the classes under ``min_per_class`` (dropped or not).
    """

    kind = "labelled"

    def _resolve(self) -> dict[str, list[Path]]:
        cfg = self.config
        by_class, kept, self.small_classes = _labelled(cfg)
        if self.small_classes:
            logger.warning(
                "%s class(es) of %s have fewer than %d images: %s%s", len(self.small_classes),
                cfg.root, cfg.min_per_class,
                ", ".join(f"{n} ({len(by_class[n])})" for n in self.small_classes),
                "; left out (drop_small_classes)" if cfg.drop_small_classes else
                "; kept (set drop_small_classes=true to leave them out)")
        self.classes: tuple[str, ...] = tuple(kept)
        self._label_of = {path: k for k, paths in enumerate(kept.values()) for path in paths}
        return {"image": [p for paths in kept.values() for p in paths]}

    def __init__(self, config: DataConfig, *, defaults: dict[str, Any] | None = None,
                 size_contract: SizeContract | None = None) -> None:
        super().__init__(config, defaults=defaults, size_contract=size_contract)
        self.labels = [self._label_of[p] for p in self.files["image"]]
        missing = [name for k, name in enumerate(self.classes) if k not in set(self.labels)]
        if missing:
            raise DataLayoutError(f"every image of class(es) {', '.join(missing)} under "
                                  f"{self.config.root} is unreadable; nothing left of them")

    def class_counts(self) -> dict[str, int]:
        """Readable images per class, in label order."""
        counts = dict.fromkeys(self.classes, 0)
        for k in self.labels:
            counts[self.classes[k]] += 1
        return counts

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        item = super().__getitem__(key)
        index, _ = self._key(key)
        item["label"] = torch.tensor(self.labels[index], dtype=torch.long)
        return item


def _labelled(config: DataConfig) -> tuple[dict[str, list[Path]], dict[str, list[Path]],
                                           list[str]]:
    """(files by class, the classes kept, the small classes) of labelled data."""
    from .labels import labelled_files, select_classes

    if config.attributes:
        from .celeba import attribute_classes

        by_class = attribute_classes(config.root, config.attributes)
    else:
        by_class = labelled_files(config.root)
    kept, small = select_classes(by_class, min_per_class=config.min_per_class,
                                 drop_small=config.drop_small_classes)
    return by_class, kept, small


def label_names(config: DataConfig) -> tuple[str, ...]:
    """The class names labelled data ``config`` gives a conditional model, in label order
    (small classes left out only with ``drop_small_classes``); reads folder listings only.

    Raises:
        DataLayoutError: no class folders with images (or no CelebA files with ``attributes``).
    """
    return tuple(_labelled(config)[1])


_DATASETS: dict[str, type[ImageFolderDataset]] = {
    cls.kind: cls for cls in (SingleImageDataset, UnpairedImageDataset, PairedImageDataset,
                              LabelledImageDataset)
}


def build_dataset(kind: str, config: DataConfig, *, defaults: dict[str, Any] | None = None,
                  size_contract: SizeContract | None = None) -> ImageFolderDataset:
    """Build the dataset for a model's ``data_kind``.

    Args:
        kind: ``"single"``, ``"unpaired"``, ``"paired"`` or ``"labelled"``.
        config: data options; ``None`` options are resolved from ``defaults`` (the model's
            ``data_defaults()``) and then the library defaults.
        defaults: see above.
        size_contract: the sizes the model takes (``model.training_size_contract()``): a crop
            or image size outside it is an error before training starts.

    Returns:
        A torch Dataset whose items are dicts of float32 C×H×W tensors in [-1, 1].

    Raises:
        ValueError: unknown kind. DataLayoutError: missing/empty folders (message shows the
        expected tree). ImageReadError: an unreadable file (unless ``skip_bad_images``).
        DataError: a crop that cannot fit (the images, or the model's size contract), or
        paired images of different sizes.
    """
    try:
        cls = _DATASETS[kind]
    except KeyError:
        raise ValueError(f"unknown data kind {kind!r}; expected one of "
                         f"{', '.join(_DATASETS)}") from None
    return cls(config, defaults=defaults, size_contract=size_contract)
