"""Verdicts that follow from their numbers: a difference is called one only when it exceeds its spread.

Every "this model" sentence of the report that compares two numbers (a part's Delta
with the random baseline, a change in error with zero or with the paper's) goes
through `direction` and `compare`: the difference counts only when its size exceeds
the spread the figure has (seeds, images, or a bootstrap interval), else the
sentence says "no measurable difference"; with no spread at all it says so instead
of calling a direction. Plain Python: no NumPy, no Keras.
"""

from __future__ import annotations

import math
from typing import Sequence

__all__ = ["NO_DIFFERENCE", "combined_spread", "compare", "direction", "sample_sd"]

NO_DIFFERENCE = "no measurable difference"


def combined_spread(*spreads: float | None) -> float | None:
    """The spread of a difference of independent numbers: `sqrt(sum(s ** 2))`; None if any is None.

    `combined_spread(0.03, 0.04) == 0.05`; a number known exactly has spread 0.
    """
    if any(s is None for s in spreads):
        return None
    return math.sqrt(sum(float(s) ** 2 for s in spreads))


def sample_sd(values: Sequence[float]) -> float | None:
    """Sample standard deviation (ddof 1) of `values`; None for fewer than two."""
    values = [float(v) for v in values]
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def direction(difference: float, spread: float | None) -> int | None:
    """+1 / -1 when `|difference| > spread` (its sign), 0 when within the spread, None when no spread is known."""
    if spread is None or not math.isfinite(float(spread)):
        return None
    if abs(float(difference)) > float(spread):
        return 1 if difference > 0 else -1
    return 0


def compare(a: float, b: float, spread: float | None, *, lower: str = "below", higher: str = "above",
            digits: int = 3, unit: str = "") -> tuple[int | None, str]:
    """`(direction, words)` for "a against b": the words name the direction only when `|a - b| > spread`.

    Args:
        a, b: the two numbers (e.g. a part's Delta and the random baseline).
        spread: the spread of `a - b` (`combined_spread` of theirs), None if unknown.
        lower, higher: the words for `a < b` and `a > b`.
        digits: decimals of the numbers shown; unit: appended to each number (" points").

    Returns:
        `(direction(a - b, spread), words)`, e.g. `(-1, "below (difference -0.040, spread 0.012)")`,
        `(0, "no measurable difference (difference -0.000, spread 0.036)")`, or
        `(None, "... (difference +0.020; no spread measured, so no verdict)")`.
    """
    d = float(a) - float(b)
    way = direction(d, spread)
    diff = f"difference {d:+.{digits}f}{unit}"
    if way is None:
        side = lower if d < 0 else higher if d > 0 else "equal"
        return None, f"{side} ({diff}; no spread measured, so no verdict)"
    sp = f"spread {float(spread):.{digits}f}{unit}"
    if way == 0:
        return 0, f"{NO_DIFFERENCE} ({diff}, within the {sp})"
    return way, f"{lower if way < 0 else higher} ({diff}, beyond the {sp})"
