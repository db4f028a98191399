"""The training engine, generic over methods through init / train_step / score.

* The training set is put on the device once; an epoch is one ``lax.scan`` over minibatches of a
  fresh permutation. The last partial batch is padded to full size with weight-0 rows, so every
  sample is seen every epoch and shapes stay static (one compilation). The permutation is drawn
  on the host with numpy from (seed, epoch) and passed in: XLA's CPU sort made an on-device
  ``jax.random.permutation`` cost 2.4 ms of a 6 ms ECG epoch (20 ms for 29 000 rows), numpy
  takes 0.05 ms (0.3 ms).
* Seeds are a leading axis: ``vmap`` turns N seeds into one compiled program, and the epoch is
  compiled once (ahead of time, so the compile time is measured) with the state donated. Each
  member of that axis may also get its own training set (``data_per_seed``: one-class tasks x
  seeds as one program).
* Convolutional methods on CPU (``Method.cpu_host_loop``) run a host loop of compiled steps
  instead, seeds one after another: XLA's CPU backend is ~4x slower on convolutions inside a
  compiled loop and with vmapped kernels. Same batches, same metrics, same results to rounding.
* Several devices: the seed axis or the batch axis is sharded with ``jax.sharding`` over a 1-D
  mesh of all devices; XLA inserts the gradient all-reduce for the batch axis.
* Per epoch, on the host: a tqdm bar with the loss, a NaN/inf guard that raises
  ``DivergenceError`` naming the method, epoch and loss, and stopping rules per seed (a stopped
  seed's state is frozen inside the compiled epoch while the others go on).
* Per epoch, on the device: the method's ``epoch_end`` and any extra ``hooks``, pure functions
  ``(state, x_train) -> (state, metrics)``.
* Training data over ``DEVICE_BUDGET_BYTES`` (1 GiB) stays in host memory: each epoch's
  batches stream to the device in chunks, the same batches through the same step (``fit``'s
  ``device_budget_bytes``). ``fit(..., checkpoint_dir=...)`` saves the run every
  ``checkpoint_every`` epochs and resumes from its latest checkpoint (``jaxad.checkpoint``).
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from tqdm import tqdm  # tqdm.auto warns in Jupyter without ipywidgets

from jaxad.methods import Method, get_method
from jaxad.methods.base import FrozenConfig

Hook = Callable[[Any, jax.Array], tuple[Any, dict[str, jax.Array]]]
SHARD_CHOICES = ("auto", "seeds", "batch", "none")
LOOP_CHOICES = ("auto", "scan", "host")
# Rows scored per compiled call, at most SCORE_CHUNK and about SCORE_CHUNK_ELEMENTS input values
# (65536 rows of 64 features, 5350 images of 28x28): bounds the activation memory of scoring.
SCORE_CHUNK = 65536
SCORE_CHUNK_ELEMENTS = 1 << 22
MIN_SCORE_ROWS = 256
# LLVM's expensive passes buy nothing measurable for these small dense programs on CPU yet cost
# about a third of the compile time (measured on the ECG autoencoder: 1.57 s -> 1.04 s, identical
# numbers, same speed).
CPU_COMPILER_OPTIONS = {"xla_llvm_disable_expensive_passes": True}
INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}
# fit(bucket=True): inputs are zero-padded to the first of these widths that holds them (beyond
# the last, to a multiple of it), rows to a power of two (at least BUCKET_MIN_ROWS) and the batch
# list of an epoch to a power of two (at least BUCKET_MIN_BATCHES), so that the ADBench tables'
# 24 widths share four compiled programs per method instead of compiling 35 (1-6 s each on this
# 2-core CPU). Powers of four keep the padding of the first and last layers small beside the
# per-step cost of the hidden layers (the widest table, 1555 columns padded to 4096, pays ~2x).
BUCKET_WIDTHS = (16, 64, 256, 1024, 4096)
BUCKET_MIN_ROWS = 8192
BUCKET_MIN_BATCHES = 256
# Compiled programs that fit(bucket=True) keeps for later fits of the same padded shapes.
KEPT_PROGRAMS_MAX = 64
_KEPT_PROGRAMS: dict[tuple, Any] = {}
# Training data larger than this (float32 bytes) is not put on the device whole: each epoch's
# permuted batches stream from host memory in chunks of at most half of it (``fit``'s
# ``device_budget_bytes``; the environment variable JAXAD_DEVICE_BUDGET_BYTES sets the default).
DEVICE_BUDGET_BYTES = int(os.environ.get("JAXAD_DEVICE_BUDGET_BYTES", 1 << 30))


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss (or scoring non-finite scores)."""


@dataclasses.dataclass
class FitResult:
    """What ``fit`` returns. ``states`` has a leading axis of length ``len(seeds)``;
    ``history[metric]`` is (epochs_run, n_seeds) with NaN where a seed had already stopped."""

    method: Method
    config: dict[str, Any]
    seeds: tuple[int, ...]
    states: Any
    history: dict[str, np.ndarray]
    epochs_run: np.ndarray
    init_seconds: float  # placing the data, compiling and running the (vmapped) init
    compile_seconds: float  # tracing + XLA compilation of the epoch
    loop_seconds: float  # the epochs themselves (steady state)
    train_seconds: float  # all of fit: placement, init, compile, epochs
    sharding: str
    start_epoch: int = 0  # epochs restored from a checkpoint (fit's checkpoint_dir)
    data_placement: str = "device"  # "device" (the whole training set) or "streamed" (batches)
    input_width: int | None = None  # fit(bucket=True): the padded width scoring pads inputs to


