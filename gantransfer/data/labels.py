"""The labelled layout (``DIR/<label>/*.png``) and the rule that gives an image one label.

Labelled data is a folder per class, the convention of torchvision's ``ImageFolder``: the class
names are the sorted folder names and an image's label is its folder's index in that order.
Conditional models read it; ``gtx data prepare celeba --attributes ...`` writes it.

Turning several yes/no attributes into one class (:func:`single_label`): an image with exactly
one of the chosen attributes gets that attribute as its label; one with none gets ``none_label``
if one is given (e.g. ``other``), else it is left out; one with several is left out
(``several="skip"``) or gets the first of them in the order they were chosen
(``several="first"``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .folders import DataLayoutError, list_images

__all__ = [
    "MIN_PER_CLASS",
    "SEVERAL_POLICIES",
    "check_label_name",
    "labelled_files",
    "select_classes",
    "single_label",
]

SEVERAL_POLICIES = ("skip", "first")
MIN_PER_CLASS = 100  # fewer images than this in a class: a warning (the tutorial's rule)


def single_label(flags: Mapping[str, bool], chosen: Sequence[str], *,
                 none_label: str | None = None, several: str = "skip") -> str | None:
    """The one label of an image from its attribute ``flags``, or None to leave it out.

    Args:
        flags: attribute name -> present (e.g. one CelebA row).
        chosen: the attributes that are classes, in order of preference.
        none_label: the label of an image with none of them (None: leave it out).
        several: ``"skip"`` (leave out an image with more than one) or ``"first"``.

    Raises:
        KeyError: a chosen attribute is not in ``flags``. ValueError: unknown ``several``.

    >>> single_label({"Blond_Hair": True, "Black_Hair": False}, ["Black_Hair", "Blond_Hair"])
    'Blond_Hair'
    """
    if several not in SEVERAL_POLICIES:
        raise ValueError(f"several must be one of {SEVERAL_POLICIES}, got {several!r}")
    present = [name for name in chosen if flags[name]]
    if not present:
        return none_label
    if len(present) == 1 or several == "first":
        return present[0]
    return None


def check_label_name(label: str) -> str:
    """``label`` if it can be a folder name of the labelled layout; ValueError otherwise."""
    if not label or label.startswith(".") or any(c in label for c in "/\\\x00") or label == "..":
        raise ValueError(f"{label!r} cannot be a label folder name: use letters, digits, "
                         "'_' or '-', not starting with '.'")
    return label


def labelled_files(root: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """The images of a labelled folder by class name, classes sorted (label = index).

    Raises:
        DataLayoutError: ``root`` has no class folder with images.
    """
    root = Path(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if root.is_dir() else []
    out = {name: list_images(root / name) for name in classes}
    out = {name: files for name, files in out.items() if files}
    if not out:
        raise DataLayoutError(f"{root} holds no class folders with images; labelled data "
                              f"expects:\n{root}/\n  <label>/  0001.png ...\n  <label>/  ...")
    return out


def select_classes(files: dict[str, list[Path]], *, min_per_class: int = MIN_PER_CLASS,
                   drop_small: bool = False) -> tuple[dict[str, list[Path]], list[str]]:
    """Apply the small-class rule: ``(classes kept, names of classes under min_per_class)``.

    Small classes are kept (and reported) unless ``drop_small``: dropping is an explicit
    choice, never a silent default.

    Raises:
        DataLayoutError: ``drop_small`` leaves fewer than one class.
    """
    small = [name for name, paths in files.items() if len(paths) < min_per_class]
    if not drop_small:
        return dict(files), small
    kept = {name: paths for name, paths in files.items() if name not in small}
    if not kept:
        raise DataLayoutError(f"every class has fewer than {min_per_class} images, so dropping "
                              "small classes leaves none; lower min_per_class")
    return kept, small
