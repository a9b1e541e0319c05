"""The official CycleGAN and pix2pix pretrained generators, published to gantransfer's catalogue.

URLs are the ones of the official download scripts (``scripts/download_cyclegan_model.sh`` and
``scripts/download_pix2pix_model.sh`` in junyanz/pytorch-CycleGAN-and-pix2pix), over https like
the datasets (``gantransfer.data.catalogue``). Upstream publishes no checksums: the first
download is recorded and later ones are checked against it (``gantransfer.pretrained``).

Each file holds one generator (``latest_net_G.pth``: CycleGAN's resnet_9blocks with instance
norm, pix2pix's unet_256 with batch norm). It is converted with :meth:`CycleGAN.load_official`
into a ``cyclegan`` checkpoint whose ``a2b`` target is that generator; ``b2a`` keeps a fresh
initialisation and is not meant to be used. Registered as the entry point
``gantransfer.pretrained: cyclegan = gantransfer_cyclegan.pretrained:catalogue``.
"""

from __future__ import annotations

from pathlib import Path

from gantransfer.pretrained import PretrainedModel

__all__ = ["catalogue", "convert_official_generator"]

_CYCLEGAN = "https://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models"
_PIX2PIX = "https://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch"
_RESNET_BYTES = 45_600_000  # resnet_9blocks, ngf 64: 11.4 M parameters in fp32
_UNET_BYTES = 217_700_000  # unet_256, ngf 64: 54.4 M parameters in fp32
_CITYSCAPES = ("Trained on Cityscapes, whose licence allows research use only "
               "(https://www.cityscapes-dataset.com/license/).")
_PIX2PIX_NOTE = ("pix2pix generators use batch norm; gantransfer runs them in eval mode (running "
                 "statistics, no dropout), the official test.py without --eval uses batch "
                 "statistics, so outputs differ slightly from upstream's.")

# name: what the generator does (input -> output), as the official README describes the models.
_CYCLEGAN_MODELS: dict[str, str] = {
    "style_monet": "photo -> Monet painting",
    "style_cezanne": "photo -> Cézanne painting",
    "style_ukiyoe": "photo -> ukiyo-e print",
    "style_vangogh": "photo -> Van Gogh painting",
    "monet2photo": "Monet painting -> photo",
    "horse2zebra": "horse -> zebra",
    "zebra2horse": "zebra -> horse",
    "apple2orange": "apple -> orange",
    "orange2apple": "orange -> apple",
    "summer2winter_yosemite": "Yosemite in summer -> in winter",
    "winter2summer_yosemite": "Yosemite in winter -> in summer",
    "sat2map": "aerial photo -> Google map",
    "map2sat": "Google map -> aerial photo",
    "facades_photo2label": "facade photo -> facade labels",
    "facades_label2photo": "facade labels -> facade photo",
    "cityscapes_photo2label": "street photo -> semantic labels",
    "cityscapes_label2photo": "semantic labels -> street photo",
    "iphone2dslr_flower": "iPhone flower photo -> DSLR-like photo",
}
_PIX2PIX_MODELS: dict[str, str] = {
    "edges2shoes": "edge map -> shoe photo",
    "sat2map": "aerial photo -> Google map",
    "map2sat": "Google map -> aerial photo",
    "facades_label2photo": "facade labels -> facade photo",
    "day2night": "day photo -> night photo",
}


def convert_official_generator(downloaded: Path, checkpoint: Path) -> None:
    """Convert an official ``latest_net_G.pth`` into a ``cyclegan`` checkpoint at ``checkpoint``
    (atomically): the generator becomes ``g_ab`` (the ``a2b`` target); its layout (netG, ngf,
    norm, dropout, channels) is read from the weights. The file is read weights-only.

    Raises:
        ValueError: the file is no official generator (the message says what did not fit).
    """
    from gantransfer.engine.checkpoint import save_model

    from .model import CycleGAN

    model = CycleGAN.load_official(g_a=downloaded)
    model.arch_name = "cyclegan"
    save_model(model, checkpoint, source={"official": {"G_A": downloaded.name}})


def catalogue() -> list[PretrainedModel]:
    """The official models as ``cyclegan/<name>`` and ``pix2pix/<name>``."""
    entries = [
        PretrainedModel(name=f"cyclegan/{name}", url=f"{_CYCLEGAN}/{name}.pth",
                        convert=convert_official_generator, description=text,
                        architecture="cyclegan", approx_size=_RESNET_BYTES,
                        note=_CITYSCAPES if name.startswith("cityscapes") else None)
        for name, text in _CYCLEGAN_MODELS.items()
    ]
    entries += [
        PretrainedModel(name=f"pix2pix/{name}", url=f"{_PIX2PIX}/{name}.pth",
                        convert=convert_official_generator, description=text,
                        architecture="cyclegan", approx_size=_UNET_BYTES, note=_PIX2PIX_NOTE)
        for name, text in _PIX2PIX_MODELS.items()
    ]
    return entries
