"""Decode one image file into an RGB uint8 array, or fail with a short human reason.

The format is detected from the file's content (not its extension). Every PIL mode is mapped
to RGB:

- `L`, `1`, `CMYK`, `YCbCr`, `LAB`, `HSV`: PIL's conversion to RGB (grey repeated on 3 channels);
- high bit depth grey (`I;16*`, `I`, `F`): scaled to 0..255 (16-bit: `v / 257`; `I`/`F` whose
  maximum exceeds 255 are treated as 16-bit; `F` in 0..1 is multiplied by 255), then repeated;
- anything with transparency (`RGBA`, `LA`, `PA`, `P`/`L`/`RGB` with a `transparency` key):
  alpha-composited on `background`, white by default, which is how such images (product
  cut-outs, icons) look on the web pages they come from. The RGB under fully transparent
  pixels is often arbitrary (black), so dropping alpha instead would invent a black background.

EXIF orientation is applied, so arrays are upright as a viewer shows them.

`PIL.ImageFile.LOAD_TRUNCATED_IMAGES` is never set here and must stay False: a truncated file
then raises ("truncated image") and is skipped, instead of being silently padded with grey.

Huge images: JPEGs with more than `max_pixels` pixels are decoded with `Image.draft` at
1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling: fast, low memory, aspect ratio kept); PIL's
own decompression-bomb guard (`Image.MAX_IMAGE_PIXELS`, twice of which raises) still applies
to every format and is reported as "image too large".
"""

from __future__ import annotations

import logging
import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["DEFAULT_MAX_PIXELS", "WHITE", "ImageDecodeError", "load_image"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 40_000_000  # e.g. 7746 x 5164; Caltech-101's largest is ~12 Mpx.
WHITE = (255, 255, 255)


class ImageDecodeError(ValueError):
    """A file could not be decoded into an image.

    Attributes:
        path: the file, as given.
        reason: short human reason, e.g. "zero-byte file", "not an image", "truncated image".
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(os.fspath(path), reason)  # args kept so the error pickles.
        self.path = os.fspath(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def load_image(
    path: str | os.PathLike,
    *,
    background: tuple[int, int, int] = WHITE,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read an image file as an upright RGB array.

    Args:
        path: image file; its format is sniffed from the content.
        background: RGB colour transparent pixels are composited on.
        max_pixels: JPEGs with more pixels are decoded at a reduced scale (see module doc);
            None decodes at full size.

    Returns:
        uint8 array of shape (H, W, 3), C-contiguous.

    Raises:
        ImageDecodeError: zero-byte, missing, non-image, truncated, corrupt or huge files.
    """
    path = os.fspath(path)
    _check_file(path)
    try:
        with Image.open(path) as img:
            _maybe_draft(img, max_pixels)
            img.load()
            img = ImageOps.exif_transpose(img) if _has_orientation(img) else img
            rgb = _to_rgb(img, background)
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageDecodeError(path, f"image too large ({e})") from None
    except UnidentifiedImageError:
        raise ImageDecodeError(path, "not an image") from None
    except MemoryError:
        raise
    except OSError as e:
        if "truncated" in str(e).lower():
            raise ImageDecodeError(path, "truncated image") from None
        raise ImageDecodeError(path, f"corrupt image ({e})") from None
    except Exception as e:  # noqa: BLE001 - PIL plugins raise many types on broken data
        raise ImageDecodeError(path, f"corrupt image ({type(e).__name__}: {e})") from None
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def _check_file(path: str) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ImageDecodeError(path, "file not found") from None
    except OSError as e:
        raise ImageDecodeError(path, f"unreadable file ({e.strerror})") from None
    if not os.path.isfile(path):
        raise ImageDecodeError(path, "not a regular file")
    if st.st_size == 0:
        raise ImageDecodeError(path, "zero-byte file")


def _maybe_draft(img: Image.Image, max_pixels: int | None) -> None:
    """Ask the JPEG decoder for the smallest 1/s scale (s in 1, 2, 4, 8) under `max_pixels`."""
    w, h = img.size
    if max_pixels is None or img.format != "JPEG" or w * h <= max_pixels:
        return
    scale = next((s for s in (2, 4, 8) if (w // s) * (h // s) <= max_pixels), 8)
    img.draft(None, (max(1, w // scale), max(1, h // scale)))
    logger.debug("decoding %dx%d JPEG at 1/%d scale -> %s", w, h, scale, img.size)


def _has_orientation(img: Image.Image) -> bool:
    try:
        return img.getexif().get(0x0112, 1) not in (1, None)
    except Exception:  # noqa: BLE001 - malformed EXIF: keep the pixels, ignore orientation
        return False


def _to_rgb(img: Image.Image, background: tuple[int, int, int]) -> np.ndarray:
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return np.asarray(img)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        return _composite(np.asarray(img.convert("RGBA")), background)
    if mode.startswith("I") or mode == "F":
        grey = _high_depth_to_uint8(np.asarray(img), mode)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.asarray(img.convert("RGB"))  # L, 1, P, CMYK, YCbCr, LAB, HSV


def _composite(rgba: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """Alpha-blend (H, W, 4) uint8 over a constant colour, rounding to nearest."""
    rgb = rgba[..., :3].astype(np.uint32)
    alpha = rgba[..., 3:].astype(np.uint32)
    bg = np.asarray(background, dtype=np.uint32)
    return ((rgb * alpha + bg * (255 - alpha) + 127) // 255).astype(np.uint8)


def _high_depth_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    values = arr.astype(np.float64)
    peak = float(values.max()) if values.size else 0.0
    if mode.startswith("I;16") or peak > 255.0:
        values = values / 257.0  # 65535 -> 255
    elif mode == "F" and peak <= 1.0:
        values = values * 255.0
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
