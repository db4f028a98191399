"""BiGAN networks of Zenati et al., "Efficient GAN-Based Anomaly Detection" (2018).

One module holds the three networks as submodules named ``encoder``, ``generator`` and
``discriminator``, so the params tree has exactly those three top-level groups (the method
labels its optimizer groups from them). The module exposes one method per network:

    encode(x) -> z                         (B, ...) -> (B, latent_dim)
    generate(z) -> x                       (B, latent_dim) -> (B, ...), the input's shape
    discriminate(x, z) -> (logits, aux)    logits (B,), aux["features"] (B, width): the layer
                                           f(x, z) under the logit, used by feature matching
    __call__(x) -> (G(E(x)), aux)          the whole chain (init, inspection); aux holds z,
                                           logits and features of the pair (x, E(x))

Every method takes ``train`` (dropout on, batch statistics) and ``mask`` (B,) bool, the real
rows of a padded batch, which batch norm honours.

``BiGAN`` (dense, tabular) is the authors' KDD network (houssamzenati/Efficient-GAN-Anomaly-
Detection, ``bigan/kdd_utilities.py``): E: x -> 64 LeakyReLU(0.1) -> 32 linear; G: z -> 64 relu
-> 128 relu -> x linear; D: x -> 128 LeakyReLU + dropout 0.2, z -> 128 LeakyReLU + dropout 0.2,
concatenated -> 128 LeakyReLU + dropout 0.2 = f(x, z) -> 1 logit. Xavier-uniform kernels and
zero biases (``tf.contrib.layers.xavier_initializer``, ``tf.layers.dense``), i.e. ``keras``.

``ConvBiGAN`` (NHWC images, 28x28 or any size divisible by 4) is the authors' MNIST network
(``bigan/mnist_utilities.py``): E: conv 32 3x3 (no activation) -> conv 64 3x3 s2 + BN + LReLU
-> conv 128 3x3 s2 + BN + LReLU -> dense latent; G: dense 1024 + BN + relu -> dense
(H/4)(W/4)128 + BN + relu -> convT 64 4x4 s2 + BN + relu -> convT C 4x4 s2 -> tanh; D: x: conv
64 4x4 s2 + LReLU + dropout -> conv 64 4x4 s2 + BN + LReLU + dropout; z: dense 512 + LReLU +
dropout; joint: dense 1024 + LReLU + dropout = f -> 1 logit. Dropout 0.5 and N(0, 0.02) kernels
there (the method's ``fashion_mnist`` preset).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxad.models.mlp import ACTIVATIONS, INITIALIZERS

# tf.layers.dense / conv2d with the authors' MNIST kernel_initializer
# tf.random_normal_initializer(stddev=0.02) (DCGAN's) and TensorFlow's zero bias.
BIGAN_INITIALIZERS = (*INITIALIZERS, "dcgan")
leaky_relu = ACTIVATIONS["leaky_relu"]  # slope 0.1, the authors' leakyReLu default


def layer_init(initializer: str, fan_in: int, output: bool = False) -> dict:
    """kernel_init / bias_init of a Dense or Conv layer, by initializer name."""
    if initializer == "dcgan":
        return {"kernel_init": nn.initializers.normal(0.02), "bias_init": nn.initializers.zeros}
    hidden_kernel, output_kernel, bias = INITIALIZERS[initializer]
    return {"kernel_init": output_kernel if output else hidden_kernel, "bias_init": bias(fan_in)}


def _dense(features: int, fan_in: int, initializer: str, name: str | None = None,
           output: bool = False) -> nn.Dense:
    return nn.Dense(features, name=name, **layer_init(initializer, fan_in, output))


def _flat(x: jax.Array) -> jax.Array:
    return x.reshape(x.shape[0], math.prod(x.shape[1:]))


# ---------------------------------------------------------------- dense (tabular)


class DenseEncoder(nn.Module):
    """x (B, F) -> z (B, latent_dim): hidden LeakyReLU(0.1) layers, then a linear layer."""

    latent_dim: int
    hidden: Sequence[int] = (64,)
    initializer: str = "keras"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = _flat(x)
        for width in self.hidden:
            h = leaky_relu(_dense(width, h.shape[-1], self.initializer)(h))
        return _dense(self.latent_dim, h.shape[-1], self.initializer, output=True)(h)


class DenseGenerator(nn.Module):
    """z (B, latent_dim) -> x (B, features): hidden relu layers, then a linear layer."""

    features: int
    hidden: Sequence[int] = (64, 128)
    initializer: str = "keras"

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        h = z
        for width in self.hidden:
            h = nn.relu(_dense(width, h.shape[-1], self.initializer)(h))
        return _dense(self.features, h.shape[-1], self.initializer, output=True)(h)


class DenseDiscriminator(nn.Module):
    """D(x, z): x and z each through Dense(width) + LeakyReLU + dropout, concatenated, then
    Dense(width) + LeakyReLU + dropout = f(x, z) (B, width), then the logit (B,)."""

    width: int = 128
    dropout: float = 0.2
    initializer: str = "keras"

    @nn.compact
    def __call__(self, x: jax.Array, z: jax.Array, *, train: bool):
        drop = lambda h: nn.Dropout(self.dropout, deterministic=not train)(h)  # noqa: E731
        x = _flat(x)
        hx = drop(leaky_relu(_dense(self.width, x.shape[-1], self.initializer, "x_dense")(x)))
        hz = drop(leaky_relu(_dense(self.width, z.shape[-1], self.initializer, "z_dense")(z)))
        joint = jnp.concatenate([hx, hz], axis=-1)
        f = drop(leaky_relu(_dense(self.width, joint.shape[-1], self.initializer, "joint_dense")(joint)))
        logits = _dense(1, f.shape[-1], self.initializer, "logit", output=True)(f)[:, 0]
        return logits, {"features": f}


class _BiGANBase(nn.Module):
    """The shared methods; subclasses define ``setup`` with the three submodules."""

    def encode(self, x: jax.Array, *, train: bool = False, mask: jax.Array | None = None) -> jax.Array:
        return self.encoder(x, **self._mode(train, mask))

    def generate(self, z: jax.Array, *, train: bool = False, mask: jax.Array | None = None) -> jax.Array:
        return self.generator(z, **self._mode(train, mask))

    def discriminate(self, x: jax.Array, z: jax.Array, *, train: bool = False,
                     mask: jax.Array | None = None):
        return self.discriminator(x, z, train=train, **self._mask(mask))

    def __call__(self, x: jax.Array, *, train: bool = False, mask: jax.Array | None = None):
        z = self.encode(x, train=train, mask=mask)
        logits, aux = self.discriminate(x, z, train=train, mask=mask)
        return self.generate(z, train=train, mask=mask), {"z": z, "logits": logits, **aux}

    def _mode(self, train, mask) -> dict:
        return {}

    def _mask(self, mask) -> dict:
        return {}


class BiGAN(_BiGANBase):
    """The dense BiGAN (tabular rows (B, features)); see the module docstring."""

    features: int
    latent_dim: int = 32
    encoder_hidden: Sequence[int] = (64,)
    generator_hidden: Sequence[int] = (64, 128)
    discriminator_width: int = 128
    dropout: float = 0.2
    initializer: str = "keras"

    def setup(self):
        self.encoder = DenseEncoder(self.latent_dim, tuple(self.encoder_hidden), self.initializer)
        self.generator = DenseGenerator(self.features, tuple(self.generator_hidden), self.initializer)
        self.discriminator = DenseDiscriminator(self.discriminator_width, self.dropout, self.initializer)


# ---------------------------------------------------------------- convolutional (images)


def _bn(x: jax.Array, train: bool, mask: jax.Array | None) -> jax.Array:
    # TensorFlow's batch_normalization defaults: momentum 0.99, epsilon 1e-3.
    m = None if mask is None else mask.reshape((-1,) + (1,) * (x.ndim - 1))
    return nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3)(x, mask=m)


class ConvEncoder(nn.Module):
    latent_dim: int
    initializer: str = "dcgan"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool, mask: jax.Array | None = None) -> jax.Array:
        conv = lambda c, s, h: nn.Conv(c, (3, 3), (s, s), padding="SAME",  # noqa: E731
                                       **layer_init(self.initializer, 9 * h.shape[-1]))(h)
        h = conv(32, 1, x)  # the authors' first layer has no activation
        h = leaky_relu(_bn(conv(64, 2, h), train, mask))
        h = leaky_relu(_bn(conv(128, 2, h), train, mask))
        h = _flat(h)
        return _dense(self.latent_dim, h.shape[-1], self.initializer, output=True)(h)


class ConvGenerator(nn.Module):
    image_shape: tuple[int, int, int]
    initializer: str = "dcgan"

    @nn.compact
    def __call__(self, z: jax.Array, *, train: bool, mask: jax.Array | None = None) -> jax.Array:
        height, width, channels = self.image_shape
        h = nn.relu(_bn(_dense(1024, z.shape[-1], self.initializer)(z), train, mask))
        cells = (height // 4) * (width // 4) * 128
        h = nn.relu(_bn(_dense(cells, h.shape[-1], self.initializer)(h), train, mask))
        h = h.reshape(-1, height // 4, width // 4, 128)
        up = lambda c, h: nn.ConvTranspose(c, (4, 4), (2, 2), padding="SAME",  # noqa: E731
                                           **layer_init(self.initializer, 16 * h.shape[-1]))(h)
        h = nn.relu(_bn(up(64, h), train, mask))
        return jnp.tanh(up(channels, h))


class ConvDiscriminator(nn.Module):
    width: int = 1024
    z_width: int = 512
    dropout: float = 0.5
    initializer: str = "dcgan"

    @nn.compact
    def __call__(self, x: jax.Array, z: jax.Array, *, train: bool, mask: jax.Array | None = None):
        drop = lambda h: nn.Dropout(self.dropout, deterministic=not train)(h)  # noqa: E731
        conv = lambda h: nn.Conv(64, (4, 4), (2, 2), padding="SAME",  # noqa: E731
                                 **layer_init(self.initializer, 16 * h.shape[-1]))(h)
        hx = drop(leaky_relu(conv(x)))
        hx = drop(leaky_relu(_bn(conv(hx), train, mask)))
        hz = drop(leaky_relu(_dense(self.z_width, z.shape[-1], self.initializer)(z)))
        joint = jnp.concatenate([_flat(hx), hz], axis=-1)
        f = drop(leaky_relu(_dense(self.width, joint.shape[-1], self.initializer)(joint)))
        logits = _dense(1, f.shape[-1], self.initializer, output=True)(f)[:, 0]
        return logits, {"features": f}


class ConvBiGAN(_BiGANBase):
    """The convolutional BiGAN for NHWC images whose height and width divide by 4."""

    image_shape: tuple[int, int, int] = (28, 28, 1)
    latent_dim: int = 200
    discriminator_width: int = 1024
    dropout: float = 0.5
    initializer: str = "dcgan"

    def setup(self):
        self.encoder = ConvEncoder(self.latent_dim, self.initializer)
        self.generator = ConvGenerator(tuple(self.image_shape), self.initializer)
        self.discriminator = ConvDiscriminator(self.discriminator_width, dropout=self.dropout,
                                               initializer=self.initializer)

    def _mode(self, train, mask) -> dict:
        return {"train": train, "mask": mask}

    def _mask(self, mask) -> dict:
        return {"mask": mask}
