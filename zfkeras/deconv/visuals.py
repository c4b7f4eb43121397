"""The arrays behind a Fig 2 panel: projections and image patches of the top-k activations.

`top_projections` takes the result of a scan and, for one layer, projects every
kept activation back to pixels (batched, sharing forward passes between pairs
of the same image) and cuts the receptive field from both the projection and
the image, giving `LayerVisuals`. It saves to / loads from an npz, so plotting
(`zfkeras.report.figures.atlas_panel.plot_top_activations`) and reports never recompute it.
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
from zfkeras.deconv.scan import TopKScan, atomic_savez

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
        field: the receptive field's side in px when the tiles were downscaled (`bound_tiles`);
            0: the tiles are at the field's size.
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
    field: int = 0

    @property
    def live_channels(self) -> list[int]:
        """The shown channels that fired on the dataset (not `dead`), in order."""
        return [int(c) for c, d in zip(self.channels, self.dead) if not d]

    @property
    def field_side(self) -> int:
        """The receptive field's side in px (the tiles' own side unless downscaled)."""
        return int(self.field) or int(max(self.projections.shape[2:4]))

    def save(self, path: str | os.PathLike) -> Path:
        """Write an npz atomically: the records as arrays, the tiles as one encoded image per map.

        Each map's tiles are stored as one `(2P, k*P, 3)` strip (projections over patches),
        PNG when `P <= PNG_TILE` (exact) else JPEG quality `JPEG_QUALITY` without chroma
        subsampling (about a tenth of the raw bytes; on MobileNetV2 projections and patches
        1.3 grey levels off on average, 44 at most), so the file grows with what is shown.
        """
        path = Path(path)
        fields = {f.name: np.asarray(getattr(self, f.name)) for f in dataclasses.fields(self)
                  if f.name not in ("projections", "patches")}
        blobs = [encode_strip(self.projections[i], self.patches[i]) for i in range(len(self.channels))]
        offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
        atomic_savez(path, **fields, tiles=np.frombuffer(b"".join(blobs), np.uint8), tile_offsets=offsets,
                     tile_shape=np.asarray(self.projections.shape, np.int64))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LayerVisuals":
        with np.load(path, allow_pickle=False) as z:
            kw = {f.name: z[f.name] for f in dataclasses.fields(cls) if f.name in z.files}
            if "tiles" in z.files:  # encoded strips (older files hold raw arrays)
                shape = tuple(int(v) for v in z["tile_shape"])
                raw, off = z["tiles"], z["tile_offsets"]
                kw["projections"] = np.empty(shape, np.uint8)
                kw["patches"] = np.empty(shape, np.uint8)
                for i in range(shape[0]):
                    kw["projections"][i], kw["patches"][i] = decode_strip(raw[off[i]:off[i + 1]].tobytes(), shape[1:])
        kw["layer"] = str(kw["layer"])
        kw["rule"] = str(kw.get("rule", "deconvnet"))  # files written before rules existed
        kw["contrast"] = float(kw["contrast"])
        kw["field"] = int(kw.get("field", 0))
        return cls(**kw)

    @property
    def pairs(self) -> int:
        """Projected (image, map) pairs: entries with a positive activation."""
        return int(np.sum(np.asarray(self.values) > 0))


PNG_TILE = 16  # px: strips of tiles up to this side are stored as PNG (exact), larger ones as JPEG
JPEG_QUALITY = 90


def encode_strip(projections: np.ndarray, patches: np.ndarray) -> bytes:
    """`(k, P, Q, C)` projections and patches -> PNG/JPEG bytes of a `(2P, k*Q, C)` strip."""
    import io

    from PIL import Image

    k, ph, pw, c = projections.shape
    strip = np.concatenate([np.asarray(t, np.uint8).transpose(1, 0, 2, 3).reshape(ph, k * pw, c)
                            for t in (projections, patches)], axis=0)
    buf = io.BytesIO()
    image = Image.fromarray(strip.squeeze(-1) if c == 1 else strip)
    if max(ph, pw) <= PNG_TILE or k * pw > 65500:  # JPEG's largest side is 65535 px
        image.save(buf, format="PNG", optimize=True)
    else:
        image.save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    return buf.getvalue()


def decode_strip(data: bytes, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `encode_strip`: `(projections, patches)`, each `shape` = `(k, P, Q, C)` uint8."""
    import io

    from PIL import Image

    k, ph, pw, c = (int(v) for v in shape)
    strip = np.asarray(Image.open(io.BytesIO(data)).convert("L" if c == 1 else "RGB"), np.uint8)
    strip = strip.reshape(2 * ph, k * pw, c)
    tiles = [strip[i * ph:(i + 1) * ph].reshape(ph, k, pw, c).transpose(1, 0, 2, 3) for i in (0, 1)]
    return tiles[0], tiles[1]


