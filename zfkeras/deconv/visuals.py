"""The arrays behind a Fig 2 panel: projections and image patches of the top-k activations.

`top_projections` takes the result of a scan and, for one layer, projects every
kept activation back to pixels (batched, sharing forward passes between pairs
of the same image) and cuts the receptive field from both the projection and
the image, giving `LayerVisuals`. It saves to / loads from an npz, so plotting
(`zfkeras.report.figures.fig2_top9.plot_top_activations`) and reports never recompute it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Mapping, Sequence, Union

import keras
import numpy as np

from zfkeras.deconv.deconvnet import Deconvnet
from zfkeras.deconv.display import GREY, cut_patch, to_display, to_uint8
from zfkeras.deconv.scan import TopActivations, atomic_savez

ImageSource = Union[Callable[[str], np.ndarray], Mapping[str, np.ndarray]]


@dataclasses.dataclass
class LayerVisuals:
    """Projections and patches of the top-k activations of some channels of a layer.

    Attributes:
        layer: layer name.
        channels: `(C',)` the channels shown.
        values, ids, positions: `(C', k)`, `(C', k)`, `(C', k, 2)` from the scan.
        projections: `(C', k, P, P, 3)` uint8, the receptive-field crop of each
            projection through `display.to_display(contrast)`.
        patches: `(C', k, P, P, 3)` uint8 image patches (grey outside the image).
            Slots without a positive activation (a dead channel, or fewer than
            k images that fire) are uniform grey in both.
        dead: `(C',)` bool, channel never fired on the dataset.
        contrast: the display contrast used.
        rule: the backward rule of the projections ("deconvnet", "guided", "gradient").
    """

    layer: str
    channels: np.ndarray
    values: np.ndarray
    ids: np.ndarray
    positions: np.ndarray
    projections: np.ndarray
    patches: np.ndarray
    dead: np.ndarray
    contrast: float = 1.0
    rule: str = "deconvnet"

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        atomic_savez(path, **{k: np.asarray(v) for k, v in fields.items()})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LayerVisuals":
        with np.load(path, allow_pickle=False) as z:
            kw = {f.name: z[f.name] for f in dataclasses.fields(cls) if f.name in z.files}
        kw["layer"] = str(kw["layer"])
        kw["rule"] = str(kw.get("rule", "deconvnet"))  # files written before rules existed
        kw["contrast"] = float(kw["contrast"])
        return cls(**kw)


def top_projections(
    model: keras.Model | Deconvnet,
    top: TopActivations,
    layer: str,
    images: ImageSource,
    channels: Sequence[int] | None = None,
    *,
    contrast: float = 1.0,
    batch_size: int = 64,
    rule: str | None = None,
) -> LayerVisuals:
    """Project the top-k activations of `channels` of `layer` and cut their patches.

    Args:
        model: the scanned model, or its `Deconvnet`.
        top: the scan result (`scan_top_activations` or `TopActivations.load`).
        layer: a scanned layer.
        images: image id -> model input image `(H, W, 3)` (a function or a
            mapping); for ZFNet the raw RGB 0..255 image the scan saw.
        channels: channels to show (default: all).
        contrast: display contrast (`display.to_display`).
        batch_size: (image, channel) pairs per batched deconv pass; each batch
            loads its images once.
        rule: backward rule ("deconvnet", "guided", "gradient"); default the
            `Deconvnet`'s own (a model: "deconvnet").

    Returns:
        `LayerVisuals`; patches and projections are the receptive field of
        each activation (exact geometry), `P` = its size.
    """
    deconv = model if isinstance(model, Deconvnet) else Deconvnet(model, rule=rule or "deconvnet")
    if layer not in top.layers:
        raise ValueError(f"layer {layer!r} was not scanned; scanned layers: {list(top.layers)}")
    lt = top.layers[layer]
    chans = np.arange(lt.channels) if channels is None else np.asarray(channels, np.int64).reshape(-1)
    bad = chans[(chans < 0) | (chans >= lt.channels)]
    if len(bad):
        raise ValueError(
            f"channel {int(bad[0])} out of range for layer {layer!r}: valid channels 0..{lt.channels - 1}"
        )
    load = images.__getitem__ if isinstance(images, Mapping) else images
    k = top.k
    gr, gc = deconv.receptive_field(layer)
    h, w, cin = deconv.input_shape
    # a field larger than the image (deep layers of deep nets): show the whole image
    whole = gr.size > h or gc.size > w
    ph, pw = (h, w) if whole else (gr.size, gc.size)
    projections = np.full((len(chans), k, ph, pw, cin), GREY, np.uint8)
    patches = np.full((len(chans), k, ph, pw, cin), GREY, np.uint8)
    pairs = [(i, j) for i, c in enumerate(chans) for j in range(k) if lt.values[c, j] > 0]
    pairs.sort(key=lambda p: str(lt.ids[chans[p[0]], p[1]]))  # same image -> same batch
    for s in range(0, len(pairs), batch_size):
        chunk = pairs[s : s + batch_size]
        ids = [str(lt.ids[chans[i], j]) for i, j in chunk]
        unique = sorted(set(ids))
        batch = np.stack([np.asarray(load(u)) for u in unique])
        where = {u: n for n, u in enumerate(unique)}
        pos = np.array([(lt.rows[chans[i], j], lt.cols[chans[i], j]) for i, j in chunk])
        out = deconv.project_pairs(
            batch, layer, [where[u] for u in ids], [chans[i] for i, _ in chunk], pos,
            batch_size=batch_size, rule=rule,
        )
        for n, (i, j) in enumerate(chunk):
            window = (0, 0, h, w) if whole else deconv.window(layer, *pos[n])
            crop = cut_patch(out.images[n], window, fill=0)
            projections[i, j] = to_uint8(to_display(crop, contrast))
            image = np.clip(batch[where[ids[n]]], 0, 255).astype(np.uint8)
            patches[i, j] = cut_patch(image, window)
    positions = np.stack([lt.rows[chans], lt.cols[chans]], axis=-1)
    return LayerVisuals(
        layer=layer,
        channels=chans,
        values=lt.values[chans],
        ids=lt.ids[chans],
        positions=positions,
        projections=projections,
        patches=patches,
        dead=~(lt.values[chans, 0] > 0),
        contrast=float(contrast),
        rule=deconv.rule if rule is None else rule,
    )


# ------------------------------------------------------------------ specificity
def edge_strength(patch: np.ndarray) -> np.ndarray:
    """`(P, P)` gradient magnitude of a patch's grey level (central differences)."""
    grey = np.asarray(patch, np.float64).mean(axis=-1)
    gy, gx = np.gradient(grey)
    return np.hypot(gy, gx)