class EarlyStopping:
    """Stop a seed once ``monitor`` has not improved (decreased) by more than ``min_delta`` for
    ``patience`` epochs in a row. Called with (epoch, metrics of shape (n_seeds,)); returns the
    mask of seeds to stop."""

    def __init__(self, monitor: str = "loss", patience: int = 5, min_delta: float = 0.0):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.best: np.ndarray | None = None
        self.wait: np.ndarray | None = None

    def __call__(self, epoch: int, metrics: Mapping[str, np.ndarray]) -> np.ndarray:
        value = np.asarray(metrics[self.monitor], dtype=np.float64)
        if self.best is None:
            self.best, self.wait = value.copy(), np.zeros(value.shape, int)
            return np.zeros(value.shape, bool)
        improved = value < self.best - self.min_delta
        self.best = np.where(improved, value, self.best)
        self.wait = np.where(improved, 0, self.wait + 1)
        return self.wait >= self.patience


# ---------------------------------------------------------------- device placement

@dataclasses.dataclass(frozen=True)
class _Placement:
    kind: str  # "none", "seeds" or "batch"
    mesh: Mesh | None = None

    def seeded(self, tree):
        """Put arrays whose leading axis is the seed axis."""
        if self.kind != "seeds":
            return self.replicated(tree)
        return jax.device_put(tree, NamedSharding(self.mesh, P("devices")))

    def replicated(self, tree):
        if self.mesh is None:
            return jax.device_put(tree)
        return jax.device_put(tree, NamedSharding(self.mesh, P()))

    def constrain_batch(self, xb: jax.Array) -> jax.Array:
        if self.kind != "batch":
            return xb
        return jax.lax.with_sharding_constraint(xb, NamedSharding(self.mesh, P("devices")))


def plan_placement(shard: str, n_seeds: int, batch_size: int) -> _Placement:
    """Choose what to shard over all devices: 'seeds' needs n_seeds divisible by the device
    count, 'batch' the batch size; 'auto' prefers seeds, then batch, else one device."""
    if shard not in SHARD_CHOICES:
        raise ValueError(f"shard={shard!r}: expected one of {SHARD_CHOICES}")
    # this process's devices: under jax.distributed every host trains its own cells
    devices = jax.local_devices()
    n_dev = len(devices)
    if shard == "none" or n_dev == 1:
        return _Placement("none")
    if shard == "auto":
        shard = "seeds" if n_seeds % n_dev == 0 else "batch" if batch_size % n_dev == 0 else "none"
        if shard == "none":
            return _Placement("none")
    size = n_seeds if shard == "seeds" else batch_size
    if size % n_dev:
        what = "the number of seeds" if shard == "seeds" else "batch_size"
        raise ValueError(f"shard={shard!r}: {what} ({size}) must be divisible by the "
                         f"{n_dev} devices")
    return _Placement(shard, Mesh(np.asarray(devices), ("devices",)))


# ---------------------------------------------------------------- the compiled epoch

