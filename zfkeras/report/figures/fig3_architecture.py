"""Fig 3: the architecture, layer by layer, with each layer's receptive field."""

from __future__ import annotations

from zfkeras.report import markup
from zfkeras.report.figure import Figure, ReportContext

__all__ = ["Architecture", "architecture_rows"]


def architecture_rows(view, deconv=None) -> list[dict]:
    """Fig 3 as rows `{"layer", "kind", "output", "kernel", "stride", "rf"}`, one per layer of the model
    in order, from the model view's trace (`view.layers`): kernel and stride of every conv / pooling layer
    and the receptive field of every map whose field the model view knows, also after a residual Add or a
    Concatenate (the union of the branches' windows). `deconv` is not needed (kept for callers)."""
    rows = []
    for name, info in view.layers.items():
        if info.kind in ("identity", "pad"):
            continue
        layer = info.layer
        kind = info.kind or type(layer).__name__
        row = {"layer": name, "kind": kind, "output": " x ".join(str(d) for d in info.output_shape)}
        window = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
        strides = getattr(layer, "strides", None)
        if info.kind in ("conv", "pool", "avgpool") and window is not None and strides is not None:
            row["kernel"] = "x".join(str(int(k)) for k in window)
            row["stride"] = str(int(strides[0])) if len(set(strides)) == 1 else "x".join(str(int(v)) for v in strides)
        if info.spatial and info.geometry is not None:
            gr, gc = info.geometry
            size = str(gr.size) if gr.size == gc.size else f"{gr.size}x{gc.size}"
            row["rf"] = f"{size} (step {gr.stride})"
        rows.append(row)
    return rows


class Architecture(Figure):
    name = "architecture"
    anchor = "fig3"
    title = "Fig 3: the architecture"
    step = "architecture (Fig 3)"
    look_for = (
        "Each row is one layer of the convnet, in order. The receptive field "
        "grows with depth: an activation in a higher layer sees a larger part of the image, "
        "which is why its projections and patches below are larger."
    )
    not_run = "No architecture traced."

    def compute(self, ctx: ReportContext):
        return architecture_rows(ctx.view), "computed"

    def section(self, rows: list[dict], ctx: ReportContext) -> str:
        body = [(r["layer"], r["kind"], r["output"], r.get("kernel", ""), r.get("stride", ""), r.get("rf", ""))
                for r in rows]
        return markup.table(["layer", "kind", "output (H x W x C)", "kernel", "stride", "receptive field (px)"], body)
