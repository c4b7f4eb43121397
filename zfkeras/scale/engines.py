"""Who runs the blocks: in this process ("local") or a Ray cluster ("ray", Ray Data).

Both take a worker class (`work.ScanWorker` / `work.ProjectWorker`), its constructor
arguments and the numbered items (a block's paths, a group's image ids), and call
`on_done(number, result)` in the driver as each block finishes, in any order.

On Ray, `Dataset.map_batches` runs the worker as a stateful callable class: one
actor per worker holds one copy of the model (built once in `__init__`), on
`num_gpus` GPUs when asked; an actor that dies is restarted and its blocks are
retried (Ray Data's defaults for actor pools: `max_restarts=-1`, `max_task_retries=-1`),
so a lost worker costs time, not results.
Ray is imported only here and only for `engine="ray"` (`pip install "zfkeras[ray]"`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from zfkeras.scale.store import pack, unpack

ENGINES = ("local", "ray")
OnDone = Callable[[int, dict], None]


def check_engine(engine: str, workers: int, gpus_per_worker: float, address: str | None = None,
                 cpus_per_worker: float | None = None) -> None:
    """One-line errors for the engine options, before any work (and Ray importable for "ray")."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}; got {engine!r}")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int; got {workers!r}")
    if gpus_per_worker < 0:
        raise ValueError(f"gpus per worker must be >= 0; got {gpus_per_worker!r}")
    if cpus_per_worker is not None and cpus_per_worker <= 0:
        raise ValueError(f"cpus per worker must be > 0; got {cpus_per_worker!r}")
    if engine == "ray":
        try:
            import ray  # noqa: F401
            import ray.data  # noqa: F401
        except ImportError:
            raise RuntimeError(
                'engine "ray" needs Ray Data: pip install "zfkeras[ray]" (or use --engine local)'
            ) from None
    elif workers != 1 or gpus_per_worker or address or cpus_per_worker:
        raise ValueError(
            "--workers, --gpus-per-worker, --cpus-per-worker and --address are for --engine ray; "
            "the local engine uses this process"
        )


def run_blocks(
    engine: str,
    worker_cls: type,
    worker_kwargs: Mapping[str, Any],
    items: Sequence[tuple[int, Sequence[str]]],
    on_done: OnDone,
    *,
    workers: int = 1,
    gpus_per_worker: float = 0,
    cpus_per_worker: float | None = None,
    address: str | None = None,
) -> None:
    """Run `worker_cls(**worker_kwargs)(item)` for every `(number, item)`; `on_done` each result.

    `cpus_per_worker`: CPUs each Ray actor reserves, and TensorFlow's threads in it (None: one
    CPU reserved, TensorFlow's own thread count; on a CPU-only host give `cores / workers`, so
    the actors do not oversubscribe the cores)."""
    if not items:
        return
    if engine == "local":
        worker = worker_cls(**worker_kwargs)
        for number, item in items:
            on_done(number, worker(item))
        return
    _run_ray(worker_cls, worker_kwargs, items, on_done, workers, gpus_per_worker, cpus_per_worker, address)


class _RayBlocks:
    """The Ray Data callable class: one worker (one model copy) per actor; a batch is a few blocks."""

    def __init__(self, worker_cls: type, worker_kwargs: Mapping[str, Any], threads: int | None = None):
        import ray

        if threads:  # before the model is built: TensorFlow's thread pools start with the first op
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)

        kwargs = {k: ray.get(v) if isinstance(v, ray.ObjectRef) else v for k, v in worker_kwargs.items()}
        self.worker = worker_cls(**kwargs)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = [pack(self.worker(json.loads(str(item)))) for item in batch["item"]]
        return {"block": np.asarray(batch["block"]), "result": np.array(results, dtype=object)}


def connect(address: str | None = None) -> None:
    """`ray.init` unless already connected: `address` ("auto", "HOST:PORT", "ray://...") joins a
    running cluster; None starts a local one. Workers import this copy of zfkeras."""
    import ray

    if ray.is_initialized():
        return
    root = str(Path(__file__).resolve().parents[2])
    paths = [root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    ray.init(
        address=address,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths)),
                                  "TF_CPP_MIN_LOG_LEVEL": "2"}},
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
    )


def _run_ray(worker_cls, worker_kwargs, items, on_done: OnDone, workers: int, gpus: float,
             cpus: float | None, address) -> None:
    import ray
    import ray.data

    connect(address)
    have = ray.cluster_resources()
    for name, need in (("CPU", workers * (cpus or 1)), ("GPU", workers * gpus)):
        if need and have.get(name, 0) < need:
            raise ValueError(
                f"{workers} workers need {need:g} {name}s; the Ray cluster has {have.get(name, 0):g}: "
                "ask for fewer --workers / --gpus-per-worker or add nodes"
            )
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the driver shows one bar per phase
    ctx.print_on_execution_start = False
    big = {k: ray.put(v) for k, v in worker_kwargs.items()}  # the model once in the object store
    rows = [{"block": int(n), "item": json.dumps(list(item))} for n, item in items]
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    ds = ds.map_batches(
        _RayBlocks,
        fn_constructor_kwargs={"worker_cls": worker_cls, "worker_kwargs": big,
                               "threads": max(1, int(cpus)) if cpus else None},
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=int(workers)),
        num_cpus=cpus or 1,
        num_gpus=float(gpus) if gpus else None,
    )
    for row in ds.iter_rows():
        on_done(int(row["block"]), unpack(row["result"]))
