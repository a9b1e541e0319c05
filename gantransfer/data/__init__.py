"""Image folder datasets, preprocessing, folder checks and procedural demo data (DESIGN §5).

    from gantransfer.data import DataConfig, build_dataset
    ds = build_dataset("unpaired", DataConfig(root="data/horse2zebra"), defaults=model.data_defaults())
    item = ds[(0, 1234)]          # {"A": 3×256×256, "B": 3×256×256}, float32 in [-1, 1]

Layouts, preprocess modes and conversion rules are documented in docs/data.md.
"""

from __future__ import annotations

from .check import DataReport, check_folder
from .config import LIBRARY_DEFAULTS, PREPROCESS_MODES, DataConfig
from .datasets import (
    ImageFolderDataset,
    LabelledImageDataset,
    PairedImageDataset,
    SingleImageDataset,
    UnpairedImageDataset,
    build_dataset,
)
from .folders import (
    IMAGE_EXTENSIONS,
    DataError,
    DataLayoutError,
    ImageReadError,
    list_images,
    resolve_layout,
)
from .images import convert_mode, read_image
from .loader import loader_kwargs, recommended_workers
from .metrics import psnr

__all__ = [
    "IMAGE_EXTENSIONS",
    "LIBRARY_DEFAULTS",
    "PREPROCESS_MODES",
    "DataConfig",
    "DataError",
    "DataLayoutError",
    "DataReport",
    "ImageFolderDataset",
    "ImageReadError",
    "LabelledImageDataset",
    "PairedImageDataset",
    "SingleImageDataset",
    "UnpairedImageDataset",
    "build_dataset",
    "check_folder",
    "convert_mode",
    "list_images",
    "loader_kwargs",
    "psnr",
    "read_image",
    "recommended_workers",
    "resolve_layout",
]
