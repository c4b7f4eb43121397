"""Import TensorFlow without its start-up log lines on machines where they are noise.

TensorFlow writes a few lines straight to the C-level stderr while it is imported
and when it first looks for devices (oneDNN notice, "Could not find cuda drivers",
"failed call to cuInit" on a machine without a GPU, CPU-instruction notice), before
`TF_CPP_MIN_LOG_LEVEL` can act on some of them. `import_tensorflow()` sends file
descriptor 2 to a temporary file for that time, then re-emits every line that is
not one of those known notices, so real errors still show.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

__all__ = ["NOISE", "import_tensorflow", "is_noise"]

# Start-up notices of TensorFlow / XLA / absl (one regex per kind of line).
NOISE = tuple(re.compile(p) for p in (
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"^[IWE]\d{4} .*\] oneDNN custom operations are on",
    r"^[IWE]\d{4} .*\] Could not find cuda drivers on your machine",
    r"^[IWE]\d{4} .*\] failed call to cuInit",
    r"^[IWE]\d{4} .*\] This TensorFlow binary is optimized to use available CPU instructions",
    r"^To enable the following instructions: .* in other operations, rebuild TensorFlow",
    r"^[IWE]\d{4} .*\] Unable to register cu(DNN|FFT|BLAS) factory",
    r"^[IWE]\d{4} .*\] TF-TRT Warning",
    r"^[IWE]\d{4} .*\] computation placer already registered",
))


def is_noise(line: str) -> bool:
    """True for one of TensorFlow's known start-up notices (`NOISE`)."""
    return any(p.search(line) for p in NOISE)


def import_tensorflow():
    """`import tensorflow` (and its device discovery) with the start-up notices filtered out.

    Returns the `tensorflow` module. Lines that are not known notices are written
    back to stderr; if the import fails everything captured is written back.
    Set `ZFKERAS_TF_LOGS=1` to see TensorFlow's start-up lines unfiltered.
    """
    if "tensorflow" in sys.modules or os.environ.get("ZFKERAS_TF_LOGS") == "1":
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded interpreters)
        import tensorflow as tf

        return tf
    failed = True
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # device discovery: the cuInit line comes here
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            kept = [ln for ln in text.splitlines() if failed or not is_noise(ln)]
            if kept:
                print("\n".join(kept), file=sys.stderr)
    return tf
