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
