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


def reconstruction_error(x: jax.Array, recon: jax.Array, kind: str = "mse",
                         n_features: jax.Array | None = None) -> jax.Array:
    """Per-sample reconstruction error of the named kind ('mse', 'mae' or 'bce'): -> (B,).

    ``n_features``: x and recon (B, W) are zero-padded beyond their first n_features columns
    (their error there is 0), and the mean is over those real columns, not all W."""
    error = RECONSTRUCTION_ERRORS[kind](x, recon)
    return error if n_features is None else error * (_flat(x).shape[1] / n_features)


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


def masked_quantile(values: jax.Array, q: float, mask: jax.Array | None = None) -> jax.Array:
    """The q-quantile of ``values`` (n,) where ``mask`` (n,) bool is True (None: all), with numpy's
    default linear interpolation, for a mask known only when the program runs (the real rows of a
    padded table): -> (). Equals ``jnp.quantile(values[mask], q)`` to float rounding."""
    if mask is None:
        return jnp.quantile(values, q)
    count = jnp.sum(mask)
    ordered = jnp.sort(jnp.where(mask, values, jnp.inf))  # the masked-out values sort last
    position = q * (count - 1).astype(values.dtype)
    low = jnp.floor(position).astype(jnp.int32)
    high = jnp.minimum(low + 1, count - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def nu_quantile(y_hat: jax.Array, nu: float, mask: jax.Array | None = None) -> jax.Array:
    """The nu-quantile of the outputs (B,) -> (): the radius r under which a share nu of the
    points lies (the paper's r update); ``mask``: only those rows (``masked_quantile``)."""
    return masked_quantile(y_hat, nu, mask)


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


def svdd_radius(dist: jax.Array, nu: float, mask: jax.Array | None = None) -> jax.Array:
    """The soft-boundary radius: the (1 - nu)-quantile of the distances sqrt(d^2) (linear
    interpolation, as the authors' ``get_radius`` with ``np.quantile``), (n,) -> (); ``mask``:
    only those rows (``masked_quantile``)."""
    return masked_quantile(jnp.sqrt(dist), 1.0 - nu, mask)


def sum_squared_error(x: jax.Array, recon: jax.Array) -> jax.Array:
    """Sum of squared errors per sample, the authors' autoencoder pretraining loss (summed over
    features, then averaged over the batch): (B, ...), (B, ...) -> (B,)."""
    return jnp.sum(jnp.square(_flat(x) - _flat(recon)), axis=1)


# ---- RSRAE (Lai, Zou and Lerman, "Robust Subspace Recovery Layer for Unsupervised Anomaly
# Detection", ICLR 2020; authors' code dmzou/RSRAE, RSRAE/model.py) ----------------------------
# The RSR layer holds A (D, d) and maps a code z (B, D) to z_rsr = z A (B, d). Per-sample
# functions return (B,); the train steps reduce them with ``weighted_mean``.


def safe_l2_norm(v: jax.Array) -> jax.Array:
    """Euclidean norm of each row, (B, k) -> (B,), whose gradient at an exact zero row is 0
    instead of NaN (the subgradient), so a perfectly reconstructed row cannot poison a step."""
    sq = jnp.sum(jnp.square(v), axis=1)
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def _rsr_mse(diff: jax.Array) -> jax.Array:
    return jnp.sum(jnp.square(diff), axis=1)


def _rsr_l1(diff: jax.Array) -> jax.Array:
    return jnp.sum(jnp.abs(diff), axis=1)


# The authors' (and the notebook's) norm types, per sample, over the flattened features.
# 'mse' / 'frobenius' (their 'MSE', 'Frob'): the squared L2 norm ||v||_2^2, summed over features
# (not averaged), so its batch mean is ||X - X~||_F^2 / B; 'l1': ||v||_1; 'l21' (their 'L21',
# 'LAD'): the L2 norm ||v||_2, not squared, so its batch sum is the L2,1 norm of the residuals.
RSR_NORMS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "mse": _rsr_mse,
    "frobenius": _rsr_mse,
    "l1": _rsr_l1,
    "l21": safe_l2_norm,
}


def rsr_norm(diff: jax.Array, norm: str = "l21") -> jax.Array:
    """Per-sample residual norm of the named type over flattened features: (B, ...) -> (B,)."""
    if norm not in RSR_NORMS:
        raise ValueError(f"norm={norm!r}: expected one of {sorted(RSR_NORMS)}")
    return RSR_NORMS[norm](_flat(diff))


def rsr_reconstruction_error(x: jax.Array, recon: jax.Array, norm: str = "l21") -> jax.Array:
    """L_AE per sample: the ``norm`` of x - x~ (authors' ``reconstruction_loss``): (B, ...) -> (B,)."""
    return rsr_norm(x - recon, norm)


