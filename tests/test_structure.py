"""Issue #24: the refactor keeps every output; analyses write one schema; the user's model is left as given."""

from __future__ import annotations

import numpy as np
import pytest

from shipped_outputs import BASELINE, SHIPPED, shipped_outputs


def test_shipped_outputs_unchanged():
    """The shipped model's predictions, projections, occlusion, invariance, diagnostics and correspondence
    equal the values stored from main's code before #24 (tolerance 1e-5 relative for float32 round-off
    on another thread count; on the machine that stored them they are bit-identical:
    `python benchmarks/structure_baseline.py`)."""
    assert SHIPPED.exists(), "the shipped model is part of the repository"
    now = shipped_outputs()
    with np.load(BASELINE) as before:
        assert set(before.files) <= set(now)
        for key in before.files:
            np.testing.assert_allclose(now[key], before[key], rtol=1e-5, atol=1e-6, err_msg=key)


# ------------------------------------------------------------------ one writer per results folder
def _same_folder(a, b, *, skip=()):
    """Assert two results folders hold the same files with the same contents (npz arrays, JSON, CSV, PNG)."""
    import json

    names = sorted(p.name for p in a.iterdir() if p.name not in skip)
    assert names == sorted(p.name for p in b.iterdir() if p.name not in skip)
    for name in names:
        fa, fb = a / name, b / name
        if name.endswith(".npz"):
            with np.load(fa) as za, np.load(fb) as zb:
                assert sorted(za.files) == sorted(zb.files), name
                for key in za.files:
                    np.testing.assert_array_equal(za[key], zb[key], err_msg=f"{name}: {key}")
        elif name.endswith(".json"):
            assert json.loads(fa.read_text()) == json.loads(fb.read_text()), name
        else:
            assert fa.read_bytes() == fb.read_bytes(), name


@pytest.fixture()
def saved_tiny(tiny_model, tmp_path, image_folder):
    """A saved tiny ZFNet and a class-per-folder set of 3 images: (model path, data folder, images)."""
    import shutil

    from zfkeras.models.io import save_model

    data = tmp_path / "data"
    for c, n in (("class0", 2), ("class1", 1)):
        (data / c).mkdir(parents=True)
        for f in sorted((image_folder / c).glob("*.jpg"))[:n]:
            shutil.copy(f, data / c / f.name)
    return str(save_model(tiny_model, tmp_path / "m.keras")), data


def _report(model, data, out, only, **options):
    """`build_report` with only the figure `only` (no evaluation)."""
    from zfkeras.report import registry
    from zfkeras.report.build import ReportOptions, build_report

    skip = tuple(s for s in ("evaluation", *registry.names()) if s != only)
    build_report(model, data, out, options=ReportOptions(skip=skip, **options), progress=False, log=lambda s: None)
    import json

    return {a["name"].split(" ")[0]: a["source"] for a in json.loads((out / "report.json").read_text())["analyses"]}


def test_occlusion_cli_and_report_write_the_same_folder_and_reuse_each_other(saved_tiny, tmp_path):
    import json

    from zfkeras.cli import main

    model, data = saved_tiny
    rep = tmp_path / "rep"
    _report(model, data, rep, "occlusion", occlude=1)
    config = json.loads((rep / "occlusion" / "config.json").read_text())
    (image,), pool = config["images"], config["others"]
    assert len(pool) == 2 and image not in pool
    cli = tmp_path / "cli"
    assert main(["occlude", model, image, "--others", *pool, "--top-k", "4", "--out", str(cli)]) == 0
    _same_folder(rep / "occlusion", cli, skip=("report_meta.json",))
    assert config["softmax_added"] is False and config["skipped"] == [] and config["rule"] == "deconvnet"
    # the report takes the CLI's folder, and a report's folder, as its own
    for given in (cli, rep / "occlusion"):
        again = tmp_path / f"again-{given.name}"
        assert _report(model, data, again, "occlusion", occlude=1, occlusion_dir=str(given))["occlusion"] == \
            f"reused {given}"
        assert _section(again, "fig7") == _section(rep, "fig7")


