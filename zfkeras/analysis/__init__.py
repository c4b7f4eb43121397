"""Analyses of a trained model (paper Sec 4): each module computes arrays and small results.

Plotting lives in `zfkeras.report`. Modules: `occlusion` (Fig 7), `correspondence` (Table 1),
`evolution` (Fig 4), `invariance` (Fig 5), `diagnostics` (Fig 6).
"""

from zfkeras.analysis.correspondence import (
    PUBLISHED_TABLE1,
    CorrespondenceResult,
    PartsSet,
    correspondence,
    format_table,
    load_parts,
)
from zfkeras.analysis.diagnostics import (
    ClippedHistory,
    Diagnostics,
    band_shares,
    dead_by_rms,
    diagnose,
    diagnostics_table,
    image_aliasing,
    largest_filter_share,
    read_clipped_history,
    stride_aliasing,
)
from zfkeras.analysis.evolution import EvolutionSnapshot, FeatureEvolution, evolution_grid
from zfkeras.analysis.invariance import (
    InvarianceResult,
    TransformCurves,
    invariance_curves,
    transform_image,
)
from zfkeras.analysis.occlusion import (
    OcclusionResult,
    OcclusionSensitivity,
    default_patch_stride,
    occlusion_sensitivity,
)

__all__ = [
    # correspondence
    "PUBLISHED_TABLE1",
    "CorrespondenceResult",
    "PartsSet",
    "correspondence",
    "format_table",
    "load_parts",
    # occlusion
    "OcclusionResult",
    "OcclusionSensitivity",
    "default_patch_stride",
    "occlusion_sensitivity",
    # diagnostics
    "ClippedHistory",
    "Diagnostics",
    "band_shares",
    "dead_by_rms",
    "diagnose",
    "diagnostics_table",
    "image_aliasing",
    "largest_filter_share",
    "read_clipped_history",
    "stride_aliasing",
    # evolution
    "EvolutionSnapshot",
    "FeatureEvolution",
    "evolution_grid",
    # invariance
    "InvarianceResult",
    "TransformCurves",
    "invariance_curves",
    "transform_image",
]