def rsr_projection_error(z: jax.Array, z_rsr: jax.Array, A: jax.Array, norm: str = "l21") -> jax.Array:
    """L_RSR1 per sample ("PCA error"): the ``norm`` of z - z_rsr A^T, the code minus its
    back-projection from the subspace: z (B, D), z_rsr = z A (B, d), A (D, d) -> (B,).
    Zero exactly when each z lies in span(A) and A has orthonormal columns."""
    return rsr_norm(z - z_rsr @ A.T, norm)


def rsr_orthogonality_loss(A: jax.Array) -> jax.Array:
    """L_RSR2 = mean((A^T A - I_d)^2) over the d x d entries (authors' ``proj_error``):
    zero exactly when A (D, d) has orthonormal columns. -> ()."""
    d = A.shape[1]
    return jnp.mean(jnp.square(A.T @ A - jnp.eye(d, dtype=A.dtype)))


# The authors' cosine: each norm gets 1e-6 added (experiments.py), so an all-zero row scores 0.
COSINE_EPS = 1e-6


def negative_cosine_similarity(x: jax.Array, recon: jax.Array) -> jax.Array:
    """-cos(x, x~) per sample over flattened features, the authors' anomaly score (higher =
    more abnormal): -<x, x~> / ((||x~|| + 1e-6) (||x|| + 1e-6)), (B, ...), (B, ...) -> (B,)."""
    a, b = _flat(x), _flat(recon)
    dot = jnp.sum(a * b, axis=1)
    return -dot / (jnp.linalg.norm(b, axis=1) + COSINE_EPS) / (jnp.linalg.norm(a, axis=1) + COSINE_EPS)


# ---- BiGAN (Zenati et al., "Efficient GAN-Based Anomaly Detection", 2018; authors' code
# houssamzenati/Efficient-GAN-Anomaly-Detection, bigan/run_kdd.py) ---------------------------
# D sees pairs: (x, E(x)) labelled real (1) and (G(z), z) labelled fake (0). Losses are sigmoid
# cross-entropies of D's logits (tf.nn.sigmoid_cross_entropy_with_logits: -log sigmoid(l) =
# softplus(-l) against 1, softplus(l) against 0), averaged over the real rows (weights w).


def bigan_discriminator_loss(logits_real: jax.Array, logits_fake: jax.Array, w: jax.Array) -> jax.Array:
    """D's loss: CE(D(x, E(x)), 1) + CE(D(G(z), z), 0), each a weighted batch mean:
    (B,), (B,), (B,) -> ()."""
    return weighted_mean(jax.nn.softplus(-logits_real), w) + weighted_mean(jax.nn.softplus(logits_fake), w)


def bigan_generator_loss(logits_fake: jax.Array, w: jax.Array) -> jax.Array:
    """G's loss, the non-saturating CE(D(G(z), z), 1) (authors' ``loss_generator``): (B,), (B,) -> ()."""
    return weighted_mean(jax.nn.softplus(-logits_fake), w)


def bigan_encoder_loss(logits_real: jax.Array, w: jax.Array) -> jax.Array:
    """E's loss, CE(D(x, E(x)), 0) (authors' ``loss_encoder``): E tries to make its pairs look
    generated. (B,), (B,) -> ()."""
    return weighted_mean(jax.nn.softplus(logits_real), w)


def lp_distance(x: jax.Array, y: jax.Array, p: int = 1) -> jax.Array:
    """||x - y||_p per sample over the flattened features (a norm, not its p-th power; the
    authors' ``tf.norm(delta, ord=degree)``): (B, ...), (B, ...) -> (B,)."""
    diff = jnp.abs(_flat(x) - _flat(y))
    if p == 1:
        return jnp.sum(diff, axis=1)
    return jnp.sum(diff ** p, axis=1) ** (1.0 / p)


def bigan_cross_entropy_score(logits_real: jax.Array) -> jax.Array:
    """L_D(x) = CE(D(x, E(x)), 1) = softplus(-logit) per sample (Zenati et al., eq. 2's
    sigma(D(x, E(x)), 1)): high where D finds the pair (x, E(x)) unlike the training pairs.
    (B,) -> (B,)."""
    return jax.nn.softplus(-logits_real)


def bigan_feature_matching_score(features_real: jax.Array, features_recon: jax.Array) -> jax.Array:
    """L_D(x) = ||f(x, E(x)) - f(G(E(x)), E(x))||_1 per sample, f = D's layer under the logit
    (Zenati et al., feature-matching loss): (B, k), (B, k) -> (B,)."""
    return lp_distance(features_real, features_recon, 1)


def bigan_anomaly_score(recon_distance: jax.Array, discriminator_score: jax.Array, alpha: float = 0.9) -> jax.Array:
    """A(x) = alpha * ||x - G(E(x))||_p + (1 - alpha) * L_D(x) (Zenati et al., eq. 1; alpha 0.9
    = the authors' README weight w = 0.1 on L_D): (B,), (B,) -> (B,)."""
    return alpha * recon_distance + (1.0 - alpha) * discriminator_score