def _section(out, anchor):
    import re

    page = (out / "index.html").read_text()
    return re.search(rf'<section id="{anchor}">.*?</section>', page, re.S).group(0)


def test_invariance_cli_and_report_write_the_same_folder_and_reuse_each_other(saved_tiny, tmp_path):
    import json

    from zfkeras.cli import main

    model, data = saved_tiny
    rep = tmp_path / "rep"
    steps = {"translation": 60.0, "scale": 0.8, "rotation": 175.0}
    _report(model, data, rep, "invariance", invariance=1, invariance_steps=steps)
    config = json.loads((rep / "invariance" / "invariance_config.json").read_text())
    (image,) = config["images"]
    assert config["label_sources"] == ["prediction"] and config["skipped"] == []  # the folders are no classes
    cli = tmp_path / "cli"
    assert main(["invariance", model, image, "--out", str(cli), "--quiet", "--translation-step", "60",
                 "--scale-step", "0.8", "--rotation-step", "175"]) == 0
    _same_folder(rep / "invariance", cli, skip=("report_meta.json",))
    for given in (cli, rep / "invariance"):
        again = tmp_path / f"again-{given.name}"
        source = _report(model, data, again, "invariance", invariance=1, invariance_steps=steps,
                         invariance_dir=str(given))["invariance"]
        assert source == f"reused {given}"
        assert _section(again, "fig5") == _section(rep, "fig5")


def test_diagnostics_cli_and_report_write_the_same_folder_and_reuse_each_other(saved_tiny, tmp_path):
    import json

    import keras

    from zfkeras.cli import main

    model, data = saved_tiny
    rep = tmp_path / "rep"
    _report(model, data, rep, "diagnostics", diagnostics_probe=2, layer2_channels=3, seed=1, batch_size=8)
    config = json.loads((rep / "diagnostics" / "diagnostics.json").read_text())
    assert len(config["probe"]) == 2 and config["probe_images"] == 2 and config["skipped"] == []
    name = keras.models.load_model(model, compile=False).name
    cli = tmp_path / "cli"
    assert main(["diagnose", model, "--probe", *config["probe"], "--names", name, "--layer2-channels", "3",
                 "--seed", "1", "--batch-size", "8", "--quiet", "--out", str(cli)]) == 0
    _same_folder(rep / "diagnostics", cli, skip=("report_meta.json",))
    for given in (cli, rep / "diagnostics"):
        again = tmp_path / f"again-{given.name}"
        source = _report(model, data, again, "diagnostics", diagnostics_probe=2, layer2_channels=3, seed=1,
                         batch_size=8, diagnostics_dir=str(given))["layer-1"]
        assert source == f"reused {given}"
        assert _section(again, "fig6") == _section(rep, "fig6")


def test_correspondence_cli_and_report_write_the_same_file_and_reuse_each_other(saved_tiny, tmp_path):
    import json

    from zfkeras.cli import main

    model, data = saved_tiny
    rep = tmp_path / "rep"
    _report(model, data, rep, "correspondence", correspondence_seeds=2, batch_size=8)
    cli = tmp_path / "table1.json"
    assert main(["correspondence", model, "example", "--seeds", "2", "--batch-size", "8", "--out", str(cli)]) == 0
    mine = json.loads((rep / "correspondence" / "correspondence.json").read_text())
    assert mine == json.loads(cli.read_text())
    assert mine["model"] == model and mine["parts_file"].endswith("parts.json")
    for given in (cli, rep / "correspondence" / "correspondence.json"):
        again = tmp_path / f"again-{given.parent.name}"
        source = _report(model, data, again, "correspondence", correspondence_file=str(given))["correspondence"]
        assert source == f"reused {given}"
        assert _section(again, "table1") == _section(rep, "table1")


