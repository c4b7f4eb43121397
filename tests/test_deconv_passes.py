"""What the batched projection pass costs, counted (not timed), and that batching does not change it.

`Deconvnet.chain` counts the graph traces per (layer, mode) and the passes run per batch shape;
`top_projections` must forward each image once per layer (its pairs in one batch) and reuse one
graph for batches of any size, and a batch must give the per-pair projections within float32
rounding (`assert_close_f32`: the batch with the full forward, each pair alone with the cone forward).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from conftest import TINY, assert_close_f32, weighted_depth
from zfkeras import ZFNet
from zfkeras.deconv import Deconvnet, scan_top_activations, top_projections
from zfkeras.deconv.display import cut_patch, to_display, to_uint8
from zfkeras.deconv.visuals import keyed_batches


@pytest.fixture(scope="module")
def scanned():
    keras.utils.set_random_seed(3)
    model = ZFNet(**TINY)
    x = np.random.default_rng(5).integers(0, 256, (5, 64, 64, 3)).astype(np.float32)
    ids = [f"im{i}" for i in range(5)]
    top = scan_top_activations(Deconvnet(model), [(ids, x)], layers=["conv5"], k=3, progress=False)
    return model, dict(zip(ids, x)), top


def test_image_batches_keep_an_image_together():
    keys = ["a", "a", "a", "b", "b", "c", "d", "d", "d", "d", "d"]
    got = keyed_batches(list(range(len(keys))), keys, 4)
    # a (3) | b (2) + c (1) | d (5 > 4): 4 of its own, then its last one
    assert got == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9], [10]]
    assert keyed_batches([], [], 4) == []


@pytest.mark.parametrize("rule", ["deconvnet", "guided"])
def test_one_forward_per_image_and_one_graph(scanned, rule):
    model, images, top = scanned
    lt = top.layers["conv5"]
    live = lt.values > 0
    per_image = {u: int(((lt.ids == u) & live).sum()) for u in images}
    used = [u for u, n in per_image.items() if n]
    batch = max(per_image.values()) + 1
    # the precondition that makes this test able to fail: plain slices of `batch` pairs sorted by
    # image would cut some image's pairs in two (forwarding it twice)
    keys = sorted(str(u) for u in lt.ids[live])
    slices = [set(keys[s : s + batch]) for s in range(0, len(keys), batch)]
    assert sum(map(len, slices)) > len(used)

    deconv = Deconvnet(model)
    out = top_projections(deconv, top, "conv5", images, rule=rule, batch_size=batch)
    runs = deconv.chain.batches
    assert runs and not any(b.cone for b in runs)  # full forward: one per image of the batch
    assert sum(b.images * n for b, n in runs.items()) == len(used)
    assert sum(b.pairs * n for b, n in runs.items()) == int(live.sum())
    assert list(deconv.chain.traces.values()) == [1]
    # another batch size, another number of images per batch: the same graph, no retracing
    top_projections(deconv, top, "conv5", images, rule=rule, batch_size=3)
    assert list(deconv.chain.traces.values()) == [1]

    # the tiles equal the display of per-pair projections (each pair in a batch of its own)
    h, w, _ = deconv.view.input_shape
    rows, cols = deconv.view.receptive_field("conv5")
    whole = rows.size > h or cols.size > w  # fields larger than the image: the whole image shown
    for c in range(lt.channels):
        for j in range(top.k):
            if not live[c, j]:
                continue
            pos = np.array([[lt.rows[c, j], lt.cols[c, j]]])
            one = deconv.project_pairs(images[lt.ids[c, j]][None], "conv5", [0], [c], pos, rule=rule)
            window = (0, 0, h, w) if whole else deconv.view.window("conv5", *pos[0])
            crop = cut_patch(one.images[0], window, fill=0)
            tile = to_uint8(to_display(crop, out.contrast)).astype(int)
            assert np.abs(tile - out.projections[c, j].astype(int)).max() <= 1  # uint8 rounding


@pytest.mark.parametrize("rule", ["deconvnet", "guided"])
def test_batch_equals_pairs_one_at_a_time(scanned, rule):
    model, images, top = scanned
    lt = top.layers["conv5"]
    live = np.argwhere(lt.values > 0)
    ids = sorted(images)
    x = np.stack([images[u] for u in ids])
    index = np.array([ids.index(str(lt.ids[c, j])) for c, j in live])
    pos = np.stack([lt.rows[tuple(live.T)], lt.cols[tuple(live.T)]], axis=-1)
    deconv = Deconvnet(model)
    batch = deconv.project_pairs(x, "conv5", index, live[:, 0], pos, rule=rule, forward="full")
    for n in range(len(live)):
        one = deconv.project_pairs(x[index[n]][None], "conv5", [0], [live[n, 0]], pos[n][None],
                                   rule=rule, forward="cone")
        np.testing.assert_array_equal(one.positions[0], batch.positions[n])
        assert_close_f32(one.activations[0], batch.activations[n], weighted_depth(model, "conv5"))
        assert_close_f32(one.images[0], batch.images[n], weighted_depth(model, "conv5"),
                         err_msg=f"pair {n}")
    np.testing.assert_allclose(batch.activations, lt.values[tuple(live.T)], rtol=1e-5)
