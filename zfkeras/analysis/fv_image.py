"""The image parameterization of feature visualization: a Fourier spectrum and decorrelated colour.

After lucid (`optvis/param/spatial.py` `fft_image`, `param/color.py` `to_valid_rgb`; Olah et al.
2017, "Feature Visualization", Distill): the optimized variable is not the pixels but

- the **Fourier spectrum** of each colour plane, scaled by 1/f (`spectrum_scale`): every
  frequency then moves the image equally per unit step, so the optimizer does not favour the
  high frequencies that plain pixel gradients are full of (the usual adversarial noise);
- in **decorrelated colour**: the three planes are mixed by the square root of the colour
  covariance (`color_sqrt`) before a sigmoid maps them to 0..1, so a step moves along the
  natural colour axes (luminance, then two opponent axes) rather than R, G, B independently.

`color_sqrt(images)` measures the colour covariance of a dataset; `IMAGENET_COLOR_SQRT`
is lucid's ImageNet matrix. NumPy functions are pure; `params_to_rgb` is the TensorFlow map
from the variable to images in 0..1.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = [
    "IMAGENET_COLOR_SQRT",
    "color_sqrt",
    "init_spectrum",
    "params_to_rgb",
    "resolve_color",
    "rfft2d_freqs",
    "spectrum_scale",
]

# Square root (U sqrt(S), from the SVD) of ImageNet's RGB covariance, as lucid ships it.
IMAGENET_COLOR_SQRT = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32
)


def rfft2d_freqs(h: int, w: int) -> np.ndarray:
    """`(h, w // 2 + 1)` spatial frequency magnitudes (cycles / px) of a real 2-D FFT."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    return np.sqrt(fx * fx + fy * fy).astype(np.float32)


def spectrum_scale(h: int, w: int, decay_power: float = 1.0) -> np.ndarray:
    """`(h, w // 2 + 1)` scale of each Fourier coefficient: `1 / max(f, 1 / max(h, w)) ** decay_power`
    (the 1/f of natural images; the zero frequency gets the lowest one's), times `sqrt(h w)` so the
    map from spectrum to pixels is unitary-sized."""
    freqs = rfft2d_freqs(h, w)
    scale = 1.0 / np.maximum(freqs, 1.0 / max(h, w)) ** decay_power
    return (scale * np.sqrt(h * w)).astype(np.float32)


def init_spectrum(rng: np.random.Generator, h: int, w: int, channels: int, sd: float = 0.01) -> np.ndarray:
    """`(2, channels, h, w // 2 + 1)` float32 real and imaginary parts, normal with std `sd`."""
    return rng.normal(0.0, sd, size=(2, channels, h, w // 2 + 1)).astype(np.float32)


def color_sqrt(images: np.ndarray, max_pixels: int = 200_000, seed: int = 0) -> np.ndarray:
    """`(3, 3)` square root `U sqrt(S)` of the RGB covariance of `images` (in 0..1 units).

    Args:
        images: `(N, H, W, 3)` raw RGB 0..255 (or any float array with 3 channels last).
        max_pixels: pixels sampled (seeded) for the covariance.

    Returns:
        `M` with `M M^T` = the covariance; its columns are the colour axes (the first
        usually luminance) scaled by their standard deviation.
    """
    x = np.asarray(images, np.float64).reshape(-1, np.shape(images)[-1]) / 255.0
    if x.shape[-1] != 3:
        raise ValueError(f"colour statistics need RGB images (..., 3); got {np.shape(images)}")
    if len(x) < 2:
        raise ValueError("colour statistics need at least two pixels")
    if len(x) > max_pixels:
        x = x[np.random.default_rng(seed).choice(len(x), max_pixels, replace=False)]
    u, s, _ = np.linalg.svd(np.cov(x, rowvar=False))
    u = u * np.where(u.sum(axis=0) < 0, -1.0, 1.0)  # sign convention: luminance axis positive
    return (u * np.sqrt(s)[None, :]).astype(np.float32)


def resolve_color(color, channels: int) -> np.ndarray | None:
    """The normalized colour mixing matrix (or None: none) from the `color` setting.

    `color`: "imagenet" (`IMAGENET_COLOR_SQRT`), "none", a `(3, 3)` matrix (e.g. `color_sqrt`
    of a dataset) or an `(N, H, W, 3)` image array (its `color_sqrt`). The matrix is divided by
    its largest column norm, as lucid does, so no axis is stretched beyond 1. Single-channel
    models get None (nothing to decorrelate).
    """
    if isinstance(color, str):
        if color not in ("imagenet", "none"):
            raise ValueError(f"`color` must be 'imagenet', 'none', a (3, 3) matrix or RGB images; got {color!r}")
        if color == "none":
            return None
        matrix = IMAGENET_COLOR_SQRT
    elif color is None:
        return None
    else:
        arr = np.asarray(color, np.float32)
        matrix = arr if arr.shape == (3, 3) else color_sqrt(arr) if arr.ndim == 4 else None
        if matrix is None:
            raise ValueError(f"`color` array must be (3, 3) or (N, H, W, 3) images; got shape {arr.shape}")
    if channels != 3:
        return None
    norm = float(np.max(np.linalg.norm(matrix, axis=0)))
    if not norm > 0:
        raise ValueError("`color` matrix is zero")
    return (matrix / norm).astype(np.float32)


def params_to_rgb(spectrum: tf.Tensor, scale: tf.Tensor, color: tf.Tensor | None, h: int, w: int) -> tf.Tensor:
    """Images in 0..1 from the optimized variable.

    Args:
        spectrum: `(N, 2, C, h, w // 2 + 1)` real and imaginary Fourier coefficients.
        scale: `(h, w // 2 + 1)` from `spectrum_scale`.
        color: `(C, C)` normalized colour matrix, or None.

    Returns:
        `(N, h, w, C)` float32: `sigmoid(colour_mix(irfft2d(scale * spectrum) / 4))`.
    """
    coeffs = tf.complex(spectrum[:, 0] * scale, spectrum[:, 1] * scale)
    planes = tf.signal.irfft2d(coeffs, fft_length=[h, w])  # (N, C, h, w)
    x = tf.transpose(planes, (0, 2, 3, 1)) / 4.0
    if color is not None:
        x = tf.einsum("nhwc,dc->nhwd", x, color)
    return tf.sigmoid(x)
