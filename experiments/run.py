"""Run one method on one dataset over N seeds (one vmapped program) and write the results JSON.

    python -m experiments.run METHOD DATASET [--seeds N] [--ensemble K] [--data-dir DIR] [--download]
        [--out DIR] [--checkpoint-dir DIR [--checkpoint-every K]] [key=value ...]

Keys go to the method config, the dataset options or the evaluation options by name (see
``experiments.presets``). The JSON has ``method``, ``dataset``, ``config`` (the full resolved
config, all three sections merged), ``seeds``, ``metrics`` ({name: {mean, std, per_seed}}),
``train_seconds`` and ``device``. ``--ensemble K`` makes each seed an ensemble of K networks
(``jaxad.ensemble``; the seeds' N * K networks train as one vmapped program).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from experiments.jsonio import jsonable, write_json
from experiments.presets import parse_overrides, resolve_setup
from jaxad import ensemble as ensemble_lib
from jaxad import metrics as M
from jaxad import train
from jaxad.data import load_split
from jaxad.methods import get_method
from jaxad.validation import as_float_array, check_labels

DEFAULT_OUT = Path("results") / "runs"


def device_description() -> str:
    devices = jax.local_devices()
    return f"{devices[0].platform}:{devices[0].device_kind} x{len(devices)}"


def seed_thresholds(eval_opts, train_scores: np.ndarray, test_scores: np.ndarray) -> float:
    return M.threshold(eval_opts["threshold"], train_scores=train_scores, test_scores=test_scores,
                       contamination=eval_opts["contamination"], k=eval_opts["k"],
                       value=eval_opts["threshold_value"])


def run_experiment(method: str, dataset: str, *, seeds: int = 5, data_dir=None,
                   overrides: dict[str, Any] | None = None, progress: bool = True,
                   split=None, shard: str = "auto", download: bool = False,
                   on_fit=None, checkpoint_dir=None, checkpoint_every: int = 1,
                   bucket: bool = False, ensemble: int = 1) -> dict[str, Any]:
    """Train ``seeds`` models (seeds 0..N-1) and evaluate them; returns the results record.

    ``ensemble``: each seed is an ensemble of that many networks (``jaxad.ensemble``: members
    seed * K .. seed * K + K - 1, all seeds' members trained as one vmapped program, scores
    standardised by each member's training scores and averaged); 1 = one network per seed.

    ``download=True`` fetches an absent local-file dataset from its official source first.
    ``checkpoint_dir``: checkpoint the training there every ``checkpoint_every`` epochs and
    resume from the latest checkpoint when rerun (``train.fit``).
    ``on_fit(result, split)`` is called with the ``FitResult`` and the split (for plots of the
    trained states). ``bucket``: ``train.fit``'s (tables padded to shared shapes, so that many
    datasets share compiled programs).
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds={seeds!r}: expected an integer >= 1")
    members = ensemble_lib.check_members(ensemble)
    m = get_method(method)
    config, data_opts, eval_opts = resolve_setup(m.name, dataset, overrides)
    if split is None:
        split = load_split(dataset, data_dir=data_dir, download=download, **data_opts)
    x_train = as_float_array(split.x_train, name="x_train", ndims=m.input_ndims)
    x_test = as_float_array(split.x_test, name="x_test", ndims=m.input_ndims)
    y_test = check_labels(split.y_test, len(x_test), name="y_test")
    if x_test.shape[1:] != x_train.shape[1:]:
        raise ValueError(f"x_test: expected samples of shape {x_train.shape[1:]} as in x_train, got {x_test.shape[1:]}")
    m.validate(config, x_train.shape)

    result = train.fit(m, config, x_train, seeds=range(seeds * members), progress=progress, shard=shard,
                       desc=f"{m.name} on {dataset}", checkpoint_dir=checkpoint_dir,
                       checkpoint_every=checkpoint_every, bucket=bucket)
    t0 = time.perf_counter()
    test_scores = train.fit_result_scores(result, x_test)
    score_seconds = time.perf_counter() - t0
    train_scores = train.fit_result_scores(result, x_train)
    train_scores, test_scores = ensemble_lib.combine_seeds(train_scores, test_scores, members)
    per_seed = []
    for i in range(seeds):
        thr = seed_thresholds(eval_opts, train_scores[i], test_scores[i])
        per_seed.append({**M.evaluate(y_test, test_scores[i], thr, positive=eval_opts["positive"]),
                         "threshold": thr})
    if on_fit is not None:
        on_fit(result, split)
    return {
        "method": m.name,
        "dataset": dataset,
        "config": {**config, **data_opts, **eval_opts},
        "seeds": list(range(seeds)),
        "ensemble": members,
        "metrics": M.summarize(per_seed),
        **fit_fields(result, score_seconds),
        "split": {"train": list(split.x_train.shape), "test": list(split.x_test.shape),
                  "test_anomalies": int(split.y_test.sum()), **jsonable(split.info)},
    }


