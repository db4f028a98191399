"""RSRAE's paper protocol (Lai, Zou and Lerman, ICLR 2020; the authors' dmzou/RSRAE ``experiments.py``).

    python -m experiments.rsrae_paper [key=value ...] --dataset fashion_mnist|20newsgroups
        [--c 0.5 ...] [--seeds 5] [--epochs 200] [--methods rsrae rsrae_plus ae]
        [--classes 0 1 ...] [--members-per-fit N] [--checkpoint-every K] [--data-dir DIR]
        [--out DIR] [--overwrite]

``key=value`` overrides the method config (e.g. ``batch_norm=batch``); put them first (or after
``--``), since the list flags take every word that follows them.

Transductive: each model is fitted on a pool and scores that same pool. For each class k in
turn, the pool is every item of class k (normal) followed by the first int(n_pure * c) items of
the other classes in dataset order (anomalies), c = anomalies per normal item:

* ``fashion_mnist``: the test split (1000 images per class, n_pure = 1000), each image
  x / 255 * 2 - 1, flattened and L2-normalised (scikit-learn's ``normalize``), back to
  (28, 28, 1); the convolutional network (channels 32-64-128, kernels 5-5-3, stride 2).
* ``20newsgroups``: the first 360 documents of each of the 20 classes in dataset order (the
  authors' pickle holds 360 per class, n_pure = 360) from ``jaxad.data.text`` with
  scikit-learn's ``fetch_20newsgroups`` defaults (train subset, its order, nothing removed; see
  ``NEWSGROUPS_SUBSET``; ``--subset`` and ``--remove`` change them), TF-IDF with 10 000
  features (``jaxad.data.embed``, fitted on those 7200 documents); the dense network 32-64-128.

Settings (authors): Adam lr 2.5e-4, 200 epochs, batch 128, L21 reconstruction and projection
losses, d = 10, z_rsr L2-normalised, A ~ N(0, 1), their batch norm (inference mode:
``batch_norm='frozen'``), activation from the data as their code picks it (relu if min >= 0,
tanh if max |x| <= 1, else leaky relu), score -cos(x, x~). AUROC and AP per (class, seed), then
averaged. ``ae`` is the ablation of the RSR layer's losses: the same network and score trained
on L_AE alone (``rsrae`` with lambda1 = lambda2 = 0).

All classes x seeds of one (c, method) are one ``fit`` with ``data_per_seed`` (or several, each
holding at most ``MAX_FIT_BYTES`` of pools, 4 GiB, and on CPU at most ``CPU_MEMBERS_PER_FIT``
members, the faster size there; ``--members-per-fit`` sets the count): one
vmapped program for the dense network; the convolutional one on CPU trains member after member
(XLA's CPU backend is faster that way, see ``Method.cpu_host_loop``), on GPU as one program.

Writes one JSON per (dataset, c, method) to ``--out`` (default ``results/rsrae_paper``), named
``<method>__<dataset>__c<c>.json``, in ``experiments.run``'s shape (method, dataset, config,
seeds, metrics {mean, std, per_seed: one value per (class, seed) member}, timings, device) plus
``c``, ``classes``, ``members`` and ``per_class``; and ``<dataset>.md``, the table of every c
and method found in ``--out``. Existing JSONs are skipped unless ``--overwrite``.

A cell can take hours on a CPU (Fashion-MNIST: 3-6 h for 50 models), so its fits checkpoint
themselves every ``--checkpoint-every`` epochs (default 25; 0 turns it off) under
``<out>/checkpoints/<method>__<dataset>__c<c>/`` (``train.fit``'s ``checkpoint_dir``, one folder
per fit and, in the CPU host loop, per member). A run killed mid-cell and started again resumes
from there and ends bit-identical to an uninterrupted one; the folder is deleted once the cell's
JSON is written (and before the cell reruns under ``--overwrite``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from experiments.presets import parse_overrides
from experiments.jsonio import write_json, write_text_atomic
from experiments.run import fit_fields
from jaxad import metrics as M
from jaxad import train
from jaxad.methods import get_method, resolve_config

DATASETS = ("fashion_mnist", "20newsgroups")
C_VALUES = (0.1, 0.3, 0.5, 0.7, 0.9)
METHODS = ("rsrae", "rsrae_plus", "ae")
DEFAULT_OUT = Path("results") / "rsrae_paper"
# Items per class in the authors' data (their ``num_pure``).
N_PURE = {"fashion_mnist": 1000, "20newsgroups": 360}
# The authors' 20news.data comes from a script they did not publish. scikit-learn's
# fetch_20newsgroups defaults are the likely source: subset "train" (its smallest class,
# talk.religion.misc, has 377 posts, just above the 360 per class they keep; in "all" it has 628)
# and nothing removed. Removing headers, footers and quotes lowered RSRAE+'s AUROC at c = 0.5
# from 0.809 to 0.684 (subset "all", 5 classes, 1 seed).
NEWSGROUPS_SUBSET = "train"
NEWSGROUPS_REMOVE: tuple[str, ...] = ()
# Lai, Zou and Lerman (2020): RSRAE's mean AUROC at c = 0.5.
PUBLISHED_AUROC = {("20newsgroups", 0.5): 0.831, ("fashion_mnist", 0.5): 0.833}
# The authors' experiments.py and CAE settings that differ from (or restate) the method defaults.
PAPER_CONFIG: dict[str, Any] = {
    "epochs": 200, "batch_size": 128, "lr": 2.5e-4, "loss": "l21", "rsr_loss": "l21",
    "intrinsic_size": 10, "hidden": (32, 64, 128), "kernel_sizes": (5, 5, 3), "normalize": True,
    "batch_norm": "frozen", "rsr_init_std": 1.0, "initializer": "keras", "score_type": "cosine",
}
# A pool's shape, to check settings before any data is read.
ITEM_SHAPES = {"fashion_mnist": (1500, 28, 28, 1), "20newsgroups": (540, 10000)}
# One vmapped fit holds its members' pools at once. The paper's pools are small (20 Newsgroups at
# c = 0.9: 684 x 10 000 float32, 27 MB a member, 2.7 GB for 20 classes x 5 seeds), but larger
# embeddings or pools multiply that; fits of at most 4 GiB of pools keep a 24 GB machine (or a
# 16 GB GPU) safe. The members' results do not depend on the split beyond float rounding (fits
# of one size give identical results; a fit of another size is a differently vectorised program).
MAX_FIT_BYTES = 4 * 2**30
# On XLA's CPU backend the dense members run fastest in fits of about 20 (20 Newsgroups, c = 0.5,
# `ae`, 100 members x 40 epochs on the 2-core CPU: one fit of 100 took 279 s, five of 20 169 s,
# ten of 10 176 s), so on CPU a fit holds at most this many; on a GPU one big fit is the parallel one.
CPU_MEMBERS_PER_FIT = 20
# A cell's fits checkpoint every this many epochs: a killed 200-epoch Fashion-MNIST member (about
# 3 min on the 2-core CPU) loses at most 25 epochs, and a 20-member 20 Newsgroups fit writes its
# ~160 MB of states 8 times instead of 200.
CHECKPOINT_EVERY = 25
# The ablation: RSRAE's network and score with the RSR losses off.
ABLATION = {"ae": ("rsrae", {"lambda1": 0.0, "lambda2": 0.0})}


# ---------------------------------------------------------------- data

def authors_activation(x: np.ndarray) -> str:
    """The authors' choice from the data: relu if min(x) >= 0, tanh if max|x| <= 1, else leaky
    relu (``experiments.py``)."""
    if np.min(x) >= 0.0:
        return "relu"
    if np.abs(np.max(x)) <= 1.0:
        return "tanh"
    return "leaky_relu"


def fashion_items(data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """The Fashion-MNIST test split as the authors feed it: (10000, 28, 28, 1) float32,
    x / 255 * 2 - 1 then each image L2-normalised as a 784-vector; labels (10000,)."""
    from jaxad.data import read_raw

    raw = read_raw("fashion_mnist", data_dir)
    x = raw["x_test"].reshape(len(raw["x_test"]), -1).astype(np.float64) / 255.0 * 2 - 1
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # sklearn.preprocessing.normalize
    return x.reshape(-1, 28, 28, 1).astype(np.float32), np.asarray(raw["y_test"], np.int64)


def first_per_class(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of the first n items of every class, in dataset order: (n_classes * n,)."""
    keep = np.zeros(len(labels), bool)
    for k in np.unique(labels):
        keep[np.flatnonzero(labels == k)[:n]] = True
    return np.flatnonzero(keep)


