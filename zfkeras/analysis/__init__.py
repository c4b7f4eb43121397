"""Analyses of a trained model (paper Sec 4): each module computes arrays and small results.

One call shape (`base.Analysis`): an object built from the model and its settings, one verb
`run(images, targets=None, *, progress=False)` returning a small result object:
`OcclusionSensitivity` (Fig 7), `Invariance` (Fig 5), `LayerDiagnostics` (Fig 6),
`Correspondence` (Table 1, `run(parts)`), `FeatureVisualization` (images optimized to excite
units, `run(units)`); the trust checks `SanityCheck` (Adebayo et al. 2018), `Faithfulness`
(deletion / insertion) and `GradCAM`; `FeatureEvolution` (Fig 4) is a training callback.
The functions `occlusion_sensitivity`, `invariance_curves`, `diagnose`, `correspondence` are
one-call shortcuts. Plotting lives in `zfkeras.report`.
"""

from zfkeras.analysis.base import Analysis
from zfkeras.analysis.correspondence import (
    PUBLISHED_TABLE1,
    Correspondence,
    CorrespondenceResult,
    PartsSet,
    correspondence,
    correspondence_table,
    load_parts,
)
from zfkeras.analysis.diagnostics import (
    ClippedHistory,
    Diagnostics,
    LayerDiagnostics,
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
from zfkeras.analysis.feature_visualization import (
    FeatureVisualization,
    FeatureVisualizationResult,
    Transforms,
    feature_visualization,
)
from zfkeras.analysis.invariance import (
    Invariance,
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
# trust (#23): sanity checks, Grad-CAM, deletion / insertion
from zfkeras.analysis.faithfulness import Faithfulness, FaithfulnessResult
from zfkeras.analysis.gradcam import GradCAM, GradCAMResult, class_projection
from zfkeras.analysis.randomization import RandomizedCopy
from zfkeras.analysis.sanity import SanityCheck, SanityResult

__all__ = [
    "Analysis",
    # correspondence
    "PUBLISHED_TABLE1",
    "Correspondence",
    "CorrespondenceResult",
    "PartsSet",
    "correspondence",
    "correspondence_table",
    "load_parts",
    # occlusion
    "OcclusionResult",
    "OcclusionSensitivity",
    "default_patch_stride",
    "occlusion_sensitivity",
    # diagnostics
    "ClippedHistory",
    "Diagnostics",
    "LayerDiagnostics",
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
    # feature visualization (#26)
    "FeatureVisualization",
    "FeatureVisualizationResult",
    "Transforms",
    "feature_visualization",
    # invariance
    "Invariance",
    "InvarianceResult",
    "TransformCurves",
    "invariance_curves",
    "transform_image",
    # trust
    "Faithfulness",
    "FaithfulnessResult",
    "GradCAM",
    "GradCAMResult",
    "RandomizedCopy",
    "SanityCheck",
    "SanityResult",
    "class_projection",
]
