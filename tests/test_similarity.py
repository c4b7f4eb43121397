"""Similarity measures against scipy / skimage called pair by pair."""

from __future__ import annotations

import numpy as np


def test_spearman_equals_scipy_per_pair(rng):
    from scipy.stats import spearmanr

    from zfkeras.analysis.similarity import spearman

    a = rng.normal(size=(4, 6, 5))
    b = a + rng.normal(scale=[[[0.1]], [[1.0]], [[10.0]], [[0.0]]], size=(4, 6, 5))
    a[2, :3] = 0.0  # ties
    got = spearman(a, b)
    want = [spearmanr(x.ravel(), y.ravel()).statistic for x, y in zip(a, b)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[3] == 1.0
    np.testing.assert_array_equal(spearman(np.zeros((1, 3, 3)), a[:1, :3, :3]), [0.0])


def test_ssim_and_to_2d(rng):
    from skimage.metrics import structural_similarity

    from zfkeras.analysis.similarity import similarity, ssim, to_2d

    a = rng.uniform(size=(2, 16, 16))
    b = a.copy()
    b[1] = rng.uniform(size=(16, 16))
    got = ssim(a, 3 * b + 1)  # each map is scaled to [0, 1] first
    np.testing.assert_allclose(got[0], 1.0)
    scaled = [(x - x.min()) / (x.max() - x.min()) for x in (a[1], b[1])]
    np.testing.assert_allclose(got[1], structural_similarity(*scaled, data_range=1.0, win_size=7))
    rgb = np.stack([a, -a, 2 * a], -1)
    np.testing.assert_allclose(to_2d(rgb, True), 4 * a)
    np.testing.assert_allclose(to_2d(rgb, False), 2 * a)
    sims = similarity(rgb, -rgb)
    np.testing.assert_allclose(sims["spearman_abs"], 1.0)
    np.testing.assert_allclose(sims["spearman"], -1.0)


def test_blank_and_undefined_maps(rng):
    """A randomized map gone blank counts as changed (Spearman 0, blank 1); a constant trained map is NaN."""
    from zfkeras.analysis.similarity import similarity

    a = rng.uniform(size=(3, 8, 8))
    b = a.copy()
    b[1] = 0.0
    a[2] = 1.0
    sims = similarity(a, b)
    np.testing.assert_array_equal(sims["blank"][:2], [0.0, 1.0])
    assert sims["spearman_abs"][0] == 1.0 and sims["spearman_abs"][1] == 0.0
    assert all(np.isnan(v[2]) for v in sims.values())