# ------------------------------------------------------------------ the user's model is left as given
def _snapshot(model) -> dict:
    """What an analysis must not change: the model's and every layer's attribute names and the layers'
    activations (the objects), every weight's value."""
    return {
        "model": sorted(vars(model)),
        "layers": [(l.name, sorted(vars(l)), getattr(l, "activation", None)) for l in model.layers],
        "weights": [np.array(w) for w in model.weights],
    }


def _assert_same(before: dict, model, what: str) -> None:
    after = _snapshot(model)
    assert after["model"] == before["model"], what
    assert after["layers"] == before["layers"], what
    for a, b in zip(before["weights"], after["weights"]):
        np.testing.assert_array_equal(a, b, err_msg=what)


def _residual_logits_net():
    """Conv-BN-ReLU, a residual Add, global pooling and a Dense ending in logits (no softmax)."""
    import keras

    keras.utils.set_random_seed(1)
    L = keras.layers
    x = inp = keras.Input((32, 32, 3))
    x = L.Rescaling(1 / 255)(x)
    x = L.Conv2D(6, 3, padding="same", activation="relu", name="c1")(x)
    y = L.BatchNormalization(name="bn")(L.Conv2D(6, 3, padding="same", name="c2")(x))
    x = L.ReLU(name="r2")(L.Add(name="add")([x, y]))
    x = L.Conv2D(4, 3, activation="relu", name="c3")(x)
    out = L.Dense(3, name="logits")(L.GlobalAveragePooling2D(name="gap")(x))
    return keras.Model(inp, out)


def test_no_analysis_changes_the_users_model(tiny_model, rng):
    """Every analysis (the deconvnet on the chain and the general route under every rule, occlusion with
    its added softmax, invariance, diagnostics, correspondence, the top-9 scan) leaves the model's
    attributes, its layers' attributes and activations, and its weights exactly as given."""
    from zfkeras.analysis import Correspondence, Invariance, LayerDiagnostics, OcclusionSensitivity
    from zfkeras.deconv import Deconvnet
    from zfkeras.deconv.scan import scan_top_activations

    net = _residual_logits_net()
    images = rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    before = _snapshot(net)
    for rule in ("deconvnet", "guided", "gradient"):
        Deconvnet(net, rule=rule).project(images, "c3", channels=[0, 1])  # past the Add: the general route
        _assert_same(before, net, f"Deconvnet {rule}")
    res = OcclusionSensitivity(net, patch=16, stride=16).run(images[0], others=images[1:])
    assert res.softmax_added and np.isclose(res.base_probabilities.sum(), 1.0, atol=1e-5)
    _assert_same(before, net, "occlusion")

    zf = tiny_model
    images = rng.uniform(0, 255, (3, 64, 64, 3)).astype(np.float32)
    before = _snapshot(zf)
    steps = [
        ("deconvnet", lambda: Deconvnet(zf).project(images, "conv5", channels=[0])),
        ("occlusion", lambda: OcclusionSensitivity(zf, patch=32, stride=32).run(images[0])),
        ("invariance", lambda: Invariance(zf, {"rotation": [0, 90]}).run(images[:1])),
        ("diagnostics", lambda: LayerDiagnostics(zf, layer2_channels=2).run(images)),
        ("correspondence", lambda: Correspondence(zf, seeds=1).run()),
        ("top-9", lambda: scan_top_activations(Deconvnet(zf), [([0, 1, 2], images)], layers=["conv2"], k=2, progress=False)),
    ]
    for what, step in steps:
        step()
        _assert_same(before, zf, what)
    assert not any(k.startswith("_zfkeras") for k in vars(zf))


