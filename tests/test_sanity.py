"""Sanity checks (Adebayo et al. 2018): curves against an independent recomputation, verdicts, bad input."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture()
def images(rng):
    return rng.uniform(0, 255, (3, 64, 64, 3)).astype(np.float32)


def test_scores_equal_independent_recomputation(tiny_model, images):
    """The curve at full randomization = scipy's Spearman of maps computed without SanityCheck."""
    from scipy.stats import spearmanr

    from zfkeras.analysis.gradcam import class_projection
    from zfkeras.analysis.randomization import RandomizedCopy
    from zfkeras.analysis.sanity import SanityCheck

    before = [np.array(w) for w in tiny_model.get_weights()]
    res = SanityCheck(tiny_model, ("gradient", "gradcam"), depths=[2, 8], gradcam_layer="conv5",
                      seed=3).run(images, targets=[0, 1, 2])
    for a, b in zip(before, tiny_model.get_weights()):
        np.testing.assert_array_equal(a, b)  # the user's model is untouched
    assert res.depths == [2, 8] and res.layer_at(2) == "fc7" and res.layer_at(8) == "conv1"

    copy = RandomizedCopy(tiny_model, seed=3)
    trained = np.abs(class_projection(tiny_model, images, [0, 1, 2], rule="gradient")).sum(-1)
    copy.randomize(copy.order())
    random = np.abs(class_projection(copy.view, images, [0, 1, 2], rule="gradient")).sum(-1)
    want = [spearmanr(a.ravel(), b.ravel()).statistic for a, b in zip(trained, random)]
    # float32 maps from batches of different size: ranks of near-equal pixels may swap
    np.testing.assert_allclose(res.scores["gradient"]["spearman_abs"][1], want, atol=2e-3)
    mean, sd = res.stats("gradient")
    np.testing.assert_allclose(mean[1], np.mean(want), atol=2e-3)
    np.testing.assert_allclose(sd[1], np.std(want, ddof=1), atol=2e-3)
    assert res.examples["gradcam"].shape == (3, 2, 64, 64)  # trained + 2 depths, 2 example images


def test_unit_layer_cascade_starts_at_the_map(tiny_model, images):
    from zfkeras.analysis.sanity import SanityCheck

    res = SanityCheck(tiny_model, ("deconvnet",), unit_layer="conv2", units=2).run(images)
    assert res.order == ["conv2", "conv1"] and res.depths == [1, 2]
    assert res.scores["deconvnet"]["ssim"].shape == (2, 6)  # 3 images x 2 units


def _result(values):
    from zfkeras.analysis.sanity import SanityResult

    s = np.asarray(values, np.float64)[None]
    return SanityResult(["m"], "cascade", ["a"], [1], {"m": {"spearman_abs": s}}, {}, np.zeros((1, 1, 1, 3)))


@pytest.mark.parametrize("values, verdict", [
    ([0.1, 0.2, 0.3], "passes"),       # mean 0.2 + sd 0.1 < 0.5
    ([0.9, 0.8, 0.85], "fails"),       # mean - sd > 0.5
    ([0.2, 0.8, 0.5], "inconclusive"),  # the band straddles 0.5
    ([np.nan, 0.1, np.nan], "undefined"),
])
def test_verdict_follows_mean_and_spread(values, verdict):
    assert _result(values).verdict("m") == verdict


@pytest.mark.parametrize("kwargs, message", [
    (dict(methods=("lime",)), "unknown method 'lime'; valid methods: deconvnet, guided, gradient, occlusion, gradcam"),
    (dict(depths=[9]), r"depths \[9\] are beyond the model: valid 1..8"),
    (dict(depths=12), "12 depths is beyond the model: it has 8 layers with weights"),
    (dict(unit_layer="fc6"), "unknown layer 'fc6'"),
    (dict(unit_layer="conv2", methods=("occlusion",)), "method 'occlusion' explains a class"),
    (dict(mode="sideways"), "unknown randomization mode 'sideways'"),
    (dict(gradcam_layer="nope"), "unknown layer 'nope'"),
])
def test_bad_settings_fail_before_work(tiny_model, kwargs, message):
    from zfkeras.analysis.sanity import SanityCheck

    with pytest.raises(ValueError, match=message):
        SanityCheck(tiny_model, **kwargs)


def test_one_image_is_refused(tiny_model, images):
    from zfkeras.analysis.sanity import SanityCheck

    check = SanityCheck(tiny_model, ("gradient",), depths=1)
    with pytest.raises(ValueError, match="at least 2 images for a spread over images; got 1"):
        check.run(images[:1])
    with pytest.raises(ValueError, match="class index 7 out of range"):
        check.run(images, targets=7)


def test_save_load_round_trip(tiny_model, images, tmp_path):
    from zfkeras.analysis.sanity import SanityCheck, SanityResult

    res = SanityCheck(tiny_model, ("guided", "occlusion"), depths=1).run(images)
    res.save(tmp_path)
    back = SanityResult.load(tmp_path)
    assert back.rows() == res.rows() and back.verdict("guided") == res.verdict("guided")
    np.testing.assert_allclose(back.examples["occlusion"], res.examples["occlusion"], atol=0.5 / 255)  # uint8 on disk