def newsgroups_items(data_dir=None, progress: bool = True, subset: str = NEWSGROUPS_SUBSET,
                     remove: Sequence[str] = NEWSGROUPS_REMOVE) -> tuple[np.ndarray, np.ndarray]:
    """20 Newsgroups as the authors' pickle holds it: 360 documents per class (the first in
    dataset order), TF-IDF with 10 000 features fitted on them: (7200, 10000) float32, labels.
    ``subset`` and ``remove`` go to ``load_20newsgroups`` (see ``NEWSGROUPS_SUBSET``)."""
    from jaxad.data.embed import embed
    from jaxad.data.text import load_20newsgroups

    corpus = load_20newsgroups(data_dir, subset=subset, remove=remove)
    counts = np.bincount(corpus.labels)
    if counts.min() < N_PURE["20newsgroups"]:
        raise ValueError(f"20 Newsgroups: a class has only {counts.min()} documents, the protocol needs "
                         f"{N_PURE['20newsgroups']} per class")
    chosen = corpus.take(first_per_class(corpus.labels, N_PURE["20newsgroups"]),
                         name=f"{corpus.name}-first{N_PURE['20newsgroups']}")
    return embed(chosen, "tfidf", progress=progress), chosen.labels


def load_items(dataset: str, data_dir=None, progress: bool = True, **text_options) -> tuple[np.ndarray, np.ndarray]:
    if dataset == "fashion_mnist":
        return fashion_items(data_dir)
    return newsgroups_items(data_dir, progress, **text_options)


