"""Architecture diagnostics of layers 1 and 2 (paper Sec 4.1, Fig 6) as numbers.

Zeiler & Fergus chose 7x7 stride-2 first-layer filters over Krizhevsky's
11x11 stride 4 because the latter's filters were "a mix of extremely high and
low frequency information, with little coverage of the mid frequencies", some
were dead, and layer 2 showed "aliasing artifacts caused by the large stride
4". Fig 6(a) shows why they renormalize filters: without it "a few of them
dominate". This module turns those observations into numbers. Definitions:

- **Dead filter** (`dead_by_rms`, `max_activations`): a layer-1 filter whose
  RMS is at most `rms_tol` (default 1 %) of the layer's largest filter RMS
  (near-zero RMS, scale-free), or which is never active (max post-ReLU
  output <= 0) over a probe set of images. `Diagnostics.dead_fraction` counts
  a filter dead by either criterion.
- **Frequency bands** (`band_shares`): each 2D filter (one per input
  channel) is zero-padded to `size x size` (default 64) and Fourier
  transformed; its power `|F|^2` is summed over the input channels. Radial
  frequency is in units of the pixel Nyquist frequency (0.5 cycles/px):
  `rho = sqrt(fx^2 + fy^2) / 0.5`, from 0 (DC) to sqrt(2) (the corners).
  Default bands: low `rho < 1/3`, mid `1/3 <= rho < 2/3`, high `rho >= 2/3`.
  A filter's share of a band is that band's power over its total power;
  the layer's shares are the mean over live (non-zero) filters, so every
  filter counts once, whatever its norm. Zero padding only interpolates the
  spectrum, so 7x7 and 11x11 filters are measured on the same grid.
- **Stride aliasing of layer-1 filters** (`stride_aliasing`): the share of a
  filter's power outside the baseband of its stride `s`, i.e. at
  `max(|fx|, |fy|) > 1 / (2 s)` cycles/px (inclusive boundary on the FFT
  grid). Sampling the filter's output every `s` pixels folds exactly this
  part of its response onto lower frequencies (for broadband input).
- **Layer-2 aliasing** (`image_aliasing` on deconv projections): for each
  of a set of layer-2 channels, the strongest activation over the probe set
  is projected to pixel space with the deconvnet (`zfkeras.deconv`) and the
  share of the projection's power (summed over RGB, FFT at input size) above
  the conv1 stride's Nyquist frequency, `max(|fx|, |fy|) > 1 / (2 s1)`, is
  measured; the layer value is the mean over channels with a non-zero
  projection. A layer-2 projection is a sum of transposed conv1 filters
  placed on the stride-`s1` grid: power above that grid's Nyquist frequency
  is structure the stride-`s1` sampling cannot represent, which shows up as
  the grid-like artifacts of Fig 6(d). The threshold depends on the stride
  (0.125 cycles/px at stride 4, 0.25 at stride 2) by design.
- **Domination** (`largest_filter_share`): the largest layer-1 filter's L2
  norm over the sum of all filters' L2 norms (1/C when all are equal; the
  table also shows it times C, "x uniform").
- **Clipped fraction** (`read_clipped_history`): the per-epoch fraction of
  filters at the filter-RMS radius, read from a training run's `history.csv`
  columns `rms_clipped_<layer>` (written by `FilterRMSMonitor`).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import keras
import numpy as np
from tqdm.auto import tqdm

from zfkeras.models import feature_model

__all__ = [
    "BAND_EDGES",
    "ClippedHistory",
    "Diagnostics",
    "band_shares",
    "dead_by_rms",
    "dead_unit_shares",
    "diagnose",
    "diagnostics_table",
    "filter_norms",
    "image_aliasing",
    "largest_filter_share",
    "max_activations",
    "read_clipped_history",
    "stride_aliasing",
]

BAND_EDGES = (1 / 3, 2 / 3)  # in units of the pixel Nyquist frequency
FFT_SIZE = 64


# ---------------------------------------------------------------- kernels
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


# ---------------------------------------------------------- activations
def max_activations(
    model: keras.Model, images, layer: str = "conv1", batch_size: int = 32
) -> np.ndarray:
    """`(C,)` each channel's largest output of `layer` over `images` (all positions)."""
    from zfkeras.analysis._probe import channel_argmax, check_probe

    images = check_probe(images, model)
    fm = feature_model(model, [layer])
    return channel_argmax(fm, images, [layer], batch_size)[layer][0]


