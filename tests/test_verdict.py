"""`zfkeras.report.verdict`: a difference is called one only when it exceeds its spread."""

from __future__ import annotations

import math

import numpy as np
import pytest

from zfkeras.report.verdict import NO_DIFFERENCE, combined_spread, compare, direction, sample_sd


@pytest.mark.parametrize("difference, spread, expected", [
    (-0.00011, 0.036, 0),   # Table 1's left eye: inside the spread
    (-0.05, 0.036, -1),
    (0.05, 0.036, 1),
    (0.036, 0.036, 0),      # equal to the spread is not beyond it
    (0.02, None, None),     # no spread: no verdict
    (0.02, float("nan"), None),
    (0.0, 0.0, 0),
])
def test_direction(difference, spread, expected):
    assert direction(difference, spread) == expected


def test_combined_spread_and_sample_sd_against_numpy():
    assert combined_spread(0.03, 0.04) == pytest.approx(0.05)
    assert combined_spread(0.03, None) is None
    values = [39.27, 40.13, 41.0]
    assert sample_sd(values) == pytest.approx(float(np.std(values, ddof=1)))
    assert sample_sd([1.0]) is None


def test_compare_words():
    way, words = compare(0.26667, 0.26678, 0.036)
    assert way == 0 and words == f"{NO_DIFFERENCE} (difference -0.000, within the spread 0.036)"
    way, words = compare(39.7, 60.1, 0.6, lower="better", higher="worse", digits=1, unit=" points")
    assert way == -1 and words == "better (difference -20.4 points, beyond the spread 0.6 points)"
    way, words = compare(1.0, 0.5, None, digits=1)
    assert way is None and "no spread measured" in words and words.startswith("above")
    assert not math.isnan(combined_spread(0.0))
