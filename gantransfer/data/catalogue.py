"""The datasets ``gtx data download`` knows: the official CycleGAN and pix2pix archives.

URLs are the ones the official download scripts use (``datasets/download_cyclegan_dataset.sh``
and ``download_pix2pix_dataset.sh`` in junyanz/pytorch-CycleGAN-and-pix2pix), over https. The
upstream server publishes **no checksums and no exact sizes**, so no entry has a ``sha256``: the
first download is recorded in the dataset's lock file and trusted from then on (see
:mod:`gantransfer.data.lock`). ``approx_size`` comes from the server's directory listing and is
shown to the user only; it is never checked.

Names: CycleGAN datasets by their official name (``horse2zebra``), pix2pix ones with a
``pix2pix/`` prefix (``pix2pix/facades``), since facades, maps and cityscapes exist in both
collections in different layouts; a name only pix2pix has may be given without the prefix
(``edges2shoes``). The dataset lands in ``DIR/<name>`` (``DIR/pix2pix/edges2shoes``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

__all__ = ["CATALOGUE", "DatasetSource", "find_dataset"]

_CYCLEGAN = "https://efrosgans.eecs.berkeley.edu/cyclegan/datasets"
_PIX2PIX = "https://efrosgans.eecs.berkeley.edu/pix2pix/datasets"
_MB = 1 << 20
_CITYSCAPES_TERMS = ("Cityscapes images are under the Cityscapes licence "
                     "(https://www.cityscapes-dataset.com/license/): research use only.")


@dataclass(frozen=True, kw_only=True)
class DatasetSource:
    """One downloadable dataset.

    ``layout`` is ``"unpaired"`` (the archive holds ``trainA/trainB/testA/testB``) or
    ``"side_by_side"`` (pix2pix: one image per pair, A left and B right, in ``train/``, ``val/``,
    ``test/``; split into ``<split>/A`` and ``<split>/B`` on download).
    """

    name: str
    url: str | None  # None: no public download (licence); --url with your own copy works
    archive: str  # "zip" or "tar.gz"
    approx_size: int  # bytes, approximate: for display only
    layout: str
    a: str  # what domain A holds
    b: str  # what domain B holds
    sha256: str | None = None  # a published SHA-256 (upstream publishes none)
    size: int | None = None  # a published exact size in bytes (upstream publishes none)
    note: str | None = None

    @property
    def filename(self) -> str:
        """The archive's file name (upstream's, also what ``--mirror`` appends)."""
        return f"{self.name.rsplit('/', 1)[-1]}.{self.archive}"

    def url_for(self, *, url: str | None = None, mirror: str | None = None) -> str:
        """The URL to fetch: ``url`` as given, ``mirror`` + file name, or upstream's.

        Raises:
            LookupError: no upstream download and neither ``url`` nor ``mirror`` given.
        """
        if url:
            return url
        if mirror:
            return f"{mirror.rstrip('/')}/{self.filename}"
        if self.url is None:
            raise LookupError(f"{self.name} has no public download. {self.note or ''} Pass "
                              f"--url (or --mirror) to use a copy you are entitled to")
        return self.url


def _cyclegan(name: str, mb: float, a: str, b: str, note: str | None = None) -> DatasetSource:
    return DatasetSource(name=name, url=f"{_CYCLEGAN}/{name}.zip", archive="zip",
                         approx_size=int(mb * _MB), layout="unpaired", a=a, b=b, note=note)


def _pix2pix(name: str, mb: float, a: str, b: str, *, public: bool = True,
             note: str | None = None) -> DatasetSource:
    return DatasetSource(name=f"pix2pix/{name}", url=f"{_PIX2PIX}/{name}.tar.gz" if public else None,
                         archive="tar.gz", approx_size=int(mb * _MB), layout="side_by_side",
                         a=a, b=b, note=note)


CATALOGUE: dict[str, DatasetSource] = {s.name: s for s in (
    _cyclegan("apple2orange", 75, "apples", "oranges"),
    _cyclegan("summer2winter_yosemite", 126, "Yosemite in summer", "Yosemite in winter"),
    _cyclegan("horse2zebra", 111, "horses", "zebras"),
    _cyclegan("monet2photo", 291, "Monet paintings", "photos"),
    _cyclegan("cezanne2photo", 267, "Cézanne paintings", "photos"),
    _cyclegan("ukiyoe2photo", 279, "ukiyo-e prints", "photos"),
    _cyclegan("vangogh2photo", 292, "Van Gogh paintings", "photos"),
    _cyclegan("maps", 1434, "aerial photos", "Google maps"),
    _cyclegan("cityscapes", 58, "street photos", "semantic labels", note=_CITYSCAPES_TERMS),
    _cyclegan("facades", 34, "facade photos", "facade labels"),
    _cyclegan("iphone2dslr_flower", 324, "iPhone flower photos", "DSLR flower photos"),
    _pix2pix("facades", 29, "facade photos", "facade labels"),
    _pix2pix("cityscapes", 99, "street photos", "semantic labels", public=False,
             note="As in the official script, Cityscapes is not downloaded for pix2pix: "
                  "register at https://www.cityscapes-dataset.com, download gtFine_trainvaltest.zip "
                  "and leftImg8bit_trainvaltest.zip and combine them with the official "
                  "datasets/prepare_cityscapes_dataset.py."),
    _pix2pix("maps", 239, "aerial photos", "Google maps"),
    _pix2pix("edges2shoes", 2048, "edge maps", "shoe photos"),
    _pix2pix("edges2handbags", 8192, "edge maps", "handbag photos"),
    _pix2pix("night2day", 1946, "night photos", "day photos"),
)}


def find_dataset(name: str) -> DatasetSource:
    """The catalogue entry ``name``; ``cyclegan/horse2zebra`` is accepted for ``horse2zebra`` and
    ``edges2shoes`` for ``pix2pix/edges2shoes`` (plain facades, maps, cityscapes are CycleGAN's).

    Raises:
        LookupError: unknown name; the message suggests close names and lists all.
    """
    key = name.strip().removeprefix("cyclegan/")
    if key in CATALOGUE:
        return CATALOGUE[key]
    if f"pix2pix/{key}" in CATALOGUE:  # a pix2pix-only name: edges2shoes, night2day, ...
        return CATALOGUE[f"pix2pix/{key}"]
    close = difflib.get_close_matches(key, CATALOGUE, n=3, cutoff=0.6)
    close += [n for n in CATALOGUE if n.endswith(f"/{key}") and n not in close]
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise LookupError(f"unknown dataset {name!r}.{hint} Known: {', '.join(CATALOGUE)} "
                      "(gtx data download --list)")
