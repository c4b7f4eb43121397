"""Who runs the blocks: in this process ("local") or on a Ray cluster ("ray").

`open_pool(engine, ...)` gives the workers of one atlas: `pool.start()` starts them,
`pool.use(deconv, model_file)` gives them the model, `pool.run(worker_cls, kwargs, items,
on_done)` runs `worker_cls(deconv, **kwargs)(item)` for every numbered item (a block's paths,
a group's image ids) and calls `on_done(number, payload)` in the driver as each block
finishes, in any order, with the block's result as npz bytes (`store.pack`: what the driver
stores as it is). Both phases (scan, then the projections) run on the same workers.

On Ray, one actor per worker (`num_gpus` per actor when asked) imports TensorFlow when it
starts, builds the model once on its first block (one model copy per worker process / GPU)
and serves both phases: the pool starts once per atlas, not once per phase (a start costs a
process, TensorFlow's import and the model: 8-20 s on this machine's 2 loaded cores). Ray
Data's `map_batches` actor pool lives for one dataset execution, and the two phases are
separated by the global top-k merge, so the pool here is a few plain Ray actors with Ray
Data's retry policy for actor pools (`max_restarts=-1`, `max_task_retries=-1`): an actor that
dies is restarted and its blocks retried, while the other actors keep taking the next blocks,
so a lost worker costs time, not results. Each actor keeps two blocks queued, so it computes
while the driver stores results. Ray is imported only here and only for `engine="ray"`
(`pip install "zfkeras[ray]"`).
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from zfkeras.scale.store import pack

ENGINES = ("local", "ray")
QUEUED = 2  # blocks in flight per Ray actor
OnDone = Callable[[int, bytes], None]
Items = Sequence[tuple[int, Sequence[str]]]


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
        except ImportError:
            raise RuntimeError('engine "ray" needs Ray: pip install "zfkeras[ray]" (or use --engine local)') from None
    elif workers != 1 or gpus_per_worker or address or cpus_per_worker:
        raise ValueError(
            "--workers, --gpus-per-worker, --cpus-per-worker and --address are for --engine ray; "
            "the local engine uses this process"
        )


@contextlib.contextmanager
def open_pool(engine: str, *, workers: int = 1, gpus_per_worker: float = 0, cpus_per_worker: float | None = None,
              address: str | None = None) -> Iterator["LocalPool | RayPool"]:
    """The workers of one atlas, stopped on exit (whatever happened); `pool.use(deconv)` gives them the model.

    A Ray pool joins (or starts) the cluster here; `pool.start()` then starts its actors, which
    import TensorFlow while the driver loads its own model and lists the images.
    `cpus_per_worker`: CPUs each Ray actor reserves, and TensorFlow's threads in it (None: one
    CPU reserved, TensorFlow's own thread count; on a CPU-only host give `cores / workers`, so
    the actors do not oversubscribe the cores).
    """
    check_engine(engine, workers, gpus_per_worker, address, cpus_per_worker)
    pool = LocalPool() if engine == "local" else RayPool(workers, gpus_per_worker, cpus_per_worker, address)
    try:
        yield pool
    finally:
        pool.close()


class LocalPool:
    """This process: the driver's own `Deconvnet` (and its compiled graphs) serves every block."""

    def __init__(self):
        self.deconv = None

    def start(self) -> None:
        """Nothing to start (the Ray pool starts its actors here)."""

    def use(self, deconv, model_file: str | os.PathLike | None = None) -> None:
        """The model of the blocks to come (`model_file`: for Ray workers, unused here)."""
        self.deconv = deconv

    def run(self, worker_cls: type, worker_kwargs: Mapping[str, Any], items: Items, on_done: OnDone) -> None:
        if not items:
            return
        worker = worker_cls(self.deconv, **worker_kwargs)
        for number, item in items:
            on_done(number, pack(worker(item)))

    def close(self) -> None:
        self.deconv = None


