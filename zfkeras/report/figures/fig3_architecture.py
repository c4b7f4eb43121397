"""Fig 3: the architecture, layer by layer, with each layer's receptive field."""

from __future__ import annotations

from zfkeras.report import markup
from zfkeras.report.figure import Figure, ReportContext

__all__ = ["Architecture", "architecture_rows"]


def architecture_rows(view, deconv) -> list[dict]:
    """Fig 3 as rows `{"layer", "kind", "output", "kernel", "stride", "rf"}`: the deconvnet's chain
    (with receptive fields), then the rest of the model (the dense head)."""
    rows = []
    chain = {s.name for s in deconv.steps}
    for s in deconv.steps:
        if s.kind in ("identity", "pad", "scale"):
            continue
        h, w, c = s.output_shape
        row = {"layer": s.name, "kind": s.kind, "output": f"{h} x {w} x {c}"}
        if s.kind in ("conv", "pool"):
            row["kernel"] = f"{s.kernel[0]}x{s.kernel[1]}"
            row["stride"] = str(s.strides[0])
        if s.kind in ("conv", "pool", "norm", "relu"):
            gr, _ = deconv.receptive_field(s.name)
            row["rf"] = f"{gr.size} (step {gr.stride})"
        rows.append(row)
    for layer in view.model.layers:
        if layer.name in chain or not hasattr(layer, "output"):
            continue
        kind = type(layer).__name__
        if kind in ("InputLayer", "Dropout", "ZeroPadding2D"):
            continue
        out = layer.output
        out = out[0] if isinstance(out, (list, tuple)) else out
        rows.append({"layer": layer.name, "kind": kind, "output": " x ".join(str(d) for d in out.shape[1:])})
    return rows


class Architecture(Figure):
    name = "architecture"
    anchor = "fig3"
    title = "Fig 3: the architecture"
    step = "architecture (Fig 3)"
    look_for = (
        "Each row is one layer of the convnet as traced by the deconvnet. The receptive field "
        "grows with depth: an activation in a higher layer sees a larger part of the image, "
        "which is why its projections and patches below are larger."
    )
    not_run = "No architecture traced."

    def compute(self, ctx: ReportContext):
        return architecture_rows(ctx.view, ctx.deconv), "computed"

    def section(self, rows: list[dict], ctx: ReportContext) -> str:
        body = [(r["layer"], r["kind"], r["output"], r.get("kernel", ""), r.get("stride", ""), r.get("rf", ""))
                for r in rows]
        return markup.table(["layer", "kind", "output (H x W x C)", "kernel", "stride", "receptive field (px)"], body)
