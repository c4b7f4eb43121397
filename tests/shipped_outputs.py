"""The shipped model's outputs through every analysis, as named arrays (the before/after check).

`shipped_outputs()` runs the shipped ZFNet (`saved_models/zfnet_caltech101_small.keras`) on a
few embedded images through prediction, the deconvnet (chain and general route), occlusion,
invariance, diagnostics and correspondence, at small settings. `benchmarks/structure_baseline.py`
stored these values from main's code in `tests/data/shipped_outputs.npz`;
`tests/test_structure.py` recomputes them with the current code and compares.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "saved_models" / "zfnet_caltech101_small.keras"
BASELINE = REPO / "tests" / "data" / "shipped_outputs.npz"
# Diagnostics summary values added after the baseline was stored (issue 23's Fig 6 spread); they
# have no "before" value, so the unnamed "diagnostics" vector leaves them out.
DIAGNOSTICS_ADDED = {"energy_high_sd", "live_filters"}


def embedded_paths(n: int = 4) -> list[str]:
    """The first image of the first `n` classes of the embedded subset (sorted)."""
    from zfkeras.data.embedded import embedded_root

    root = embedded_root()
    classes = sorted(p for p in root.iterdir() if p.is_dir())[:n]
    return [str(sorted(c.glob("*.jpg"))[0]) for c in classes]


def shipped_outputs() -> dict[str, np.ndarray]:
    """`{name: array}` of the shipped model's outputs (see module doc)."""
    from zfkeras.analysis import Correspondence, Invariance, LayerDiagnostics, OcclusionSensitivity
    from zfkeras.data import center_crop, load_image, prepare
    from zfkeras.deconv import Deconvnet
    from zfkeras.models.view import model_view

    view = model_view(str(SHIPPED))
    size = view.image_size
    paths = embedded_paths(4)
    bases = [prepare(load_image(p), size) for p in paths]
    crops = np.stack([center_crop(b, size) for b in bases]).astype(np.float32)
    out: dict[str, np.ndarray] = {"predictions": np.asarray(view.model.predict_on_batch(crops))}
    for rule in ("deconvnet", "guided"):
        proj = Deconvnet(view, rule=rule).project(crops[:1], "conv2", channels=[0, 5])
        out[f"projection_conv2_{rule}"] = np.asarray(proj.images)
        out[f"projection_conv2_{rule}_activations"] = np.asarray(proj.activations)
    res = OcclusionSensitivity(view, patch=24, stride=16).run(crops[0], others=crops[1:], top_k=1)
    for key, value in res.to_arrays().items():
        if value.dtype.kind in "fiub":
            out[f"occlusion_{key}"] = value
    inv = Invariance(view, {"translation": [0, 8], "rotation": [0, 30]}).run(np.stack(bases)[:2], [0, 1])
    for kind, curve in inv.curves.items():
        out[f"invariance_{kind}_p"] = np.asarray(curve.probabilities)
        for layer in inv.layers:
            out[f"invariance_{kind}_{layer}"] = np.asarray(curve.distances[layer])
    diag = LayerDiagnostics(view, layer2_channels=2, seed=0).run(crops)
    summary = diag.summary()
    out["diagnostics"] = np.array([float(summary[k]) for k in sorted(summary) if k not in DIAGNOSTICS_ADDED
                                   and isinstance(summary[k], (int, float)) and not isinstance(summary[k], bool)])
    corr = Correspondence(view, seeds=1).run().to_dict()
    out["correspondence"] = np.array([v[l][m] for p, v in sorted(corr["rows"].items())
                                      for l in sorted(v) for m in ("mean", "std")])
    return out
