"""Pure Flax (linen) modules. They know nothing of losses, optimizers or data.

Every model returns ``(output, aux)`` where ``aux`` is a dict of latents (``z`` ...), so that a
loss can use any of them without the model knowing which.
"""

from jaxad.models.bigan import BiGAN, ConvBiGAN
from jaxad.models.conv import ConvAE
from jaxad.models.mlp import ACTIVATIONS, INITIALIZERS, MLP, DenseAE, dense, first_layer_rescale, pad_input_layer, pad_output_layer
from jaxad.models.ocnn import OneClassNet
from jaxad.models.rsrae import RSRAE, RSRLayer
from jaxad.models.svdd import DeepSVDDAutoencoder, DeepSVDDNet

__all__ = ["ACTIVATIONS", "INITIALIZERS", "MLP", "BiGAN", "ConvAE", "ConvBiGAN", "DeepSVDDAutoencoder", "DeepSVDDNet", "DenseAE", "OneClassNet", "RSRAE", "RSRLayer", "dense", "first_layer_rescale", "pad_input_layer", "pad_output_layer"]
