"""Plots of the trust checks: sanity pictures and curves (Adebayo et al. 2018, Figs 2 and 4),
deletion / insertion curves (Petsiuk et al. 2018), Grad-CAM beside occlusion.

Each function takes a result object and returns a matplotlib figure (matplotlib imported inside).
"""

from __future__ import annotations

import numpy as np

__all__ = ["METHOD_LABELS", "plot_faithfulness", "plot_gradcam", "plot_sanity"]

METHOD_LABELS = {
    "deconvnet": "deconvnet", "guided": "guided backprop", "gradient": "gradient",
    "occlusion": "occlusion", "gradcam": "Grad-CAM", "random": "random order",
}


def _colors(methods):
    from matplotlib import colormaps

    base = colormaps["tab10"]
    order = ["deconvnet", "guided", "gradient", "occlusion", "gradcam"]
    return {m: ("0.5" if m == "random" else base(order.index(m) if m in order else 5 + i))
            for i, m in enumerate(methods)}


def plot_sanity(result, example: int = 0):
    """Rows: methods; columns: the image, the trained map, each randomized depth; then the curves.

    `result` is a `SanityResult`; `example` picks one of its example images.
    """
    from matplotlib.figure import Figure

    methods, depths = result.methods, result.depths
    ncol = len(depths) + 2
    fig = Figure(figsize=(1.45 * ncol + 4.6, 1.45 * len(methods) + 0.9), layout="constrained")
    grid = fig.add_gridspec(len(methods), ncol + 3)
    for r, m in enumerate(methods):
        maps = result.examples[m][:, example]
        ax = fig.add_subplot(grid[r, 0])
        ax.imshow(result.example_images[example])
        ax.set_ylabel(METHOD_LABELS.get(m, m), fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
        if r == 0:
            ax.set_title("image", fontsize=8)
        for c in range(len(depths) + 1):
            ax = fig.add_subplot(grid[r, c + 1])
            ax.imshow(maps[c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if maps[c].max() == 0:
                ax.text(0.5, 0.5, "blank", color="w", ha="center", va="center", transform=ax.transAxes, fontsize=8)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title("trained" if c == 0 else f"up to {result.layer_at(depths[c - 1])}", fontsize=8)
    ax = fig.add_subplot(grid[:, ncol:])
    colors = _colors(methods)
    x = np.arange(len(depths) + 1)
    low = -0.3
    for m in methods:
        mean, sd = result.stats(m)
        mean, sd = np.r_[1.0, mean], np.r_[0.0, sd]
        ax.plot(x, mean, "o-", color=colors[m], label=METHOD_LABELS.get(m, m))
        ax.fill_between(x, mean - sd, mean + sd, color=colors[m], alpha=0.15)
        if "blank" in result.scores[m] and np.any(np.nan_to_num(result.blank_share(m)) > 0):
            active = np.r_[1.0, result.stats(m, active_only=True)[0]]
            ax.plot(x, active, ":", color=colors[m], lw=1.2)
            low = min(low, float(np.nanmin(active)) - 0.05)
        low = min(low, float(np.nanmin(np.r_[mean, 1.0])) - 0.05)
    ax.axhline(result.threshold, color="k", lw=0.8, ls="--")
    ax.text(x[-1], result.threshold + 0.02, f"pass below {result.threshold:g}", ha="right", fontsize=7)
    ax.set_xticks(x, ["trained", *[result.layer_at(d) for d in depths]], rotation=45, ha="right", fontsize=8)
    ax.set_ylim(max(low, -1.05), 1.05)
    ax.set_ylabel("Spearman |map| vs trained (mean ± sd; dotted: non-blank maps only)", fontsize=8)
    ax.set_xlabel(f"{result.mode} randomization, top down to", fontsize=8)
    ax.legend(fontsize=7, loc="lower left")
    return fig


def plot_faithfulness(result):
    """Deletion and insertion curves (mean over images, ± sd band) of every method and random order."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    methods = [*result.methods, "random"]
    colors = _colors(methods)
    aucs = {k: result.aucs(k) for k in ("deletion", "insertion")}
    for ax, kind in zip(axes, ("deletion", "insertion")):
        for m in methods:
            c = getattr(result, kind)[m]
            mean, sd = c.mean(0), c.std(0, ddof=1)
            label = f"{METHOD_LABELS.get(m, m)} (AUC {aucs[kind][m].mean():.3f})"
            ax.plot(result.fractions, mean, "-" if m != "random" else "--", color=colors[m], label=label)
            ax.fill_between(result.fractions, np.clip(mean - sd, 0, 1), np.clip(mean + sd, 0, 1),
                            color=colors[m], alpha=0.08)
        ax.set_title(f"{kind}: p(class) as pixels are {'removed' if kind == 'deletion' else 'added'}", fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("fraction of pixels, most important first", fontsize=8)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("p(explained class): mean, band ± 1 sd over images", fontsize=8)
    return fig


def plot_gradcam(images: np.ndarray, cam, occlusion: np.ndarray | None = None, titles=None):
    """Per image: the image, Grad-CAM over it, guided Grad-CAM, and (if given) the occlusion map `(N, H, W)`."""
    from matplotlib.figure import Figure

    n = len(images)
    cols = 3 + (occlusion is not None)
    fig = Figure(figsize=(2.2 * cols, 2.2 * n + 0.3), layout="constrained")
    axes = fig.subplots(n, cols, squeeze=False)
    for i in range(n):
        row = axes[i]
        row[0].imshow(images[i].astype(np.uint8))
        row[0].set_title(titles[i] if titles else f"class {cam.class_names[cam.targets[i]]}", fontsize=8)
        row[1].imshow(images[i].astype(np.uint8))
        row[1].imshow(cam.heatmaps[i], cmap="jet", alpha=0.5)
        row[1].set_title(f"Grad-CAM ({cam.layer})", fontsize=8)
        if cam.guided is not None:
            g = cam.guided[i]
            g = (g - g.mean()) / (g.std() + 1e-12) * 0.15 + 0.5
            row[2].imshow(np.clip(g, 0, 1))
        row[2].set_title("guided Grad-CAM", fontsize=8)
        if occlusion is not None:
            im = row[3].imshow(occlusion[i], cmap="viridis")
            row[3].set_title("occlusion: drop of p", fontsize=8)
            fig.colorbar(im, ax=row[3], fraction=0.046)
        for ax in row:
            ax.set_xticks([]), ax.set_yticks([])
    return fig
