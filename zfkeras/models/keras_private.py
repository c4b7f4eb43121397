"""Every use of Keras' private graph API in zfkeras, in one place (Keras 3.15).

Keras 3 has no public way to (a) run a functional graph with a function substituted for each
layer call, (b) get the functional graph of a `Sequential` model, (c) find the layer call that
produced a symbolic tensor (a layer called twice, as in `with_switches`, has two). zfkeras
needs all three: the model view replays models on a fresh input, the backward rules run the graph
with their gradients, the deconvnet's chain route walks the graph from its output. Each is one
function here; `check()` fails loudly, naming what is missing, when a Keras version changes
them (`tests/test_structure.py` calls it). Everything else in zfkeras uses public Keras API.
"""

from __future__ import annotations

from typing import Any, Callable

import keras

__all__ = ["check", "functional_graph", "has_graph", "producer", "run_through_graph"]


def has_graph(model: keras.Model) -> bool:
    """Whether `model` is a functional graph that `run_through_graph` can run."""
    return hasattr(model, "_run_through_graph")


def functional_graph(model: keras.Sequential):
    """The functional model inside a built `Sequential` (None when it has none yet)."""
    return getattr(model, "_functional", None)


def run_through_graph(graph: keras.Model, inputs, call_fn: Callable[..., Any]):
    """Run a functional model's graph on `inputs`, `call_fn(layer, *args, **kwargs)` for every layer call."""
    return graph._run_through_graph(inputs, operation_fn=lambda op: op, call_fn=call_fn)


def producer(tensor) -> tuple[Any, Any] | None:
    """`(layer, node)`: the layer call that made a symbolic tensor (its node: `input_tensors`,
    `output_tensors`), or None for a tensor with no history."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    layer = history.operation
    return layer, layer._inbound_nodes[history.node_index]


def check() -> None:
    """Raise a RuntimeError naming the private API this Keras version no longer has (or changed)."""
    problems = []
    try:
        inp = keras.Input((4, 4, 1))
        dense = keras.layers.Dense(1, name="probe_dense")
        out = dense(dense(inp))  # called twice: two nodes
        model = keras.Model(inp, out)
        seq = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    except Exception as err:  # noqa: BLE001 (any failure here is Keras' internals changing)
        raise RuntimeError(f"Keras {keras.__version__} changed private API zfkeras relies on: building a "
                           f"functional model failed ({type(err).__name__}: {err}); see "
                           "zfkeras/models/keras_private.py") from err
    if not has_graph(model):
        problems.append("keras.Model._run_through_graph")
    graph = functional_graph(seq)
    if graph is None or not has_graph(graph):
        problems.append("keras.Sequential._functional")
    try:
        second = producer(out)
        first = producer(second[1].input_tensors[0])
        ok = second[0] is dense and first[0] is dense and first[1] is not second[1]
    except (AttributeError, IndexError, TypeError):
        ok = False
    if not ok:
        problems.append("KerasTensor._keras_history / Layer._inbound_nodes")
    if not problems:
        calls = []
        run_through_graph(model, keras.ops.ones((1, 4, 4, 1)),
                          lambda layer, *a, **k: calls.append(layer.name) or layer(*a, **k))
        if calls != ["probe_dense", "probe_dense"]:
            problems.append(f"_run_through_graph's call_fn (called for {calls})")
    if problems:
        raise RuntimeError(f"Keras {keras.__version__} changed private API zfkeras relies on: "
                           f"{', '.join(problems)}; see zfkeras/models/keras_private.py")
