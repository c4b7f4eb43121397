"""Models users already have: Keras 2 `.h5`/`.hdf5` files, custom layers, paths checked before TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import make_image_folder

REPO = Path(__file__).resolve().parents[1]


def _softmax_head_model(seed: int = 0):
    """A small CNN whose output is a separate `Activation("softmax")` layer (common in Keras 2 code)."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((64, 64, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    x = keras.layers.Conv2D(6, 5, strides=2, activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(2, name="pool1")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dense(3, name="logits")(x)
    out = keras.layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inp, out, name="softmax_head")


@pytest.fixture(scope="module")
def legacy_files(tmp_path_factory):
    """(model, its .h5 file, the same file as .hdf5, a folder of images)."""
    tmp = tmp_path_factory.mktemp("legacy")
    model = _softmax_head_model()
    h5 = tmp / "emotion_model.h5"
    model.save(h5)  # Keras' legacy HDF5 format
    hdf5 = tmp / "emotion_model.hdf5"
    hdf5.write_bytes(h5.read_bytes())
    data = make_image_folder(tmp / "images", classes=2, per_class=2, size=80)
    return model, h5, hdf5, data


def test_legacy_h5_file_loads_as_the_model_it_was_saved_from(legacy_files):
    from zfkeras.models.io import load_model
    from zfkeras.utils.model_files import check_model_file

    model, h5, hdf5, _ = legacy_files
    with open(h5, "rb") as f:
        assert f.read(8) == b"\x89HDF\r\n\x1a\n"  # the test really wrote the legacy format
    x = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    for path in (h5, hdf5):
        assert check_model_file(path) == "h5"
        loaded = load_model(path)
        assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_every_model_command_takes_an_h5_file(legacy_files, tmp_path, capsys):
    """predict (numbers against the model itself), visualize, occlude, invariance, correspondence-free
    commands that take MODEL: each runs on the .hdf5 file."""
    from zfkeras.cli import main
    from zfkeras.data import load_image, prepare
    from zfkeras.data.preprocess import center_crop

    model, _, hdf5, data = legacy_files
    img = sorted((data / "class0").iterdir())[0]
    assert main(["predict", str(hdf5), str(img)]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("note:")]
    ref = model.predict(center_crop(prepare(load_image(img), 64), 64)[None].astype("float32"), verbose=0)[0]
    top = int(ref.argmax())
    assert printed[1].split() == [f"{ref[top]:.4f}", "class", str(top)]

    assert main(["visualize", str(hdf5), str(data), "--out", str(tmp_path / "v"), "--layers", "conv2",
                 "--channels", "2", "--quiet"]) == 0
    assert (tmp_path / "v" / "conv2_top9.png").is_file()
    assert main(["occlude", str(hdf5), str(img), "--out", str(tmp_path / "o"), "--patch", "16",
                 "--stride", "16", "--layer", "conv2"]) == 0
    assert (tmp_path / "o" / f"{img.stem}.npz").is_file()
    assert main(["invariance", str(hdf5), str(img), "--out", str(tmp_path / "i"), "--quiet",
                 "--transforms", "rotation", "--rotation-step", "90"]) == 0
    assert (tmp_path / "i" / "invariance.png").is_file()


def test_activation_softmax_output_gives_invariance_probabilities(legacy_files):
    """The output layer is an `Activation`: Fig 5's p(true class) is the model's own softmax output."""
    from zfkeras.analysis.invariance import Invariance

    model, _, _, _ = legacy_files
    images = np.random.default_rng(2).uniform(0, 255, (2, 80, 80, 3)).astype("float32")
    res = Invariance(model, {"rotation": [0.0, 90.0]}, layers=["conv1"]).run(images, [0, 2])
    crops = images[:, 8:72, 8:72]
    want = model.predict(crops, verbose=0)[[0, 1], [0, 2]]
    np.testing.assert_allclose(res.original_probabilities, want, rtol=1e-5)
    np.testing.assert_allclose(res.curves["rotation"].probabilities[:, 0], want, rtol=1e-5)
    rotated = np.rot90(crops, k=1, axes=(1, 2))  # 90 degrees of a square crop: an exact pixel permutation
    got = res.curves["rotation"].probabilities[:, 1]
    ref = model.predict(np.ascontiguousarray(rotated), verbose=0)[[0, 1], [0, 2]]
    ref_other = model.predict(np.ascontiguousarray(np.rot90(crops, k=-1, axes=(1, 2))), verbose=0)[[0, 1], [0, 2]]
    assert np.allclose(got, ref, rtol=1e-4) or np.allclose(got, ref_other, rtol=1e-4)


