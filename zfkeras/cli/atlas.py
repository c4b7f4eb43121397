"""`zfkeras atlas`: the full atlas (Fig 2 for every channel), resumable, in process or on a Ray cluster.

    zfkeras atlas MODEL DATA --out DIR [--engine local|ray] [--address auto|HOST:PORT]
                  [--workers N] [--gpus-per-worker G] [--cpus-per-worker C]
                  [--layers conv1,conv5] [--channels N|all] [--rule deconvnet]

The same scan and projections as `zfkeras visualize`, written by its writer
(`zfkeras.report.figures.atlas_panel.write_atlas`) into the same folder (top9.json, <layer>_top9.npz/.png,
config.json; `zfkeras report --top9-dir DIR` reuses it), computed in blocks stored under DIR/blocks/: a
rerun of the same command skips the finished blocks; other settings in the same DIR are
refused. With --engine ray the blocks run on Ray actors, one model copy per
worker (on G GPUs each); DATA must be readable at the same path on every node.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from zfkeras.report.figures.fig2_top9 import TopActivationsFigure
    from zfkeras.scale.engines import check_engine, open_pool

    workers = args.workers if args.workers is not None else (2 if args.engine == "ray" else 1)
    # engine options checked before the model is loaded
    check_engine(args.engine, workers, args.gpus_per_worker, args.address, args.cpus_per_worker)
    TopActivationsFigure.check_options(args, "top", "channels")
    pool = open_pool(args.engine, workers=workers, gpus_per_worker=args.gpus_per_worker,
                     cpus_per_worker=args.cpus_per_worker, address=args.address)
    with pool as pool:
        pool.start()  # Ray: the workers import TensorFlow while this process loads the model and lists DATA
        return _atlas(args, pool)


def _atlas(args: argparse.Namespace, pool) -> int:
    from zfkeras.cli._atlas import atlas_inputs, write_folder
    from zfkeras.scale import build_atlas, store_atlas

    given = atlas_inputs(args)
    s = given.settings
    atlas = build_atlas(
        given.deconv, given.paths, args.out, layers=list(s.layers), k=s.top, channels=s.channels, seed=s.seed,
        contrast=s.contrast, pool=pool, batch_size=s.batch_size, block_size=args.block_size,
        group_size=args.group_size, progress=not args.quiet,
        model_file=args.model if Path(args.model).is_file() else None,  # Ray workers read it
    )
    skipped = [{"path": p, "reason": r} for p, r in atlas.skipped]
    result = store_atlas(args.out, atlas, s)
    for w in result.warnings:
        print(w)
    write_folder(args, result, skipped)
    if not args.quiet:
        from zfkeras.data.files import skipped_summary

        b = atlas.blocks
        print(f"{skipped_summary(skipped, len(given.paths))}; blocks computed/reused: scan "
              f"{b['scan']['computed']}/{b['scan']['reused']}, projections "
              f"{b['project']['computed']}/{b['project']['reused']}; wrote {args.out}")
    return 0


def add_parser(sub) -> None:
    from zfkeras.cli._atlas import add_atlas_arguments

    p = sub.add_parser(
        "atlas",
        help="the full atlas (Fig 2 for every channel) in resumable blocks, in process or on Ray",
        description=__doc__.split("\n\n")[0],
    )
    add_atlas_arguments(p, channels=0, out_help="output folder (a rerun resumes in it)")
    g = p.add_argument_group("engine")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process (default); ray: Ray actors (pip install \"zfkeras[ray]\")")
    g.add_argument("--address", default=None,
                   help="Ray cluster to join: auto, HOST:PORT or ray://HOST:PORT (default: start a local one)")
    g.add_argument("--workers", type=int, default=None, help="Ray actors, one model copy each (default 2)")
    g.add_argument("--gpus-per-worker", type=float, default=0, help="GPUs per Ray actor (default 0: CPU)")
    g.add_argument("--cpus-per-worker", type=float, default=None,
                   help="CPUs per Ray actor and its TensorFlow threads (default: 1 reserved, TensorFlow's own "
                        "threads; on a CPU-only host: cores / workers)")
    g.add_argument("--block-size", type=int, default=None,
                   help="images per scan block, a multiple of --batch-size (default 8 batches)")
    g.add_argument("--group-size", type=int, default=64, help="images per projection block (default 64)")
    p.set_defaults(func=run)
