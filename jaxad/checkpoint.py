"""Checkpoints with orbax: train states saved and restored bit for bit.

* ``save_states`` / ``restore_states``: a (seed-stacked) train state to a folder and back. Its
  arrays go through orbax's ``StandardCheckpointer`` as a nested dict keyed by their pytree paths
  (``params/encoder/Dense_0/kernel``, ``opt_state/0/mu/...``), so the folder reads without jaxad
  and any state pytree (Flax structs, optax's named tuples, per-loss optimizer dicts) round-trips.
  The static fields (the apply function, the optimizer, the config) are code, not data:
  restoring fills the arrays into a state of the same structure, ``like``, which the caller
  builds (the engine's init, or ``abstract_states`` from the method and config). Zero-size
  arrays (Deep SVDD's ``pretrain_loss`` without pretraining), which orbax refuses to write,
  are rebuilt from ``like``.
* ``TrainingCheckpoints``: the engine's checkpoints of a ``fit`` (``fit(..., checkpoint_dir=)``).
  Every ``every`` epochs, one orbax step holding the seed-stacked states and the host-side
  progress as JSON: epochs done, the seeds still training, each seed's epochs run, the history
  so far and the stopping rules' state. Orbax writes a step into a temporary folder and renames
  it once complete, so a run killed mid-save keeps the previous checkpoint as the latest; a
  rerun with the same folder resumes from it. Batch orders come from (seed, epoch) and step keys
  from the step counter in the state, so a resumed run ends bit-identical to an uninterrupted one.
  A fingerprint of the method, config, seeds and training data refuses to resume another run.
* ``encode_json`` / ``decode_json`` and ``replace_folder``: what ``Detector.save`` / ``load``
  build on (the metadata as JSON, tuples and arrays kept; the folder swapped in atomically).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

FORMAT_VERSION = 1


# ---------------------------------------------------------------- states <-> orbax

def _path_name(entry) -> str:
    for attr in ("name", "key", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def _keyed_leaves(tree) -> tuple[list[tuple[str, ...]], list[Any], Any]:
    """(path of each leaf as strings, the leaves, the treedef)."""
    pairs, treedef = jax.tree_util.tree_flatten_with_path(tree)
    return [tuple(_path_name(e) for e in path) for path, _ in pairs], [leaf for _, leaf in pairs], treedef


def _nest(items: Sequence[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in items:
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def _lookup(nested: Mapping[str, Any], path: tuple[str, ...]):
    for part in path:
        nested = nested[part]
    return nested


def state_dict(states) -> dict[str, Any]:
    """The state's non-empty arrays as a nested dict keyed by pytree path (what orbax writes)."""
    paths, leaves, _ = _keyed_leaves(states)
    return _nest([(p, leaf) for p, leaf in zip(paths, leaves) if np.size(leaf)])


def _abstract(leaf, sharding):
    leaf_sharding = getattr(leaf, "sharding", None) or sharding
    return jax.ShapeDtypeStruct(np.shape(leaf), leaf.dtype, sharding=leaf_sharding)


def abstract_state_dict(like, sharding=None) -> dict[str, Any]:
    """``state_dict`` of ``like`` (arrays or ShapeDtypeStructs) as ShapeDtypeStructs, placed as
    ``like``'s arrays are, else with ``sharding`` (default: the first device)."""
    sharding = sharding or jax.sharding.SingleDeviceSharding(jax.devices()[0])
    paths, leaves, _ = _keyed_leaves(like)
    return _nest([(p, _abstract(leaf, sharding)) for p, leaf in zip(paths, leaves) if np.size(leaf)])


def fill_state(like, restored: Mapping[str, Any]):
    """``like`` with its arrays taken from a restored ``state_dict`` (zero-size ones rebuilt)."""
    paths, leaves, treedef = _keyed_leaves(like)
    values = [_lookup(restored, p) if np.size(leaf) else jnp.zeros(np.shape(leaf), leaf.dtype)
              for p, leaf in zip(paths, leaves)]
    return jax.tree_util.tree_unflatten(treedef, values)


def save_states(directory: str | os.PathLike, states) -> Path:
    """Write the state's arrays to ``directory`` (must not exist) with orbax; returns it."""
    directory = Path(directory).absolute()
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(directory, state_dict(states))
        checkpointer.wait_until_finished()
    return directory


def restore_states(directory: str | os.PathLike, like):
    """The state saved in ``directory``, restored into the structure (and static fields) of
    ``like``: a state of the same method and config, concrete or from ``abstract_states``.
    A shape that does not match raises orbax's ValueError."""
    with ocp.StandardCheckpointer() as checkpointer:
        restored = checkpointer.restore(Path(directory).absolute(), abstract_state_dict(like))
    return fill_state(like, restored)


def abstract_states(method, config: Mapping[str, Any], sample_shape: Sequence[int], n_seeds: int):
    """The structure, shapes and dtypes of ``fit``'s seed-stacked states for samples of
    ``sample_shape`` (no computation: ``jax.eval_shape`` of init and setup), static fields
    included: the ``like`` for ``restore_states``."""
    x = jax.ShapeDtypeStruct((2, *sample_shape), jnp.float32)

    def build(x):
        keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(n_seeds, dtype=jnp.uint32))
        states = jax.vmap(lambda key: method.init(key, config, x))(keys)
        if method.setup is not None:
            states = jax.vmap(method.setup, in_axes=(0, None))(states, x)
        return states

    return jax.eval_shape(build, x)


# ---------------------------------------------------------------- JSON that keeps tuples and arrays