def relu_layer_names(model: keras.Model) -> list[str]:
    """The rectified outputs of a model, in order: conv and dense layers with a fused ReLU
    (ZFNet's conv1..conv5, fc6, fc7) and ReLU layers (a Conv-BN-ReLU net's), any Keras CNN."""
    from zfkeras.models.adapter import analysable

    view = analysable(model)
    features = set(view.feature_layer_names)

    def rectified(info) -> bool:
        act = getattr(getattr(info.layer, "activation", None), "__name__", "")
        return info.kind == "relu" or (info.kind in ("conv", "dense") and act in ("relu", "relu6"))

    return [n for n, i in view.layers.items() if n in features and rectified(i)]


def dead_unit_shares(
    model: keras.Model, images, layers: Sequence[str] | None = None, batch_size: int = 32
) -> dict[str, float]:
    """Per layer, the share of units (feature maps / FC units) never active on `images`.

    A unit is dead on a set of images when its post-ReLU output is 0 at every position of every
    image (its largest output <= 0). `layers` defaults to every ReLU layer (`relu_layer_names`).
    Images: model inputs `(N, S, S, 3)`, raw 0..255. Returns `{layer: share in [0, 1]}`.
    """
    from zfkeras.analysis._probe import channel_argmax, check_probe

    images = check_probe(images, model)
    names = list(layers) if layers is not None else relu_layer_names(model)
    best = channel_argmax(feature_model(model, names), images, names, batch_size)
    return {name: float(np.mean(best[name][0] <= 0)) for name in names}


# ---------------------------------------------------------------- history
@dataclasses.dataclass(frozen=True)
class ClippedHistory:
    """Per-epoch fraction of filters at the RMS radius, per conv layer.

    Attributes:
        epochs: `(E,)` 1-based epoch numbers.
        fractions: `{layer: (E,)}` (NaN where an epoch has no value).
    """

    epochs: np.ndarray
    fractions: dict[str, np.ndarray]


