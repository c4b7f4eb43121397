"""The deconvnet (Zeiler & Fergus 2013, Sec 2.1) and the top-9 visualizations (Fig 2).

Computing and plotting are separate; results are small objects that save and load:

- `Deconvnet(model)` (`deconvnet`; its compiled chain graphs in `chain_pass`, argument
  checks in `selection`): `project(images, layer, channels, positions=None)` and
  `project_pairs(images, layer, image_index, channels, positions=None)` ->
  `Projections`; `activations`, `window` (exact receptive field), `layer_names`.
- `with_switches(model)`: a stock Keras chain with switch-returning pooling (weights shared).
- `scan_top_activations(model, batches, layers=None, k=9, checkpoint=None)` ->
  `TopKScan` (JSON + npz); `merge_topk` is its pure NumPy merge.
- `top_projections(model, top, layer, images, channels=None)` -> `LayerVisuals`
  (npz: records, tiles as one encoded image per map); `zfkeras.report.figures.atlas_panel.plot_top_activations(visuals)` draws Fig 2
  (plotting lives with the figure in `zfkeras.report.figures`).
- `compute_atlas(deconv, paths, images, folder, AtlasSettings(...))` -> `Atlas` (scan +
  projections of the chosen maps, resumable, reusing what a folder holds; arrays only): the one
  compute of `zfkeras visualize`, `zfkeras atlas` and the report's Figs 1-2 (`atlas`); their
  one writer of pictures is `zfkeras.report.figures.atlas_panel.write_atlas`.
- `to_display` (the one display normalization), `cut_patch` (receptive-field patches).
- `rules`: the backward rules ("deconvnet", "guided", "gradient") and the general
  autodiff route for residual networks (`GradientRoute`).
- `mirror.mirror_model(deconv, layer)`: the deconvnet of a chain as a `keras.Model`
  (transposed convs sharing the forward kernels, `MaxUnpooling2D` with the switches).
"""

from zfkeras.deconv.atlas import Atlas, AtlasSettings, compute_atlas
from zfkeras.deconv.chain import SUPPORTED_LAYERS, trace_chain, with_switches
from zfkeras.deconv.deconvnet import Deconvnet, Projections
from zfkeras.deconv.mirror import MirrorStep, mirror_inputs, mirror_model
from zfkeras.deconv.rules import RULES
from zfkeras.deconv.display import cut_patch, to_display, to_uint8
from zfkeras.deconv.scan import LayerTopK, TopKScan, scan_top_activations
from zfkeras.deconv.topk import TopKState, empty_topk, merge_topk
from zfkeras.deconv.visuals import LayerVisuals, top_projections

__all__ = [
    "SUPPORTED_LAYERS",
    "Atlas",
    "AtlasSettings",
    "Deconvnet",
    "LayerTopK",
    "LayerVisuals",
    "MirrorStep",
    "RULES",
    "Projections",
    "TopKScan",
    "TopKState",
    "compute_atlas",
    "cut_patch",
    "empty_topk",
    "merge_topk",
    "mirror_inputs",
    "mirror_model",
    "scan_top_activations",
    "to_display",
    "to_uint8",
    "top_projections",
    "trace_chain",
    "with_switches",
]
