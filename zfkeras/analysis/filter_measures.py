"""Pure NumPy measures of first-layer filters and of images (paper Sec 4.1, Fig 6).

Filter norms and the domination share, dead filters by RMS, the share of power per
radial frequency band, and aliasing (power above a stride's Nyquist frequency) of
filters and of images. The definitions are in `zfkeras.analysis.diagnostics`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = [
    "BAND_EDGES",
    "FFT_SIZE",
    "band_shares",
    "dead_by_rms",
    "filter_norms",
    "image_aliasing",
    "largest_filter_share",
    "stride_aliasing",
    "white_noise_band_shares",
]

BAND_EDGES = (1 / 3, 2 / 3)  # in units of the pixel Nyquist frequency
FFT_SIZE = 64


def _check_kernel(kernel) -> np.ndarray:
    k = np.asarray(kernel, np.float64)
    if k.ndim != 4:
        raise ValueError(f"kernel must be (kh, kw, in, out); got shape {k.shape}")
    return k


def filter_norms(kernel) -> np.ndarray:
    """L2 norm of each filter of a `(kh, kw, in, out)` kernel: `(out,)`."""
    k = _check_kernel(kernel)
    return np.sqrt(np.sum(k**2, axis=(0, 1, 2)))


def largest_filter_share(kernel) -> float:
    """Largest filter L2 norm / sum of all filter norms (1/C when equal; NaN if all zero)."""
    norms = filter_norms(kernel)
    total = norms.sum()
    return float(norms.max() / total) if total > 0 else float("nan")


def dead_by_rms(kernel, rms_tol: float = 0.01) -> np.ndarray:
    """`(out,)` bool: filters whose RMS is <= `rms_tol` x the layer's largest filter RMS.

    An all-zero layer is all dead.
    """
    if not rms_tol >= 0:
        raise ValueError(f"rms_tol must be >= 0; got {rms_tol!r}")
    k = _check_kernel(kernel)
    rms = np.sqrt(np.mean(k**2, axis=(0, 1, 2)))
    return rms <= rms_tol * rms.max()


# --------------------------------------------------------------- spectra
def _power(planes: np.ndarray, size: int) -> np.ndarray:
    """`(M, h, w, c)` -> power spectra `(M, size, size)` summed over c (zero padded)."""
    if planes.shape[1] > size or planes.shape[2] > size:
        raise ValueError(f"FFT size {size} is smaller than the {planes.shape[1]}x{planes.shape[2]} input")
    spec = np.fft.fft2(planes, s=(size, size), axes=(1, 2))
    return np.sum(np.abs(spec) ** 2, axis=-1)


def _freqs(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(fy, fx) grids `(size, size)` in cycles/px, in `np.fft.fft2` order."""
    f = np.fft.fftfreq(size)  # [-0.5, 0.5)
    return np.meshgrid(f, f, indexing="ij")


def _shares(power: np.ndarray, masks: Sequence[np.ndarray]) -> np.ndarray:
    total = power.sum(axis=(1, 2))
    out = np.stack([(power * m).sum(axis=(1, 2)) for m in masks], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total[:, None] > 0, out / np.where(total > 0, total, 1.0)[:, None], np.nan)


def _filters(kernel) -> np.ndarray:
    return np.transpose(_check_kernel(kernel), (3, 0, 1, 2))  # (out, kh, kw, in)


def band_shares(kernel, edges: Sequence[float] = BAND_EDGES, size: int = FFT_SIZE) -> np.ndarray:
    """Share of each filter's power per radial frequency band (see module doc).

    Args:
        kernel: `(kh, kw, in, out)`.
        edges: increasing band edges in units of the Nyquist frequency.
        size: FFT grid (zero padding), >= kh, kw.

    Returns:
        `(out, len(edges) + 1)` shares summing to 1 per filter; NaN rows for
        all-zero filters.
    """
    edges = [float(e) for e in edges]
    if any(b <= a for a, b in zip(edges, edges[1:])) or any(e <= 0 for e in edges):
        raise ValueError(f"band edges must be positive and increasing; got {edges}")
    fy, fx = _freqs(size)
    rho = np.sqrt(fx**2 + fy**2) / 0.5
    bounds = [0.0, *edges, np.inf]
    masks = [(rho >= lo) & (rho < hi) for lo, hi in zip(bounds, bounds[1:])]
    return _shares(_power(_filters(kernel), size), masks)


def white_noise_band_shares(edges: Sequence[float] = BAND_EDGES, size: int = FFT_SIZE) -> np.ndarray:
    """`(len(edges) + 1,)` expected `band_shares` of white-noise filters (any kernel size).

    The reference for a layer that has not left its random start (He or Gaussian
    initialization is white noise): i.i.d. taps have a flat power spectrum, so each
    band's share is its share of the frequency grid (low / mid / high with the default
    edges: about 9 / 26 / 65 %). Trained layer-1 filters (edges, colour blobs, Fig 6)
    hold most of their power at low and mid frequencies.
    """
    fy, fx = _freqs(size)
    rho = np.sqrt(fx**2 + fy**2) / 0.5
    bounds = [0.0, *[float(e) for e in edges], np.inf]
    return np.array([np.mean((rho >= lo) & (rho < hi)) for lo, hi in zip(bounds, bounds[1:])])


def _outside_baseband(size: int, stride: int) -> np.ndarray:
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be a positive int; got {stride!r}")
    fy, fx = _freqs(size)
    limit = 1.0 / (2 * stride) + 1e-12
    return (np.abs(fx) > limit) | (np.abs(fy) > limit)


def stride_aliasing(kernel, stride: int, size: int = FFT_SIZE) -> np.ndarray:
    """`(out,)` share of each filter's power at `max(|fx|, |fy|) > 1 / (2 stride)`; NaN if zero."""
    return _shares(_power(_filters(kernel), size), [_outside_baseband(size, stride)])[:, 0]


def image_aliasing(images, stride: int) -> np.ndarray:
    """`(N,)` share of each image's power above the stride-`stride` Nyquist frequency.

    Args:
        images: `(N, H, W, C)` (e.g. deconv projections); FFT at `max(H, W)`.
    """
    x = np.asarray(images, np.float64)
    if x.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C); got shape {x.shape}")
    size = max(x.shape[1], x.shape[2])
    return _shares(_power(x, size), [_outside_baseband(size, stride)])[:, 0]
