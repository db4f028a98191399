"""RSRAE and RSRAE+ (methods ``rsrae``, ``rsrae_plus``): autoencoders with a robust subspace
recovery layer. Lai, Zou and Lerman, "Robust Subspace Recovery Layer for Unsupervised Anomaly
Detection", ICLR 2020.

The encoder's code z (B, D) goes through the RSR layer z_rsr = z A, A (D, d), is L2-normalised
and decoded (``jaxad.models.rsrae``). Three losses (``jaxad.losses``, RSRAE block):

    L_AE   = mean_i ||x_i - x~_i||           reconstruction (norm type ``loss``)
    L_RSR1 = mean_i ||z_i - z_rsr,i A^T||    projection / "PCA" error (norm type ``rsr_loss``)
    L_RSR2 = mean((A^T A - I_d)^2)           orthogonality of A's columns

* ``rsrae``: one Adam step per batch on L_AE + lambda1 L_RSR1 + lambda2 L_RSR2 over all
  parameters (the paper's eq. 5; the authors' ``all_alt=0``).
* ``rsrae_plus``: three steps per batch, each with its own Adam state (``param_groups.per_loss``):
  Adam(lr) on L_AE over all parameters, then Adam(rsr_lr_factor * lr) on L_RSR1 over A, then
  Adam(rsr_lr_factor * lr) on L_RSR2 over A (the authors' default ``all_alt=1,
  enforce_proj=1``; the notebook's three Keras optimizers). Parameter groups are labelled from
  the param paths (module ``rsr`` holds A), so the A-only steps give the encoder and decoder an
  update of exactly 0, and no loss's Adam moments move parameters during another loss's step.
  Each step is computed after the previous one's update, as the authors' three ``sess.run``
  calls (the notebook took all three gradients from one forward pass).

Score: -cos(x, x~) between the input and its reconstruction (the authors' ``experiments.py``;
the notebook compared the reconstruction with itself, a constant -1), or with
``score_type`` set to a norm type, that reconstruction error. Higher = more abnormal. The
default ``score_type='auto'`` is the cosine when the training rows are L2-normalised (every
row's norm 1, or 0 for an empty document), as all of the authors' inputs are (TF-IDF rows,
sentence embeddings, their row-normalised images), and otherwise the reconstruction error in
the ``loss`` norm: the cosine ignores magnitudes, and on raw tables anomalies are often the
rows with large values in the same direction (breast_cancer AUROC 0.14 with the cosine, 0.93
with the error; wine 0.19 against 0.90).

Defaults are the authors' code and experiments (dmzou/RSRAE ``experiments.py`` and
``RSRAE/model.py``): Adam lr 2.5e-4 (TF1's epsilon 1e-8), 200 epochs, batch 128, L21 losses,
d = 10, L2 normalisation of z_rsr on, hidden (32, 64, 128) (Dense widths, or conv channels with
kernels (5, 5, 3) for images: ``network='auto'`` picks conv for NHWC input as their code does),
A ~ N(0, 1), lambda1 = lambda2 = 0.1 (``CAE``'s defaults; their ``experiments.py`` passes
lambda1 = 0.0025 but only uses it for the joint loss, not in its default RSRAE+ runs),
rsr_lr_factor 10, and their batch norm as it ran: in inference mode with its initial statistics
(``batch_norm='frozen'``, see ``jaxad.models.rsrae``; the notebook's ran the same way, and on
20 Newsgroups it beat real batch norm, ``'batch'``: AUROC 0.684 against 0.597 for RSRAE+ on five
classes). Their activation depends on the data: relu if min(x) >= 0, tanh if max|x| <= 1, else
leaky relu; here ``activation`` is set explicitly (relu by default). Two more differences: their
``rsrae_plus`` projection step also updates the encoder (TF's ``minimize`` takes every variable
the loss depends on; ``rsr_step_params='encoder+rsr'`` gives that), and they shuffle the rows
once before training where the engine reshuffles every epoch.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxad import losses
from jaxad.methods.base import (
    TRAINING_DEFAULTS, Method, TrainState, adam, adam_l2, check_bool, check_choice, check_positive_int,
    check_range, check_widths, validate_training,
)
from jaxad.methods.param_groups import group_optimizer, label_params, per_loss
from jaxad.models import ACTIVATIONS, INITIALIZERS, pad_input_layer, pad_output_layer
from jaxad.models.mlp import ZERO_AT_ZERO
from jaxad.models.rsrae import BATCH_NORMS, RSRAE, conv_decoder_side, conv_encoder_sides, conv_paddings

NETWORKS = ("auto", "dense", "conv")
SCORE_TYPES = ("auto", "cosine", *losses.RSR_NORMS)
# float32 row normalisation leaves norms within ~1e-6 of 1; 1e-3 only rules out raw data
UNIT_NORM_TOL = 1e-3
RSR_STEP_PARAMS = {"rsr": ("rsr",), "encoder+rsr": ("encoder", "rsr")}

DEFAULTS: dict[str, Any] = {
    **TRAINING_DEFAULTS,
    "epochs": 200,
    "batch_size": 128,
    "network": "auto",
    "hidden": (32, 64, 128),
    "kernel_sizes": (5, 5, 3),
    "intrinsic_size": 10,
    "normalize": True,
    "activation": "relu",
    # None: the hidden activation, as the authors and the notebook.
    "output_activation": None,
    "batch_norm": "frozen",
    "initializer": "keras",
    "rsr_init_std": 1.0,
    "loss": "l21",
    "rsr_loss": "l21",
    "lr": 2.5e-4,
    "adam_eps": 1e-8,
    "weight_decay": 0.0,
    # cosine on L2-normalised rows (the authors' data), else the reconstruction error
    "score_type": "auto",
}
RSRAE_DEFAULTS: dict[str, Any] = {**DEFAULTS, "lambda1": 0.1, "lambda2": 0.1}
PLUS_DEFAULTS: dict[str, Any] = {**DEFAULTS, "rsr_lr_factor": 10.0, "rsr_step_params": "rsr"}


def network_kind(config: Mapping[str, Any], x_ndim: int) -> str:
    """'conv' or 'dense': ``network``, with 'auto' choosing conv for NHWC images (the authors'
    ``len(input_shape) > 1``)."""
    if config["network"] != "auto":
        return config["network"]
    return "conv" if x_ndim == 4 else "dense"


def build_model(config: Mapping[str, Any], x_ndim: int) -> RSRAE:
    return RSRAE(
        network=network_kind(config, x_ndim), hidden=tuple(config["hidden"]),
        kernels=tuple(config["kernel_sizes"]), intrinsic_size=int(config["intrinsic_size"]),
        normalize=bool(config["normalize"]), activation=config["activation"],
        output_activation=config["output_activation"] or config["activation"],
        batch_norm=config["batch_norm"], rsr_init_std=float(config["rsr_init_std"]),
        initializer=config["initializer"],
    )


def code_size(config: Mapping[str, Any], x_shape: tuple[int, ...]) -> int:
    """D, the flattened size of the encoder's code for inputs of this shape."""
    if network_kind(config, len(x_shape)) == "dense":
        return int(config["hidden"][-1])
    kernels = tuple(config["kernel_sizes"])
    paddings = conv_paddings(x_shape[1], len(kernels))
    h, w = (conv_encoder_sides(side, kernels, paddings)[-1] for side in x_shape[1:3])
    return h * w * int(config["hidden"][-1])


