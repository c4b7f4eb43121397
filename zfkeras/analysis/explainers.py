"""Every explanation method of the toolkit behind one call: the maps the trust checks compare.

`Explainers(view, methods, ...)` builds each method's engine ONCE on a view (its compiled
graphs read the view's variables at call time, so a `RandomizedCopy` re-uses them at
every depth). `maps(images, targets)` returns `{method: maps}`:

| method                         | what is explained            | map                                   |
|--------------------------------|------------------------------|---------------------------------------|
| "deconvnet", "guided", "gradient" | the class score (logit)   | `(N, H, W, C)` the rule's backward pass (`gradcam.class_projection`) |
| same, with `unit_layer`        | one unit of a feature map    | `(N*K, H, W, C)` its projection (`Deconvnet`) |
| "occlusion"                    | the class probability        | `(N, n, n)` drop of p when occluded (`OcclusionSensitivity`) |
| "gradcam"                      | the class score              | `(N, H, W)` Grad-CAM heatmap (`GradCAM`) |
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from zfkeras.deconv.rules import RULES
from zfkeras.models.view import ModelView

__all__ = ["CLASS_METHODS", "METHODS", "Explainers", "check_methods", "class_targets"]

METHODS = (*RULES, "occlusion", "gradcam")
CLASS_METHODS = ("occlusion", "gradcam")  # explain a class only (not a feature map's unit)


def check_methods(methods: Sequence[str] | str, unit_layer: str | None = None) -> tuple[str, ...]:
    """The methods as a tuple; ValueError for an unknown one (or a class-only one with `unit_layer`)."""
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    if not methods:
        raise ValueError(f"no methods given; valid: {', '.join(METHODS)}")
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown method {m!r}; valid methods: {', '.join(METHODS)}")
        if unit_layer is not None and m in CLASS_METHODS:
            raise ValueError(f"method {m!r} explains a class, not a unit of {unit_layer!r}: "
                             f"with a unit layer use {', '.join(RULES)}")
    return tuple(dict.fromkeys(methods))


def class_targets(view: ModelView, images: np.ndarray, targets) -> np.ndarray:
    """`(N,)` int32 classes: `targets` resolved (`resolve_targets`), None -> the model's top class."""
    from zfkeras.analysis.base import resolve_targets

    chosen = resolve_targets(targets, len(images), view.class_names)
    tgt = np.array([-1 if t is None else t for t in chosen], np.int32)
    if (tgt < 0).any():
        top = np.argmax(view.model.predict(images, verbose=0, batch_size=32), -1)
        tgt = np.where(tgt < 0, top, tgt).astype(np.int32)
    return tgt


class Explainers:
    """The engines of `methods` on one view.

    Args:
        view: the `ModelView` (e.g. `RandomizedCopy.view`).
        methods: names from `METHODS`.
        gradcam_layer: Grad-CAM's layer (None: the view's last spatial layer).
        unit_layer: None (explain classes) or a spatial layer whose units the rules project.
        patch, stride: occluder side / stride (None: `default_patch_stride`).
        batch_size: images (or pairs) per batched pass.
    """

    def __init__(self, view: ModelView, methods: Sequence[str], *, gradcam_layer: str | None = None,
                 unit_layer: str | None = None, patch: int | None = None, stride: int | None = None,
                 batch_size: int = 16):
        self.view = view
        self.methods = check_methods(methods, unit_layer)
        self.unit_layer = unit_layer
        self.batch_size = batch_size
        self._graphs: dict = {}
        self._deconv = None
        self._occ = None
        self._cam = None
        if unit_layer is not None:
            view.layer(unit_layer)
            if any(m in RULES for m in self.methods):
                from zfkeras.deconv import Deconvnet

                self._deconv = Deconvnet(view)
        else:
            from zfkeras.analysis.gradcam import ClassGraph

            for m in self.methods:
                if m in RULES:
                    self._graphs[m] = ClassGraph(view, gradcam_layer, rule=m)
        if "occlusion" in self.methods:
            from zfkeras.analysis.occlusion import OcclusionSensitivity

            self._occ = OcclusionSensitivity(view, None, patch=patch, stride=stride, batch_size=max(batch_size, 32))
        if "gradcam" in self.methods:
            from zfkeras.analysis.gradcam import GradCAM

            self._cam = GradCAM(view, gradcam_layer, guided=False, batch_size=batch_size)

    @property
    def gradcam_layer(self) -> str | None:
        return None if self._cam is None else self._cam.layer

    def units(self, images: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The `k` strongest maps of `unit_layer` per image and their strongest positions.

        Returns `(image_index (N*k,), channel (N*k,), position (N*k, 2))`: fix them on the
        trained model, then pass them to `maps` for every randomized copy.
        """
        act = self._deconv.activations(images, self.unit_layer)  # (N, h, w, C)
        peak = act.reshape(len(act), -1, act.shape[-1]).max(1)
        chans = np.argsort(-peak, axis=1, kind="stable")[:, :k]
        idx = np.repeat(np.arange(len(images)), k)
        chan = chans.reshape(-1)
        flat = act[idx, :, :, chan].reshape(len(idx), -1).argmax(1)
        pos = np.stack([flat // act.shape[2], flat % act.shape[2]], 1)
        return idx, chan, pos

    def maps(self, images: np.ndarray, targets: np.ndarray, units=None) -> dict[str, np.ndarray]:
        """`{method: maps}` (see the module table) for `images` `(N, H, W, C)` and class `targets` `(N,)`."""
        from zfkeras.analysis.gradcam import _batched

        out: dict[str, np.ndarray] = {}
        for m in self.methods:
            if m in RULES and self._deconv is not None:
                idx, chan, pos = units
                out[m] = self._deconv.project_pairs(images, self.unit_layer, idx, chan, pos, rule=m,
                                                    batch_size=self.batch_size).images
            elif m in RULES:
                out[m] = _batched(self._graphs[m], images, targets, self.batch_size, False, m)[2]
            elif m == "gradcam":
                out[m] = self._cam.run(images, list(map(int, targets))).heatmaps
            else:
                res = self._occ.run(images, list(map(int, targets)), project=False)
                res = res if isinstance(res, list) else [res]
                out[m] = np.stack([float(r.base_probabilities[r.target]) - r.probability for r in res])
        return out

    def occlusion_geometry(self) -> tuple[np.ndarray, int] | None:
        """`(offsets, patch)` of the occlusion grid (to upsample its maps), or None."""
        return None if self._occ is None else (self._occ.offsets, self._occ.patch)
