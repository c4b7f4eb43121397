"""The architecture ablation (paper Table 3) as a Markdown table: `ablation_markdown`, `seed_text`.

Our change in top-1 error against the unchanged network beside the paper's, in the layout of the
paper's Table 3 (rows from `zfkeras.training.ablation_table`). Plain Python: no Keras.
"""

from __future__ import annotations

from zfkeras.training.ablation_table import (
    _CHANGES, _VARIANT_ORDER, VARIANT_TITLES, AblationResult, _change, _seeds, baseline_deltas, delta_spread)

__all__ = ["ablation_markdown", "seed_text"]


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}"


def _fmt_delta(v: float | None) -> str:
    return "–" if v is None else f"{v:+.1f}"


def _pm(text: str, sd: float | None) -> str:
    """"52.1 ± 0.8" for a mean over seeds, the value alone for one seed."""
    return text if sd is None else f"{text} ± {sd:.1f}"


def seed_text(config: dict) -> str:
    """"seed 0", or "seeds 0, 1 (mean ± sample sd over them)" for a `merge_seeds` result."""
    seeds = _seeds(config)
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    return f"seeds {', '.join(map(str, seeds))} (mean ± sample sd over them)"


def _recipe_extras(config: dict) -> str:
    """", conv1 lr x 0.000244, balanced class weights" for the recipe settings beyond the paper's (if any)."""
    parts = []
    if config.get("conv1_lr_scale", 1.0) != 1.0:
        parts.append(f"conv1 lr x {config['conv1_lr_scale']:.3g}")
    if config.get("warmup_epochs", 0):
        parts.append(f"{config['warmup_epochs']:g}-epoch lr warm-up")
    if config.get("class_weight", "none") != "none":
        parts.append(f"{config['class_weight']} class weights")
    return "".join(f", {p}" for p in parts)


def ablation_markdown(result: AblationResult) -> str:
    """Markdown table in the layout of the paper's Table 3, paper numbers beside ours.

    Rows are grouped by the variant they modify (Krizhevsky replica first, as
    in the paper), in the paper's row order; "–" where the paper has no number.
    """
    c, d = result.config, result.data
    ev = "Test" if result.evaluated_on == "test" else "Val"
    lines = [
        "# Architecture ablation (paper Table 3)",
        "",
        f"Error % (centre crop). Ours: {d['classes']} classes, {d['train']:,} training images, "
        f"{d['evaluated']:,} {result.evaluated_on} images; {c['epochs']} epochs at {c['image_size']} px, "
        f"width {c['width']:g}, fc units {c['fc_units'] if c['fc_units'] is not None else 'by width'}, "
        f"batch {c['batch_size']}, lr {c['learning_rate']:g}{_recipe_extras(c)}, {c['init']} init, "
        f"{c['augment']} crops, {seed_text(c)}. Paper: ImageNet 2012 (1.3 M images, 1000 classes), full width, 224 px, "
        "70 epochs, layers 3-5: 384, 384, 256 maps, 6, 7: 4096 units; its columns are ImageNet "
        "validation errors.",
        "",
        f"Last two columns: change in top-1 error against the unchanged network, in points "
        f"(ours: {result.evaluated_on} top-1; paper: val top-1).",
        "",
        f"| Error % | Train top-1 | {ev} top-1 | {ev} top-5 | {ev} mean per class | Paper train top-1 "
        "| Paper val top-1 | Paper val top-5 | Parameters | Minutes | Δ top-1 ours | Δ top-1 paper |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    deltas, spreads = baseline_deltas(result.rows), delta_spread(result.rows)
    order = {ch: i for i, ch in enumerate(_CHANGES)}
    for variant in _VARIANT_ORDER:
        rows = sorted((r for r in result.rows if r.variant == variant), key=lambda r: order[_change(r.preset)])
        if not rows:
            continue
        lines.append(f"| **{VARIANT_TITLES[variant]}** | | | | | | | | | | | |")
        for r in rows:
            p = r.paper or (None, None, None)
            ours, theirs = deltas.get((r.variant, r.preset), (None, None))
            mark = " **(did not train\\*)**" if r.collapsed else ""
            sd = r.spread
            lines.append(
                f"| {r.description} (`{r.shown_preset}`){mark} | {_pm(_fmt(r.train_top1_error), sd('train_top1_error'))} "
                f"| {_pm(_fmt(r.test_top1_error), sd('test_top1_error'))} | {_fmt(r.test_top5_error)} "
                f"| {_pm(_fmt(r.test_mean_per_class_error), sd('test_mean_per_class_error'))} | {_fmt(p[0])} "
                f"| {_fmt(p[1])} | {_fmt(p[2])} | {r.parameters:,} | {r.seconds / 60:.1f} "
                f"| {_pm(_fmt_delta(ours), spreads.get((r.variant, r.preset)))} | {_fmt_delta(theirs)} |"
            )
    collapsed = [r for r in result.rows if r.collapsed]
    if collapsed:
        names = ", ".join(f"`{r.preset}` ({r.variant})" for r in collapsed)
        shares = ", ".join(f"{100 * r.top_prediction_share:.0f} %" for r in collapsed)
        seeds = " (in its worst seed)" if any(r.runs for r in collapsed) else ""
        lines += ["", f"\\* {names} gave one class to {shares} of the {result.evaluated_on} images{seeds}: "
                  f"{'it' if len(collapsed) == 1 else 'each'} never left the majority-class plateau, so its "
                  "errors measure a failed optimization with this recipe, not what the change costs."]
    return "\n".join(lines) + "\n"