def validate(config: Mapping[str, Any], x_shape: tuple[int, ...]) -> None:
    validate_training(config)
    check_choice(config, "network", NETWORKS)
    check_widths(config, "hidden")
    check_choice(config, "activation", ACTIVATIONS)
    if config["output_activation"] is not None:
        check_choice(config, "output_activation", ACTIVATIONS)
    check_choice(config, "batch_norm", BATCH_NORMS)
    check_choice(config, "initializer", INITIALIZERS)
    check_choice(config, "loss", losses.RSR_NORMS)
    check_choice(config, "rsr_loss", losses.RSR_NORMS)
    check_choice(config, "score_type", SCORE_TYPES)
    check_bool(config, "normalize")
    check_positive_int(config, "intrinsic_size")
    check_range(config, "rsr_init_std", 0.0, float("inf"), low_open=True)
    check_range(config, "lr", 0.0, float("inf"), low_open=True)
    check_range(config, "adam_eps", 0.0, float("inf"), low_open=True)
    check_range(config, "weight_decay", 0.0, float("inf"))
    for key in ("lambda1", "lambda2"):
        if key in config:
            check_range(config, key, 0.0, float("inf"))
    if "rsr_lr_factor" in config:
        check_range(config, "rsr_lr_factor", 0.0, float("inf"), low_open=True)
        check_choice(config, "rsr_step_params", RSR_STEP_PARAMS)
    kind = network_kind(config, len(x_shape))
    if kind == "conv":
        _validate_conv(config, x_shape)
    d, D = int(config["intrinsic_size"]), code_size(config, x_shape)
    if d > D:
        raise ValueError(f"intrinsic_size={d}: expected at most the encoder's code dimension D = {D} "
                         f"(the RSR layer projects z (D) onto a d-dimensional subspace); lower "
                         "intrinsic_size or widen hidden")