def batch_layout(n: int, batch_size: int, drop_last: bool = False) -> tuple[int, int]:
    """(number of batches, rows per batch): batches never exceed the data; the last is padded,
    or, with ``drop_last`` (PyTorch's DataLoader option), left out when it is not full."""
    rows = min(batch_size, n)
    return (n // rows if drop_last else -(-n // rows)), rows


def epoch_batches(orders: np.ndarray, batch_size: int, drop_last: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Minibatches of one epoch from each seed's row order (n_seeds, n): indices
    (n_seeds, n_batches, rows) int32 and weights (n_batches, rows), 1 for real rows and 0 for the
    padding of the last batch, which repeats rows of the order so that gathers stay in bounds.
    ``drop_last``: the rows after the last full batch sit this epoch out (all weights 1)."""
    n_seeds, n = orders.shape
    n_batches, rows = batch_layout(n, batch_size, drop_last)
    if drop_last:
        idx = orders[:, :n_batches * rows]
        return idx.reshape(n_seeds, n_batches, rows).astype(np.int32), np.ones((n_batches, rows), np.float32)
    pad = n_batches * rows - n  # < rows <= n
    idx = np.concatenate([orders, orders[:, :pad]], axis=1)
    weights = (np.arange(n_batches * rows) < n).astype(np.float32)
    return idx.reshape(n_seeds, n_batches, rows).astype(np.int32), weights.reshape(n_batches, rows)


def make_step(method: Method, placement: _Placement) -> Callable:
    """The pure per-seed step ``(state, batch_idx, batch_w, x) -> (state, metrics)``: gathers
    the batch rows of x on the device and runs ``method.train_step``."""

    def run_step(state, batch_idx, batch_w, x):
        return method.train_step(state, {"x": placement.constrain_batch(x[batch_idx]), "w": batch_w})

    return run_step


def make_epoch_end(method: Method, hooks: Sequence[Hook]) -> Callable:
    """The pure per-seed epoch end ``(state, x) -> (state, metrics)``: the method's
    ``epoch_end`` then the extra hooks, their metrics merged."""
    end_hooks = ([method.epoch_end] if method.epoch_end else []) + list(hooks)

    def run_end(state, x):
        metrics = {}
        for hook in end_hooks:
            state, extra = hook(state, x)
            metrics.update(extra)
        return state, metrics

    return run_end


def freeze_stopped(active, new, old):
    """A stopped seed keeps its state; the others go on in the same program."""
    return jax.tree.map(lambda a, b: jnp.where(active, a, b), new, old)


def make_epoch(method: Method, n: int | None, hooks: Sequence[Hook], placement: _Placement,
               skip_empty: bool = False) -> Callable:
    """The pure per-seed epoch ``(state, idx, w, active, x) -> (state, metrics)``: one
    ``lax.scan`` of ``make_step`` over the batches of ``epoch_batches``, then the epoch end.
    Metrics are means over the ``n`` real rows the epoch trains on (None: the weights' sum).
    ``skip_empty``: the batch list ends in empty batches (weights all 0, ``bucket_batches``'
    padding), and the epoch loops over the others only (a loop whose trip count is the number
    of non-empty batches), so one program serves any number of batches up to its length at
    the cost of the real ones."""
    step, end = make_step(method, placement), make_epoch_end(method, hooks)

    def scan_batches(state, idx, w, x):
        def body(s, inputs):
            s, m = step(s, *inputs, x)
            return s, (m, jnp.sum(inputs[1]))

        new, (batch_metrics, counts) = jax.lax.scan(body, state, (idx, w))
        total = jnp.sum(counts) if n is None else n
        return new, {k: jnp.sum(v * counts) / total for k, v in batch_metrics.items()}

    def loop_batches(state, idx, w, x):
        counts = jnp.sum(w, axis=1)
        zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype),
                             jax.eval_shape(lambda s: step(s, idx[0], w[0], x)[1], state))

        def body(i, carry):
            s, sums = carry
            s, m = step(s, idx[i], w[i], x)
            return s, {k: sums[k] + m[k] * counts[i] for k in sums}

        new, sums = jax.lax.fori_loop(0, jnp.sum(counts > 0), body, (state, zeros))
        total = jnp.sum(counts) if n is None else n
        return new, {k: v / total for k, v in sums.items()}

    def run_epoch(state, idx, w, active, x):
        new, metrics = (loop_batches if skip_empty else scan_batches)(state, idx, w, x)
        new, end_metrics = end(new, x)
        return freeze_stopped(active, new, state), {**metrics, **end_metrics}

    return run_epoch


def bucket_width(d: int) -> int:
    """Columns of a ``fit(bucket=True)`` input of width d: the first ``BUCKET_WIDTHS`` entry
    >= d, beyond the last a multiple of it."""
    for width in BUCKET_WIDTHS:
        if d <= width:
            return width
    return -(-d // BUCKET_WIDTHS[-1]) * BUCKET_WIDTHS[-1]


def bucket_count(n: int, floor: int) -> int:
    """The next power of two >= n, at least ``floor``: padded rows and batch lists of ``bucket``."""
    return max(floor, 1 << max(n - 1, 0).bit_length())


def bucket_batches(idx: np.ndarray, w: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``epoch_batches``' (n_seeds, batches, rows) indices and (batches, rows) weights padded
    with empty batches (index 0, weight 0) to ``bucket_count(batches, BUCKET_MIN_BATCHES)``, and
    a table smaller than one batch its batch to ``batch_size`` rows (weight 0)."""
    batches, rows = bucket_count(w.shape[0], BUCKET_MIN_BATCHES), max(w.shape[1], batch_size)
    return pad_to(idx, (idx.shape[0], batches, rows)), pad_to(w, (batches, rows))


def check_bucketable(method: Method, hooks: Sequence[Hook], x_train, data_per_seed: bool, loop: str) -> None:
    """ValueError, before anything runs, when ``fit(bucket=True)`` cannot apply."""
    if method.pad_features is None:
        raise ValueError(f"bucket=True: method {method.name!r} cannot pad its input features "
                         "(it has no pad_features); fit it without bucket")
    if data_per_seed or np.ndim(x_train) != 2:
        raise ValueError(f"bucket=True: expected one table (n, d) shared by the seeds, got shape "
                         f"{np.shape(x_train)}{' per seed' if data_per_seed else ''}")
    if hooks:
        raise ValueError("bucket=True: extra epoch-end hooks would read the padded training set, padding rows "
                         "and all; fit without bucket")
    if loop != "scan":
        raise ValueError(f"bucket=True: needs loop='scan' (the compiled epoch), got loop={loop!r}")


def pad_to(a: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """a zero-padded at the end of each axis to ``shape`` (each at least a's)."""
    return np.pad(a, [(0, size - have) for have, size in zip(a.shape, shape)])


def _kept_program(key: tuple, compile_program: Callable[[], Any]):
    """The compiled program kept under ``key``, compiled (and kept) on first use. Later fits of
    the same key skip tracing, lowering and compiling; a program's outputs carry the static fields
    (apply function, optimizer) of the fit that compiled it, equal to theirs by the key's config."""
    if key not in _KEPT_PROGRAMS:
        if len(_KEPT_PROGRAMS) >= KEPT_PROGRAMS_MAX:
            _KEPT_PROGRAMS.pop(next(iter(_KEPT_PROGRAMS)))
        _KEPT_PROGRAMS[key] = compile_program()
    return _KEPT_PROGRAMS[key]


def epoch_orders(seeds: Sequence[int], epoch: int, n: int) -> np.ndarray:
    """Each seed's row order for one epoch: (n_seeds, n) int32, a numpy permutation seeded by
    (seed, epoch), so it depends on nothing else (not on the other seeds trained alongside)."""
    return np.stack([np.random.default_rng((int(s), epoch)).permutation(n) for s in seeds]).astype(np.int32)


def _compiler_options() -> dict[str, Any] | None:
    return CPU_COMPILER_OPTIONS if jax.default_backend() == "cpu" else None


def init_states(method: Method, config: Mapping[str, Any], x: jax.Array, seeds: Sequence[int],
                n_features: int | None = None, n_rows: int | None = None):
    """``method.init`` vmapped over ``jax.random.PRNGKey(seed)`` of each seed, as one program.

    It runs once, so on CPU it is compiled without LLVM optimisation (the threefry-heavy random
    init compiles about twice as fast). The PRNG bits are the same either way; the float scaling
    of them may differ in the last bit from an optimised compile (fused multiply-adds), so a
    hand-run ``method.init`` agrees with this to float32 rounding (tested), and this program
    always gives the same states.

    ``n_features``: x is zero-padded beyond its first n_features columns and n_rows rows (default
    all its rows), and the states are ``method.pad_features``' with ``extra["n_rows"]`` set (both
    are arguments of the program, which is kept and reused for every table and seed list of the
    same padded shape: ``fit``'s ``bucket``)."""
    example = x[: min(2, x.shape[0])]
    if n_features is not None:
        example = np.zeros(example.shape, np.float32)  # a kept program must not bake in one set's rows

    def init_all(seed_array, *n_real):
        def init_one(key):
            state = method.init(key, config, example)
            if not n_real:
                return state
            state = method.pad_features(state, n_real[0])
            return state.replace(extra={**state.extra, "n_rows": n_real[1]})

        return jax.vmap(init_one)(jax.vmap(jax.random.PRNGKey)(seed_array))

    padding = () if n_features is None else (n_features, x.shape[0] if n_rows is None else n_rows)
    args = (jnp.asarray(seeds, jnp.uint32),) + tuple(jnp.asarray(v, jnp.int32) for v in padding)
    options = INIT_COMPILER_OPTIONS if jax.default_backend() == "cpu" else None

    def compile_init():
        return jax.jit(init_all).lower(*args).compile(compiler_options=options)

    if n_features is None:
        return compile_init()(*args)
    key = ("init", method.name, FrozenConfig(config), example.shape, len(seeds), jax.default_backend())
    return _kept_program(key, compile_init)(*args)


def _check_finite(name: str, epoch: int, epochs: int, metrics: Mapping[str, np.ndarray], active: np.ndarray,
                  seeds: Sequence[int]) -> None:
    """DivergenceError at the first non-finite epoch metric of a training seed: the loss, else
    any other (a method's separate losses, e.g. RSRAE+'s orthogonality loss, can go NaN while
    the reported loss does not)."""
    for key in ["loss", *sorted(k for k in metrics if k != "loss")]:
        values = np.asarray(metrics[key]).reshape(len(active), -1)
        bad = active & ~np.isfinite(values).all(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            value = values[i][~np.isfinite(values[i])][0]
            raise DivergenceError(
                f"{name}: training diverged at epoch {epoch + 1}/{epochs}: {key} = {value} "
                f"(seed {seeds[i]}). Lower the learning rate or check the input's scale; "
                "no scores are returned."
            )


def fit(method: str | Method, config: Mapping[str, Any], x_train, *, seeds: Sequence[int] = (0,),
        progress: bool = True, hooks: Sequence[Hook] = (), stoppers: Sequence[Callable] = (),
        shard: str = "auto", on_epoch: Callable[[int, dict], None] | None = None,
        desc: str | None = None, data_per_seed: bool = False, loop: str = "auto",
        checkpoint_dir=None, checkpoint_every: int = 1, device_budget_bytes: int | None = None,
        bucket: bool = False) -> FitResult:
    """Train one model per seed, all seeds as one compiled program.

    x_train: (n, ...) array shared by all seeds (validated by the caller), or with
    ``data_per_seed=True`` an (n_seeds, n, ...) array giving each member of the seed axis its own
    training set of the same shape (e.g. one-class tasks x seeds as one program; seeds may then
    repeat). ``config`` is the resolved method config (``jaxad.methods.resolve_config``); its
    epochs / batch_size / patience / min_delta drive the loop. ``stoppers`` are extra host-side
    rules ``(epoch, metrics) -> stop mask (n_seeds,)``.

    ``loop``: 'scan' (an epoch is one compiled ``lax.scan``), 'host' (the host dispatches one
    compiled step per batch, and several seeds train one after another) or 'auto': 'host' for
    methods that set ``cpu_host_loop`` when running on CPU, else 'scan'.

    ``checkpoint_dir``: save the run there every ``checkpoint_every`` epochs (and after the last)
    and, when it already holds a checkpoint of this run, resume from the latest one (see
    ``jaxad.checkpoint``); the results equal an uninterrupted run's bit for bit.
    ``device_budget_bytes`` (default ``DEVICE_BUDGET_BYTES``, 1 GiB): training data larger than
    this stays in host memory and each epoch's permuted batches stream to the device in chunks
    (same batches, same results). A method's ``setup`` still sees the whole set once; a method
    whose per-epoch hook reads the whole training set (OC-NN's radius) keeps it on the device,
    with a warning.

    ``bucket``: pad a table (n, d) with zeros to ``bucket_width(d)`` columns and
    ``bucket_count(n, BUCKET_MIN_ROWS)`` rows, and each epoch's batch list to
    ``bucket_count(batches, BUCKET_MIN_BATCHES)`` (empty batches are skipped), so that fits of
    tables of different sizes run the same compiled init and epoch programs, kept in this process
    (a benchmark over many datasets compiles a few programs, not one per dataset). The method's
    ``pad_features`` makes the padded columns inert; the result trains as the unpadded network
    would except for its random draws (``jaxad.methods.ae.pad_features``). A method's
    ``epoch_end`` sees the padded table and keeps to its real rows (``training_rows``). Tables
    only, for methods with ``pad_features``, without extra ``hooks``; ``fit_result_scores`` pads
    the inputs it scores.
    """
    method = get_method(method)
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise ValueError("seeds: expected at least one seed")
    if loop not in LOOP_CHOICES:
        raise ValueError(f"loop={loop!r}: expected one of {LOOP_CHOICES}")
    if loop == "auto":
        loop = "host" if method.cpu_host_loop and jax.default_backend() == "cpu" else "scan"
    if data_per_seed and (np.ndim(x_train) < 2 or len(x_train) != len(seeds)):
        raise ValueError(f"x_train: with data_per_seed=True expected shape (n_seeds={len(seeds)}, n, ...), "
                         f"got {np.shape(x_train)}")
    if bucket:
        check_bucketable(method, hooks, x_train, data_per_seed, loop)
    if loop == "host" and len(seeds) > 1:
        parts = [fit(method, config, x_train[i] if data_per_seed else x_train, seeds=(seed,),
                     progress=progress, hooks=hooks, stoppers=stoppers, shard=shard, on_epoch=on_epoch,
                     desc=f"{desc or method.name} [{i + 1}/{len(seeds)}]", loop="host",
                     checkpoint_dir=None if checkpoint_dir is None else os.path.join(checkpoint_dir, f"member-{i}"),
                     checkpoint_every=checkpoint_every, device_budget_bytes=device_budget_bytes)
                 for i, seed in enumerate(seeds)]
        return merge_fit_results(parts)
    start = time.perf_counter()
    epochs, batch_size = int(config["epochs"]), int(config["batch_size"])
    drop_last = bool(config.get("drop_last", False))
    n = x_train.shape[1] if data_per_seed else len(x_train)
    placement = plan_placement(shard, len(seeds), batch_size if bucket else batch_layout(n, batch_size)[1])
    x_host = np.asarray(x_train, dtype=np.float32)
    x_axis = 0 if data_per_seed else None
    n_features = x_host.shape[1] if bucket else None
    if bucket:
        x_host = pad_to(x_host, (bucket_count(n, BUCKET_MIN_ROWS), bucket_width(n_features)))
    states = placement.seeded(init_states(method, config, x_host[0] if data_per_seed else x_host, seeds,
                                          n_features=n_features, n_rows=n if bucket else None))
    stream = streams_data(method, hooks, states, x_host, x_axis, device_budget_bytes)
    if bucket and stream:
        raise ValueError(f"bucket=True: the padded training data {x_host.shape} exceeds the device budget; "
                         "fit it without bucket")

    def placed_data():
        return placement.seeded(x_host) if data_per_seed else placement.replicated(x_host)

    x = None if stream else placed_data()
    rules = list(stoppers) + (list(method.stopping(config)) if method.stopping else [])
    if int(config.get("patience", 0)) > 0:
        rules.append(EarlyStopping("loss", int(config["patience"]), float(config["min_delta"])))
    active = np.ones(len(seeds), bool)
    history: dict[str, list[np.ndarray]] = {}
    epochs_run = np.zeros(len(seeds), int)
    start_epoch, checkpoints = 0, None
    if checkpoint_dir is not None:
        from jaxad import checkpoint  # orbax is imported only when checkpointing

        checkpoints = checkpoint.TrainingCheckpoints(checkpoint_dir, every=checkpoint_every, fingerprint=(
            checkpoint.data_fingerprint(method.name, config, seeds, x_host, data_per_seed=data_per_seed,
                                        hooks=len(hooks), stoppers=len(stoppers))))
        resumed = checkpoints.restore(states)
        if resumed is not None:
            states, saved = resumed
            start_epoch, active = int(saved["epochs_done"]), np.asarray(saved["active"], bool)
            epochs_run = np.asarray(saved["epochs_run"], int)
            history = {k: list(v) for k, v in saved["history"].items()}
            for rule, rule_state in zip(rules, saved["rules"]):
                checkpoint.set_rule_state(rule, rule_state)
    if method.setup is not None and start_epoch == 0:
        setup = jax.jit(jax.vmap(method.setup, in_axes=(0, x_axis)))
        if bucket:  # the statistics of setup see the real rows only
            states = setup(states, placement.replicated(x_host[:n]))
        else:
            states = setup(states, x if x is not None else placed_data())  # streamed: on the device once
        # setup's outputs come back with whatever layout XLA chose (statistics of replicated data:
        # replicated); the epoch program must be compiled for the seed-sharded layout it returns
        states = placement.seeded(states)
    active_on_device = placement.seeded(jnp.asarray(active))
    init_seconds = time.perf_counter() - start

    compile_start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
        example_idx, example_w = epoch_batches(epoch_orders(seeds, 0, n), batch_size, drop_last)
        n_seen = int(example_w.sum())  # rows per epoch: n, or fewer with drop_last
        if bucket:  # never streamed, always the scan (check_bucketable, above)
            example_idx, example_w = bucket_batches(example_idx, example_w, batch_size)
        if stream:
            compiled = compile_streamed_epoch(method, n, hooks, placement, states, x_host, example_w,
                                              active_on_device, data_per_seed=data_per_seed, loop=loop,
                                              budget=device_budget(device_budget_bytes))
        elif loop == "scan":
            epoch_fn = jax.vmap(make_epoch(method, None if bucket else n_seen, hooks, placement, skip_empty=bucket),
                                in_axes=(0, 0, None, 0, x_axis))

            def compile_epoch():
                return jax.jit(epoch_fn, donate_argnums=(0,)).lower(
                    states, placement.seeded(example_idx), example_w, active_on_device, x
                ).compile(compiler_options=_compiler_options())

            compiled = _kept_program(("epoch", method.name, FrozenConfig(config), len(seeds), repr(placement),
                                      example_idx.shape, x_host.shape, jax.default_backend()),
                                     compile_epoch) if bucket else compile_epoch()
        else:
            step_fn = jax.vmap(make_step(method, placement), in_axes=(0, 0, None, x_axis))
            end_fn = jax.vmap(make_epoch_end(method, hooks), in_axes=(0, x_axis))
            step_c = jax.jit(step_fn, donate_argnums=(0,)).lower(
                states, placement.seeded(example_idx[:, 0]), example_w[0], x
            ).compile(compiler_options=_compiler_options())
            end_c = jax.jit(end_fn).lower(states, x).compile(compiler_options=_compiler_options())
            compiled = _host_epoch(step_c, end_c, n_seen)
    compile_seconds = time.perf_counter() - compile_start

    loop_start = time.perf_counter()
    bar = tqdm(range(start_epoch, epochs if active.any() else start_epoch), desc=desc or method.name,
               disable=not progress, leave=False, unit="epoch", dynamic_ncols=True, initial=start_epoch,
               total=epochs)
    try:
        for epoch in bar:
            idx, w = epoch_batches(epoch_orders(seeds, epoch, n), batch_size, drop_last)
            if bucket:
                idx, w = bucket_batches(idx, w, batch_size)
            if placement.kind == "seeds":
                # XLA returns size-0 leaves (an empty pretraining history) replicated; the
                # compiled epoch wants every state leaf seed-sharded, as it was lowered
                states = placement.seeded(states)
            states, metrics = compiled(states, idx if stream else placement.seeded(idx), w, active_on_device, x)
            metrics = {k: np.asarray(v, dtype=np.float64) for k, v in jax.device_get(metrics).items()}
            _check_finite(method.name, epoch, epochs, metrics, active, seeds)
            for k, v in metrics.items():
                history.setdefault(k, []).append(np.where(active, v, np.nan))
            epochs_run += active
            still = active.copy()
            for rule in rules:
                still &= ~np.asarray(rule(epoch, metrics), bool)
            if not np.array_equal(still, active):
                active, active_on_device = still, placement.seeded(jnp.asarray(still))
            bar.set_postfix(loss=f"{np.nanmean(np.where(epochs_run > 0, metrics['loss'], np.nan)):.4g}")
            if on_epoch is not None:
                on_epoch(epoch, metrics)
            if checkpoints is not None and checkpoints.due(epoch + 1, epochs, finished=not active.any()):
                checkpoints.save(epoch + 1, states, active=active, epochs_run=epochs_run, history=history, rules=rules)
            if not active.any():
                break
    finally:
        bar.close()
        if checkpoints is not None:
            checkpoints.close()
    jax.block_until_ready(states)
    loop_seconds = time.perf_counter() - loop_start
    return FitResult(
        method=method, config=dict(config), seeds=seeds, states=states,
        history={k: np.stack(v) for k, v in history.items()}, epochs_run=epochs_run,
        init_seconds=init_seconds, compile_seconds=compile_seconds, loop_seconds=loop_seconds,
        train_seconds=time.perf_counter() - start,
        sharding=placement.kind, start_epoch=start_epoch, data_placement="streamed" if stream else "device",
        input_width=x_host.shape[1] if bucket else None,
    )

# ---------------------------------------------------------------- streaming from host memory

def device_budget(device_budget_bytes: int | None) -> int:
    """The device budget in bytes: ``device_budget_bytes``, else ``DEVICE_BUDGET_BYTES``."""
    budget = DEVICE_BUDGET_BYTES if device_budget_bytes is None else device_budget_bytes
    if isinstance(budget, bool) or not isinstance(budget, int | np.integer) or budget < 1:
        raise ValueError(f"device_budget_bytes={budget!r}: expected a positive integer (bytes)")
    return int(budget)


def reads_last_argument(fn: Callable, *args) -> bool:
    """Whether ``fn(*args)``'s traced program uses its last argument (an array, or a
    ShapeDtypeStruct: nothing is computed)."""
    closed = jax.make_jaxpr(fn)(*args)
    last = closed.jaxpr.invars[-1]
    used = [v for eqn in closed.jaxpr.eqns for v in eqn.invars] + list(closed.jaxpr.outvars)
    return any(v is last for v in used)


def streams_data(method: Method, hooks: Sequence[Hook], states, x_host: np.ndarray, x_axis,
                 device_budget_bytes: int | None) -> bool:
    """Whether ``fit`` streams the batches: the float32 training data exceeds the budget and no
    per-epoch hook reads the whole set (one that does keeps it on the device, with a warning)."""
    budget = device_budget(device_budget_bytes)
    if x_host.nbytes <= budget:
        return False
    if method.epoch_end or hooks:
        end_fn = jax.vmap(make_epoch_end(method, hooks), in_axes=(0, x_axis))
        if reads_last_argument(end_fn, states, jax.ShapeDtypeStruct(x_host.shape, jnp.float32)):
            warnings.warn(f"{method.name}: the per-epoch hook reads the whole training set, so it stays on "
                          f"the device ({x_host.nbytes} bytes > device_budget_bytes={budget})",
                          RuntimeWarning, stacklevel=3)
            return False
    return True


def _weighted_means(batch_metrics: dict[str, jax.Array], counts: jax.Array, n: int) -> dict[str, jax.Array]:
    """Epoch metrics from per-batch ones (n_seeds, n_batches) and real rows per batch, as the
    compiled epoch computes them: sum(metric * rows) / n."""
    return {k: jnp.sum(v * counts, axis=1) / n for k, v in batch_metrics.items()}


_WEIGHTED_MEANS = jax.jit(_weighted_means, static_argnums=(2,))


def compile_streamed_epoch(method: Method, n: int, hooks: Sequence[Hook], placement: _Placement, states,
                           x_host: np.ndarray, example_w: np.ndarray, active, *, data_per_seed: bool,
                           loop: str, budget: int) -> Callable:
    """An epoch with the signature of the compiled one, ``(states, idx, w, active, x=None) ->
    (states, metrics)`` but with host ``idx``, that keeps the training data in host memory.

    The epoch's batches (the same ``epoch_batches`` as on the device) are gathered on the host
    and put on the device a chunk at a time: every seed's rows of the chunk's batches, indexed
    as ``make_step`` indexes the whole set, and one ``lax.scan`` of the same step over them (one
    compiled program per chunk length: the full one and the epoch's last). Stopped seeds are
    frozen per chunk. A chunk holds at most half the budget, so the next one can be gathered
    while one trains. With ``loop='host'`` a chunk is one batch and one compiled step. The epoch
    end gets no data: ``fit`` streams only when no hook reads it."""
    n_seeds = len(jax.tree.leaves(states)[0])
    n_batches, rows = example_w.shape
    sample_shape = x_host.shape[2:] if data_per_seed else x_host.shape[1:]
    batch_bytes = n_seeds * rows * max(1, int(np.prod(sample_shape))) * 4
    # A scan of one step compiles to different code (XLA inlines a one-trip loop), which moved
    # single-seed results by float32 rounding: chunks have 2 batches at least, and a last lone
    # batch joins the chunk before it.
    per_chunk = 1 if loop == "host" else int(np.clip(budget // (2 * batch_bytes), 2, max(2, n_batches)))
    sizes = _chunk_sizes(n_batches, per_chunk)
    step = make_step(method, placement)
    x_axis = 0 if data_per_seed else None
    options = _compiler_options()

    def run_chunk(state, idx, w, active, xc):
        new, batch_metrics = jax.lax.scan(lambda s, inputs: step(s, *inputs, xc), state, (idx, w))
        return freeze_stopped(active, new, state), batch_metrics

    def chunk_index(size):
        """Each seed's positions in the chunk data: its own block of it, or all of its own."""
        local = np.arange(size * rows, dtype=np.int32).reshape(size, rows)
        offsets = np.zeros(n_seeds, np.int32) if data_per_seed else np.arange(n_seeds, dtype=np.int32) * size * rows
        return offsets[:, None, None] + local[None]

    def place(xc):
        return placement.seeded(xc) if data_per_seed else placement.replicated(xc)

    def chunk_data(order: np.ndarray) -> np.ndarray:
        """(n_seeds, m) row numbers -> the rows: (n_seeds, m, ...) per seed, or (n_seeds * m, ...)."""
        if data_per_seed:
            return x_host[np.arange(n_seeds)[:, None], order]
        return x_host[order.reshape(-1)]

    example = epoch_orders(range(n_seeds), 0, n)
    n_seen = int(example_w.sum())  # rows per epoch: n, or fewer with drop_last
    compiled, index = {}, {}
    for size in sorted(set(sizes)):
        index[size] = chunk_index(size)
        xc = place(chunk_data(example[:, :size * rows]))
        if loop == "host":
            step_c = jax.jit(jax.vmap(step, in_axes=(0, 0, None, x_axis)), donate_argnums=(0,)).lower(
                states, placement.seeded(index[size][:, 0]), example_w[0], xc).compile(compiler_options=options)
            compiled[size] = lambda s, idx, w, a, xc, step_c=step_c: _batch_axis(step_c(s, idx[:, 0], w[0], xc))
        else:
            chunk_fn = jax.vmap(run_chunk, in_axes=(0, 0, None, 0, x_axis))
            compiled[size] = jax.jit(chunk_fn, donate_argnums=(0,)).lower(
                states, placement.seeded(index[size]), example_w[:size], active, xc).compile(compiler_options=options)
        index[size] = placement.seeded(index[size])
    end = jax.vmap(make_epoch_end(method, hooks), in_axes=(0, x_axis))
    x_shape = x_host.shape

    def run_end(states, active):  # the hooks do not read x (streams_data), so XLA drops the zeros
        new, metrics = end(states, jnp.zeros(x_shape, jnp.float32))
        return jax.vmap(freeze_stopped)(active, new, states), metrics

    end_c = jax.jit(run_end).lower(states, active).compile(compiler_options=options)

    def run_epoch(states, idx, w, active, x=None):
        order = idx.reshape(n_seeds, -1)
        parts, b0 = [], 0
        for size in sizes:
            xc = place(chunk_data(order[:, b0 * rows:(b0 + size) * rows]))
            states, batch_metrics = compiled[size](states, index[size], w[b0:b0 + size], active, xc)
            if parts:  # dispatch runs ahead: wait for the previous chunk, so two at most are held
                jax.block_until_ready(parts[-1])
            parts.append(batch_metrics)
            b0 += size
        batch_metrics = {k: jnp.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}
        metrics = _WEIGHTED_MEANS(batch_metrics, jnp.asarray(w.sum(axis=1)), n_seen)
        states, end_metrics = end_c(states, active)
        return states, {**metrics, **end_metrics}

    return run_epoch


def _chunk_sizes(n_batches: int, per_chunk: int) -> list[int]:
    """Batches per chunk over an epoch: ``per_chunk`` each, the remainder last, a remainder of
    one batch joined to the chunk before it (unless per_chunk is 1)."""
    sizes = [per_chunk] * (n_batches // per_chunk) + ([n_batches % per_chunk] if n_batches % per_chunk else [])
    if len(sizes) > 1 and sizes[-1] == 1 and per_chunk > 1:
        sizes[-2:] = [per_chunk + 1]
    return sizes


def _batch_axis(out):
    """(states, metrics) of one vmapped step with a batch axis of length 1 added to the metrics."""
    states, metrics = out
    return states, {k: v[:, None] for k, v in metrics.items()}


def _host_epoch(step: Callable, end: Callable, n: int) -> Callable:
    """An epoch with the same signature and metrics as the compiled scan, driven from the host:
    one compiled step per batch, metric sums kept on the device. ``fit`` runs the host loop one
    seed at a time and stops calling it once that seed stops, so ``active`` is always true here."""

    def run_epoch(states, idx, w, active, x):
        sums = None
        for b in range(w.shape[0]):
            states, metrics = step(states, idx[:, b], w[b], x)
            weighted = {k: v * float(w[b].sum()) for k, v in metrics.items()}
            sums = weighted if sums is None else {k: sums[k] + weighted[k] for k in sums}
        states, end_metrics = end(states, x)
        return states, {**{k: v / n for k, v in sums.items()}, **end_metrics}

    return run_epoch


def merge_fit_results(parts: Sequence[FitResult]) -> FitResult:
    """One FitResult from fits run one after another (each of one seed or several): states and
    histories stacked on the seed axis (NaN-padded to the longest run), times added."""
    epochs = max(len(next(iter(p.history.values()))) for p in parts)

    def padded(h: np.ndarray) -> np.ndarray:
        return np.concatenate([h, np.full((epochs - len(h), h.shape[1]), np.nan)]) if len(h) < epochs else h

    first = parts[0]
    return FitResult(
        method=first.method, config=first.config, seeds=tuple(s for p in parts for s in p.seeds),
        # Leaf by leaf under the first part's structure: each fit built its own (equal) static
        # fields, the apply function and optimizer, which tree_map would call different trees.
        states=jax.tree.unflatten(jax.tree.structure(first.states), [
            jnp.concatenate(leaves) for leaves in zip(*[jax.tree.leaves(p.states) for p in parts])]),
        history={k: np.concatenate([padded(p.history[k]) for p in parts], axis=1) for k in first.history},
        epochs_run=np.concatenate([p.epochs_run for p in parts]),
        compile_seconds=sum(p.compile_seconds for p in parts), init_seconds=sum(p.init_seconds for p in parts),
        loop_seconds=sum(p.loop_seconds for p in parts), train_seconds=sum(p.train_seconds for p in parts),
        sharding="none (seeds one after another)",
        start_epoch=min(p.start_epoch for p in parts), data_placement=first.data_placement,
    )


_SCORE_FNS: dict[Callable, Callable] = {}


def score(method: str | Method, states, x, *, chunk_size: int | None = None,
          transform: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Scores of every seed's model: x (n, ...) -> (n_seeds, n) float32 numpy.

    Rows go through in chunks (default: about ``SCORE_CHUNK_ELEMENTS`` input values, at most
    ``SCORE_CHUNK`` rows), each padded to the chunk size so one compilation serves all (fewer
    rows: to a power of two, ``score_rows``), which keeps memory bounded: x is converted to
    float32 (or passed through ``transform``, e.g. the Detector's scaling, which must return
    float32 rows of the same shape) a chunk at a time, so no full-size copy of it is made.
    Methods with ``cpu_host_loop`` score one seed at a time on CPU, for the same reason they
    train so. Non-finite scores raise ``DivergenceError``."""
    method = get_method(method)
    fn = _SCORE_FNS.setdefault(method.score, jax.jit(jax.vmap(method.score, in_axes=(0, None))))
    x = np.asarray(x)
    prepare = transform or _float32_rows
    row_size = max(1, int(np.prod(x.shape[1:])))
    rows = chunk_size or max(256, min(SCORE_CHUNK, SCORE_CHUNK_ELEMENTS // row_size))
    n_seeds = len(jax.tree.leaves(states)[0])
    one_by_one = method.cpu_host_loop and jax.default_backend() == "cpu" and n_seeds > 1
    members = [jax.tree.map(lambda a, i=i: a[i:i + 1], states) for i in range(n_seeds)] if one_by_one else [states]
    out = np.concatenate([_score_chunks(fn, member, x, rows, prepare) for member in members])
    if not np.isfinite(out).all():
        raise DivergenceError(f"{method.name}: scores are not finite (the model diverged or the "
                              "input is far outside the training range); no scores are returned.")
    return out


def _float32_rows(chunk) -> np.ndarray:
    return np.asarray(chunk, dtype=np.float32)


def score_rows(n: int, chunk: int) -> int:
    """Rows of the compiled score call for n rows: the chunk, or for fewer rows the next power of
    two (at least ``MIN_SCORE_ROWS``). Bucketing means a train and a test split, or two datasets of
    the same width, share one compilation (each costs ~0.15 s on CPU, more than scoring a small
    set) at the price of scoring at most twice the rows."""
    if n >= chunk:
        return chunk
    return min(chunk, max(MIN_SCORE_ROWS, 1 << (n - 1).bit_length()))


def _score_chunks(fn: Callable, states, x: np.ndarray, rows: int, prepare: Callable) -> np.ndarray:
    if len(x) == 0:  # no rows to pad with, and reshapes of 0 rows fail inside some models
        return np.zeros((len(jax.tree.leaves(states)[0]), 0), np.float32)
    rows = score_rows(len(x), rows)
    parts = []
    for start in range(0, len(x), rows):
        chunk = prepare(x[start:start + rows])
        real = chunk.shape[0]
        if real < rows:  # the model scores rows independently: padding rows never changes real ones
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], rows - real, axis=0)])
        parts.append(np.asarray(fn(states, chunk))[:, :real])
    return np.concatenate(parts, axis=1)


def fit_result_scores(result: FitResult, x, **kwargs) -> np.ndarray:
    """``score`` for the states of a ``fit``: (n_seeds, n). The inputs of a ``bucket`` fit are
    zero-padded to its width a chunk at a time."""
    if result.input_width is not None:
        prepare = kwargs.pop("transform", None) or _float32_rows
        width = result.input_width
        kwargs["transform"] = lambda chunk: pad_to(prepare(chunk), (len(chunk), width))
    return score(result.method, result.states, x, **kwargs)
