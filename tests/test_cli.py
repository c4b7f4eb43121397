"""The command line as a user meets it: fast help without TensorFlow, no start-up noise."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "ZFKERAS_TF_LOGS")}
ENV["PYTHONPATH"] = str(REPO)


def _python(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def test_help_of_every_command_does_not_import_tensorflow():
    code = (
        "import sys, runpy\n"
        "from zfkeras.cli import COMMANDS\n"
        "for argv in [['--help']] + [[c, '--help'] for c in COMMANDS]:\n"
        "    sys.argv = ['zfkeras', *argv]\n"
        "    try:\n"
        "        runpy.run_module('zfkeras', run_name='__main__', alter_sys=True)\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, (argv, e.code)\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules)\n"
        "print('HEAVY', heavy, len(COMMANDS))\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last == "HEAVY [] 14", last
    assert proc.stderr == ""


def test_python_m_zfkeras_help_answers_at_once():
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "zfkeras", "visualize", "--help"], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: zfkeras visualize")
    assert proc.stderr == ""
    # Importing TensorFlow alone takes ~5-8 s here; help without it takes well under 1 s.
    assert elapsed < 4.0, elapsed


def test_a_command_prints_no_tensorflow_or_cuda_start_up_lines():
    proc = subprocess.run(
        [sys.executable, "-m", "zfkeras", "summary", "--image-size", "64", "--width", "0.0625", "--classes", "3"],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "trainable parameters:" in proc.stdout
    for noise in ("cuInit", "cuda", "oneDNN", "absl::InitializeLog", "cpu_feature_guard", "I0000", "E0000"):
        assert noise not in proc.stderr, proc.stderr
        assert noise not in proc.stdout


def test_noise_filter_keeps_lines_that_are_not_start_up_notices():
    from zfkeras.utils.tf_quiet import is_noise

    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796173640.770920    4855 port.cc:153] oneDNN custom operations are on. You may see",
        "I0000 00:00:1796173640.771399    4855 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
        "GPU will not be used.",
        "E0000 00:00:1796173648.021927    4855 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
        "appropriate compiler flags.",
    ]
    kept = [
        "E0000 00:00:1796173648.021927    4855 op_kernel.cc:1] OOM when allocating tensor",
        "Traceback (most recent call last):",
        "zfkeras train: error: no images in /x",
    ]
    assert [is_noise(s) for s in noise] == [True] * len(noise)
    assert [is_noise(s) for s in kept] == [False] * len(kept)


def test_help_defaults_agree_with_the_reference_small_protocol():
    from zfkeras.cli.train import SMALL_HELP
    from zfkeras.training import REFERENCE_SMALL

    for field, value in vars(SMALL_HELP).items():
        assert getattr(REFERENCE_SMALL, field) == value, field


@pytest.mark.parametrize("name", ["ZFNet", "Deconvnet", "FilterRMS", "with_switches", "PRESETS"])
def test_public_names_still_import_from_the_package(name):
    import zfkeras

    assert name in zfkeras.__all__
    assert getattr(zfkeras, name) is getattr(__import__(zfkeras._EXPORTS[name], fromlist=[name]), name)


# ------------------------------------------- one policy for unreadable files; flat folders
BAD = {"a_empty.jpg": "zero-byte file", "b_notes.jpg": "not an image", "c_truncated.jpg": "truncated image"}


@pytest.fixture(scope="module")
def flat_setup(tmp_path_factory):
    """(model file, flat folder of 4 good + 3 bad files): no class sub-folders at all."""
    import keras
    import numpy as np
    from PIL import Image

    from conftest import TINY
    from zfkeras import ZFNet
    from zfkeras.models.io import save_model

    tmp = tmp_path_factory.mktemp("flat")
    keras.utils.set_random_seed(0)
    model_path = tmp / "m.keras"
    save_model(ZFNet(**TINY), model_path)
    flat = tmp / "photos"
    flat.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (70 + 5 * i, 80, 3)).astype("uint8")).save(flat / f"p{i}.jpg")
    (flat / "a_empty.jpg").write_bytes(b"")
    (flat / "b_notes.jpg").write_text("hello\n")
    data = (flat / "p0.jpg").read_bytes()
    (flat / "c_truncated.jpg").write_bytes(data[: len(data) // 2])
    return model_path, flat


def _named(skipped, root):
    return {Path(s["path"]).relative_to(root).as_posix(): s["reason"] for s in skipped}


def test_occlude_takes_a_folder_and_skips_counts_and_names_bad_files(flat_setup, tmp_path, capsys):
    import json

    import numpy as np

    from zfkeras.cli import main

    model, flat = flat_setup
    out = tmp_path / "occ"
    assert main(["occlude", str(model), str(flat), "--out", str(out), "--stride", "8", "--top-k", "3"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert _named(config["skipped"], flat) == BAD
    assert [Path(p).name for p in config["images"]] == ["p0.jpg", "p1.jpg", "p2.jpg", "p3.jpg"]
    assert "4 of 7 images used; 3 skipped" in capsys.readouterr().out
    # Panel (c) draws on all the other images of the call: each image's 3 others are the rest.
    for k in range(4):
        with np.load(out / f"p{k}.npz") as z:
            assert sorted(int(i) for i in z["other_indices"]) == sorted(set(range(4)) - {k})


def test_diagnose_and_invariance_skip_count_and_name_bad_files(flat_setup, tmp_path):
    import json

    from zfkeras.cli import main

    model, flat = flat_setup
    assert main(["diagnose", str(model), "--probe", str(flat), "--out", str(tmp_path / "d"), "--quiet",
                 "--layer2-channels", "2"]) == 0
    diag = json.loads((tmp_path / "d" / "diagnostics.json").read_text())
    assert _named(diag["skipped"], flat) == BAD and diag["probe_images"] == 4
    assert main(["invariance", str(model), str(flat), "--out", str(tmp_path / "i"), "--quiet",
                 "--transforms", "rotation", "--rotation-step", "90"]) == 0
    inv = json.loads((tmp_path / "i" / "invariance_config.json").read_text())
    assert _named(inv["skipped"], flat) == BAD and len(inv["images"]) == 4


def test_visualize_and_report_accept_a_flat_folder(flat_setup, tmp_path):
    import json

    from zfkeras.cli import main

    model, flat = flat_setup
    assert main(["visualize", str(model), str(flat), "--out", str(tmp_path / "v"), "--layers", "conv1",
                 "--channels", "2", "--quiet"]) == 0
    vis = json.loads((tmp_path / "v" / "config.json").read_text())
    assert vis["images"] == 4 and _named(vis["skipped"], flat) == BAD
    skips = [a for s in ("occlusion", "invariance", "diagnostics", "correspondence") for a in ("--skip", s)]
    assert main(["report", str(model), str(flat), "--out", str(tmp_path / "r"), "--layers", "conv1",
                 "--quiet", *skips]) == 0
    rep = json.loads((tmp_path / "r" / "report.json").read_text())
    assert rep["images"]["used"] == 4 and _named(rep["images"]["skipped"], flat) == BAD


def test_train_on_a_flat_folder_says_exactly_what_is_needed(flat_setup, tmp_path, capsys):
    from zfkeras.cli import main

    _, flat = flat_setup
    assert main(["train", str(flat), "--out", str(tmp_path / "t"), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "one folder per class" in err[0] and "flat folder" in err[0]


# --------------------------------------------------------------- clear answers to bad input
@pytest.mark.parametrize("content", [b"this is a text file, not a model\n", bytes(range(256)) * 8, b""])
def test_a_file_that_is_not_a_keras_model_says_so(tmp_path, capsys, content):
    from zfkeras.cli import main

    fake = tmp_path / "model.keras"
    fake.write_bytes(content)
    assert main(["diagnose", str(fake), "--out", str(tmp_path / "d"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert f"{str(fake)!r} is not a Keras model file ({len(content):,} bytes" in err[0]
    assert "File not found" not in err[0]


def test_channels_beyond_a_layer_is_clamped_with_a_word(flat_setup, tmp_path, capsys):
    import json

    import keras

    from zfkeras.cli import main

    model, flat = flat_setup
    n = keras.models.load_model(model, compile=False).get_layer("conv1").filters  # independent of the scan
    assert main(["visualize", str(model), str(flat), "--out", str(tmp_path / "v"), "--layers", "conv1",
                 "--channels", "999", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert f"conv1: --channels 999 is more than its {n} feature maps; showing all {n}" in printed
    assert len(json.loads((tmp_path / "v" / "config.json").read_text())["channels_shown"]["conv1"]) == n
    skips = [a for s in ("evaluation", "occlusion", "invariance", "diagnostics", "correspondence")
             for a in ("--skip", s)]
    assert main(["report", str(model), str(flat), "--out", str(tmp_path / "r"), "--layers", "conv1",
                 "--channels", "999", "--quiet", *skips]) == 0
    note = f"conv1: 999 feature maps asked (--channels), it has {n}; showing all {n}."
    assert note in capsys.readouterr().out
    assert note in (tmp_path / "r" / "index.html").read_text(encoding="utf-8")


def test_a_changed_setting_in_an_existing_out_is_refused_before_any_data_is_read(tmp_path, capsys, monkeypatch):
    import json

    import zfkeras.training
    from zfkeras.cli import main
    from zfkeras.training import REFERENCE_SMALL

    out = tmp_path / "run"
    (out / "checkpoint").mkdir(parents=True)
    (out / "checkpoint" / "state.json").write_text(json.dumps({"config": REFERENCE_SMALL.to_dict()}))

    def no_data(*a, **k):
        raise AssertionError("the data was read before the settings were checked")

    monkeypatch.setattr(zfkeras.training, "load_training_data", no_data)
    assert main(["train", str(tmp_path / "nowhere"), "--out", str(out), "--lr", "0.001"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "different settings (learning_rate)" in err[0] and "new --out" in err[0]


def test_fit_verbosity_is_plain_when_not_a_terminal():
    import io

    from zfkeras.utils.progress import fit_verbosity

    assert fit_verbosity("auto", io.StringIO()) == 2
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as tty:
            assert fit_verbosity("auto", tty) == 1
    finally:
        os.close(master)
        os.close(slave)
    assert fit_verbosity(0, io.StringIO()) == 0


def test_train_into_a_file_has_no_colour_codes_and_no_shuffle_warning(tmp_path):
    from conftest import make_image_folder

    data = make_image_folder(tmp_path / "data", classes=2, per_class=8, size=72)
    proc = subprocess.run(
        [sys.executable, "-m", "zfkeras", "train", str(data), "--out", str(tmp_path / "run"), "--epochs", "2",
         "--image-size", "64", "--width", "0.0625", "--fc-units", "16", "--batch-size", "8",
         "--val-fraction", "0.25"],
        cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    both = proc.stdout + proc.stderr
    assert "\x1b[" not in both and "\b" not in both
    assert "shuffle=True" not in both
    epoch_lines = [l for l in proc.stdout.splitlines() if re.match(r"^\d+/\d+ - \d+s - ", l)]
    assert len(epoch_lines) == 2, proc.stdout  # one plain line per epoch


def test_gitignore_covers_the_demo_default_output_folder():
    import argparse

    from zfkeras.cli import demo

    parser = argparse.ArgumentParser()
    demo.add_parser(parser.add_subparsers(dest="command"))
    default = parser.parse_args(["demo"]).out
    lines = {l.strip().rstrip("/") for l in (REPO / ".gitignore").read_text().splitlines()}
    assert default.rstrip("/") in lines