def fit_fields(result: train.FitResult, score_seconds: float) -> dict[str, Any]:
    """The fields every results record takes from a ``fit``: timings, epochs run, the final
    loss per seed, the device and sharding, and the creation time."""
    return {
        "train_seconds": result.train_seconds,
        "compile_seconds": result.compile_seconds,
        "score_seconds": score_seconds,
        "epochs_run": result.epochs_run.tolist(),
        "resumed_at_epoch": result.start_epoch,  # epochs restored from --checkpoint-dir
        "final_loss": result.history["loss"][-1].tolist(),
        "device": device_description(),
        "sharding": result.sharding,
        "input_width": result.input_width,  # fit(bucket=True): the padded width, else None
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_record(record: dict[str, Any], out_dir: Path) -> Path:
    """Write the record atomically to a new time-stamped file in ``out_dir``."""
    safe = record["dataset"].replace("/", "-")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return write_json(record, out_dir / f"{record['method']}__{safe}__{stamp}.json")


def format_metrics(record: dict[str, Any]) -> str:
    members = record.get("ensemble", 1)
    ensembles = f" x {members} members" if members > 1 else ""
    lines = [f"{record['method']} on {record['dataset']} ({len(record['seeds'])} seeds{ensembles}, "
             f"{record['device']}, train {record['train_seconds']:.2f} s incl. compile "
             f"{record['compile_seconds']:.2f} s)"]
    for name, m in record["metrics"].items():
        lines.append(f"  {name:>10s}: {m['mean']:.4f} +- {m['std']:.4f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.run", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("method")
    parser.add_argument("dataset")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds, trained as one vmapped program (default 5)")
    parser.add_argument("--ensemble", type=int, default=1,
                        help="networks per seed, scores standardised and averaged (default 1: one network)")
    parser.add_argument("--data-dir", default=None, help="folder with the raw data files (default $JAXAD_DATA_DIR)")
    parser.add_argument("--download", action="store_true",
                        help="fetch fashion_mnist / ecg5000 / adbench/<name> from the official source into "
                             "the cache ($JAXAD_CACHE_DIR/data) if absent (default: never download)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"where the JSON goes (default {DEFAULT_OUT})")
    parser.add_argument("--shard", choices=train.SHARD_CHOICES, default="auto",
                        help="what to split over several devices: the seed axis, the batch axis (default auto)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--checkpoint-dir", default=None,
                        help="checkpoint the training in this folder and resume from it when rerun")
    parser.add_argument("--checkpoint-every", type=int, default=1, help="epochs between checkpoints (default 1)")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_intermixed_args(argv)
    try:
        record = run_experiment(args.method, args.dataset, seeds=args.seeds, ensemble=args.ensemble,
                                data_dir=args.data_dir,
                                overrides=parse_overrides(args.overrides), progress=not args.no_progress,
                                shard=args.shard, download=args.download,
                                checkpoint_dir=args.checkpoint_dir, checkpoint_every=args.checkpoint_every)
    except (KeyError, ValueError, FileNotFoundError, ImportError, train.DivergenceError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 2
    print(format_metrics(record))
    print(f"wrote {write_record(record, Path(args.out))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
