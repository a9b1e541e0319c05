"""Uploaded bytes to a padded batch and a generator output back to PNG/JPEG bytes.

The arithmetic is the folder pipeline's (:func:`gantransfer.inference.images.padded_input` and
:func:`~gantransfer.inference.images.output_pixels`, built on :mod:`gantransfer.pixels`), so the
server returns exactly the pixels the Python API
(``model.translate(image)``) gives for the same image. Decoding is guarded: only allowed formats,
the pixel count is checked from the header before any pixel is decoded (a decompression bomb is
refused without being decoded), and every decoder failure becomes one :class:`UploadError`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["ALLOWED_FORMATS", "Decoded", "UploadError", "decode_upload", "encode_image"]

# Pillow format names the server decodes. TIFF is left out on purpose: its many compressions
# and containers are a large decoder surface for a server; convert such files first.
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP")


class UploadError(ValueError):
    """An upload the server refuses; ``status`` is the HTTP status, ``code`` a short name."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass
class Decoded:
    """A decoded upload: ``x`` is the ``1xCxHxW`` float32 batch padded for the generator,
    ``size`` the image's (h, w) to crop the output back to, ``format`` Pillow's name for it."""

    x: torch.Tensor
    size: tuple[int, int]
    format: str


def decode_upload(data: bytes, *, channels: int, divisor: int, min_size: int, bucket: int = 1,
                  max_pixels: int | None, formats: tuple[str, ...] = ALLOWED_FORMATS) -> Decoded:
    """Decode an uploaded image and prepare it for a generator (see the module docstring).

    Args:
        data: the file's bytes (nothing on disk is read).
        channels, divisor, min_size, bucket: the translator's input rules.
        max_pixels: refuse images with more pixels (width x height) than this; None: no limit.
        formats: Pillow format names accepted.

    Raises:
        UploadError: 400 ``empty`` (no bytes), 415 ``unsupported_image`` (not an image in an
            allowed format), 413 ``too_many_pixels`` (above ``max_pixels``, from the header),
            422 ``damaged_image`` (the header is fine but the pixel data is not).
    """
    from PIL import Image, UnidentifiedImageError

    from ..data.images import convert_mode
    from ..inference.images import padded_input

    names = ", ".join("WebP" if f == "WEBP" else f for f in formats)
    if not data:
        raise UploadError(400, "empty", "the request holds no image: send the image file as the "
                                        "body, or as the multipart field 'image'")
    try:
        img = Image.open(io.BytesIO(data), formats=list(formats))
    except Image.DecompressionBombError:  # Pillow's own guard, when it is on (not under gtx)
        raise UploadError(413, "too_many_pixels",
                          "the image's header claims more pixels than Pillow's decompression-"
                          f"bomb guard allows ({2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} "
                          "million), far above this server's limit; send a smaller image"
                          ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise UploadError(415, "unsupported_image",
                          f"the upload is not an image in an allowed format ({names})") from None
    with img:
        w, h = img.size
        if max_pixels is not None and w * h > max_pixels:
            raise UploadError(413, "too_many_pixels",
                              f"the image is {w}x{h} = {w * h / 1e6:.1f} million pixels, above "
                              f"this server's limit of {max_pixels / 1e6:.1f} million; send a "
                              "smaller image")
        try:
            img.load()
            arr = np.asarray(convert_mode(img, channels))
        except Exception as exc:  # Pillow's decoders raise many types for bad data
            text = str(exc).strip() or type(exc).__name__
            raise UploadError(422, "damaged_image",
                              f"the {img.format} image could not be decoded ({text}); the file "
                              "is damaged or truncated") from None
        fmt = str(img.format)
    x, size = padded_input(arr, divisor=divisor, min_size=min_size, bucket=bucket)
    return Decoded(x, size, fmt)


def encode_image(y: torch.Tensor, *, fmt: str = "png", quality: int = 90) -> bytes:
    """A ``1xCxHxW`` output in [-1, 1] as PNG or JPEG (``quality`` 1-100) file bytes."""
    from PIL import Image

    from ..inference.images import output_pixels

    image = Image.fromarray(output_pixels(y))
    buf = io.BytesIO()
    if fmt == "jpeg":
        image.save(buf, format="JPEG", quality=quality)
    else:
        image.save(buf, format="PNG", compress_level=1)  # fast; the network is rarely the limit
    return buf.getvalue()