def bound_tiles(visuals: LayerVisuals, side: int) -> LayerVisuals:
    """`visuals` with tiles larger than `side` px downscaled (Lanczos, aspect kept) to fit `side`."""
    from PIL import Image

    k, ph, pw = visuals.projections.shape[1:4]
    if max(ph, pw) <= side:
        return visuals
    scale = side / max(ph, pw)
    size = (max(1, round(pw * scale)), max(1, round(ph * scale)))

    def shrink(t: np.ndarray) -> np.ndarray:
        flat = t.reshape(-1, *t.shape[2:])
        out = np.stack([np.asarray(Image.fromarray(x.squeeze(-1) if x.shape[-1] == 1 else x)
                                   .resize(size, Image.Resampling.LANCZOS)).reshape(size[1], size[0], -1)
                        for x in flat]) if len(flat) else np.zeros((0, size[1], size[0], t.shape[-1]), np.uint8)
        return out.reshape(*t.shape[:2], *out.shape[1:])

    return dataclasses.replace(visuals, projections=shrink(visuals.projections), patches=shrink(visuals.patches),
                               field=visuals.field_side)


def merge_visuals(a: LayerVisuals | None, b: LayerVisuals) -> LayerVisuals:
    """Two `LayerVisuals` of one layer -> one, sorted by channel (`a` wins on overlap; None: `b`)."""
    if a is None:
        return b
    keep = ~np.isin(b.channels, a.channels)
    order = np.argsort(np.concatenate([a.channels, b.channels[keep]]), kind="stable")

    def cat(x, y):
        return np.concatenate([np.asarray(x), np.asarray(y)[keep]])[order]

    return LayerVisuals(a.layer, cat(a.channels, b.channels), cat(a.values, b.values),
                        cat(a.ids.astype(str), b.ids.astype(str)), cat(a.positions, b.positions),
                        cat(a.projections, b.projections), cat(a.patches, b.patches), cat(a.dead, b.dead),
                        a.contrast, a.rule, a.field)


def subset_visuals(v: LayerVisuals, channels: Sequence[int]) -> LayerVisuals:
    """The rows of `v` for `channels` (each must be in `v`), in that order."""
    idx = np.array([int(np.flatnonzero(v.channels == c)[0]) for c in channels], np.int64)
    return LayerVisuals(v.layer, v.channels[idx], v.values[idx], v.ids[idx], v.positions[idx],
                        v.projections[idx], v.patches[idx], v.dead[idx], v.contrast, v.rule, v.field)


def top_projections(
    model: keras.Model | Deconvnet,
    top: TopKScan,
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
        top: the scan result (`scan_top_activations` or `TopKScan.load`).
        layer: a scanned layer.
        images: image id -> model input image `(H, W, 3)` (a function or a
            mapping); for ZFNet the raw RGB 0..255 image the scan saw.
        channels: channels to show (default: all).
        contrast: display contrast (`display.to_display`).
        batch_size: (image, channel) pairs per batched deconv pass; each batch
            loads and forwards its images once, and an image's pairs share one
            batch (unless they alone are more than `batch_size`).
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
    gr, gc = deconv.view.receptive_field(layer)
    h, w, cin = deconv.view.input_shape
    # a field larger than the image (deep layers of deep nets): show the whole image
    whole = gr.size > h or gc.size > w
    ph, pw = (h, w) if whole else (gr.size, gc.size)
    projections = np.full((len(chans), k, ph, pw, cin), GREY, np.uint8)
    patches = np.full((len(chans), k, ph, pw, cin), GREY, np.uint8)
    pairs = [(i, j) for i, c in enumerate(chans) for j in range(k) if lt.values[c, j] > 0]
    pairs.sort(key=lambda p: str(lt.ids[chans[p[0]], p[1]]))  # same image -> same batch
    for chunk in keyed_batches(pairs, [str(lt.ids[chans[i], j]) for i, j in pairs], batch_size):
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
            window = (0, 0, h, w) if whole else deconv.view.window(layer, *pos[n])
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


def keyed_batches(items: list, keys: Sequence[str], batch_size: int) -> list[list]:
    """Consecutive `items` (sorted by `keys`) cut into batches of at most `batch_size` that keep
    each key's items together (each image forwarded once per layer), unless one key alone has
    more than `batch_size` items (then its items fill batches of their own)."""
    batches: list[list] = []
    chunk: list = []
    s = 0
    while s < len(items):
        e = s
        while e < len(items) and keys[e] == keys[s]:
            e += 1
        if chunk and len(chunk) + e - s > batch_size:
            batches.append(chunk)
            chunk = []
        group = items[s:e]
        while len(group) > batch_size:
            batches.append(group[:batch_size])
            group = group[batch_size:]
        chunk += group
        s = e
    if chunk:
        batches.append(chunk)
    return batches


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
