"""The top-k atlas of a model over a dataset (paper Figs 1-2): one compute, its arrays kept in a folder.

`compute_atlas` runs (or resumes, or reuses) the scan and the projections of the chosen
feature maps and keeps their arrays in a folder; the pictures and the settings are drawn
from them by `zfkeras.report.figures.atlas_panel.write_atlas`. `zfkeras visualize`,
`zfkeras atlas` and the report's Figs 1-2 all call both, so a folder has one layout
whoever wrote it, and either reuses the other's:

- `top9.json` + `top9.npz`: the scan's top-k records (`TopKScan`);
- `scan_checkpoint.npz`: the scan's resumable state (and its weights fingerprint);
- `<layer>_top<k>.npz`: the projected maps shown (`LayerVisuals`: records, and tiles of at
  most `STORE_TILE` px as one encoded image per map); rewritten as maps are projected, so
  an interrupted run continues where it stopped;
- written by `write_atlas`: `<layer>_top<k>.png` (+ `_p2.png`, ...: the paged panels) and
  `config.json` (the settings, `AtlasSettings`, the maps shown and the skipped files).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from zfkeras.deconv.deconvnet import Deconvnet
from zfkeras.deconv.scan import (
    TopKScan, _fingerprint, drop_stale_checkpoint, scan_top_activations)
from zfkeras.deconv.visuals import (
    ImageSource, LayerVisuals, bound_tiles, merge_visuals, subset_visuals, top_projections)

__all__ = ["STORE_TILE", "Atlas", "AtlasSettings", "activation_warning", "choose_channels", "compute_atlas",
           "load_saved_scan"]

STORE_TILE = 112  # px: stored tiles are at most this side (the enlarged view of an atlas card)
SAVE_EVERY = 20.0  # s: projections are saved at least this often (and at the end / on interrupt)
VANISHING = 1e-6  # activations below this (absolute) are reported as vanishingly small


@dataclasses.dataclass(frozen=True)
class AtlasSettings:
    """What an atlas is made with (the same for `zfkeras visualize` and the report).

    Attributes:
        layers: layers to scan and show (empty: `ModelView.block_layers`).
        top: activations kept per feature map (k; 9 in the paper).
        channels: maps projected per layer, a seeded random subset; 0: all.
        contrast: display contrast of the projections.
        rule: backward rule ("deconvnet", "guided", "gradient").
        seed: seed of the channel subsets.
        batch_size: images per scan batch and (image, map) pairs per projection batch.
    """

    layers: tuple[str, ...] = ()
    top: int = 9
    channels: int = 16
    contrast: float = 1.0
    rule: str = "deconvnet"
    seed: int = 0
    batch_size: int = 32

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "layers": list(self.layers)}


@dataclasses.dataclass
class Atlas:
    """The result of `compute_atlas`.

    Attributes:
        top: the scan (`TopKScan`).
        visuals: `{layer: LayerVisuals}` of the maps shown, read back from the folder.
        settings: the `AtlasSettings`.
        source: "computed", or which folder the scan / projections were reused from.
        warnings: one-line warnings (vanishing or constant activations).
        projected: pairs projected by this call (0 when everything was reused).
    """

    top: TopKScan
    visuals: dict[str, LayerVisuals]
    settings: AtlasSettings
    source: str = "computed"
    warnings: list[str] = dataclasses.field(default_factory=list)
    projected: int = 0


def choose_channels(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """The maps shown of a layer with `n`: all when `count` is 0 or >= n, else a sorted seeded subset."""
    return np.arange(n) if count in (0, n) or count > n else np.sort(rng.choice(n, count, replace=False))


def activation_warning(top: TopKScan) -> str | None:
    """One line when the scanned activations are vanishingly small or constant, else None."""
    small, flat = [], []
    for name, lt in top.layers.items():
        v = np.asarray(lt.values)
        v = v[np.isfinite(v)]
        if not v.size or not np.any(v > 0):
            continue  # all dead: said by the dead-map lines
        peak = float(np.max(np.abs(v)))
        if peak < VANISHING:
            small.append((name, peak))
        elif v.size > 1 and float(np.ptp(v)) <= 1e-6 * peak:
            flat.append(name)
    parts = []
    if small:
        parts.append(f"{', '.join(n for n, _ in small)}: activations at most {max(p for _, p in small):.1g} "
                     "(vanishingly small: the projections show rounding noise, not image structure)")
    if flat:
        parts.append(f"{', '.join(flat)}: the same activation on every image and map (constant: nothing to rank)")
    if not parts:
        return None
    return ("warning: " + "; ".join(parts) + ". Typical of random weights (e.g. --weights none) with "
            "BatchNormalization at its initial statistics: the signal shrinks layer by layer; use trained weights.")


def load_saved_scan(folder: Path, deconv: Deconvnet, layers: Sequence[str], k: int, paths: Sequence[str] | None,
                    *, need_fingerprint: bool) -> tuple[TopKScan | None, str]:
    """A saved scan usable for these layers, images and weights: `(TopKScan, "ok")` or `(None, why)`.

    The weights and, with `paths` (the images it must cover; None: not checked), the image list are checked
    with `scan_checkpoint.npz`'s fingerprint; without it, only if not `need_fingerprint` (a user's folder)."""
    folder = Path(folder)
    if not (folder / "top9.json").exists():
        return None, "no saved scan"
    try:
        top = TopKScan.load(folder / "top9.json")
    except (OSError, ValueError, KeyError) as err:
        return None, f"unreadable saved scan ({err})"
    if top.k != k:
        return None, f"saved scan kept {top.k} per map, not {k}"
    missing = [l for l in layers if l not in top.layers]
    if missing:
        return None, f"saved scan lacks {missing}"
    for l in layers:
        if top.layers[l].channels != deconv.view.layer(l).output_shape[2]:
            return None, f"saved scan of {l} has {top.layers[l].channels} maps, the model {deconv.view.layer(l).output_shape[2]}"
    if paths is not None:
        if top.n_images != len(paths):
            return None, f"saved scan covers {top.n_images} images, DATA has {len(paths)}"
        listed = {str(Path(p).resolve()) for p in paths}
        ids = {str(i) for l in layers for i in np.asarray(top.layers[l].ids).ravel() if str(i)}
        if not all(str(Path(i).resolve()) in listed for i in ids):
            return None, "saved scan is of other images"
    ckpt = folder / "scan_checkpoint.npz"
    if ckpt.exists():
        try:
            with np.load(ckpt, allow_pickle=False) as z:
                saved = str(z["fingerprint"])
        except (OSError, ValueError, KeyError):
            return None, "unreadable scan checkpoint"
        want = _fingerprint(deconv, sorted(top.layers, key=deconv.order), k, paths)
        saved, want = json.loads(saved), json.loads(want)
        if saved.pop("images", None) != want.pop("images", None) and paths is not None:
            return None, "saved scan is of other images (its checkpoint lists others)"
        if saved != want:
            return None, "saved scan was made with other weights"
    elif need_fingerprint:
        return None, "saved scan cannot be checked against the weights"
    return top, "ok"


def _saved_visuals(path: Path, top: TopKScan, layer: str, s: AtlasSettings) -> LayerVisuals | None:
    """The maps of `path` that were projected from this very scan with these settings (None: none)."""
    if not path.exists():
        return None
    try:
        v = LayerVisuals.load(path)
    except (OSError, ValueError, KeyError):
        return None
    lt = top.layers[layer]
    if (v.layer != layer or v.rule != s.rule or abs(v.contrast - s.contrast) > 1e-9
            or v.values.shape[1:] != (top.k,) or max(v.projections.shape[2:4]) > STORE_TILE):
        return None
    ch = np.asarray(v.channels, np.int64)
    if len(ch) and (ch.max() >= lt.channels
                    or not np.array_equal(v.values, lt.values[ch])
                    or not np.array_equal(v.ids.astype(str), lt.ids[ch])):
        return None
    return v


def _duration(seconds: float) -> str:
    """90 s and less in seconds, then minutes, from 1.5 h hours."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def compute_atlas(
    deconv: Deconvnet,
    paths: Sequence[str],
    images: ImageSource,
    folder: str | os.PathLike,
    settings: AtlasSettings,
    *,
    reuse: Sequence[str | os.PathLike] = (),
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Atlas:
    """Scan `paths`, project the chosen maps of every layer, and keep both in `folder` (module doc).

    Args:
        deconv: the model's `Deconvnet` (its rule must be `settings.rule`).
        paths: readable images, in order (ids of the scan).
        images: path -> `(S, S, C)` model input (e.g. `zfkeras.data.images.ImageCache`).
        folder: where the scan and the projections are kept; what it already holds for the
            same weights, images and settings is reused, an interrupted run continues.
        settings: `AtlasSettings`.
        reuse: other atlas folders to take the scan and projections from (e.g. `--top9-dir`).
        progress: progress bars (scan, projections; with ETA).
        log: where step lines and warnings go.

    Returns:
        `Atlas`; `visuals` are read back from `folder` (what later runs and figures see).
    """
    s = settings
    if deconv.rule != s.rule:
        raise ValueError(f"the Deconvnet's rule is {deconv.rule!r}, the settings' {s.rule!r}")
    folder = Path(folder)
    layers = deconv.view.choose_layers(s.layers)
    k = s.top
    top, source = None, "computed"
    for other in [Path(r) for r in reuse if r]:
        top, why = load_saved_scan(other, deconv, layers, k, paths, need_fingerprint=False)
        if top is None:
            log(f"[atlas] not reusing {other}: {why}")
            continue
        source = f"reused {other}"
        if other.resolve() != folder.resolve():
            _copy_scan(other, folder)
        break
    if top is None:
        top, _ = load_saved_scan(folder, deconv, layers, k, paths, need_fingerprint=True)
        if top is not None:
            source = "reused (same model and settings)"
    if top is None:
        log(f"[atlas] top-{k} scan of {len(paths)} images, layers {', '.join(layers)}")
        ckpt = folder / "scan_checkpoint.npz"
        folder.mkdir(parents=True, exist_ok=True)
        drop_stale_checkpoint(ckpt, deconv, layers, k, paths)
        top = scan_top_activations(deconv, lambda start: _batches(paths[start:], images, s.batch_size),
                                   layers=layers, k=k, checkpoint=ckpt, progress=progress, total=len(paths), ids=paths)
        top.save(folder / "top9.json")
    else:
        log(f"[atlas] top-{k} scan: {source}")
    top = TopKScan(top.k, top.n_images, {l: top.layers[l] for l in layers})
    warnings = [w for w in [activation_warning(top)] if w]
    for w in warnings:
        log(w)

    rng = np.random.default_rng(s.seed)
    want = {l: choose_channels(top.layers[l].channels, s.channels, rng) for l in layers}
    have, todo = {}, {}
    others = [Path(r) for r in reuse if r and Path(r).resolve() != folder.resolve()]
    for l in layers:
        own = _saved_visuals(folder / f"{l}_top{k}.npz", top, l, s)
        v = own
        for other in others:
            o = _saved_visuals(other / f"{l}_top{k}.npz", top, l, s)
            v = o if v is None else merge_visuals(v, o) if o is not None else v
        if v is not None and (own is None or len(v.channels) > len(own.channels)):
            v.save(folder / f"{l}_top{k}.npz")  # brought in from a reused folder
        have[l] = v
        todo[l] = want[l] if v is None else want[l][~np.isin(want[l], v.channels)]
    reused = sum(len(want[l]) - len(todo[l]) for l in layers)
    if reused:
        source += f"; {reused} projected maps reused"
    projected = _project(deconv, top, images, folder, s, have, todo, progress, log)
    visuals = {l: subset_visuals(LayerVisuals.load(folder / f"{l}_top{k}.npz"), want[l]) for l in layers}
    return Atlas(top, visuals, s, source, warnings, projected)


