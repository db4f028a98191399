"""What every method shares: the train state, the method record, config resolution.

A method is a record of pure functions (see ``Method``):

    init(rng, config, example) -> state          example: (B, ...) float32 rows
    train_step(state, batch) -> (state, metrics) batch: {"x": (B, ...), "w": (B,) 0/1 weights}
    score(state, x) -> scores                    (n, ...) -> (n,), higher = more abnormal

The state is a pytree, so the engine vmaps all three over seeds. Whatever a step needs besides
arrays (the Flax apply function, the optimizer, the resolved config) rides in the state as
static (non-pytree) fields, as in Flax's own TrainState.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

# Engine settings every method's config carries, overridden per method where a paper says so.
TRAINING_DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 32,
    # Early stopping on the epoch's mean training loss; patience 0 turns it off.
    "patience": 0,
    "min_delta": 0.0,
    # PyTorch's DataLoader(drop_last=True): the rows after the last full batch of an epoch's
    # shuffle sit that epoch out (PyOD's detectors train so). False pads the last batch instead.
    "drop_last": False,
}


class FrozenConfig(Mapping):
    """A read-only, hashable mapping (lists become tuples), so it can be a static jit field."""

    def __init__(self, items: Mapping[str, Any]):
        self._items = tuple(sorted((k, _hashable(v)) for k, v in items.items()))
        self._dict = dict(self._items)

    def __getitem__(self, key: str) -> Any:
        return self._dict[key]

    def __iter__(self):
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FrozenConfig) and self._items == other._items

    def __repr__(self) -> str:
        return f"FrozenConfig({self._dict!r})"


def _hashable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return FrozenConfig(value)
    return value


@struct.dataclass
class TrainState:
    """step (), params, model_state (Flax collections besides params, e.g. batch_stats),
    opt_state, rng (a key, constant: steps fold in ``step``), extra (method arrays such as
    OC-NN's r or Deep SVDD's centre c); apply_fn, tx and config are static."""

    step: jax.Array
    params: Any
    model_state: Any
    opt_state: Any
    rng: jax.Array
    extra: Any
    apply_fn: Callable = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)
    config: FrozenConfig = struct.field(pytree_node=False)

    @classmethod
    def create(cls, *, rng, variables, apply_fn, tx, config, extra=None) -> "TrainState":
        params = variables["params"]
        model_state = {k: v for k, v in variables.items() if k != "params"}
        return cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            model_state=model_state,
            opt_state=tx.init(params),
            rng=rng,
            extra={} if extra is None else extra,
            apply_fn=apply_fn,
            tx=tx,
            config=FrozenConfig(config),
        )

    def apply_gradients(self, grads, *, optimizer: str | None = None, advance: bool = True,
                        **changes) -> "TrainState":
        """One optimizer step on ``grads``, with any other fields in ``changes``.

        ``optimizer`` names one of a ``param_groups.per_loss`` tx's optimizers (the others'
        states are left as they are). ``advance=False`` keeps ``step`` for a second update in
        the same training step (RSRAE+'s three losses, a BiGAN's D then E/G)."""
        extra = {} if optimizer is None else {"optimizer": optimizer}
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params, **extra)
        return self.replace(step=self.step + (1 if advance else 0),
                            params=optax.apply_updates(self.params, updates),
                            opt_state=opt_state, **changes)

    def step_rng(self) -> jax.Array:
        """A fresh key for this step: the constant rng folded with the step number."""
        return jax.random.fold_in(self.rng, self.step)


@dataclasses.dataclass(frozen=True)
class Method:
    """A detection method: its pure functions, its defaults and its input checks.

    ``epoch_end(state, x_train) -> (state, metrics)`` runs inside the compiled epoch after the
    last batch (OC-NN sets its radius r there). ``validate(config, x_shape)`` raises ValueError
    for settings that cannot work, before anything is compiled. ``input_ndims`` lists the input
    ranks accepted: (2,) for tabular methods, (2, 4) for those that also take NHWC images.
    """

    name: str
    init: Callable
    train_step: Callable
    score: Callable
    defaults: Mapping[str, Any]
    validate: Callable[[Mapping[str, Any], tuple[int, ...]], None] = lambda config, shape: None
    epoch_end: Callable | None = None
    input_ndims: tuple[int, ...] = (2, 4)
    presets: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    description: str = ""
    # setup(state, x_train) -> state: once after init, on the device, before the first epoch
    # (Deep SVDD's centre c from a forward pass over the training data).
    setup: Callable | None = None
    # stopping(config) -> host-side stop rules ``(epoch, metrics) -> stop mask`` of the method's
    # own (OC-NN's |delta r| < delta for `steps` epochs), added to fit's rules.
    stopping: Callable[[Mapping[str, Any]], list] | None = None
    # On CPU, drive steps from the host and train seeds one after another (fit's loop='auto').
    # For convolutional models: XLA's CPU backend runs them ~4x slower inside a compiled loop
    # (conv_ae: 22 vs 5.7 ms a step) and ~4.7x slower with vmapped per-seed kernels, which
    # become grouped convolutions (3 seeds: 108 ms vs 3 x 7.7 ms). Dense models keep the scan.
    cpu_host_loop: bool = False
    # pad_features(state, n_features) -> state: make a state initialised for zero-padded inputs
    # (n, W) train and score as a network built for their first n_features columns (a traced
    # int), so datasets of different widths share one compiled program (fit's ``bucket``). Such a
    # fit pads the rows too: an ``epoch_end`` that reads the training set must then keep to
    # ``training_rows(state, n)``.
    pad_features: Callable | None = None


# Rows per chunk of ``map_training_rows``.
TRAINING_ROWS_CHUNK = 1024


def map_training_rows(fn: Callable[[jax.Array], jax.Array], state: TrainState, x: jax.Array,
                      fill: float = 0.0) -> jax.Array:
    """fn (rows (c, ...) -> (c,)) over the training set x (n, ...) that ``epoch_end`` receives:
    fn(x) when all its rows are real; in a bucketed fit only over the chunks of
    ``TRAINING_ROWS_CHUNK`` rows that hold real rows (``training_rows``), ``fill`` beyond them,
    because the padding to a shared size can be many times the real rows and the hook runs
    every epoch. -> (n,)."""
    if "n_rows" not in state.extra:
        return fn(x)
    n = x.shape[0]
    chunk = math.gcd(n, TRAINING_ROWS_CHUNK)
    chunks = x.reshape(n // chunk, chunk, *x.shape[1:])
    out = jnp.full((n // chunk, chunk), fill, jax.eval_shape(fn, chunks[0]).dtype)
    used = (state.extra["n_rows"] + chunk - 1) // chunk
    out = jax.lax.fori_loop(0, used, lambda i, out: out.at[i].set(fn(chunks[i])), out)
    return out.reshape(n)


def training_rows(state: TrainState, n: int) -> jax.Array | None:
    """The real rows of a training set of n rows handed to ``epoch_end``: None when all n are real,
    else (n,) bool, True for the first ``state.extra["n_rows"]`` (``fit(bucket=True)`` pads the
    table with zero rows up to a shared size)."""
    if "n_rows" not in state.extra:
        return None
    return jnp.arange(n) < state.extra["n_rows"]


def adam_l2(learning_rate, weight_decay: float = 0.0, eps: float = 1e-8) -> optax.GradientTransformation:
    """Adam with L2 weight decay added to the gradient (torch.optim.Adam's ``weight_decay``,
    which PyOD and the authors' PyTorch code use), not AdamW's decoupled decay.
    ``learning_rate`` is a float or an optax schedule; ``eps`` 1e-8 is PyTorch's and optax's
    (Keras uses 1e-7)."""
    adam_tx = optax.adam(learning_rate, eps=eps)
    return optax.chain(optax.add_decayed_weights(weight_decay), adam_tx) if weight_decay > 0 else adam_tx


def adam(config: Mapping[str, Any], lr_key: str = "lr") -> optax.GradientTransformation:
    """``adam_l2`` from a config's ``lr`` (or ``lr_key``), ``weight_decay`` and ``adam_eps``."""
    return adam_l2(float(config[lr_key]), float(config.get("weight_decay", 0.0)),
                   float(config.get("adam_eps", 1e-8)))


def feature_stats(x: jax.Array) -> dict[str, jax.Array]:
    """Per-feature mean and std of x (n, ...) -> {"mean", "std"} of shape x.shape[1:]; a
    constant feature gets std 1, so standardising it gives 0, not NaN."""
    mean, std = jnp.mean(x, axis=0), jnp.std(x, axis=0)
    return {"mean": mean, "std": jnp.where(std > 1e-12, std, 1.0)}


def identity_stats(sample_shape: Sequence[int]) -> dict[str, jax.Array]:
    """``feature_stats`` that leave x as it is (mean 0, std 1): a state's ``extra["inputs"]``
    until ``with_input_stats`` sets the training data's."""
    return {"mean": jnp.zeros(tuple(sample_shape), jnp.float32), "std": jnp.ones(tuple(sample_shape), jnp.float32)}


def with_input_stats(state: TrainState, x_train: jax.Array) -> TrainState:
    """``state`` with ``extra["inputs"]`` = ``feature_stats(x_train)`` when its config's
    ``standardize`` applies to data of x_train's rank, else unchanged (a method's ``setup``)."""
    if wants_standardizing(state.config["standardize"], x_train.ndim):
        return state.replace(extra={**state.extra, "inputs": feature_stats(x_train)})
    return state


def standardized(x: jax.Array, stats: Mapping[str, jax.Array] | None) -> jax.Array:
    """(x - mean) / std with ``feature_stats`` of the training data; None leaves x as it is."""
    return x if stats is None else (x - stats["mean"]) / stats["std"]


def wants_standardizing(setting, ndim: int) -> bool:
    """A method's ``standardize`` setting: True, False, or "auto" = tables (rank 2) only, as
    PyOD's deep detectors (``preprocessing=True``); images keep their [0, 1] pixels."""
    return ndim == 2 if setting == "auto" else bool(setting)


def check_standardize(config: Mapping[str, Any]) -> None:
    value = config["standardize"]
    if not (value is True or value is False or value == "auto"):
        raise ValueError(f"standardize={value!r}: expected True, False or 'auto' (tables only)")


def check_choice(config: Mapping[str, Any], key: str, choices) -> None:
    try:
        known = config[key] in choices
    except TypeError:  # unhashable, e.g. a list given on the command line
        known = False
    if not known:
        raise ValueError(f"{key}={config[key]!r}: expected one of {sorted(choices)}")


def check_positive_int(config: Mapping[str, Any], key: str, minimum: int = 1) -> None:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key}={value!r}: expected an integer >= {minimum}")


def check_widths(config: Mapping[str, Any], key: str, allow_empty: bool = False) -> None:
    value = config[key]
    ok = isinstance(value, list | tuple) and (allow_empty or len(value) > 0)
    if not ok or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
        raise ValueError(f"{key}={value!r}: expected a {'' if allow_empty else 'non-empty '}"
                         "tuple of layer widths >= 1, e.g. (64, 32)")


def check_bool(config: Mapping[str, Any], key: str) -> None:
    if not isinstance(config[key], bool):
        raise ValueError(f"{key}={config[key]!r}: expected True or False")


def check_range(config: Mapping[str, Any], key: str, low: float, high: float,
                low_open: bool = False, high_open: bool = False) -> None:
    value = config[key]
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{key}={value!r}: expected a number in {lo}{low}, {high}{hi}")


def validate_training(config: Mapping[str, Any]) -> None:
    """Checks of the engine settings every method shares."""
    check_positive_int(config, "epochs")
    check_positive_int(config, "batch_size")
    check_positive_int(config, "patience", minimum=0)
    check_range(config, "min_delta", 0.0, float("inf"))
    if "drop_last" in config:
        check_bool(config, "drop_last")
