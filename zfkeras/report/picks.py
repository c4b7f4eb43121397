"""Which images a figure shows: `pick_evenly` (indices spread over a list), `pick_images` (the correctly
classified ones when the classes are known, with a sentence saying how they were chosen).

Pure Python; re-exported by `zfkeras.report.figure`.
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["pick_evenly", "pick_images"]


def pick_evenly(n: int, count: int, offset: float = 0.5) -> list[int]:
    """`count` distinct indices spread evenly over `range(n)` (deterministic).

    Index `floor((i + offset) * n / count)` for i = 0..count-1 (all of them when
    `count >= n`), so a class-sorted list contributes from across its classes.
    `pick_evenly(10, 2) == [2, 7]`; `pick_evenly(10, 3, 0) == [0, 3, 6]`.
    """
    if count >= n:
        return list(range(n))
    return sorted({min(n - 1, int((i + offset) * n / count)) for i in range(count)})


def pick_images(paths: Sequence[str], labels: dict, predicted: dict, count: int,
                offset: float = 0.5, class_names_known: bool = True) -> tuple[list[str], str]:
    """`count` images for a figure, and a sentence saying how they were chosen.

    Images the model classifies correctly (folder name == top-1 class), spread evenly
    over the sorted list (`pick_evenly`, so from across the classes); when fewer than
    `count` are correct, or the classes are unknown, evenly spaced images of all.
    `class_names_known=False` (a model without class names): no image is called correct
    or wrong, and the sentence says why.
    """
    if not class_names_known:
        chosen = [paths[i] for i in pick_evenly(len(paths), count, offset)]
        return chosen, (f"Images: {len(chosen)} evenly spaced over all {len(paths)} images (the model carries "
                        "no class names, so whether it classifies an image correctly is unknown: give "
                        "--class-names FILE).")
    correct = [p for p in paths if labels.get(p) and predicted.get(p) == labels[p]]
    if count and len(correct) >= count:
        chosen = [correct[i] for i in pick_evenly(len(correct), count, offset)]
        return chosen, (f"Images: {len(chosen)} of the {len(correct)} images (of {len(paths)}) the model "
                        "classifies correctly, spread evenly over them in class order.")
    chosen = [paths[i] for i in pick_evenly(len(paths), count, offset)]
    why = ("the images have no class the model knows" if not correct and not any(labels.get(p) for p in paths)
           else f"only {len(correct)} of {len(paths)} images are classified correctly")
    return chosen, f"Images: {len(chosen)} evenly spaced over all {len(paths)} images ({why})."
