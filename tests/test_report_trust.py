"""The report's trust section: sentences follow from the numbers; the section renders from a saved result."""

from __future__ import annotations

import numpy as np


def _sanity(values: dict):
    from zfkeras.analysis.sanity import SanityResult

    scores = {m: {k: np.asarray(v, np.float64)[None] for k in ("spearman_abs", "spearman", "ssim")}
              for m, v in values.items()}
    return SanityResult(list(values), "cascade", ["fc", "conv1"], [2], scores,
                        {m: np.zeros((2, 1, 4, 4), np.float32) for m in values}, np.zeros((1, 4, 4, 3), np.uint8))


def test_sentences_group_methods_by_their_verdict():
    from zfkeras.report.figures.trust import sanity_sentences

    res = _sanity({"guided": [0.9, 0.8, 0.85], "gradcam": [0.1, 0.0, 0.2], "gradient": [0.2, 0.8, 0.5]})
    text = " ".join(sanity_sentences(res))
    assert "down to conv1 re-initialized" in text and "over 3 images" in text
    assert "Passes (mean + sd below the threshold" in text and "Grad-CAM 0.10 ± 0.10" in text
    assert "Fails (mean - sd above the threshold" in text and "guided backprop 0.85 ± 0.05" in text
    assert "Inconclusive" in text and "gradient 0.50 ± 0.30" in text
    assert "Undefined" not in text


def test_faithfulness_sentences_follow_paired_differences():
    from zfkeras.analysis.faithfulness import FaithfulnessResult
    from zfkeras.report.figures.trust import faithfulness_html

    frac = np.linspace(0, 1, 3)
    good = np.array([[1.0, 0.0, 0.0], [1.0, 0.1, 0.0], [1.0, 0.0, 0.0]])
    rand = np.array([[1.0, 0.5, 0.0], [1.0, 0.6, 0.0], [1.0, 0.4, 0.0]])
    noisy = np.array([[1.0, 0.1, 0.0], [1.0, 0.9, 0.0], [1.0, 0.5, 0.0]])
    fr = FaithfulnessResult(["gradient", "occlusion"], frac, {"gradient": good, "occlusion": noisy, "random": rand},
                            {"gradient": 1 - good, "occlusion": 1 - noisy, "random": 1 - rand}, np.zeros(3, int))
    html = faithfulness_html(fr, "trust")
    assert "Deletion: better than random: gradient; no measurable difference: occlusion." in html
    assert "Insertion: better than random: gradient; no measurable difference: occlusion." in html
    assert "worse than random" not in html.split("<table>")[0]


def test_section_in_a_built_report(tmp_path):
    """The section's verdicts and numbers are those of the saved results; its figures exist."""
    import json
    import re

    import keras

    from conftest import TINY, make_image_folder
    from zfkeras import ZFNet
    from zfkeras.analysis.sanity import SanityResult
    from zfkeras.report.build import ReportOptions, build_report
    from zfkeras.report.registry import names

    keras.utils.set_random_seed(0)
    model = ZFNet(**TINY)
    data = make_image_folder(tmp_path / "data", classes=2, per_class=3, size=64)
    skip = tuple(n for n in names() if n != "trust") + ("evaluation",)
    out = tmp_path / "out"
    build_report(model, data, out, progress=False, options=ReportOptions(
        skip=skip, sanity_images=3, sanity_depths=2, faithfulness_steps=2))
    html = (out / "index.html").read_text()
    section = html[html.index('id="trust"'):]
    res = SanityResult.load(out / "trust")
    assert res.depths == [1, 8] and res.items == 3
    for m in res.methods:
        mean, sd = (v[-1] for v in res.stats(m))
        assert f"{mean:.2f} ± {sd:.2f}" in section
    verdicts = json.loads((out / "trust" / "sanity.json").read_text())["verdicts"]
    assert verdicts == {m: res.verdict(m) for m in res.methods}
    for src in re.findall(r'src="(trust/[^"]+)"', section):
        assert (out / src).exists(), src
