"""Feature visualization by optimization: the image a unit wants to see (Olah et al. 2017, Distill).

The paper's Fig 2 shows what excites a unit among a dataset's images; this is the other half of
a unit's portrait: an input optimized, by gradient ascent, to excite it. As lucid made it
readable (its `render_vis`; TensorFlow 1 only), and for any network the model view takes:

- the image is a **Fourier spectrum with 1/f scaling in decorrelated colour**, squashed to
  0..255 (`zfkeras.analysis.fv_image`);
- every step shows the model a **randomly padded, jittered, scaled and rotated** copy
  (`zfkeras.analysis.fv_transforms`), through the model's own preprocessing (the model view:
  images are raw RGB 0..255, so Caffe-style or [-1, 1] models need nothing extra);
- objectives: "channel" (the mean of a feature map, or a dense unit), "neuron" (one position
  of a map; default the centre) and "class" (a class logit, before any softmax);
- many units of one layer are **one batch** (`batch_size` images per optimization); every image
  has its own seeded generator for its start and its transformations, so its result does not
  depend on what else is in the batch (up to float32 rounding of the batched convolutions);
- **diversity**: `copies` images per unit, pushed apart by lucid's penalty on the cosine
  similarity of their Gram matrices (style) at the objective's layer.

Seeded and deterministic on CPU::

    fv = FeatureVisualization(model, "conv3", steps=256, seed=0)
    res = fv.run([0, 5, 17], progress=True)     # one batch of three channels
    res.images            # (3, H, W, 3) uint8 raw RGB
    res.values            # (3, steps) objective per step (on the transformed images)
    res.final             # (3,) objective on the finished images as they are
"""

from __future__ import annotations

import time
from typing import Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from zfkeras.analysis.base import Analysis, check_int, progress_bar, resolve_class
from zfkeras.analysis.fv_objective import logits_target, pre_relu_target, pre_relu_wanted
from zfkeras.analysis.fv_image import init_spectrum, params_to_rgb, resolve_color, spectrum_scale
from zfkeras.analysis.fv_result import FeatureVisualizationResult
from zfkeras.analysis.fv_transforms import Transforms, apply_affine, sample_affine
from zfkeras.models.view import ModelView

__all__ = ["FeatureVisualization", "FeatureVisualizationResult", "Transforms", "feature_visualization", "visualize_maps"]

OBJECTIVES = ("channel", "neuron", "class")