def n_anomalies(dataset: str, c: float) -> int:
    """int(n_pure * c), with the authors' floating point (360 * 0.7 -> 251)."""
    return int(N_PURE[dataset] * c)


def paper_pool(x: np.ndarray, labels: np.ndarray, normal: int, n_anomaly: int) -> tuple[np.ndarray, np.ndarray]:
    """Class ``normal`` then the first ``n_anomaly`` items of the other classes in dataset
    order: (pool (n, ...), y (n,) with 1 = anomaly)."""
    is_normal = labels == normal
    anomalies = np.flatnonzero(~is_normal)[:n_anomaly]
    pool = np.concatenate([x[is_normal], x[anomalies]])
    return pool, np.r_[np.zeros(is_normal.sum()), np.ones(len(anomalies))].astype(np.int64)


# ---------------------------------------------------------------- training and scoring

def method_setup(name: str, dataset: str, activation: str, overrides: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(registered method, resolved config) for a protocol method name."""
    base, ablation = ABLATION.get(name, (name, {}))
    config = {**PAPER_CONFIG, "activation": activation, "output_activation": None,
              "network": "conv" if dataset == "fashion_mnist" else "dense", **ablation, **overrides}
    return base, resolve_config(base, config)


def member_scores(method, states, pools: np.ndarray) -> np.ndarray:
    """Each member's scores on its own pool: (M, n)."""
    return np.stack([train.score(method, jax.tree.map(lambda a, i=i: a[i:i + 1], states), pools[i])[0]
                     for i in range(len(pools))])


def fit_size(n_members: int, pool_bytes: int, requested: int | None = None, cap: int | None = None) -> int:
    """How many (class, seed) members one vmapped ``fit`` takes: ``requested``, or as many as
    keep the stacked pools under ``MAX_FIT_BYTES``, at most ``cap`` (``CPU_MEMBERS_PER_FIT`` on CPU)."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"members_per_fit={requested}: expected an integer >= 1")
        return min(requested, n_members)
    return max(1, min(n_members, MAX_FIT_BYTES // max(pool_bytes, 1), cap or n_members))


def run_cell(dataset: str, c: float, name: str, x: np.ndarray, labels: np.ndarray, *, classes: Sequence[int],
             seeds: Sequence[int], overrides: dict[str, Any], progress: bool = True,
             members_per_fit: int | None = None, checkpoint_dir: Path | None = None,
             checkpoint_every: int = CHECKPOINT_EVERY) -> dict[str, Any]:
    """Train and evaluate one (dataset, c, method): classes x seeds as vmapped ``fit``s of
    ``members_per_fit`` members each (default: all of them on a GPU unless their pools pass
    ``MAX_FIT_BYTES``; on CPU at most ``CPU_MEMBERS_PER_FIT``). With ``checkpoint_dir``, each fit
    checkpoints into ``checkpoint_dir/members-<first>-<end>`` every ``checkpoint_every`` epochs and
    resumes from there when run again."""
    n_anomaly = n_anomalies(dataset, c)
    pools, ys = zip(*[paper_pool(x, labels, k, n_anomaly) for k in classes])
    sizes = {len(p) for p in pools}
    if len(sizes) != 1:
        raise ValueError(f"{dataset}: the classes' pools differ in size {sorted(sizes)}; "
                         "the protocol expects the same number of items per class")
    members = [(k, s) for k in classes for s in seeds]
    index = {k: i for i, k in enumerate(classes)}
    base, config = method_setup(name, dataset, authors_activation(x), overrides)
    method = get_method(base)
    method.validate(config, pools[0].shape)
    on_cpu = jax.default_backend() == "cpu"
    loop = "host" if config["network"] == "conv" and on_cpu else "scan"
    chunk = fit_size(len(members), pools[0].size * np.dtype(np.float32).itemsize, members_per_fit,
                     cap=CPU_MEMBERS_PER_FIT if on_cpu else None)
    scores, results, score_seconds = [], [], 0.0
    for start in range(0, len(members), chunk):
        part = members[start:start + chunk]
        # stacked per fit, so that memory holds one fit's pools, not every member's
        x_part = np.stack([pools[index[k]] for k, _ in part])
        label = f"{name} {dataset} c={c}: {len(part)} models" + (
            f" ({start // chunk + 1}/{-(-len(members) // chunk)})" if chunk < len(members) else "")
        fit_dir = None if checkpoint_dir is None else checkpoint_dir / f"members-{start}-{start + len(part)}"
        result = train.fit(method, config, x_part, seeds=[s for _, s in part], data_per_seed=True,
                           progress=progress, loop=loop, desc=label, checkpoint_dir=fit_dir,
                           checkpoint_every=checkpoint_every)
        t0 = time.perf_counter()
        scores.extend(member_scores(method, result.states, x_part))
        score_seconds += time.perf_counter() - t0
        results.append(result)
    result = results[0] if len(results) == 1 else train.merge_fit_results(results)
    per_member = [{"auroc": M.auroc(ys[index[k]], s), "ap": M.average_precision(ys[index[k]], s)}
                  for (k, _), s in zip(members, scores)]
    per_class = {}
    for k in classes:
        rows = [m for (kk, _), m in zip(members, per_member) if kk == k]
        per_class[str(k)] = {f"{metric}_{stat}": float(fn([r[metric] for r in rows]))
                             for metric in ("auroc", "ap") for stat, fn in (("mean", np.mean), ("std", np.std))}
    metrics = M.summarize(per_member)
    for metric in ("auroc", "ap"):  # the authors' "std": per-class std over seeds, averaged over classes
        metrics[metric]["std_over_seeds"] = float(np.mean([v[f"{metric}_std"] for v in per_class.values()]))
    return {
        "method": name,
        "dataset": dataset,
        "protocol": "rsrae_paper: transductive, Lai, Zou and Lerman (ICLR 2020), dmzou/RSRAE experiments.py",
        "c": c,
        "config": {**config, "base_method": base, "c": c, "n_pure": N_PURE[dataset], "n_anomaly": n_anomaly,
                   "loop": loop},
        "seeds": list(seeds),
        "classes": list(classes),
        "members": [list(m) for m in members],
        "metrics": metrics,
        "per_class": per_class,
        "published_auroc": PUBLISHED_AUROC.get((dataset, c)),
        **fit_fields(result, score_seconds),
        "fits": len(results),
        "split": {"pool": list(pools[0].shape), "n_pool": len(pools[0]),
                  "anomalies": n_anomaly, "normal": len(pools[0]) - n_anomaly},
    }


# ---------------------------------------------------------------- results

def record_path(out: Path, dataset: str, c: float, name: str) -> Path:
    return out / f"{name}__{dataset}__c{c}.json"


def checkpoint_path(out: Path, dataset: str, c: float, name: str) -> Path:
    """Where the fits of one cell checkpoint until its JSON is written."""
    return out / "checkpoints" / record_path(out, dataset, c, name).stem


def table(out: Path, dataset: str) -> str:
    """Markdown: one row per c, AUROC and AP (mean +- std over classes x seeds) per method,
    the published AUROC, and what ran (seeds, epochs)."""
    records = []
    for path in sorted(out.glob(f"*__{dataset}__c*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            continue
    if not records:
        return f"no results for {dataset} in {out}"
    methods = [m for m in METHODS if any(r["method"] == m for r in records)]
    methods += sorted({r["method"] for r in records} - set(methods))
    cell = {(r["c"], r["method"]): r for r in records}
    header = ["c", *[f"{m} AUROC" for m in methods], *[f"{m} AP" for m in methods], "published AUROC", "runs"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for c in sorted({r["c"] for r in records}):
        row = [str(c)]
        for metric in ("auroc", "ap"):
            for m in methods:
                r = cell.get((c, m))
                row.append("—" if r is None else f"{r['metrics'][metric]['mean']:.3f} ± {r['metrics'][metric]['std']:.3f}")
        published = PUBLISHED_AUROC.get((dataset, c))
        row.append("—" if published is None else f"{published:.3f}")
        runs = sorted({(len(r["classes"]), len(r["seeds"]), r["config"]["epochs"]) for (cc, _), r in cell.items() if cc == c})
        row.append(", ".join(f"{k} classes x {s} seeds, {e} epochs" for k, s, e in runs))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def format_record(record: dict[str, Any]) -> str:
    m = record["metrics"]
    published = record.get("published_auroc")
    return (f"{record['method']:>10s} {record['dataset']} c={record['c']}: AUROC {m['auroc']['mean']:.4f} "
            f"+- {m['auroc']['std']:.4f}, AP {m['ap']['mean']:.4f} +- {m['ap']['std']:.4f}"
            + (f" (published {published})" if published else "")
            + f"; {len(record['members'])} models in {record['train_seconds']:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.rsrae_paper", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--c", type=float, nargs="+", default=list(C_VALUES),
                        help="anomalies per normal item (default: 0.1 0.3 0.5 0.7 0.9)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per class (default 5)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the authors' 200")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--classes", type=int, nargs="+", default=None, help="normal classes (default: all)")
    parser.add_argument("--data-dir", default=None, help="folder with the raw data (default $JAXAD_DATA_DIR)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"where results go (default {DEFAULT_OUT})")
    parser.add_argument("--subset", default=NEWSGROUPS_SUBSET, choices=("all", "train", "test"),
                        help=f"20newsgroups: the bydate subset the 360 documents per class come from "
                             f"(default {NEWSGROUPS_SUBSET}, scikit-learn's default)")
    parser.add_argument("--remove", nargs="*", default=list(NEWSGROUPS_REMOVE),
                        help="20newsgroups: parts of each post to remove, of headers footers quotes "
                             "(default none, scikit-learn's default)")
    parser.add_argument("--members-per-fit", type=int, default=None,
                        help="(class, seed) members per vmapped fit (default: as many as keep one "
                             f"fit's pools under {MAX_FIT_BYTES // 2**30} GiB, on CPU at most {CPU_MEMBERS_PER_FIT})")
    parser.add_argument("--checkpoint-every", type=int, default=CHECKPOINT_EVERY,
                        help=f"epochs between checkpoints of a cell's fits, resumed when rerun "
                             f"(default {CHECKPOINT_EVERY}; 0: no checkpoints)")
    parser.add_argument("--overwrite", action="store_true", help="rerun cells whose JSON exists")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="method config overrides")
    args = parser.parse_intermixed_args(argv)
    out = Path(args.out)
    try:
        if args.seeds < 1:
            raise ValueError(f"--seeds {args.seeds}: expected an integer >= 1")
        if args.members_per_fit is not None and args.members_per_fit < 1:
            raise ValueError(f"--members-per-fit {args.members_per_fit}: expected an integer >= 1")
        if args.checkpoint_every < 0:
            raise ValueError(f"--checkpoint-every {args.checkpoint_every}: expected an integer >= 0 (0: no checkpoints)")
        bad_c = [c for c in args.c if not 0.0 < c <= 1.0]
        if bad_c:
            raise ValueError(f"--c {bad_c}: expected values in (0, 1]")
        overrides = parse_overrides(args.overrides)
        if args.epochs is not None:
            overrides["epochs"] = args.epochs
        for name in args.methods:  # bad keys or values fail before any data is read
            base, config = method_setup(name, args.dataset, "relu", overrides)
            get_method(base).validate(config, ITEM_SHAPES[args.dataset])
        text_options = {} if args.dataset == "fashion_mnist" else {"subset": args.subset, "remove": tuple(args.remove)}
        x, labels = load_items(args.dataset, args.data_dir, progress=not args.no_progress, **text_options)
        classes = sorted(set(labels.tolist())) if args.classes is None else args.classes
        unknown = sorted(set(classes) - set(labels.tolist()))
        if unknown:
            raise ValueError(f"--classes {unknown}: expected classes of {args.dataset} in {sorted(set(labels.tolist()))}")
        for c in args.c:
            for name in args.methods:
                path = record_path(out, args.dataset, c, name)
                if path.exists() and not args.overwrite:
                    print(f"{path} exists, skipped (--overwrite reruns it)")
                    continue
                checkpoints = checkpoint_path(out, args.dataset, c, name)
                if args.overwrite:
                    shutil.rmtree(checkpoints, ignore_errors=True)
                record = run_cell(args.dataset, c, name, x, labels, classes=classes, seeds=range(args.seeds),
                                  overrides=overrides, progress=not args.no_progress,
                                  members_per_fit=args.members_per_fit,
                                  checkpoint_dir=checkpoints if args.checkpoint_every else None,
                                  checkpoint_every=args.checkpoint_every)
                record["config"].update(text_options)
                write_json(record, path)
                shutil.rmtree(checkpoints, ignore_errors=True)
                print(format_record(record), flush=True)
    except (KeyError, ValueError, FileNotFoundError, ImportError, train.DivergenceError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 2
    md = table(out, args.dataset)
    write_text_atomic(md + "\n", out / f"{args.dataset}.md")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