def _validate_conv(config: Mapping[str, Any], x_shape: tuple[int, ...]) -> None:
    kernels = config["kernel_sizes"]
    ok = isinstance(kernels, list | tuple) and all(isinstance(k, int) and not isinstance(k, bool) and k >= 1
                                                  for k in kernels)
    if not ok or len(kernels) != len(config["hidden"]):
        raise ValueError(f"kernel_sizes={kernels!r}: expected one kernel size >= 1 per conv layer "
                         f"(len(hidden) = {len(config['hidden'])}), e.g. (5, 5, 3)")
    if len(x_shape) != 4:
        raise ValueError(f"network='conv': expected images (n, height, width, channels), got shape "
                         f"{tuple(x_shape)}; use network='dense' for vectors")
    paddings = conv_paddings(x_shape[1], len(kernels))
    for axis, side in (("height", x_shape[1]), ("width", x_shape[2])):
        sides = conv_encoder_sides(side, kernels, paddings)
        if min(sides) < 1 or conv_decoder_side(side, kernels, paddings) != side:
            raise ValueError(f"X: image {axis} {side} does not survive {len(kernels)} stride-2 layers with "
                             f"kernels {tuple(kernels)} and back (the authors' network takes sides that "
                             "divide by 2 ** len(hidden), or 28 for three layers)")


# ---------------------------------------------------------------- state

def rsr_labels(params, names=("rsr",)):
    """'rsr' for the parameters under the modules ``names`` (A, and with 'encoder' the encoder
    too), 'ae' for all others."""
    return label_params(params, {name: "rsr" for name in names}, default="ae")


def make_plus_optimizer(config: Mapping[str, Any]):
    """Three optimizers with separate Adam states: 'ae' (lr, all parameters), 'projection' and
    'orthogonality' (rsr_lr_factor * lr, A only; the projection one also the encoder with
    ``rsr_step_params='encoder+rsr'``)."""
    rsr_lr = float(config["lr"]) * float(config["rsr_lr_factor"])
    rsr_adam = lambda: adam_l2(rsr_lr, 0.0, float(config["adam_eps"]))  # noqa: E731
    projection_labels = functools.partial(rsr_labels, names=RSR_STEP_PARAMS[config["rsr_step_params"]])
    return per_loss(ae=adam(config),
                    projection=group_optimizer({"rsr": rsr_adam()}, projection_labels),
                    orthogonality=group_optimizer({"rsr": rsr_adam()}, rsr_labels))


def _init(rng: jax.Array, config: Mapping[str, Any], example: jax.Array, tx) -> TrainState:
    model = build_model(config, example.ndim)
    params_rng, state_rng = jax.random.split(rng)
    variables = model.init(params_rng, example, train=False)
    return TrainState.create(rng=state_rng, variables=variables, apply_fn=model.apply, tx=tx, config=config,
                             extra={"unit_rows": jnp.ones((), bool)})


def rows_are_normalized(x: jax.Array) -> jax.Array:
    """Whether every row (n, ...) has L2 norm 1 or 0 (an empty document), to ``UNIT_NORM_TOL``: ()."""
    norms = jnp.linalg.norm(x.reshape(x.shape[0], -1), axis=1)
    return jnp.all((jnp.abs(norms - 1.0) < UNIT_NORM_TOL) | (norms < UNIT_NORM_TOL))


def setup(state: TrainState, x_train: jax.Array) -> TrainState:
    """Once before training: record whether the training rows are L2-normalised (``score_type``
    'auto' then scores by the cosine)."""
    return state.replace(extra={**state.extra, "unit_rows": rows_are_normalized(x_train)})


def init(rng: jax.Array, config: Mapping[str, Any], example: jax.Array) -> TrainState:
    """``rsrae``'s state (one Adam over all parameters). example: (B, ...) rows; only the shape
    and dtype are used."""
    return _init(rng, config, example, adam(config))


