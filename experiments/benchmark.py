"""Every method on every dataset of a suite, one results table.

    python -m experiments.benchmark [--suite builtin] [--methods ae ...] [--seeds N]
                                    [--data-dir DIR] [--out DIR]

The ``builtin`` suite needs no files (blobs2d, digits, breast_cancer, wine): it is the
README's main job. Each (dataset, method) cell trains its N seeds as one vmapped program with
the method's default config (no per-dataset tuning) and writes its run JSON atomically; a rerun
skips the cells already written, so an interrupted run resumes where it stopped.

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

from experiments.presets import applicable
from experiments.run import _jsonable, run_experiment
from jaxad.data import BUILTIN
from jaxad.methods import METHODS

SUITES = {"builtin": BUILTIN}
DEFAULT_OUT = Path("results") / "benchmark"


def cell_path(out: Path, dataset: str, method: str) -> Path:
    return out / "cells" / f"{dataset.replace('/', '-')}__{method}.json"


def run_cell(out: Path, dataset: str, method: str, seeds: int, data_dir) -> dict:
    """Run one cell unless its JSON exists; write it atomically (temp file + rename)."""
    path = cell_path(out, dataset, method)
    if path.exists():
        record = json.loads(path.read_text())
        if len(record.get("seeds", [])) == seeds:
            return record
    record = run_experiment(method, dataset, seeds=seeds, data_dir=data_dir, progress=True)
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
    parser.add_argument("--suite", choices=sorted(SUITES), default="builtin")
    parser.add_argument("--methods", nargs="+", default=sorted(METHODS), help="default: every method")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=None, help=f"default {DEFAULT_OUT}/<suite>")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        print(f"error: --methods {unknown}: unknown; expected some of {sorted(METHODS)}", file=sys.stderr)
        return 2
    if args.seeds < 1:
        print(f"error: --seeds {args.seeds}: expected an integer >= 1", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else DEFAULT_OUT / args.suite
    cells = [(d, m) for d in SUITES[args.suite] for m in args.methods if applicable(m, d)]
    rows = []
    for dataset, method in tqdm(cells, desc=f"{args.suite} suite", unit="cell"):
        rows += per_seed_rows(run_cell(out, dataset, method, args.seeds, args.data_dir))
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
