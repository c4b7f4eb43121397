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

Modules: the pure measures in `filter_measures`, never-active units in `dead_units`,
the training history in `clipped_history`; here the summary (`Diagnostics`), the
analysis (`LayerDiagnostics(model).run(probe_images)`, shortcut `diagnose`) and the table.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Mapping, Sequence

import keras
import numpy as np
from tqdm.auto import tqdm

from zfkeras.analysis.base import Analysis
from zfkeras.analysis.clipped_history import ClippedHistory, read_clipped_history
from zfkeras.analysis.dead_units import dead_unit_shares, max_activations, relu_layer_names
from zfkeras.analysis.filter_measures import (
    BAND_EDGES,
    FFT_SIZE,
    band_shares,
    dead_by_rms,
    filter_norms,
    image_aliasing,
    largest_filter_share,
    stride_aliasing,
)
from zfkeras.models.view import ModelView

__all__ = [
    "BAND_EDGES",
    "FFT_SIZE",
    "ClippedHistory",
    "Diagnostics",
    "LayerDiagnostics",
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
    "relu_layer_names",
    "stride_aliasing",
]


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
            # spread of the high-frequency share over the live filters (the Fig 6 verdict's uncertainty)
            "energy_high_sd": _f(np.nanstd(self.bands[live, -1], ddof=1)) if live.sum() >= 2 else None,
            "live_filters": int(live.sum()),
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


class LayerDiagnostics(Analysis):
    """The layer-1/2 diagnostics of one model (paper Sec 4.1, Fig 6); see the module doc.

    Args:
        model: a trained model, a `.keras` path or its `ModelView`, with conv layers
            `layer` and `layer2` (default `ModelView.paper_layers("diagnostics")`: ZFNet's conv1 and
            conv2, else its first two Conv2D layers).
        name: label in tables and figures (default: the model's name).
        history: a training run's `history.csv` path or a `ClippedHistory`.
        layer2_channels: how many layer-2 channels to project (seeded random
            subset, all if larger than the layer) or explicit channel indices.
        rms_tol, band_edges, fft_size: see `dead_by_rms`, `band_shares`.
        batch_size: probe images per forward pass / pairs per deconv pass.
        seed: seed of the layer-2 channel subset.
        contrast: display contrast of the layer-2 patches.
        preprocess: the model's input convention, if it does not take raw RGB.

    Example:
    >>> diag = LayerDiagnostics(model, layer2_channels=16).run(probe_images)
    >>> diag.summary()["dead_fraction"], diag.layer2_patches.shape     # (16, P, P, 3)
    """

    def __init__(
        self,
        model: keras.Model | ModelView | str,
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
        preprocess: str | None = None,
    ):
        super().__init__(model, preprocess)
        view = self.view
        convs = [n for n in view.layer_names if view.layers[n].op == "conv2d"]
        defaults = view.paper_layers("diagnostics")  # ZFNet's conv1, conv2; else the first two Conv2D
        if len(defaults) < 2 and (layer is None or layer2 is None):
            raise ValueError(f"diagnostics need two conv layers; the model has {convs}")
        self.layer = defaults[0] if layer is None else layer
        self.layer2 = defaults[1] if layer2 is None else layer2
        if self.layer not in view.layers:
            raise ValueError(f"unknown layer {self.layer!r}; conv layers: {convs}")
        if view.layers[self.layer].op != "conv2d":
            raise ValueError(f"{self.layer!r} is not a Conv2D layer")
        self.name = name or view.model.name
        self.history = history
        self.layer2_channels = layer2_channels
        self.rms_tol, self.band_edges, self.fft_size = rms_tol, band_edges, fft_size
        self.batch_size, self.seed, self.contrast = batch_size, seed, contrast

    def run(self, probe_images=None, *, progress: bool = False) -> Diagnostics:
        """All diagnostics; the probe-set ones ("never active", layer-2 aliasing) only with images.

        Args:
            probe_images: `(N, S, S, 3)` model inputs (raw RGB 0..255), e.g. centre crops of
                validation images; None skips "never active" and the layer-2 projections.
            progress: tqdm bar over probe batches.

        Returns:
            `Diagnostics` (see `Diagnostics.summary` for its numbers).
        """
        view, layer, layer2 = self.view, self.layer, self.layer2
        conv = view.layers[layer].layer
        kernel = np.asarray(conv.kernel, np.float32)
        stride = int(conv.strides[0])
        history = self.history
        clipped = read_clipped_history(history) if isinstance(history, (str, os.PathLike)) else history
        diag = Diagnostics(
            name=self.name,
            layer=layer,
            kernel_size=(int(kernel.shape[0]), int(kernel.shape[1])),
            stride=stride,
            filters=int(kernel.shape[3]),
            dead_rms=dead_by_rms(kernel, self.rms_tol),
            inactive=None,
            bands=band_shares(kernel, self.band_edges, self.fft_size),
            band_edges=tuple(float(e) for e in self.band_edges),
            conv1_aliasing=stride_aliasing(kernel, stride, self.fft_size),
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

        images = check_probe(probe_images, view.model)
        batch_size = self.batch_size
        fm = view.features([layer, layer2])
        n_batches = math.ceil(len(images) / batch_size)
        with tqdm(total=n_batches, desc=f"probe {diag.name}", unit="batch", disable=not progress, leave=False) as bar:
            best = channel_argmax(fm, images, [layer, layer2], batch_size, bar)
        diag.inactive = ~(best[layer][0] > 0)
        c2 = len(best[layer2][0])
        wanted = self.layer2_channels
        if isinstance(wanted, (int, np.integer)) and not isinstance(wanted, bool):
            chans = choose_channels({layer2: c2}, int(wanted), self.seed)[layer2]
        else:
            chans = choose_channels({layer2: c2}, {layer2: wanted}, self.seed)[layer2]
        deconv = Deconvnet(view)
        proj = strongest_projections(deconv, images, layer2, chans, best[layer2][1], batch_size)
        alias = image_aliasing(proj.images, stride)
        alias[~(proj.activations > 0)] = np.nan
        diag.layer2 = layer2
        diag.layer2_channels = chans
        diag.layer2_aliasing = alias
        diag.layer2_patches = receptive_patches(deconv, layer2, proj, self.contrast)
        return diag


def diagnose(
    model: keras.Model | ModelView | str, probe_images=None, *, progress: bool = True, **options
) -> Diagnostics:
    """Shortcut for `LayerDiagnostics(model, **options).run(probe_images, progress=...)`.

    `options` are `LayerDiagnostics`'s (name, history, layer, layer2, layer2_channels, rms_tol,
    band_edges, fft_size, batch_size, seed, contrast, preprocess); `probe_images` `(N, S, S, 3)` raw
    RGB model inputs (None skips "never active" and the layer-2 projections); `progress`: tqdm bar.
    """
    return LayerDiagnostics(model, **options).run(probe_images, progress=progress)


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