class FeatureVisualization(Analysis):
    """Images optimized to excite chosen units of one layer (or class logits), as one batch.

    Args:
        model: any Keras CNN, a `.keras` path, "keras.applications.NAME" or a `ModelView`.
        layer: the layer of "channel" / "neuron" objectives (default: the last spatial layer);
            ignored for "class" (the output's logits).
        objective: "channel" (mean of the feature map; a dense layer's unit), "neuron" (the map at
            `position`) or "class" (the logit of a class).
        position: `(row, col)` of a "neuron" in the layer's map (default: its centre).
        steps: Adam steps; learning_rate: Adam's step size (lucid: 0.05).
        batch_size: images per optimization (units x copies; a unit's copies stay together).
        copies: images per unit; with `copies > 1` a diversity penalty of `diversity_weight`
            pushes them apart (the cosine similarity of their Gram matrices at the layer's output,
            after its ReLU; a map layer only). Its scale depends on the objective's: lucid used
            100 for InceptionV1; on the shipped ZFNet's conv5, 1 lowers the copies' Gram cosine
            from 0.97 to ~0.7 and keeps most of the objective, 3 and more trade most of it away
            (BENCHMARKS.md).
        color: "imagenet" (lucid's colour correlation, right for keras.applications models),
            a `(3, 3)` matrix or RGB images `(N, H, W, 3)` to measure it from, or "none".
        transforms: `Transforms` (default: lucid's, pad and jitter scaled to the input size);
            `Transforms.none()` for plain gradient ascent.
        decay_power: exponent of the spectrum's 1/f scaling (0: white, pixel-like).
        pre_relu: for a layer that ends in a ReLU (a Conv2D / Dense with `activation="relu"`, or
            a ReLU layer), optimize the value before it (lucid's `*_pre_relu`): a unit that is
            off at the start still gets a gradient. `values` / `final` are then pre-ReLU;
            `activations` gives the layer's own output. None (default): before the ReLU unless
            that value is affine in the image (a first conv layer, whose channel mean before the
            ReLU sees only the image's mean colour: its optimum is a flat colour field), then
            after it (`zfkeras.analysis.fv_objective`).
        seed: the start and every transformation derive from it (and the unit).
        preprocess: the model's input convention ("caffe", "torch", "tf") if not raw RGB.

    Raises:
        ValueError: unknown layer or objective, a "neuron" position outside the map, or a model
            without a spatial layer when no layer is given (one line each, before any work).
    """

    def __init__(
        self,
        model: keras.Model | ModelView | str,
        layer: str | None = None,
        *,
        objective: str = "channel",
        position: tuple[int, int] | None = None,
        steps: int = 256,
        learning_rate: float = 0.05,
        batch_size: int = 64,
        copies: int = 1,
        diversity_weight: float = 1.0,
        color="imagenet",
        transforms: Transforms | None = None,
        decay_power: float = 1.0,
        pre_relu: bool | None = None,
        seed: int = 0,
        preprocess: str | None = None,
    ):
        super().__init__(model, preprocess)
        view = self.view
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}; valid: {', '.join(OBJECTIVES)}")
        for name, value in (("steps", steps), ("batch_size", batch_size), ("copies", copies)):
            check_int(name, value, 1)
        check_int("seed", seed, 0)
        if not float(learning_rate) > 0:
            raise ValueError(f"`learning_rate` must be > 0; got {learning_rate!r}")
        if not float(diversity_weight) >= 0:
            raise ValueError(f"`diversity_weight` must be >= 0; got {diversity_weight!r}")
        self.objective, self.steps, self.learning_rate = objective, int(steps), float(learning_rate)
        self.batch_size, self.copies, self.seed = int(batch_size), int(copies), int(seed)
        self.diversity_weight, self.decay_power = float(diversity_weight), float(decay_power)
        h, w, c = view.input_shape
        self.transforms = Transforms.for_size(min(h, w)) if transforms is None else transforms
        if not isinstance(self.transforms, Transforms):
            raise ValueError(f"`transforms` must be a Transforms; got {type(transforms).__name__}")
        self.color = resolve_color(color, c)
        self._color_setting = color if isinstance(color, str) else "given"
        self.position: tuple[int, int] | None = None
        self.pre_relu = False
        if objective == "class":
            self.layer = view.output_layer
            target = logits_target(view)
            self.n_units = int(target.shape[-1])
        else:
            if layer is None:
                if not view.layer_names:
                    raise ValueError(
                        f"model {view.source.name!r} has no spatial layer to visualize; "
                        "objective='class' optimizes its class logits instead")
                layer = view.default_layer
            info = view.layer(layer, spatial=objective == "neuron")  # ValueError listing valid layers
            self.layer = layer
            target = pre_relu_target(info) if pre_relu_wanted(view, info, pre_relu) else None
            self.pre_relu = target is not None
            target = info.output if target is None else target
            if len(target.shape) not in (2, 4):
                raise ValueError(f"layer {layer!r} must output (B, C) or (B, H, W, C); got {target.shape}")
            self.n_units = int(target.shape[-1])
            if objective == "neuron":
                mh, mw = int(target.shape[1]), int(target.shape[2])
                pos = (mh // 2, mw // 2) if position is None else tuple(int(p) for p in position)
                if len(pos) != 2 or not (0 <= pos[0] < mh and 0 <= pos[1] < mw):
                    raise ValueError(f"neuron position {position!r} is outside the {mh}x{mw} map of layer {layer!r} "
                                     f"(rows 0..{mh - 1}, cols 0..{mw - 1})")
                self.position = pos
        self._probe = view.probe(target, name=f"{view.model.name}_featvis")
        own = view.layers[self.layer].output if objective != "class" else view.model.outputs[0]
        self._own = view.probe(own, name=f"{view.model.name}_featvis_layer")
        # the objective's tensor and the layer's own output (the diversity penalty's, as lucid's)
        self._both = view.probe([target, own], name=f"{view.model.name}_featvis_both")
        self._scale = tf.constant(spectrum_scale(h, w, self.decay_power))
        fill = view.neutral_pixel().reshape(-1, c).mean(axis=0) / 255.0
        self._fill = tf.constant(np.clip(fill, 0.0, 1.0).astype(np.float32))
        self._color_t = None if self.color is None else tf.constant(self.color)
        self._step_fn = None

    # ------------------------------------------------------------- units
    def resolve_units(self, units) -> list[int]:
        """Unit indices (channels, or classes by index / name); ValueError for unknown ones."""
        if units is None:
            if self.objective == "class":
                raise ValueError("objective 'class' needs the classes to visualize (indices or names)")
            return list(range(self.n_units))
        items = [units] if isinstance(units, (int, np.integer, str)) else list(units)
        if not items:
            raise ValueError("no units to visualize")
        if self.objective == "class":
            return [resolve_class(u, self.view.class_names or [str(i) for i in range(self.n_units)]) for u in items]
        out = []
        for u in items:
            if isinstance(u, bool) or not isinstance(u, (int, np.integer)) or not 0 <= int(u) < self.n_units:
                raise ValueError(f"channel {u!r} out of range for layer {self.layer!r}: valid 0..{self.n_units - 1}")
            out.append(int(u))
        return out

    # ------------------------------------------------------------- the objective
    def _unit_values(self, act: tf.Tensor, onehot: tf.Tensor) -> tf.Tensor:
        """`(N,)` objective of image n for its unit (`onehot` `(N, units)`)."""
        if len(act.shape) == 2:
            return tf.reduce_sum(act * onehot, axis=-1)
        if self.objective == "neuron":
            r, c = self.position
            return tf.reduce_sum(act[:, r, c, :] * onehot, axis=-1)
        return tf.reduce_mean(tf.einsum("nhwc,nc->nhw", act, onehot), axis=(1, 2))

    def objective_values(self, images, units: Sequence[int] | int) -> np.ndarray:
        """`(N,)` objective of `images` (`(N, H, W, C)` raw RGB 0..255, as they are) for
        `units` (one for all or one per image)."""
        x = tf.constant(np.asarray(images, np.float32))
        onehot = self._onehot(units, int(x.shape[0]))
        act = self._probe(x, training=False)
        return self._unit_values(act, onehot).numpy()

    def activations(self, images, units: Sequence[int] | int) -> np.ndarray:
        """`(N,)` the unit's value in the layer's own output (after its ReLU; the class
        probability for "class"): channel mean, neuron or unit, for raw RGB `images`."""
        x = tf.constant(np.asarray(images, np.float32))
        onehot = self._onehot(units, int(x.shape[0]))
        return self._unit_values(self._own(x, training=False), onehot).numpy()

    def input_gradient(self, images, units: Sequence[int] | int) -> np.ndarray:
        """`(N, H, W, C)` gradient of the summed objective w.r.t. raw RGB `images` (the model input)."""
        x = tf.constant(np.asarray(images, np.float32))
        onehot = self._onehot(units, int(x.shape[0]))
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(self._unit_values(self._probe(x, training=False), onehot))
        return tape.gradient(total, x).numpy()

    def _onehot(self, units, n: int) -> tf.Tensor:
        idx = self.resolve_units(units)
        idx = idx * n if len(idx) == 1 else idx
        if len(idx) != n:
            raise ValueError(f"{len(idx)} units for {n} images; give one for all or one per image")
        return tf.one_hot(idx, self.n_units, dtype=tf.float32)

    def _loss(self, spectrum, rows, onehot):
        """Images, per-image objective `(N,)` and the loss minimized (minus objective plus diversity)."""
        h, w, _ = self.view.input_shape
        rgb = params_to_rgb(spectrum, self._scale, self._color_t, h, w)
        x = apply_affine(rgb, rows, self._fill) * 255.0
        act, own = self._both(x, training=False)
        values = self._unit_values(act, onehot)
        loss = -tf.reduce_sum(values)
        if self.copies > 1 and self.diversity_weight > 0 and len(own.shape) == 4:
            loss = loss + self.diversity_weight * _diversity(own, self.copies)
        return values, loss

    def gradients(self, spectrum: np.ndarray, rows: np.ndarray, units) -> tuple[np.ndarray, np.ndarray]:
        """One step's objective `(N,)` and the gradient of the loss w.r.t. the spectrum
        `(N, 2, C, H, W // 2 + 1)`, for affine `rows` `(N, 8)` (`sample_affine`)."""
        var = tf.constant(np.asarray(spectrum, np.float32))
        onehot = self._onehot(units, int(var.shape[0]))
        with tf.GradientTape() as tape:
            tape.watch(var)
            values, loss = self._loss(var, tf.constant(rows, tf.float32), onehot)
        return values.numpy(), tape.gradient(loss, var).numpy()

    def _step(self):
        if self._step_fn is None:
            lr, b1, b2, eps = self.learning_rate, 0.9, 0.999, 1e-7

            @tf.function(reduce_retracing=True)
            def step(var, m, v, t, rows, onehot):
                with tf.GradientTape() as tape:
                    values, loss = self._loss(var, rows, onehot)
                g = tape.gradient(loss, var)
                m.assign(b1 * m + (1 - b1) * g)
                v.assign(b2 * v + (1 - b2) * g * g)
                mhat, vhat = m / (1 - b1 ** t), v / (1 - b2 ** t)
                var.assign_sub(lr * mhat / (tf.sqrt(vhat) + eps))
                return values

            self._step_fn = step
        return self._step_fn

    # ------------------------------------------------------------- run
    def run(self, units=None, targets=None, *, progress: bool = False) -> FeatureVisualizationResult:
        """Optimize `copies` images per unit.

        Args:
            units: channels of the layer (None: all), or classes (indices / names) for "class".
            targets: unused (the units are the targets); kept for the one call shape.
            progress: a bar over all steps (steps/s).

        Returns:
            a `FeatureVisualizationResult` with `N = len(units) * copies` images, unit-major.
        """
        idx = self.resolve_units(units)
        h, w, c = self.view.input_shape
        per_chunk = max(1, self.batch_size // self.copies)
        chunks = [idx[i:i + per_chunk] for i in range(0, len(idx), per_chunk)]
        images, values = [], []
        plan = [(k, s) for k in range(len(chunks)) for s in range(self.steps)]
        step = self._step()
        start = time.perf_counter()
        for k, s in progress_bar(plan, progress, f"feature visualization {self.layer}", "step"):
            if s == 0:  # a new batch of units: its start, its generators, fresh Adam moments
                items = [(u, j) for u in chunks[k] for j in range(self.copies)]
                rngs = [np.random.default_rng([self.seed, u, j]) for u, j in items]
                var = tf.Variable(np.stack([init_spectrum(r, h, w, c) for r in rngs]))
                m, v = tf.Variable(tf.zeros_like(var)), tf.Variable(tf.zeros_like(var))
                onehot = tf.one_hot([u for u, _ in items], self.n_units, dtype=tf.float32)
                trace = np.zeros((len(items), self.steps), np.float32)
            rows = tf.constant(sample_affine(rngs, min(h, w), self.transforms))
            trace[:, s] = step(var, m, v, tf.constant(float(s + 1)), rows, onehot).numpy()
            if s == self.steps - 1:
                rgb = params_to_rgb(var, self._scale, self._color_t, h, w).numpy()
                images.append(np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8))
                values.append(trace)
        seconds = time.perf_counter() - start
        out = np.concatenate(images)
        units_all = np.repeat(np.asarray(idx, np.int64), self.copies)
        final = self.objective_values(out.astype(np.float32), units_all.tolist())
        return FeatureVisualizationResult(
            layer=self.layer, objective=self.objective, units=units_all,
            copies=np.tile(np.arange(self.copies), len(idx)), images=out,
            values=np.concatenate(values), final=final.astype(np.float32),
            position=None if self.position is None else np.asarray(self.position, np.int64),
            class_names=list(self.view.class_names) if self.objective == "class" else None,
            settings=self.settings(), seconds=float(seconds), batches=len(chunks),
        )

    def settings(self) -> dict:
        """The settings that made the images (JSON-ready)."""
        return {
            "layer": self.layer, "objective": self.objective,
            "position": None if self.position is None else list(self.position),
            "steps": self.steps, "learning_rate": self.learning_rate, "batch_size": self.batch_size,
            "copies": self.copies, "diversity_weight": self.diversity_weight, "color": self._color_setting,
            "transforms": self.transforms.to_dict(), "decay_power": self.decay_power,
            "pre_relu": self.pre_relu, "seed": self.seed,
            "image_size": list(self.view.input_shape),
        }


def _diversity(act: tf.Tensor, copies: int) -> tf.Tensor:
    """lucid's diversity penalty: per unit, the summed cosine similarity between the Gram matrices
    of its `copies` images (`act` `(U * copies, ...)`, unit-major), divided by `copies`."""
    n = tf.shape(act)[0]
    ch = act.shape[-1]
    flat = tf.reshape(act, (n, -1, ch))
    grams = tf.linalg.matmul(flat, flat, transpose_a=True)
    grams = tf.math.l2_normalize(tf.reshape(grams, (n, -1)), axis=-1, epsilon=1e-10)
    grams = tf.reshape(grams, (-1, copies, ch * ch))
    sims = tf.linalg.matmul(grams, grams, transpose_b=True)  # (U, copies, copies)
    off = tf.reduce_sum(sims) - tf.reduce_sum(tf.linalg.diag_part(sims))
    return off / copies


def feature_visualization(model, layer: str | None = None, units=None, **settings) -> FeatureVisualizationResult:
    """One call: `FeatureVisualization(model, layer, **settings).run(units)`."""
    progress = settings.pop("progress", False)
    return FeatureVisualization(model, layer, **settings).run(units, progress=progress)


def visualize_maps(view: ModelView, maps: Mapping[str, Sequence[int]], *, steps: int, seed: int = 0,
                   batch_size: int = 64, progress: bool = False,
                   log: Callable[[str], None] | None = None) -> dict[str, FeatureVisualizationResult]:
    """Feature visualization of chosen maps of several layers, one batched run per layer.

    The one computation behind `--dream-steps` of `zfkeras visualize` and of the report's Fig 2.
    `maps`: `{layer: channels}`; layers without channels are left out of the result.
    """
    out = {}
    for layer, units in maps.items():
        units = [int(u) for u in units]
        if not units:
            continue
        if log is not None:
            log(f"{layer}: feature visualization of {len(units)} feature maps, {steps} steps")
        out[layer] = FeatureVisualization(view, layer, steps=steps, seed=seed, batch_size=batch_size).run(
            units, progress=progress)
    return out
