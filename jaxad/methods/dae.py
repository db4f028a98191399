"""Denoising convolutional autoencoder (method ``dae``): ``conv_ae`` trained on noisy inputs.

TensorFlow's autoencoder tutorial, second example: Gaussian noise of factor 0.2 clipped to
[0, 1], drawn inside the jitted step, reconstructing the clean image. Scored by the
reconstruction error of the clean input (higher = more abnormal).
"""

from __future__ import annotations

from jaxad.methods import conv_ae
from jaxad.methods.base import Method

DEFAULTS = {**conv_ae.DEFAULTS, "noise_factor": 0.2}

METHOD = Method(
    name="dae", init=conv_ae.init, train_step=conv_ae.train_step, score=conv_ae.score,
    defaults=DEFAULTS, validate=conv_ae.validate, input_ndims=(4,), cpu_host_loop=True,
    description="denoising convolutional autoencoder (TensorFlow tutorial), reconstruction error",
)