def encode_json(value: Any) -> Any:
    """``value`` as JSON data: tuples, numpy arrays and numpy scalars are tagged so that
    ``decode_json`` gives them back as they were (floats, NaN and inf included, exactly)."""
    if isinstance(value, tuple):
        return {"__tuple__": [encode_json(v) for v in value]}
    if isinstance(value, list):
        return [encode_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): encode_json(v) for k, v in value.items()}
    if isinstance(value, np.ndarray | jax.Array):
        arr = np.asarray(value)
        return {"__ndarray__": arr.tolist(), "dtype": arr.dtype.str, "shape": list(arr.shape)}
    if isinstance(value, np.generic):
        return value.item()
    return value


def decode_json(value: Any) -> Any:
    if isinstance(value, list):
        return [decode_json(v) for v in value]
    if isinstance(value, dict):
        if "__tuple__" in value:
            return tuple(decode_json(v) for v in value["__tuple__"])
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=np.dtype(value["dtype"])).reshape(value["shape"])
        return {k: decode_json(v) for k, v in value.items()}
    return value


def replace_folder(final: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_folder)`` on a fresh sibling folder, then swap it in for ``final``, so
    ``final`` is either the old complete folder or the new complete one, never half written."""
    final = Path(final).absolute()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        write(tmp)
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


# ---------------------------------------------------------------- training checkpoints

def data_fingerprint(method_name: str, config: Mapping[str, Any], seeds: Sequence[int], x: np.ndarray,
                     **extra: Any) -> str:
    """A digest of what a run's results depend on: method, config, seeds, the training data
    (every byte, hashed in row blocks) and ``extra`` settings."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((method_name, sorted((k, repr(v)) for k, v in config.items()), tuple(seeds),
                   x.shape, x.dtype.str, sorted(extra.items()))).encode())
    flat = x.reshape(len(x), -1) if x.ndim > 1 else x.reshape(-1, 1)
    rows = max(1, (1 << 24) // max(1, flat.shape[1] * flat.itemsize))
    for start in range(0, len(flat), rows):
        h.update(np.ascontiguousarray(flat[start:start + rows]).data)
    return h.hexdigest()


def rule_state(rule) -> dict[str, Any]:
    """The mutable state of a host-side stopping rule: its plain attributes (numbers, strings,
    None, numpy arrays), e.g. ``EarlyStopping``'s best and wait, OC-NN's streak."""
    plain = (type(None), bool, int, float, str, np.ndarray, np.generic)
    return {k: v for k, v in getattr(rule, "__dict__", {}).items() if isinstance(v, plain)}


def set_rule_state(rule, state: Mapping[str, Any]) -> None:
    for key, value in state.items():
        setattr(rule, key, value)


class TrainingCheckpoints:
    """A ``fit``'s checkpoints in ``directory`` (see the module docstring): ``restore(like)``
    the latest one, ``save(...)`` after an epoch when ``due``."""

    def __init__(self, directory: str | os.PathLike, *, fingerprint: str, every: int = 1):
        if isinstance(every, bool) or not isinstance(every, int | np.integer) or every < 1:
            raise ValueError(f"checkpoint_every={every!r}: expected an integer >= 1 (epochs between checkpoints)")
        self.directory = Path(directory).absolute()
        self.fingerprint, self.every = fingerprint, int(every)
        options = ocp.CheckpointManagerOptions(max_to_keep=2, enable_async_checkpointing=False, create=True,
                                               cleanup_tmp_directories=True)
        self._manager = ocp.CheckpointManager(self.directory, item_names=("states", "progress"), options=options)

    def latest_epoch(self) -> int | None:
        return self._manager.latest_step()

    def restore(self, like) -> tuple[Any, dict[str, Any]] | None:
        """(states, progress) of the latest complete checkpoint, or None when there is none.
        ``progress``: epochs_done, active (n_seeds,), epochs_run (n_seeds,), history
        {metric: (epochs_done, n_seeds)}, rules (one state dict per stopping rule)."""
        step = self._manager.latest_step()
        if step is None:
            return None
        progress = decode_json(self._manager.restore(step, args=ocp.args.Composite(
            progress=ocp.args.JsonRestore()))["progress"])
        if progress.get("fingerprint") != self.fingerprint:
            self.close()
            raise ValueError(f"checkpoint_dir={str(self.directory)!r}: holds the checkpoint of another run "
                             "(different method, config, seeds or training data); use a new folder to start "
                             "afresh, or the same settings and data to resume")
        restored = self._manager.restore(step, args=ocp.args.Composite(
            states=ocp.args.StandardRestore(abstract_state_dict(like))))["states"]
        return fill_state(like, restored), progress

    def due(self, epochs_done: int, epochs: int, finished: bool) -> bool:
        return finished or epochs_done == epochs or epochs_done % self.every == 0

    def save(self, epochs_done: int, states, *, active: np.ndarray, epochs_run: np.ndarray,
             history: Mapping[str, Sequence[np.ndarray]], rules: Sequence[Any]) -> None:
        """One checkpoint after ``epochs_done`` epochs; synchronous, so the states may be
        donated to the next epoch as soon as it returns."""
        progress = {"format": FORMAT_VERSION, "fingerprint": self.fingerprint, "epochs_done": int(epochs_done),
                    "active": np.asarray(active, bool), "epochs_run": np.asarray(epochs_run, np.int64),
                    "history": {k: np.stack(v) for k, v in history.items()},
                    "rules": [rule_state(r) for r in rules]}
        self._manager.save(int(epochs_done), force=True, args=ocp.args.Composite(
            states=ocp.args.StandardSave(state_dict(states)),
            progress=ocp.args.JsonSave(encode_json(progress))))
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
