"""The RSR autoencoder: encoder -> RSR layer (z A) -> [L2 normalisation] -> decoder.

Lai, Zou and Lerman, "Robust Subspace Recovery Layer for Unsupervised Anomaly Detection",
ICLR 2020. Architectures follow the authors' TensorFlow code (dmzou/RSRAE, ``RSRAE/model.py``,
class ``CAE``) and the RSRAE notebook (``../shared/seeds/000_rsrae_keras_20newsgroups.txt``):

* Every hidden layer is Dense/Conv **with** its activation, then batch norm (both sources put
  the norm after the activation). ``batch_norm``: ``"batch"`` (batch statistics in training,
  running averages in inference; Keras/TF momentum 0.99 and epsilon 1e-3), ``"frozen"`` (the
  authors' code calls ``tf.layers.batch_normalization`` without ``training=True``, so it always
  normalises with its initial moving statistics, mean 0 and variance 1: in effect a learnt
  per-channel scale and shift, ``FrozenBatchNorm``; the notebook's Keras layers run the same way,
  its ``train_step`` calling ``self.call`` without ``training=True``) or ``"none"``.
* The output layer carries ``output_activation`` (both sources use the hidden activation there:
  relu for non-negative data such as TF-IDF, tanh for images scaled to [-1, 1]).
* Dense (``DenseEncoder`` / ``DenseDecoder``): encoder widths ``hidden`` (authors (32, 64, 128);
  the notebook (64, 128, 256)), decoder the widths reversed, then Dense to the input size.
* Convolutional (``ConvEncoder`` / ``ConvDecoder``, authors' image network): Conv ``hidden``
  channels (32, 64, 128) with kernels (5, 5, 3), stride 2, 'same' padding except the last layer,
  'valid' unless the image side divides by 2 ** len(hidden) (28 -> 14 -> 7 -> 3); decoder: Dense
  to the encoder's output size, reshape, then transposed convolutions back through the
  channels in reverse with the same kernels, strides and paddings (3 -> 7 -> 14 -> 28),
  computed by ``StridedConvTranspose`` (see there why).
* ``RSRLayer`` (submodule ``rsr``) holds A (D, d), D = flattened code size, d =
  ``intrinsic_size``; z_rsr = z A. A ~ N(0, ``rsr_init_std`` ** 2): 1.0 in the authors' code
  (``tf.random_normal``), 0.05 in the notebook (Keras' ``random_normal``).

Initialisation is Keras/TF1's default (glorot-uniform kernels, zero biases) as in both sources.
Every model returns ``(recon, aux)`` with ``aux = {"z": (B, D), "z_rsr": (B, d) = z A,
"z_tilde": (B, d)}``, z_tilde being what the decoder sees (z_rsr, L2-normalised if asked).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxad.models.conv import conv_init
from jaxad.models.mlp import ACTIVATIONS, dense

BATCH_NORMS = ("batch", "frozen", "none")
# Keras / TF1 batch-norm defaults (both sources).
BN_MOMENTUM = 0.99
BN_EPSILON = 1e-3


class FrozenBatchNorm(nn.Module):
    """TF1's ``tf.layers.batch_normalization`` in inference mode with its initial moving
    statistics (mean 0, variance 1): x * scale / sqrt(1 + eps) + bias, scale and bias learnt
    (initialised 1 and 0). Shapes: (..., C) -> (..., C)."""

    epsilon: float = BN_EPSILON

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
        bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
        return x * (scale / jnp.sqrt(1.0 + self.epsilon)) + bias


def normalization(kind: str, x: jax.Array, *, train: bool, mask: jax.Array | None) -> jax.Array:
    """The named batch norm (see the module docstring) of x (B, ..., C); ``mask`` (B,) marks
    real rows, so padding never enters the batch statistics. Call inside a compact method."""
    if kind == "batch":
        bn_mask = None if mask is None else mask.reshape(mask.shape + (1,) * (x.ndim - 1))
        return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                            epsilon=BN_EPSILON)(x, mask=bn_mask)
    if kind == "frozen":
        return FrozenBatchNorm()(x)
    return x


def l2_normalize(v: jax.Array) -> jax.Array:
    """Each row over its norm, as ``tf.math.l2_normalize`` (squared norm floored at 1e-12):
    (B, d) -> (B, d)."""
    return v * jax.lax.rsqrt(jnp.maximum(jnp.sum(jnp.square(v), axis=-1, keepdims=True), 1e-12))


class RSRLayer(nn.Module):
    """The robust subspace recovery layer: z (B, D) -> z A (B, d), A (D, d) a parameter 'A'."""

    intrinsic_size: int = 10
    init_std: float = 1.0

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        A = self.param("A", nn.initializers.normal(self.init_std), (z.shape[-1], self.intrinsic_size))
        return z @ A


class DenseEncoder(nn.Module):
    """Dense(features[i], activation) -> batch norm, for each width. (B, F) -> (B, features[-1])."""

    features: Sequence[int]
    activation: str = "relu"
    batch_norm: str = "batch"
    initializer: str = "keras"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool, mask: jax.Array | None = None) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for width in self.features:
            x = act(dense(width, x.shape[-1], self.initializer)(x))
            x = normalization(self.batch_norm, x, train=train, mask=mask)
        return x


class DenseDecoder(nn.Module):
    """``DenseEncoder`` layers of widths ``features``, then Dense(prod(out_shape),
    out_activation). Shapes: (B, d) -> (B, *out_shape)."""

    features: Sequence[int]
    activation: str = "relu"
    batch_norm: str = "batch"
    out_activation: str = "relu"
    initializer: str = "keras"

    @nn.compact
    def __call__(self, z: jax.Array, out_shape: Sequence[int], *, train: bool,
                 mask: jax.Array | None = None) -> jax.Array:
        h = DenseEncoder(self.features, self.activation, self.batch_norm, self.initializer,
                         name="hidden")(z, train=train, mask=mask)
        out = dense(math.prod(out_shape), h.shape[-1], self.initializer, output=True)(h)
        return ACTIVATIONS[self.out_activation](out).reshape(-1, *out_shape)


def conv_paddings(height: int, n_layers: int) -> tuple[str, ...]:
    """The authors' paddings, from the image height for both axes (their ``input_shape[0]``):
    'SAME' for every layer but the last, which is 'SAME' when the height divides by
    2 ** n_layers and 'VALID' otherwise (28: SAME, SAME, VALID)."""
    last = "SAME" if height % (2 ** n_layers) == 0 else "VALID"
    return ("SAME",) * (n_layers - 1) + (last,)


def conv_encoder_sides(side: int, kernels: Sequence[int], paddings: Sequence[str]) -> list[int]:
    """Spatial side after each stride-2 encoder layer: 28, (5, 5, 3) -> [14, 7, 3]."""
    sides = []
    for k, pad in zip(kernels, paddings):
        side = -(-side // 2) if pad == "SAME" else (side - k) // 2 + 1
        sides.append(side)
    return sides


def conv_decoder_side(side: int, kernels: Sequence[int], paddings: Sequence[str]) -> int:
    """The side the decoder returns for an input side (equal to it when the shapes work out):
    each transposed layer maps s to 2 s ('SAME') or 2 (s - 1) + k ('VALID')."""
    s = conv_encoder_sides(side, kernels, paddings)[-1]
    for k, pad in reversed(list(zip(kernels, paddings))):
        s = 2 * s if pad == "SAME" else 2 * (s - 1) + k
    return s


def transpose_padding(k: int, padding: str) -> tuple[int, int]:
    """(before, after) padding of the zero-dilated input in a stride-2 ``lax.conv_transpose``
    (what ``nn.ConvTranspose`` computes) with kernel size k: 'SAME' maps n to 2 n, 'VALID' to
    2 (n - 1) + k."""
    if padding == "SAME":
        before = k - 1 if k < 3 else -(-k // 2)
        return before, k - before
    return k - 1, 1 + max(k - 2, 0)


def _phase_selectors(k: int, before: int):
    """([S_0, S_1], lo, hi): for each output phase r, a (W, k) 0/1 matrix S_r taking kernel tap j
    to window slot u, the window covering input offsets lo..hi (W = hi - lo + 1). Output 2 q + r
    of the transposed convolution reads input q + (r + j - before) / 2 through tap j, for the
    taps where that is an integer."""
    taps = {r: [(j, (r + j - before) // 2) for j in range(k) if (r + j - before) % 2 == 0] for r in (0, 1)}
    offsets = [o for r in taps for _, o in taps[r]]
    lo, hi = min(offsets), max(offsets)
    mats = []
    for r in (0, 1):
        m = np.zeros((hi - lo + 1, k), np.float32)
        for j, o in taps[r]:
            m[o - lo, j] = 1.0
        mats.append(m)
    return mats, lo, hi


class StridedConvTranspose(nn.Module):
    """``nn.ConvTranspose(features, (k, k), strides=(2, 2), padding=padding)``: same parameters
    and same outputs (tested), computed as one stride-1 convolution into the 4 output phases
    followed by depth-to-space (the ``SubpixelConvTranspose`` idea of ``jaxad.models.conv``, for
    any kernel size and 'SAME' or 'VALID').

    Why: XLA's CPU backend runs a transposed convolution, and above all its kernel gradient, over
    the zero-dilated input: the gradient of the authors' 5x5 64 -> 32 layer on 128 images took
    320-630 ms on a shared 2-core CPU, 75 ms as phases under the same load.
    Shapes: (B, H, W, C_in) -> (B, H', W', features)."""

    features: int
    kernel_size: int
    padding: str = "SAME"
    kernel_init: callable = nn.initializers.lecun_normal()
    bias_init: callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel_size
        kernel = self.param("kernel", self.kernel_init, (k, k, x.shape[-1], self.features))
        bias = self.param("bias", self.bias_init, (self.features,))
        before, after = transpose_padding(k, self.padding)
        (m0, m1), lo, hi = _phase_selectors(k, before)
        sel = jnp.asarray(np.stack([m0, m1]))  # (2, W, k)
        # phase kernels (W, W, C_in, 4 * C_out), phases (row, column) in C order
        phases = jnp.einsum("auj,bvl,jlio->uvioab", sel, sel, kernel.astype(x.dtype))
        phases = phases.reshape(phases.shape[:4] + (4,)).transpose(0, 1, 2, 4, 3)
        phases = phases.reshape(phases.shape[0], phases.shape[1], x.shape[-1], 4 * self.features)
        _, h, w, _ = x.shape
        out_h, out_w = 2 * h + before + after - k, 2 * w + before + after - k
        qh, qw = -(-out_h // 2), -(-out_w // 2)
        # input window: offsets lo .. q_max + hi (negative padding crops)
        window = jax.lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (-lo, qh + hi - h, 0),
                                                           (-lo, qw + hi - w, 0), (0, 0, 0)))
        y = jax.lax.conv_general_dilated(window, phases, (1, 1), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        b = y.shape[0]
        y = y.reshape(b, qh, qw, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
        return y.reshape(b, 2 * qh, 2 * qw, self.features)[:, :out_h, :out_w] + bias


class ConvEncoder(nn.Module):
    """Conv(channels[i], kernels[i], stride 2, activation) -> batch norm, for each layer.
    Shapes: (B, H, W, C) -> (B, h, w, channels[-1]) (28x28: 3x3x128)."""

    channels: Sequence[int] = (32, 64, 128)
    kernels: Sequence[int] = (5, 5, 3)
    activation: str = "relu"
    batch_norm: str = "batch"
    initializer: str = "keras"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool, mask: jax.Array | None = None) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for width, k, pad in zip(self.channels, self.kernels, conv_paddings(x.shape[1], len(self.channels))):
            x = nn.Conv(width, (k, k), strides=(2, 2), padding=pad, **conv_init(self.initializer, k * k * x.shape[-1]))(x)
            x = normalization(self.batch_norm, act(x), train=train, mask=mask)
        return x


class ConvDecoder(nn.Module):
    """Dense(h * w * channels[-1], activation) -> reshape -> batch norm, then transposed
    convolutions (stride 2, the encoder's kernels and paddings in reverse) to channels[-2], ...,
    channels[0], each with activation and batch norm, and a last one to ``out_shape``'s channels
    with ``out_activation``. Shapes: (B, d) -> (B, *out_shape)."""

    channels: Sequence[int] = (32, 64, 128)
    kernels: Sequence[int] = (5, 5, 3)
    activation: str = "relu"
    batch_norm: str = "batch"
    out_activation: str = "relu"
    initializer: str = "keras"

    @nn.compact
    def __call__(self, z: jax.Array, out_shape: Sequence[int], *, train: bool,
                 mask: jax.Array | None = None) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        height, width, out_channels = out_shape
        n = len(self.channels)
        paddings = conv_paddings(height, n)
        h, w = (conv_encoder_sides(side, self.kernels, paddings)[-1] for side in (height, width))
        x = act(dense(h * w * self.channels[-1], z.shape[-1], self.initializer)(z))
        x = normalization(self.batch_norm, x.reshape(-1, h, w, self.channels[-1]), train=train, mask=mask)
        targets = list(self.channels[:-1])[::-1] + [out_channels]
        for i, (layer, features) in enumerate(zip(range(n - 1, -1, -1), targets)):
            k = self.kernels[layer]
            x = StridedConvTranspose(features, k, paddings[layer],
                                     **conv_init(self.initializer, k * k * x.shape[-1]))(x)
            if i < n - 1:
                x = normalization(self.batch_norm, act(x), train=train, mask=mask)
        return ACTIVATIONS[self.out_activation](x)


class RSRAE(nn.Module):
    """Encoder -> RSR layer ``rsr`` -> [L2 normalisation of z_rsr] -> decoder.

    ``network``: 'dense' (inputs of any rank flattened per sample) or 'conv' (NHWC images).
    Shapes: x (B, ...) -> recon (B, ...) and aux {"z": (B, D), "z_rsr": (B, d), "z_tilde": (B, d)}.
    """

    network: str = "dense"
    hidden: Sequence[int] = (32, 64, 128)
    kernels: Sequence[int] = (5, 5, 3)
    intrinsic_size: int = 10
    normalize: bool = True
    activation: str = "relu"
    output_activation: str = "relu"
    batch_norm: str = "batch"
    rsr_init_std: float = 1.0
    initializer: str = "keras"

    def setup(self):
        common = {"activation": self.activation, "batch_norm": self.batch_norm, "initializer": self.initializer}
        if self.network == "conv":
            self.encoder = ConvEncoder(tuple(self.hidden), tuple(self.kernels), **common)
            self.decoder = ConvDecoder(tuple(self.hidden), tuple(self.kernels),
                                       out_activation=self.output_activation, **common)
        else:
            self.encoder = DenseEncoder(tuple(self.hidden), **common)
            self.decoder = DenseDecoder(tuple(self.hidden)[::-1], out_activation=self.output_activation, **common)
        self.rsr = RSRLayer(self.intrinsic_size, self.rsr_init_std)

    def encode(self, x: jax.Array, *, train: bool, mask: jax.Array | None = None):
        """(z (B, D) flattened code, z_rsr = z A (B, d))."""
        inputs = x if self.network == "conv" else x.reshape(x.shape[0], math.prod(x.shape[1:]))
        z = self.encoder(inputs, train=train, mask=mask)
        z = z.reshape(z.shape[0], -1)
        return z, self.rsr(z)

    def __call__(self, x: jax.Array, *, train: bool, mask: jax.Array | None = None):
        z, z_rsr = self.encode(x, train=train, mask=mask)
        z_tilde = l2_normalize(z_rsr) if self.normalize else z_rsr
        recon = self.decoder(z_tilde, x.shape[1:], train=train, mask=mask)
        return recon, {"z": z, "z_rsr": z_rsr, "z_tilde": z_tilde}
