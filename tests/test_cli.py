"""The command line as a user meets it: fast help without TensorFlow, no start-up noise."""

from __future__ import annotations

import os
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
    assert last == "HEAVY [] 13", last
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