# ------------------------------------------------------------------ import zfkeras registers its classes
@pytest.mark.parametrize("imports", [
    "import zfkeras; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; import keras",
    "import zfkeras.analysis; import keras",  # Keras imported by a zfkeras module half-way through its import
])
def test_import_zfkeras_registers_every_serializable_class(tiny_model, tmp_path, imports):
    """After `import zfkeras` (which imports no TensorFlow), `keras.models.load_model` of a ZFNet file works
    with no further import; every class of `_register.SERIALIZABLE` is registered."""
    import re
    import subprocess
    import sys

    from conftest import REPO

    # the classes the package decorates, read from its source (the independent reference)
    decorated = set()
    for src in (REPO / "zfkeras").rglob("*.py"):
        decorated |= set(re.findall(r"@keras\.saving\.register_keras_serializable\(package=\"zfkeras\"\)\s*\n"
                                    r"class (\w+)", src.read_text()))
    assert {"ZFNet", "FilterRMS", "MaxPoolingWithArgmax2D"} <= decorated
    path = tmp_path / "zf.keras"
    tiny_model.save(path)
    code = (f"import sys; {imports}\n"
            f"m = keras.models.load_model({str(path)!r})\n"
            "from zfkeras import _register\n"
            "names = keras.saving.get_custom_objects()\n"
            "print(type(m).__name__, ','.join(sorted(n[8:] for n in names if n.startswith('zfkeras>'))))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    name, registered = proc.stdout.split()[-2:]
    assert name == "ZFNet" and set(registered.split(",")) == decorated


# ------------------------------------------------------------------ the model view owns the paper's layer choices
def test_paper_layers_on_zfnet_a_reduced_zfnet_and_another_network():
    import keras

    from conftest import TINY
    from zfkeras import ZFNet
    from zfkeras.models.view import model_view

    zf = model_view(ZFNet(**TINY))
    assert zf.paper_layers("evolution") == ("conv1", "conv2", "conv3", "conv4", "conv5")
    assert zf.paper_layers("invariance") == ("norm1", "fc7")
    assert zf.paper_layers("correspondence") == ("pool5", "fc7")
    assert zf.paper_layers("layer1") == ("conv1",)
    assert zf.paper_layers("diagnostics") == ("conv1", "conv2")
    assert zf.paper_layers("transfer") == ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")
    keras.utils.set_random_seed(0)
    no_fc7 = model_view(ZFNet.from_preset("no_fc7", **{k: v for k, v in TINY.items()}))
    assert no_fc7.paper_layers("transfer") == ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6")
    assert no_fc7.paper_layers("correspondence") == ("pool5", "fc6")  # last spatial, top feature layer
    net = model_view(_residual_logits_net())
    assert net.paper_layers("evolution") == ("c1", "c2", "r2", "c3")  # r2: the residual block's output
    assert net.paper_layers("layer1") == ("c1",)
    assert net.paper_layers("diagnostics") == ("c1", "c2")  # its first two Conv2D layers
    assert net.paper_layers("invariance") == ("c1", "gap")
    with pytest.raises(ValueError, match="unknown use 'fig9'"):
        net.paper_layers("fig9")


def test_evolution_callback_during_fit_of_a_batchnorm_net(tmp_path, rng):
    """FeatureEvolution with its defaults on a Conv-BN-ReLU classifier: it captures the network's own
    conv layers at the chosen epochs, and each captured activation is the channel's largest output over
    the probe images (a Keras sub-model's, after that epoch)."""
    import keras

    from zfkeras.analysis.evolution import FeatureEvolution

    keras.utils.set_random_seed(2)
    L = keras.layers
    inp = keras.Input((32, 32, 3))
    x = L.Rescaling(1 / 127.5, offset=-1)(inp)
    for i, filters in enumerate((6, 8)):
        x = L.Conv2D(filters, 3, padding="same", name=f"b{i}_conv")(x)
        x = L.BatchNormalization(name=f"b{i}_bn")(x)
        x = L.MaxPooling2D(name=f"b{i}_pool")(L.ReLU(name=f"b{i}_relu")(x))
    out = L.Dense(3, activation="softmax")(L.GlobalAveragePooling2D()(x))
    net = keras.Model(inp, out)
    net.compile("sgd", "sparse_categorical_crossentropy")
    images = rng.uniform(0, 255, (12, 32, 32, 3)).astype(np.float32)
    probe = images[:4]
    cb = FeatureEvolution(probe, channels_per_layer=2, epochs=(1, 2), out_dir=tmp_path, progress=False, cell=16)
    net.fit(images, rng.integers(0, 3, 12), epochs=2, batch_size=4, verbose=0, callbacks=[cb])
    assert cb.fired == [1, 2] and cb.layers == ("b0_conv", "b1_conv")
    snap = cb.snapshot
    assert snap.captured.all() and (snap.image_index >= 0).all()
    for layer in cb.layers:
        ref = keras.Model(net.inputs, net.get_layer(layer).output).predict(probe, verbose=0).max(axis=(0, 1, 2))
        rows = np.flatnonzero(snap.row_layers == layer)
        np.testing.assert_allclose(snap.activations[rows, 1], ref[snap.channels[rows]], rtol=1e-4, atol=1e-5)
    assert (tmp_path / "feature_evolution.png").exists()


# ------------------------------------------------------------------ private Keras API in one module
def test_private_keras_api_is_in_one_module_and_still_there():
    """`keras_private.check()` raises on a Keras that changed the private API zfkeras needs; no other
    module of the package touches it."""
    import re

    from conftest import REPO
    from zfkeras.models import keras_private

    keras_private.check()
    private = re.compile(r"\._functional\b|_run_through_graph|_keras_history|_inbound_nodes|keras\.src\b")
    users = sorted(str(p.relative_to(REPO)) for p in (REPO / "zfkeras").rglob("*.py") if private.search(p.read_text()))
    assert users == ["zfkeras/models/keras_private.py"]


def test_private_keras_api_check_fails_loudly_when_keras_changes(monkeypatch):
    import keras

    from zfkeras.models import keras_private

    inp = keras.Input((2,))
    functional = keras.Model(inp, keras.layers.Dense(1)(inp))
    owner = next(c for c in type(functional).__mro__ if "_run_through_graph" in vars(c))
    with monkeypatch.context() as m:  # a Keras without the method (its own Model() needs it too)
        m.delattr(owner, "_run_through_graph")
        with pytest.raises(RuntimeError, match=r"Keras .* changed private API zfkeras relies on"):
            keras_private.check()
    seq = type(keras.Sequential())
    with monkeypatch.context() as m:  # a Keras whose Sequential keeps its graph elsewhere
        m.setattr(seq, "_functional", None, raising=False)
        m.setattr(seq, "__setattr__", lambda self, k, v: object.__setattr__(self, k, None if k == "_functional" else v))
        with pytest.raises(RuntimeError, match=r"keras.Sequential._functional"):
            keras_private.check()


# ------------------------------------------------------------------ data flows one way
def test_no_lower_package_imports_the_report_or_the_cli():
    """data -> model -> deconv / analysis -> report -> cli: below the report, no module imports it
    (nor the CLI), at module level or inside a function; computing hands results up, figures draw them."""
    import ast

    from conftest import REPO

    lower = ("layers", "models", "data", "utils", "deconv", "analysis", "transfer", "training", "scale")
    upward = []
    for pkg in lower:
        for path in sorted((REPO / "zfkeras" / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                upward += [f"{path.relative_to(REPO)}: {n}" for n in names
                           if n.split(".")[:2] in (["zfkeras", "report"], ["zfkeras", "cli"])]
    assert upward == []


def test_no_module_is_over_400_lines():
    """One concept per module: a module past 400 lines is split by concept (issue 24)."""
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "zfkeras"
    long = {str(p.relative_to(package)): n for p in package.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert not long, f"modules over 400 lines: {long}"