def init_plus(rng: jax.Array, config: Mapping[str, Any], example: jax.Array) -> TrainState:
    """``rsrae_plus``'s state: opt_state = {'ae', 'projection', 'orthogonality'}."""
    return _init(rng, config, example, make_plus_optimizer(config))


# ---------------------------------------------------------------- forward passes

def subspace(state: TrainState) -> jax.Array:
    """The RSR matrix A (D, d)."""
    return state.params["rsr"]["A"]


def forward(state: TrainState, params, x: jax.Array, w: jax.Array, *, method=None):
    """The model in training mode on a padded batch (``w`` 0 marks padding, kept out of the
    batch statistics): (output, new model_state)."""
    out, new_model_state = state.apply_fn(
        {"params": params, **state.model_state}, x, train=True, mask=w > 0,
        mutable=list(state.model_state), method=method)
    return out, new_model_state


def reconstruction_losses(state: TrainState, params, x: jax.Array, w: jax.Array):
    """(L_AE, L_RSR1, L_RSR2) on a batch, and the new model_state (batch-norm statistics)."""
    config = state.config
    (recon, aux), model_state = forward(state, params, x, w)
    A = params["rsr"]["A"]
    l_ae = losses.weighted_mean(losses.rsr_reconstruction_error(x, recon, config["loss"]), w)
    l_rsr1 = losses.weighted_mean(losses.rsr_projection_error(aux["z"], aux["z_rsr"], A, config["rsr_loss"]), w)
    return (l_ae, l_rsr1, losses.rsr_orthogonality_loss(A)), model_state


