"""Every method on every dataset of a suite, one results table.

    python -m experiments.benchmark [--suite builtin|adbench] [--methods ae ... pyod_iforest ...]
                                    [--seeds N] [--data-dir DIR] [--out DIR]

Suites:

* ``builtin`` needs no files (blobs2d, digits, breast_cancer, wine): the README's main job.
* ``adbench``: every ADBench classical set in the data dir (``adbench_classical/*.npz``) with
  ADBench's protocol: stratified 70/30 split (split seed 0, the same for every method), MinMax
  fitted on train, sets above 10 000 rows subsampled to 10 000 (``--max-rows``), unsupervised
  (the training part keeps its anomalies; labels never reach training).

Methods: any jaxad method (default: every one that takes the suite's data) and, with the
benchmark extra installed, PyOD baselines named ``pyod_*`` (``experiments.baselines``) on the
identical arrays. Each (dataset, jaxad method) cell trains its N seeds as one vmapped program with
the method's default config (no per-dataset tuning); a PyOD cell fits its seeds one by one. Every
cell writes its JSON atomically; a rerun skips the cells already written, so an interrupted run
resumes where it stopped.

Outputs in --out: ``cells/*.json`` (one run record per cell), ``results.csv`` (one row per
dataset, method, seed: auroc, ap, train_seconds, score_seconds), ``table.md`` (datasets x
methods, mean AUROC +- std, a mean-rank row and the total time per method).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd
from tqdm import tqdm  # tqdm.auto warns in Jupyter without ipywidgets

from experiments import baselines
from experiments.presets import applicable
from experiments.run import _jsonable, device_description, run_experiment
from jaxad import metrics as M
from jaxad.data import BUILTIN, load_split, resolve_data_dir
from jaxad.methods import METHODS

SUITES = ("builtin", "adbench")
DEFAULT_OUT = Path("results") / "benchmark"
ADBENCH_MAX_ROWS = 10_000


def suite_datasets(suite: str, data_dir=None) -> list[str]:
    """The dataset names of a suite; ``adbench`` lists ``adbench_classical/*.npz`` in the data dir
    (ADBench's numbering order) and fails clearly when there is none."""
    if suite == "builtin":
        return list(BUILTIN)
    root = resolve_data_dir(data_dir)
    files = sorted((root / "adbench_classical").glob("*.npz"), key=lambda p: (int(p.stem.split("_")[0]), p.stem)) \
        if root is not None and (root / "adbench_classical").is_dir() else []
    if not files:
        raise FileNotFoundError(f"--suite adbench: no adbench_classical/*.npz under data dir {root} "
                                "(set --data-dir or JAXAD_DATA_DIR)")
    return [f"adbench/{p.stem}" for p in files]


def baseline_record(dataset: str, name: str, seeds: int, data_dir, data_options: dict) -> dict:
    """A PyOD baseline's cell, in the shape of ``run_experiment``'s record."""
    split = load_split(dataset, data_dir=data_dir, **data_options)
    per_seed, train_s, score_s = [], 0.0, 0.0
    for seed in range(seeds):
        scores, t_fit, t_score = baselines.fit_score(name, split.x_train, split.x_test, seed)
        per_seed.append(M.evaluate(split.y_test, scores))
        train_s, score_s = train_s + t_fit, score_s + t_score
    return {"method": name, "dataset": dataset, "config": data_options, "seeds": list(range(seeds)),
            "metrics": M.summarize(per_seed), "train_seconds": train_s, "score_seconds": score_s,
            "device": device_description()}


def cell_path(out: Path, dataset: str, method: str) -> Path:
    return out / "cells" / f"{dataset.replace('/', '-')}__{method}.json"


def run_cell(out: Path, dataset: str, method: str, seeds: int, data_dir, data_options=None) -> dict:
    """Run one cell unless its JSON exists; write it atomically (temp file + rename)."""
    path = cell_path(out, dataset, method)
    if path.exists():
        record = json.loads(path.read_text())
        if len(record.get("seeds", [])) == seeds:
            return record
    if method in baselines.BASELINES:
        record = baseline_record(dataset, method, seeds, data_dir, data_options or {})
    else:
        record = run_experiment(method, dataset, seeds=seeds, data_dir=data_dir, progress=False,
                                overrides=data_options)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(_jsonable(record), indent=2))
    os.replace(tmp, path)
    return record


def per_seed_rows(record: dict) -> list[dict]:
    n = len(record["seeds"])
    return [{"dataset": record["dataset"], "method": record["method"], "seed": seed,
             "auroc": record["metrics"]["auroc"]["per_seed"][i], "ap": record["metrics"]["ap"]["per_seed"][i],
             # the seeds train as one program: its time is shared out evenly
             "train_seconds": record["train_seconds"] / n, "score_seconds": record["score_seconds"] / n}
            for i, seed in enumerate(record["seeds"])]


def results_table(rows: pd.DataFrame) -> str:
    """Markdown: datasets x methods (mean AUROC +- std over seeds), mean rank, total seconds."""
    stats = rows.groupby(["dataset", "method"])["auroc"].agg(["mean", "std"]).reset_index()
    means = stats.pivot(index="dataset", columns="method", values="mean")
    stds = stats.pivot(index="dataset", columns="method", values="std").fillna(0.0)
    methods = list(means.columns)
    # ranks over the datasets every method ran on; '—' marks a method that cannot take a dataset
    ranks = means.dropna().rank(axis=1, ascending=False).mean()
    seconds = rows.groupby("method")[["train_seconds", "score_seconds"]].sum().sum(axis=1)
    lines = ["| dataset | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for dataset in means.index:
        cells = ["—" if pd.isna(means.loc[dataset, m]) else f"{means.loc[dataset, m]:.3f} ± {stds.loc[dataset, m]:.3f}"
                 for m in methods]
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    lines.append("| mean AUROC (its datasets) | " + " | ".join(f"{means[m].mean():.3f}" for m in methods) + " |")
    lines.append("| mean rank (common datasets) | " + " | ".join(f"{ranks[m]:.2f}" for m in methods) + " |")
    lines.append("| total seconds | " + " | ".join(f"{seconds[m]:.1f}" for m in methods) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=SUITES, default="builtin")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="jaxad methods and pyod_* baselines (default: every jaxad method)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--datasets", nargs="+", default=None,
                        help="only these datasets of the suite (e.g. adbench/4_breastw)")
    parser.add_argument("--max-rows", type=int, default=ADBENCH_MAX_ROWS, help="adbench: subsample larger sets")
    parser.add_argument("--out", default=None, help=f"default {DEFAULT_OUT}/<suite>")
    args = parser.parse_args(argv)
    methods = args.methods or sorted(METHODS)
    unknown = sorted(set(methods) - set(METHODS) - set(baselines.BASELINES))
    if unknown:
        print(f"error: --methods {unknown}: unknown; expected some of {sorted(METHODS)} "
              f"or {list(baselines.BASELINES)}", file=sys.stderr)
        return 2
    if any(m in baselines.BASELINES for m in methods) and not baselines.available():
        print("error: pyod_* baselines need PyOD and PyTorch: pip install 'jaxad[bench]'", file=sys.stderr)
        return 2
    if args.seeds < 1:
        print(f"error: --seeds {args.seeds}: expected an integer >= 1", file=sys.stderr)
        return 2
    try:
        datasets = suite_datasets(args.suite, args.data_dir)
    except (FileNotFoundError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.datasets:
        missing = sorted(set(args.datasets) - set(datasets))
        if missing:
            print(f"error: --datasets {missing}: not in the {args.suite} suite ({datasets})", file=sys.stderr)
            return 2
        datasets = [d for d in datasets if d in args.datasets]
    data_options = {"max_rows": args.max_rows} if args.suite == "adbench" else {}
    out = Path(args.out) if args.out else DEFAULT_OUT / args.suite
    cells = [(d, m) for d in datasets for m in methods if m in baselines.BASELINES or applicable(m, d)]
    rows = []
    for dataset, method in tqdm(cells, desc=f"{args.suite} suite", unit="cell"):
        rows += per_seed_rows(run_cell(out, dataset, method, args.seeds, args.data_dir, data_options))
    frame = pd.DataFrame(rows)
    frame.to_csv(out / "results.csv", index=False)
    md = results_table(frame)
    (out / "table.md").write_text(md + "\n")
    print(f"\nAUROC (mean ± std over {args.seeds} seeds), {args.suite} suite:\n")
    print(md)
    print(f"\nwrote {out / 'results.csv'} and {out / 'table.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