def test_missing_custom_layer_is_named_in_one_line(tmp_path, capsys):
    code = (
        "import keras\n"
        "@keras.saving.register_keras_serializable(package='faces')\n"
        "class Doubler(keras.layers.Layer):\n"
        "    def call(self, x):\n"
        "        return 2 * x\n"
        "inp = keras.Input((64, 64, 3))\n"
        "out = keras.layers.Conv2D(2, 3)(Doubler(name='doubler')(inp))\n"
        f"keras.Model(inp, out).save({str(tmp_path / 'custom.h5')!r})\n"
        f"keras.Model(inp, out).save({str(tmp_path / 'custom.keras')!r})\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True, timeout=300)
    from zfkeras.cli import main

    img = make_image_folder(tmp_path / "img", classes=1, per_class=1) / "class0" / "img_000.jpg"
    for name in ("custom.h5", "custom.keras"):
        assert main(["predict", str(tmp_path / name), str(img)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert "Doubler" in err[0] and "custom layer" in err[0] and name in err[0]


def test_weights_only_h5_and_other_files_say_what_they_are(tmp_path):
    import keras

    from zfkeras.utils.model_files import check_model_file

    m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3)])
    m.save_weights(tmp_path / "w.weights.h5")
    with pytest.raises(ValueError, match="holds weights only"):
        check_model_file(tmp_path / "w.weights.h5")
    (tmp_path / "fake.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="is not an HDF5 file"):
        check_model_file(tmp_path / "fake.h5")
    (tmp_path / "m.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"expected a Keras model file \(.keras, or a Keras 2 .h5/.hdf5\)"):
        check_model_file(tmp_path / "m.pt")
    with pytest.raises(FileNotFoundError, match="no model file"):
        check_model_file(tmp_path / "absent.keras")


@pytest.mark.parametrize("argv, message", [
    (["visualize", "{tmp}/absent.h5", "{tmp}", "--out", "{tmp}/o"], "no model file at '{tmp}/absent.h5'"),
    (["report", "{tmp}/m.keras", "{tmp}/absent", "--out", "{tmp}/o"], "no image folder at '{tmp}/absent'"),
    (["occlude", "{tmp}/m.keras", "{tmp}/absent.jpg", "--out", "{tmp}/o"],
     "no image file or folder at '{tmp}/absent.jpg'"),
    (["visualize", "keras.applications.VGG16", "{tmp}", "--out", "{tmp}/o", "--weights", "{tmp}/w.h5"],
     "no weights file at '{tmp}/w.h5' (use --weights none|imagenet|FILE)"),
    (["invariance", "{tmp}/m.keras", "{tmp}", "--out", "{tmp}/o", "--class-names", "{tmp}/names.txt"],
     "no class-names file at '{tmp}/names.txt'"),
])
def test_bad_paths_answer_before_tensorflow_is_imported(tmp_path, argv, message):
    """The one-line error comes without importing TensorFlow (which alone takes seconds) and makes no folder."""
    import zipfile

    with zipfile.ZipFile(tmp_path / "m.keras", "w") as z:  # passes the path check; never loaded
        z.writestr("config.json", "{}")
    argv = [a.format(tmp=tmp_path) for a in argv]
    code = (
        "import sys\n"
        "from zfkeras.cli import main\n"
        f"rc = main({argv!r})\n"
        "print('RC', rc, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(REPO)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    elapsed = time.perf_counter() - start
    assert proc.stdout.strip().splitlines()[-1] == "RC 2 False False", proc.stdout + proc.stderr
    assert proc.stderr.strip() == f"zfkeras {argv[0]}: error: {message.format(tmp=tmp_path)}"
    assert not (tmp_path / "o").exists()
    assert elapsed < 4.0, elapsed  # importing TensorFlow alone takes ~5-8 s here