def train_step(state: TrainState, batch: dict[str, jax.Array]):
    """``rsrae``: one Adam step on L_AE + lambda1 L_RSR1 + lambda2 L_RSR2 over all parameters."""
    config = state.config
    lam1, lam2 = float(config["lambda1"]), float(config["lambda2"])

    def loss_fn(params):
        (l_ae, l_rsr1, l_rsr2), model_state = reconstruction_losses(state, params, batch["x"], batch["w"])
        return l_ae + lam1 * l_rsr1 + lam2 * l_rsr2, (l_ae, l_rsr1, l_rsr2, model_state)

    (loss, (l_ae, l_rsr1, l_rsr2, model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    new_state = state.apply_gradients(grads, model_state=model_state)
    return new_state, {"loss": loss, "reconstruction": l_ae, "projection": l_rsr1, "orthogonality": l_rsr2}


def _group(params, step_params: str) -> dict:
    """The top-level modules a projection step trains: {'rsr': ...} or {'encoder', 'rsr'}."""
    return {name: params[name] for name in RSR_STEP_PARAMS[step_params]}


def _full_gradients(params, grads: dict) -> dict:
    """``grads`` for some top-level modules completed with zeros for the others."""
    return {name: grads[name] if name in grads else jax.tree.map(jnp.zeros_like, value)
            for name, value in params.items()}


def train_step_plus(state: TrainState, batch: dict[str, jax.Array]):
    """``rsrae_plus``: per batch, three updates in turn, each on the parameters the previous
    one left and each with its own Adam state:

    1. Adam(lr) on L_AE over all parameters (batch statistics updated here);
    2. Adam(rsr_lr_factor * lr) on L_RSR1 over A (a fresh encoder pass with the new weights);
    3. Adam(rsr_lr_factor * lr) on L_RSR2 over A.

    Metrics: ``loss`` = L_AE before step 1, ``projection`` and ``orthogonality`` before their
    own steps."""
    x, w = batch["x"], batch["w"]
    rsr_norm = state.config["rsr_loss"]

    def ae_loss(params):
        (l_ae, _, _), model_state = reconstruction_losses(state, params, x, w)
        return l_ae, model_state

    (l_ae, model_state), grads = jax.value_and_grad(ae_loss, has_aux=True)(state.params)
    state = state.apply_gradients(grads, optimizer="ae", model_state=model_state)

    def projection_loss(trained):
        # The statistics this pass would write are dropped: step 1 already counted this batch.
        params = {**state.params, **trained}
        (z, z_rsr), _ = forward(state, params, x, w, method="encode")
        return losses.weighted_mean(losses.rsr_projection_error(z, z_rsr, params["rsr"]["A"], rsr_norm), w)

    # Differentiate only what the step trains (A, or the encoder and A): the other parameters'
    # gradients would be zeroed by the partition anyway, and skipping them skips their backward pass.
    l_rsr1, grads = jax.value_and_grad(projection_loss)(_group(state.params, state.config["rsr_step_params"]))
    state = state.apply_gradients(_full_gradients(state.params, grads), optimizer="projection", advance=False)

    l_rsr2, grads = jax.value_and_grad(losses.rsr_orthogonality_loss)(subspace(state))
    state = state.apply_gradients(_full_gradients(state.params, {"rsr": {"A": grads}}),
                                  optimizer="orthogonality", advance=False)
    return state, {"loss": l_ae, "projection": l_rsr1, "orthogonality": l_rsr2}


def pad_features(state: TrainState, n_features: jax.Array) -> TrainState:
    """A dense RSRAE initialised for inputs zero-padded to W columns, made to train and score as
    the network of its first ``n_features`` (traced; ``train.fit(bucket=True)``): the encoder's
    first layer keeps the real rows of its kernel, rescaled to their fan-in, and the decoder's
    output layer the real columns (``models.pad_input_layer`` / ``pad_output_layer``). With an
    output activation that maps 0 to 0 (relu, tanh, linear, ...) the padding is then reconstructed
    exactly and never moves; every norm type sums over features and the cosine ignores zero
    columns, so losses and scores are the narrow network's. Only the random draws of the output
    kernel differ (``jaxad.methods.ae.pad_features``)."""
    config = state.config
    activation = config["output_activation"] or config["activation"]
    if activation not in ZERO_AT_ZERO:
        raise ValueError(f"bucket=True: the padded columns stay zero only with an output activation that maps "
                         f"0 to 0, got {activation!r}")
    init = config["initializer"]
    encoder, decoder = state.params["encoder"], state.params["decoder"]
    params = {**state.params,
              "encoder": {**encoder, "Dense_0": pad_input_layer(encoder["Dense_0"], n_features, init)},
              "decoder": {**decoder, "Dense_0": pad_output_layer(decoder["Dense_0"], n_features, init)}}
    return state.replace(params=params)


def predict(state: TrainState, x: jax.Array):
    """Inference-mode forward pass: (recon (n, ...), aux {"z", "z_rsr", "z_tilde"})."""
    return state.apply_fn({"params": state.params, **state.model_state}, x, train=False)


def reconstruct(state: TrainState, x: jax.Array) -> jax.Array:
    """x~ (n, ...) in inference mode."""
    return predict(state, x)[0]


def score(state: TrainState, x: jax.Array) -> jax.Array:
    """-cos(x, x~) per row (``score_type='cosine'``), else the per-row reconstruction error of
    that norm type; 'auto': the cosine if the training rows were L2-normalised, else the error
    in the ``loss`` norm. (n, ...) -> (n,), higher = more abnormal."""
    recon = reconstruct(state, x)
    kind = state.config["score_type"]
    if kind == "cosine":
        return losses.negative_cosine_similarity(x, recon)
    if kind == "auto":
        return jnp.where(state.extra["unit_rows"], losses.negative_cosine_similarity(x, recon),
                         losses.rsr_reconstruction_error(x, recon, state.config["loss"]))
    return losses.rsr_reconstruction_error(x, recon, kind)


METHOD = Method(
    name="rsrae", init=init, train_step=train_step, score=score, defaults=RSRAE_DEFAULTS,
    validate=validate, setup=setup, input_ndims=(2, 4), pad_features=pad_features,
    description="RSR autoencoder, joint loss (Lai, Zou, Lerman 2020)",
)
PLUS_METHOD = Method(
    name="rsrae_plus", init=init_plus, train_step=train_step_plus, score=score, defaults=PLUS_DEFAULTS,
    validate=validate, setup=setup, input_ndims=(2, 4), pad_features=pad_features,
    description="RSR autoencoder, alternating AE / projection / orthogonality steps (RSRAE+)",
)

__all__ = ["DEFAULTS", "METHOD", "PLUS_DEFAULTS", "PLUS_METHOD", "RSRAE_DEFAULTS", "build_model", "rows_are_normalized", "setup",
           "code_size", "forward", "init", "init_plus", "make_plus_optimizer", "pad_features", "predict", "reconstruct",
           "reconstruction_losses", "rsr_labels", "score", "subspace", "train_step", "train_step_plus",
           "validate"]