def read_clipped_history(path: str | os.PathLike) -> ClippedHistory:
    """Read the `rms_clipped_<layer>` columns of a training run's `history.csv`.

    Raises FileNotFoundError for a missing file, ValueError when it has no such column.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no history file at {str(path)!r}")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    prefix = "rms_clipped_"
    columns = [c for c in (rows[0].keys() if rows else []) if c and c.startswith(prefix)]
    if not columns:
        raise ValueError(
            f"{str(path)!r} has no {prefix}<layer> columns (written by FilterRMSMonitor during training)"
        )

    def num(v) -> float:
        try:
            return float(v)
        except (TypeError, ValueError):
            return float("nan")

    epochs = np.array([int(num(r.get("epoch")) if r.get("epoch") else i + 1) for i, r in enumerate(rows)])
    fractions = {c[len(prefix):]: np.array([num(r.get(c)) for r in rows]) for c in columns}
    return ClippedHistory(epochs, fractions)


# ------------------------------------------------------------- the summary
@dataclasses.dataclass
class Diagnostics:
    """The layer-1/2 diagnostics of one model (see the module doc for definitions).

    Attributes:
        name: label of the model in tables and figures.
        layer: the first conv layer examined; `kernel_size`, `stride`, `filters` its shape.
        dead_rms, inactive: `(C,)` bool per filter (`inactive` None without probe images).
        bands: `(C, n_bands)` per-filter band shares; `band_edges` their edges.
        conv1_aliasing: `(C,)` per-filter stride aliasing.
        layer2: the layer-2 layer projected; `layer2_channels` `(K,)` the channels.
        layer2_aliasing: `(K,)` per-projection aliasing (None without probe images).
        layer2_patches: `(K, P, P, 3)` display patches in [0, 1] of those projections.
        kernel: the layer-1 kernel `(kh, kw, in, C)` (for the filter grids).
        clipped: the run's clipped-fraction history, if given.
    """

    name: str
    layer: str
    kernel_size: tuple[int, int]
    stride: int
    filters: int
    dead_rms: np.ndarray
    inactive: np.ndarray | None
    bands: np.ndarray
    band_edges: tuple[float, ...]
    conv1_aliasing: np.ndarray
    top_filter_share: float
    kernel: np.ndarray
    layer2: str | None = None
    layer2_channels: np.ndarray | None = None
    layer2_aliasing: np.ndarray | None = None
    layer2_patches: np.ndarray | None = None
    clipped: ClippedHistory | None = None

    @property
    def dead(self) -> np.ndarray:
        """Dead by either criterion."""
        return self.dead_rms if self.inactive is None else (self.dead_rms | self.inactive)

    def summary(self) -> dict:
        """Scalar numbers (JSON-ready; None where not measured)."""
        live = ~self.dead_rms
        shares = np.nanmean(self.bands[live], axis=0) if live.any() else np.full(self.bands.shape[1], np.nan)
        band_names = _band_names(len(shares))
        out = {
            "name": self.name,
            "layer": self.layer,
            "kernel": f"{self.kernel_size[0]}x{self.kernel_size[1]}/{self.stride}",
            "filters": self.filters,
            "dead_fraction": float(np.mean(self.dead)),
            "dead_rms_fraction": float(np.mean(self.dead_rms)),
            "inactive_fraction": None if self.inactive is None else float(np.mean(self.inactive)),
            **{f"energy_{b}": _f(s) for b, s in zip(band_names, shares)},
            "conv1_aliasing": _f(np.nanmean(self.conv1_aliasing[live])) if live.any() else None,
            "layer2_aliasing": (
                None if self.layer2_aliasing is None or np.all(np.isnan(self.layer2_aliasing))
                else _f(np.nanmean(self.layer2_aliasing))
            ),
            "top_filter_share": _f(self.top_filter_share),
            "top_filter_x_uniform": _f(self.top_filter_share * self.filters),
        }
        if self.clipped is not None and self.layer in self.clipped.fractions:
            frac = self.clipped.fractions[self.layer]
            out["clipped_last"] = _f(frac[-1]) if len(frac) else None
            out["clipped_mean"] = _f(np.nanmean(frac)) if len(frac) else None
        return out


def _f(v) -> float | None:
    v = float(v)
    return None if math.isnan(v) else v


def _band_names(n: int) -> list[str]:
    return ["low", "mid", "high"] if n == 3 else [f"band{i}" for i in range(n)]


def diagnose(
    model: keras.Model,
    probe_images=None,
    *,
    name: str | None = None,
    history: str | os.PathLike | ClippedHistory | None = None,
    layer: str | None = None,
    layer2: str | None = None,
    layer2_channels: int | Sequence[int] = 32,
    rms_tol: float = 0.01,
    band_edges: Sequence[float] = BAND_EDGES,
    fft_size: int = FFT_SIZE,
    batch_size: int = 32,
    seed: int = 0,
    contrast: float = 1.0,
    progress: bool = True,
) -> Diagnostics:
    """All diagnostics of one model (module doc); the probe-set ones only with `probe_images`.

    Args:
        model: a trained model (or its `AnalysableModel`) with conv layers
            `layer` and `layer2` (default: its first two conv layers, ZFNet's
            conv1 and conv2).
        probe_images: `(N, S, S, 3)` model inputs (raw RGB 0..255), e.g.
            centre crops of validation images; None skips "never active" and
            the layer-2 projections.
        name: label (default: the model's name).
        history: a `history.csv` path or a `ClippedHistory`.
        layer2_channels: how many layer-2 channels to project (seeded random
            subset, all if larger than the layer) or explicit channel indices.
        rms_tol, band_edges, fft_size: see `dead_by_rms`, `band_shares`.
        batch_size: probe images per forward pass / pairs per deconv pass.
        contrast: display contrast of the layer-2 patches.
        progress: tqdm bar over probe batches.
    """
    from zfkeras.models.adapter import analysable

    view = analysable(model)
    model = view.model
    convs = [n for n in view.layer_names if isinstance(view.layers[n].layer, keras.layers.Conv2D)]
    if len(convs) < 2 and (layer is None or layer2 is None):
        raise ValueError(f"diagnostics need two conv layers; the model has {convs}")
    layer = convs[0] if layer is None else layer
    layer2 = convs[1] if layer2 is None else layer2
    if layer not in view.layers:
        raise ValueError(f"unknown layer {layer!r}; conv layers: {convs}")
    conv = view.layers[layer].layer
    if not isinstance(conv, keras.layers.Conv2D):
        raise ValueError(f"{layer!r} is not a Conv2D layer")
    kernel = np.asarray(conv.kernel, np.float32)
    stride = int(conv.strides[0])
    dead_rms = dead_by_rms(kernel, rms_tol)
    clipped = read_clipped_history(history) if isinstance(history, (str, os.PathLike)) else history
    diag = Diagnostics(
        name=name or model.name,
        layer=layer,
        kernel_size=(int(kernel.shape[0]), int(kernel.shape[1])),
        stride=stride,
        filters=int(kernel.shape[3]),
        dead_rms=dead_rms,
        inactive=None,
        bands=band_shares(kernel, band_edges, fft_size),
        band_edges=tuple(float(e) for e in band_edges),
        conv1_aliasing=stride_aliasing(kernel, stride, fft_size),
        top_filter_share=largest_filter_share(kernel),
        kernel=kernel,
        clipped=clipped,
    )
    if probe_images is None:
        return diag

    from zfkeras.analysis._probe import (
        channel_argmax,
        check_probe,
        choose_channels,
        receptive_patches,
        strongest_projections,
    )
    from zfkeras.deconv import Deconvnet

    images = check_probe(probe_images, model)
    fm = feature_model(view, [layer, layer2])
    n_batches = math.ceil(len(images) / batch_size)
    with tqdm(total=n_batches, desc=f"probe {diag.name}", unit="batch", disable=not progress, leave=False) as bar:
        best = channel_argmax(fm, images, [layer, layer2], batch_size, bar)
    diag.inactive = ~(best[layer][0] > 0)
    c2 = len(best[layer2][0])
    if isinstance(layer2_channels, (int, np.integer)) and not isinstance(layer2_channels, bool):
        chans = choose_channels({layer2: c2}, int(layer2_channels), seed)[layer2]
    else:
        chans = choose_channels({layer2: c2}, {layer2: layer2_channels}, seed)[layer2]
    deconv = Deconvnet(view)
    proj = strongest_projections(deconv, images, layer2, chans, best[layer2][1], batch_size)
    alias = image_aliasing(proj.images, stride)
    alias[~(proj.activations > 0)] = np.nan
    diag.layer2 = layer2
    diag.layer2_channels = chans
    diag.layer2_aliasing = alias
    diag.layer2_patches = receptive_patches(deconv, layer2, proj, contrast)
    return diag


# ------------------------------------------------------------------ table
_ROWS = (
    ("kernel", "layer-1 kernel / stride", "{}"),
    ("filters", "layer-1 filters", "{}"),
    ("dead_fraction", "dead filters (either)", "pct"),
    ("dead_rms_fraction", "  near-zero RMS", "pct"),
    ("inactive_fraction", "  never active on probe", "pct"),
    ("energy_low", "energy low freq", "pct"),
    ("energy_mid", "energy mid freq", "pct"),
    ("energy_high", "energy high freq", "pct"),
    ("conv1_aliasing", "layer-1 stride aliasing", "pct"),
    ("layer2_aliasing", "layer-2 aliasing", "pct"),
    ("top_filter_share", "largest filter share", "pct"),
    ("top_filter_x_uniform", "  x uniform (1/C)", "{:.2f}"),
    ("clipped_last", "clipped conv1, last epoch", "pct"),
    ("clipped_mean", "clipped conv1, mean", "pct"),
)


def diagnostics_table(
    diagnostics: Sequence[Diagnostics], extra: Mapping[str, Sequence] | None = None
) -> str:
    """A plain-text table: rows = measures, columns = models.

    `extra` adds rows `{label: [value per model]}` (e.g. test accuracy);
    floats in [0, 1] print as percentages there too. Missing values print "-".
    """
    sums = [d.summary() for d in diagnostics]
    rows: list[tuple[str, list[str]]] = []
    for key, label, fmt in _ROWS:
        values = [s.get(key) for s in sums]
        if all(v is None for v in values):
            continue
        rows.append((label, [_cell(v, fmt) for v in values]))
    for label, values in (extra or {}).items():
        if len(values) != len(sums):
            raise ValueError(f"extra row {label!r} has {len(values)} values for {len(sums)} models")
        rows.append((label, [_cell(v, "pct" if isinstance(v, float) and 0 <= v <= 1 else "{}") for v in values]))
    edges = diagnostics[0].band_edges if diagnostics else BAND_EDGES
    header = ["measure", *[s["name"] for s in sums]]
    width0 = max(len(header[0]), *(len(r[0]) for r in rows)) if rows else len(header[0])
    widths = [max(len(header[i + 1]), *(len(r[1][i]) for r in rows)) for i in range(len(sums))]
    lines = [
        "  ".join([header[0].ljust(width0), *(h.rjust(w) for h, w in zip(header[1:], widths))]),
        "  ".join(["-" * width0, *("-" * w for w in widths)]),
    ]
    for label, cells in rows:
        lines.append("  ".join([label.ljust(width0), *(c.rjust(w) for c, w in zip(cells, widths))]))
    lines.append(
        f"(bands in units of the pixel Nyquist frequency: low < {edges[0]:.2f} <= mid < {edges[-1]:.2f} <= high)"
    )
    return "\n".join(lines)


def _cell(v, fmt: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if fmt == "pct":
        return f"{100 * float(v):.1f}%"
    return fmt.format(v)