def match(projection: np.ndarray, patch: np.ndarray) -> float:
    """How well a display projection lines up with an image patch's structure, in [-1, 1].

    Pearson correlation between the projection's magnitude (`|p - grey|`
    summed over colour: where the projection puts signal) and the patch's
    edge strength (`edge_strength`); 0 when either is constant.
    """
    p = np.abs(np.asarray(projection, np.float64) - 127.5).sum(axis=-1).ravel()
    e = edge_strength(patch).ravel()
    p, e = p - p.mean(), e - e.mean()
    denom = np.sqrt((p * p).sum() * (e * e).sum())
    return float((p * e).sum() / denom) if denom > 0 else 0.0


def specificity(visuals: LayerVisuals) -> np.ndarray:
    """Per channel: how much more its top-k projections match their own image patch than
    the other top-k patches (`match(P_j, X_j) - mean_{i != j} match(P_j, X_i)`, averaged
    over the entries j that fired).

    A projection that only says "this kind of texture" scores about 0; one that traces
    the structure of its own image scores higher. `(C',)` float, NaN for channels with
    fewer than 2 entries that fired.
    """
    out = np.full(len(visuals.channels), np.nan)
    for c in range(len(visuals.channels)):
        valid = np.flatnonzero(visuals.values[c] > 0)
        if len(valid) < 2:
            continue
        scores = []
        for j in valid:
            own = match(visuals.projections[c, j], visuals.patches[c, j])
            others = [match(visuals.projections[c, j], visuals.patches[c, i]) for i in valid if i != j]
            scores.append(own - float(np.mean(others)))
        out[c] = float(np.mean(scores))
    return out