def _copy_scan(src: Path, dest: Path) -> None:
    """Bring a reused folder's scan files into `dest` (so `dest` is a complete atlas folder)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("top9.json", "top9.npz", "scan_checkpoint.npz"):
        if (src / name).exists():
            tmp = dest / f".{name}.tmp"
            shutil.copyfile(src / name, tmp)
            os.replace(tmp, dest / name)


def _batches(paths: Sequence[str], images: ImageSource, batch_size: int):
    """`(ids, (B, S, S, C))` batches of `paths` from `images` (a function or a mapping)."""
    load = images.__getitem__ if isinstance(images, Mapping) else images
    for i in range(0, len(paths), batch_size):
        ids = list(paths[i:i + batch_size])
        yield ids, np.stack([np.asarray(load(p)) for p in ids])


def _project(deconv, top, images, folder: Path, s: AtlasSettings, have: dict, todo: dict, progress: bool,
             log) -> int:
    """Project the `todo` maps of every layer in groups, saving `<layer>_top<k>.npz` as they finish."""
    from tqdm.auto import tqdm

    k = top.k
    pairs = {l: int(np.sum(top.layers[l].values[todo[l]] > 0)) for l in todo}
    total = sum(pairs.values())
    if not any(len(t) for t in todo.values()):
        return 0
    batch = max(s.batch_size, 64)
    group = max(1, math.ceil(batch / k))
    done, start, told = 0, time.monotonic(), False
    with tqdm(total=total, desc="projections", unit="pair", disable=not progress) as bar:
        for l in todo:
            if not len(todo[l]):
                continue
            log(f"[atlas] {l}: projecting the top-{k} of {len(todo[l])} feature maps")
            path, saved = folder / f"{l}_top{k}.npz", time.monotonic()
            try:
                for g in range(0, len(todo[l]), group):
                    chans = todo[l][g:g + group]
                    fresh = bound_tiles(top_projections(deconv, top, l, images, chans, contrast=s.contrast,
                                                        batch_size=batch, rule=s.rule), STORE_TILE)
                    have[l] = merge_visuals(have[l], fresh)
                    n = fresh.pairs
                    done += n
                    bar.update(n)
                    if not told and done and total > done and time.monotonic() - start > 0:
                        rate = done / (time.monotonic() - start)
                        log(f"[atlas] {total:,} pairs to project: about {_duration(total / rate)} at the rate "
                            f"of the first {done} ({rate:.1f} pairs/s)")
                        told = True
                    if time.monotonic() - saved > SAVE_EVERY:
                        have[l].save(path)
                        saved = time.monotonic()
            except KeyboardInterrupt:
                if have[l] is not None:
                    have[l].save(path)
                raise
            have[l].save(path)
    return done
