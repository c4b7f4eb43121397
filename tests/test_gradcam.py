"""Grad-CAM, guided Grad-CAM and class projections against an independent tf.GradientTape version."""

from __future__ import annotations

import numpy as np
import pytest


def _split_logits(model, layer: str, images: np.ndarray):
    """Independent reference: the model split by hand at `layer`, the logit from the output
    layer's own kernel and bias (no softmax). Returns (map, d logit / d map, classes, d logit / d x)."""
    import keras
    import tensorflow as tf

    names = [l.name for l in model.layers]
    below = keras.Model(model.inputs[0], model.get_layer(layer).output)
    x0 = tf.constant(images)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x0)
        a = below(x0, training=False)
        a = a[0] if isinstance(a, (list, tuple)) else a
        x = a
        for n in names[names.index(layer) + 1:]:
            lay = model.get_layer(n)
            if n == "predictions":
                x = tf.matmul(x, lay.kernel) + lay.bias
            else:
                x = lay(x, training=False)
                x = x[0] if isinstance(x, (list, tuple)) else x
        classes = tf.argmax(x, axis=-1, output_type=tf.int32)
        score = tf.gather(x, classes, batch_dims=1)
    g_map, g_x = tape.gradient(score, a).numpy(), tape.gradient(score, x0).numpy()
    return a.numpy(), g_map, classes.numpy(), g_x


@pytest.mark.parametrize("layer", ["conv5", "conv3", None])
def test_gradcam_equals_independent_tape(tiny_model, rng, layer):
    import tensorflow as tf

    from zfkeras.analysis.gradcam import GradCAM

    images = rng.uniform(0, 255, (3, 64, 64, 3)).astype(np.float32)
    a, g, classes, _ = _split_logits(tiny_model, layer or "pool5", images)
    ref = np.maximum((a * g.mean(axis=(1, 2), keepdims=True)).sum(-1), 0)
    # the upsampling is part of the definition: bilinear, half-pixel centres (tf.image.resize)
    ref_up = tf.image.resize(ref[..., None], (64, 64), method="bilinear").numpy()[..., 0]

    res = GradCAM(tiny_model, layer, batch_size=2).run(images)
    assert res.layer == (layer or "pool5")  # default: the model view's last spatial layer
    np.testing.assert_array_equal(res.targets, classes)
    assert ref.max() > 0
    # float32, different op order: relative 1e-4 of the map's scale
    np.testing.assert_allclose(res.cams, ref, rtol=1e-4, atol=1e-5 * ref.max())
    np.testing.assert_allclose(res.heatmaps, ref_up, rtol=1e-4, atol=1e-5 * ref.max())


def test_gradient_projection_and_guided_gradcam(tiny_model, rng):
    from zfkeras.analysis.gradcam import GradCAM, class_projection

    images = rng.uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    _, _, classes, g_x = _split_logits(tiny_model, "conv5", images)
    got = class_projection(tiny_model, images, None, rule=None)  # the true gradient
    np.testing.assert_allclose(got, g_x, rtol=1e-4, atol=1e-5 * np.abs(g_x).max())
    # a given class is explained as given
    other = (classes + 1) % 5
    got_other = class_projection(tiny_model, images, list(other), rule=None)
    assert not np.allclose(got_other, got)

    res = GradCAM(tiny_model, "conv5").run(images)
    guided = class_projection(tiny_model, images, list(res.targets), rule="guided")
    np.testing.assert_allclose(res.guided, guided * res.heatmaps[..., None], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    (dict(layer="nope"), "unknown layer 'nope'"),
    (dict(layer="fc6"), "unknown layer 'fc6'"),
    (dict(batch_size=0), "`batch_size` must be an int >= 1"),
])
def test_gradcam_bad_input(tiny_model, kwargs, message):
    from zfkeras.analysis.gradcam import GradCAM

    with pytest.raises(ValueError, match=message):
        GradCAM(tiny_model, **kwargs)


def test_gradcam_bad_images_and_targets(tiny_model):
    from zfkeras.analysis.gradcam import GradCAM

    cam = GradCAM(tiny_model, guided=False)
    with pytest.raises(ValueError, match=r"`images` must have shape \(B, 64, 64, 3\)"):
        cam.run(np.zeros((2, 32, 32, 3)))
    with pytest.raises(ValueError, match="class index 9 out of range"):
        cam.run(np.zeros((2, 64, 64, 3)), targets=9)