class _Actor:
    """One Ray worker: imports TensorFlow when created, builds the model once (`ModelRecipe.build`,
    on its first block), then runs the blocks of any phase.

    The phase's worker (`ScanWorker`, `ProjectWorker`) is built on the first block of the phase
    from the phase's arguments (an object-store reference, fetched once per actor). Each result
    carries the actor's `model_seconds` (building the model)."""

    def __init__(self, threads: int | None = None):
        import tensorflow as tf

        if threads:  # before any op: TensorFlow's thread pools start with the first one
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        import zfkeras.scale.work  # noqa: F401  (imported now: Keras, the deconvnet, the workers)

        self.model_key, self.deconv, self.model_seconds = None, None, 0.0
        self.key, self.worker = None, None

    def run(self, model: tuple, key: str, worker_cls: type, box: list, item: list) -> bytes:
        import ray

        if model[0] != self.model_key:
            start = time.perf_counter()
            self.key, self.worker, self.deconv = None, None, None
            self.deconv = ray.get(model[1]).build()
            self.model_key, self.model_seconds = model[0], time.perf_counter() - start
        if key != self.key:
            self.key, self.worker = None, None  # the previous phase's worker goes first
            self.worker = worker_cls(self.deconv, **ray.get(box[0]))
            self.key = key
        return pack({**self.worker(item), "model_seconds": np.array(self.model_seconds)})


class RayPool:
    """`workers` Ray actors (`_Actor`), started once (`start`, or the first `run`) and killed on `close`."""

    def __init__(self, workers: int, gpus: float, cpus: float | None, address: str | None):
        import ray

        connect(address)
        have = ray.cluster_resources()
        for name, need in (("CPU", workers * (cpus or 1)), ("GPU", workers * gpus)):
            if need and have.get(name, 0) < need:
                raise ValueError(
                    f"{workers} workers need {need:g} {name}s; the Ray cluster has {have.get(name, 0):g}: "
                    "ask for fewer --workers / --gpus-per-worker or add nodes"
                )
        self.size, self.gpus, self.cpus = int(workers), float(gpus), cpus
        self.actors: list = []
        # per actor: seconds from `start` to its first result, less that block's own seconds (the
        # actor's process, TensorFlow's import, its model, waiting for a CPU)
        self.startup: dict[int, float] = {}
        self.model: tuple | None = None

    def start(self) -> None:
        """Create the actors (asynchronously: they import TensorFlow while the driver goes on)."""
        if self.actors:
            return
        import ray

        cls = ray.remote(_Actor).options(num_cpus=self.cpus or 1, num_gpus=self.gpus or 0,
                                         max_restarts=-1, max_task_retries=-1)
        threads = max(1, int(self.cpus)) if self.cpus else None
        self.actors = [cls.remote(threads) for _ in range(self.size)]
        self.started = time.perf_counter()

    def use(self, deconv, model_file: str | os.PathLike | None = None) -> None:
        """The model of the blocks to come, as a `work.ModelRecipe`: the `.keras` file `model_file`
        (read by every worker at the same path) or, without it, the pickled model."""
        import ray

        from zfkeras.scale.work import ModelRecipe

        # (key, reference): kept alive here, so a restarted actor reads it again
        self.model = (uuid.uuid4().hex, ray.put(ModelRecipe.of(deconv, model_file)))

    def run(self, worker_cls: type, worker_kwargs: Mapping[str, Any], items: Items, on_done: OnDone) -> None:
        """Each actor takes the next block as soon as it has fewer than `QUEUED` in flight."""
        if not items:
            return
        import ray

        if self.model is None:
            raise RuntimeError("no model: call pool.use(deconv) first")
        self.start()
        key, box = uuid.uuid4().hex, [ray.put(dict(worker_kwargs))]  # in a list: fetched by the actor, once
        todo = collections.deque(items)
        pending: dict = {}

        def submit(a: int) -> None:
            number, item = todo.popleft()
            pending[self.actors[a].run.remote(self.model, key, worker_cls, box, list(item))] = (number, a)

        for _ in range(QUEUED):
            for a in range(self.size):
                if todo:
                    submit(a)
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            number, a = pending.pop(ref)
            try:
                payload = ray.get(ref)
            except ray.exceptions.RayActorError as err:  # not a lost process (retried): a failed start
                raise RuntimeError(f"a Ray worker could not start: {_last_line(err)}") from None
            if todo:
                submit(a)  # before the driver stores this block: the actor does not wait for it
            if a not in self.startup:
                seconds = float(np.load(io.BytesIO(payload), allow_pickle=False)["seconds"])
                self.startup[a] = time.perf_counter() - self.started - seconds
            on_done(number, payload)

    def close(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor)
        self.actors, self.model = [], None


def _last_line(err: BaseException) -> str:
    lines = [l.strip() for l in str(err).splitlines() if l.strip()]
    errors = [l for l in lines if "Error:" in l]
    return (errors or lines or [type(err).__name__])[-1]


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
