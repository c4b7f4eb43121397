"""`zfkeras sanity` and `zfkeras gradcam` through `main([...])`: files, numbers equal the API's, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(tiny model file, flat folder of 3 images)."""
    import keras
    from PIL import Image

    from conftest import TINY
    from zfkeras import ZFNet
    from zfkeras.models.io import save_model

    tmp = tmp_path_factory.mktemp("trust")
    keras.utils.set_random_seed(0)
    model_path = tmp / "m.keras"
    save_model(ZFNet(**TINY), model_path)
    folder = tmp / "photos"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3)).astype("uint8")).save(folder / f"p{i}.png")
    return model_path, folder


def test_sanity_writes_results_equal_to_the_api(setup, tmp_path, capsys):
    from zfkeras.analysis.faithfulness import FaithfulnessResult
    from zfkeras.analysis.sanity import SanityCheck, SanityResult
    from zfkeras.cli import main
    from zfkeras.cli.sanity import load_batch

    model, folder = setup
    out = tmp_path / "s"
    argv = ["sanity", str(model), str(folder), "--out", str(out), "--images", "3", "--depths", "2",
            "--methods", "gradient,gradcam", "--gradcam-layer", "conv5", "--steps", "4"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    res = SanityResult.load(out)
    assert res.depths == [1, 8] and res.methods == ["gradient", "gradcam"]
    for name in ("sanity.png", "faithfulness.png", "config.json"):
        assert (out / name).exists()
    # the same check through the API on the same images gives the same numbers
    images, _, _ = load_batch([str(folder)], 3, 64)
    api = SanityCheck(str(model), ("gradient", "gradcam"), depths=2, gradcam_layer="conv5").run(images)
    for m in res.methods:
        np.testing.assert_allclose(res.scores[m]["spearman_abs"], api.scores[m]["spearman_abs"], atol=2e-3)
        assert f"{res.verdict(m)}" in text
    fr = FaithfulnessResult.load(out)
    assert set(fr.deletion) == {"gradient", "gradcam", "random"} and fr.fractions.tolist() == [0, .25, .5, .75, 1]
    assert json.loads((out / "config.json").read_text())["order"][0] == "predictions"


def test_gradcam_command(setup, tmp_path, capsys):
    from zfkeras.analysis.gradcam import GradCAM
    from zfkeras.cli import main
    from zfkeras.cli.sanity import load_batch

    model, folder = setup
    out = tmp_path / "g"
    assert main(["gradcam", str(model), str(folder), "--out", str(out), "--layer", "conv5"]) == 0
    images, _, _ = load_batch([str(folder)], 0, 64)
    api = GradCAM(str(model), "conv5").run(images)
    with np.load(out / "p1.npz") as z:
        np.testing.assert_allclose(z["heatmaps"], api.heatmaps[1], rtol=1e-4, atol=1e-6 * api.heatmaps.max())
        assert int(z["targets"]) == api.targets[1] and z["guided"].shape == (64, 64, 3)
    assert (out / "p1.png").exists()
    assert "Grad-CAM at conv5" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--unit-layer", "nope"], "zfkeras sanity: error: unknown layer 'nope'"),
    (["--depths", "20"], "zfkeras sanity: error: 20 depths is beyond the model"),
    (["--images", "1"], "zfkeras sanity: error: --images must be >= 2"),
    (["--methods", "occlusion", "--unit-layer", "conv2"], "zfkeras sanity: error: method 'occlusion' explains a class"),
])
def test_sanity_bad_input_is_one_line_before_any_work(setup, tmp_path, capsys, extra, message):
    from zfkeras.cli import main

    model, folder = setup
    out = tmp_path / "bad"
    assert main(["sanity", str(model), str(folder), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err
    assert not out.exists()


def test_unknown_method_is_an_argument_error(setup, tmp_path, capsys):
    from zfkeras.cli import main

    model, folder = setup
    with pytest.raises(SystemExit) as e:
        main(["sanity", str(model), str(folder), "--out", str(tmp_path), "--methods", "lime"])
    assert e.value.code == 2
    assert "unknown method 'lime'" in capsys.readouterr().err
