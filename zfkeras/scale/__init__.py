"""The atlas at scale: the top-k scan and the projections in resumable blocks, in process or on Ray.

- `build_atlas(model, paths, out, engine="local"|"ray")` -> `Atlas` (`atlas`), and
  `store_atlas(out, atlas, settings)`: its records and tiles as `compute_atlas` stores them, for
  the package's one writer `zfkeras.report.figures.atlas_panel.write_atlas` (the folder `zfkeras visualize` writes).
- `work`: the work of one block (`ScanWorker`, `ProjectWorker`) and the associative
  top-k reduction of the scan blocks (`merge_scan_blocks`, on `deconv.topk.combine_topk`).
- `engines`: the local loop and the Ray actor pool serving both phases (Ray is optional:
  `pip install "zfkeras[ray]"`; imported only for `engine="ray"`).
- `store`: the resumable folder (settings, finished blocks written atomically).
"""

from zfkeras.scale.atlas import Atlas, build_atlas, store_atlas
from zfkeras.scale.engines import ENGINES

__all__ = ["Atlas", "ENGINES", "build_atlas", "store_atlas"]
