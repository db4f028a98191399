"""Losses as plain functions of arrays. No Flax objects, no optimizers: extend here.

Per-sample functions map ``(B, ...)`` inputs to ``(B,)``; the train steps reduce them with
``weighted_mean`` so that the padded rows of a last partial batch (weight 0) count for nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

# Keras clips probabilities by this epsilon in binary cross-entropy; the seed tutorials used Keras.
BCE_EPSILON = 1e-7


def _flat(x: jax.Array) -> jax.Array:
    return x.reshape(x.shape[0], -1)


def squared_error(x: jax.Array, recon: jax.Array) -> jax.Array:
    """Mean squared error per sample: (B, ...), (B, ...) -> (B,)."""
    return jnp.mean(jnp.square(_flat(x) - _flat(recon)), axis=1)


def absolute_error(x: jax.Array, recon: jax.Array) -> jax.Array:
    """Mean absolute error per sample: (B, ...), (B, ...) -> (B,)."""
    return jnp.mean(jnp.abs(_flat(x) - _flat(recon)), axis=1)


def binary_cross_entropy(x: jax.Array, recon: jax.Array) -> jax.Array:
    """Mean binary cross-entropy per sample of targets x in [0, 1] and probabilities ``recon``,
    clipped to [eps, 1 - eps] as Keras does: (B, ...), (B, ...) -> (B,)."""
    p = jnp.clip(_flat(recon), BCE_EPSILON, 1.0 - BCE_EPSILON)
    t = _flat(x)
    return -jnp.mean(t * jnp.log(p) + (1.0 - t) * jnp.log1p(-p), axis=1)


RECONSTRUCTION_ERRORS: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "mse": squared_error,
    "mae": absolute_error,
    "bce": binary_cross_entropy,
}


def reconstruction_error(x: jax.Array, recon: jax.Array, kind: str = "mse") -> jax.Array:
    """Per-sample reconstruction error of the named kind ('mse', 'mae' or 'bce'): -> (B,)."""
    return RECONSTRUCTION_ERRORS[kind](x, recon)


def weighted_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
    """sum(w * v) / sum(w) over a batch: (B,), (B,) -> (). An all-zero weight vector gives 0."""
    total = jnp.sum(weights)
    return jnp.sum(values * weights) / jnp.maximum(total, 1e-12)


# ---- OC-NN (Chalapathy, Menon and Chawla, "Anomaly Detection using One-Class Neural Networks", 2018)

def squared_weight_norm(params) -> jax.Array:
    """Sum of the squared entries of every kernel in a Flax params tree (biases excluded):
    ||w||^2 + ||V||_F^2 of the paper's objective. -> ()."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    return sum(jnp.sum(jnp.square(v)) for path, v in leaves if getattr(path[-1], "key", None) == "kernel")


def ocnn_hinge(y_hat: jax.Array, r: jax.Array) -> jax.Array:
    """max(0, r - y_hat) per sample: (B,), () -> (B,)."""
    return jnp.maximum(0.0, r - y_hat)


def ocnn_loss(y_hat: jax.Array, r: jax.Array, nu: float, w: jax.Array, weight_norm: jax.Array,
              weight_penalty: float = 0.5) -> jax.Array:
    """weight_penalty * (||w||^2 + ||V||^2) + (1 / nu) * mean(max(0, r - y_hat)), the mean over
    the real rows (weights w). The paper's objective also has "- r", which carries no gradient
    for the network (r is set by a quantile, not trained) and is left out. -> ()."""
    return weight_penalty * weight_norm + weighted_mean(ocnn_hinge(y_hat, r), w) / nu


def nu_quantile(y_hat: jax.Array, nu: float) -> jax.Array:
    """The nu-quantile of the outputs (B,) -> (): the radius r under which a share nu of the
    points lies (the paper's r update)."""
    return jnp.quantile(y_hat, nu)


# ---- Deep SVDD (Ruff et al., ICML 2018) ----------------------------------------------------
# Plain functions of arrays for ``jaxad.methods.deep_svdd``. Batch reductions take the weights w
# (B,) of the engine's padded batches (0 for padding rows).


def svdd_distances(z: jax.Array, c: jax.Array) -> jax.Array:
    """Squared Euclidean distance of each representation to the centre:
    ||z_i - c||^2, (B, D), (D,) -> (B,)."""
    return jnp.sum(jnp.square(z - c), axis=-1)


def one_class_svdd_loss(dist: jax.Array, w: jax.Array) -> jax.Array:
    """One-class Deep SVDD objective (Ruff et al., eq. 4, without the weight decay, which the
    optimizer adds): the weighted mean squared distance to c, (B,), (B,) -> ()."""
    return weighted_mean(dist, w)


def soft_boundary_svdd_loss(dist: jax.Array, R: jax.Array, nu: float, w: jax.Array) -> jax.Array:
    """Soft-boundary Deep SVDD objective (Ruff et al., eq. 3, without the weight decay):
    R^2 + 1/nu * weighted mean of max(0, d^2 - R^2), (B,), (), float, (B,) -> ().

    R is not trained by gradient (the authors set it by a quantile, see ``svdd_radius``), so no
    gradient flows into it here."""
    r2 = jnp.square(jax.lax.stop_gradient(R))
    return r2 + weighted_mean(jnp.maximum(dist - r2, 0.0), w) / nu


def svdd_center(z: jax.Array, eps: float = 0.1) -> jax.Array:
    """The hypersphere centre from representations z (n, D) -> (D,): their mean, with every
    coordinate closer than eps to zero pushed to +-eps (its sign; +eps for an exact zero).

    The authors' ``init_center_c`` (and PyOD's ``_init_c``) do the same but leave exact zeros at
    zero; here they become +eps too, so an all-zero mean (e.g. dead ReLU outputs) never gives the
    trivial all-zero centre that all-zero weights reach (Ruff et al., Prop. 1)."""
    c = jnp.mean(z, axis=0)
    return jnp.where(jnp.abs(c) < eps, jnp.where(c < 0, -eps, eps).astype(c.dtype), c)


def svdd_radius(dist: jax.Array, nu: float) -> jax.Array:
    """The soft-boundary radius: the (1 - nu)-quantile of the distances sqrt(d^2) (linear
    interpolation, as the authors' ``get_radius`` with ``np.quantile``), (n,) -> ()."""
    return jnp.quantile(jnp.sqrt(dist), 1.0 - nu)


def sum_squared_error(x: jax.Array, recon: jax.Array) -> jax.Array:
    """Sum of squared errors per sample, the authors' autoencoder pretraining loss (summed over
    features, then averaged over the batch): (B, ...), (B, ...) -> (B,)."""
    return jnp.sum(jnp.square(_flat(x) - _flat(recon)), axis=1)
