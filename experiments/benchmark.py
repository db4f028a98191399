"""Every method on every dataset of a suite, one results table.

    python -m experiments.benchmark [--suite builtin|adbench|all] [--methods ae ... pyod_iforest ...]
                                    [--seeds N] [--data-dir DIR] [--out DIR] [--compare A B]
                                    [--distributed]

Suites:

* ``builtin`` needs no files (blobs2d, digits, breast_cancer, wine): the README's main job.
* ``adbench``: every ADBench classical set in the data dir (``adbench_classical/*.npz``) with
  ADBench's protocol: stratified 70/30 split (split seed 0, the same for every method), MinMax
  fitted on train, sets above 10 000 rows subsampled to 10 000 (``--max-rows``), unsupervised
  (the training part keeps its anomalies; labels never reach training).
* ``all``: both.

Methods: any jaxad method (default: every one that takes the suite's data, and
``DEFAULT_ENSEMBLES``), any seed ensemble of one named ``<method>_ens<K>`` (K >= 2 networks per
seed, ``jaxad.ensemble``) and, with the benchmark extra installed, PyOD baselines named
``pyod_*`` (``experiments.baselines``) on the identical arrays. Each (dataset, jaxad method)
cell trains its N seeds (times K for an ensemble) as one vmapped program with the method's
default config (no per-dataset tuning); a PyOD cell fits its seeds one by one. Every
cell writes its JSON atomically; a rerun skips the cells already written, so an interrupted run
resumes where it stopped.

Outputs in --out: ``cells/*.json`` (one run record per cell), ``results.csv`` (one row per
dataset, method, seed: auroc, ap, train_seconds, score_seconds), ``table.md`` (datasets x
methods, mean AUROC +- std, a mean-rank row and the total time per method; then the same for
average precision) and
``auroc_boxplot.png`` (the per-dataset AUROC of each method, best median first), and over the
datasets every method ran on, ``ranks.json`` (average ranks, Friedman's p, the Nemenyi critical
difference) and ``cd_diagram.png`` (``experiments.significance``). With
``--compare A B`` also ``compare__A__B.md`` / ``.json``: A against B on the datasets both ran on
(mean difference with its seed-noise standard error, wins/losses, Wilcoxon signed-rank p).
The tables cover every finished cell in ``--out`` on the run's datasets with its seed count, so
running one method into a folder that holds the others' cells extends their table instead of
replacing it.

Several hosts: with ``--distributed`` every process (one per host, started by the cluster's
launcher) calls ``jax.distributed.initialize()``, runs its share of the cells (cell i goes to
process i mod process_count) on its own local devices, and waits at a barrier; process 0 then
writes the tables. ``--out`` must be a folder every host sees (a shared file system).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Collection
from pathlib import Path

import pandas as pd
from tqdm import tqdm  # tqdm.auto warns in Jupyter without ipywidgets

from experiments import baselines
from experiments.presets import applicable
from experiments.jsonio import write_json, write_text_atomic
from experiments.run import device_description, run_experiment
from experiments.significance import cd_diagram, comparison_markdown, paired_comparison, rank_statistics, ranks_markdown
from jaxad import metrics as M
from jaxad.data import BUILTIN, load_split, resolve_data_dir
from jaxad.methods import METHODS, get_method

SUITES = ("builtin", "adbench", "all")
DEFAULT_OUT = Path("results") / "benchmark"
ADBENCH_MAX_ROWS = 10_000


def suite_datasets(suite: str, data_dir=None) -> list[str]:
    """The dataset names of a suite; ``adbench`` lists ``adbench_classical/*.npz`` in the data dir
    (ADBench's numbering order) and fails clearly when there is none."""
    if suite == "builtin":
        return list(BUILTIN)
    if suite == "all":
        return list(BUILTIN) + suite_datasets("adbench", data_dir)
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


# ``<method>_ens<K>``: K networks of a jaxad method per seed (``jaxad.ensemble``).
ENSEMBLE_NAME = re.compile(r"(?P<method>.+)_ens(?P<members>[0-9]+)")
# The suite's default methods beyond every jaxad method itself: Deep SVDD, the best single jaxad
# network by mean rank on the adbench suite, as an ensemble of 5 (the ensemble size of
# Lakshminarayanan et al., "Deep Ensembles", NeurIPS 2017; not tuned on the suite). Any other
# method's ensemble runs by name (``ae_ens5``); the default list stays within the suite's time.
DEFAULT_ENSEMBLES = ("deep_svdd_ens5",)


def parse_method(name: str) -> tuple[str, int] | None:
    """(jaxad method or PyOD baseline, members) for a benchmark method name: ``ae`` -> ('ae',
    1), ``deep_svdd_ens5`` -> ('deep_svdd', 5); None for a name that is neither."""
    if name in METHODS or name in baselines.BASELINES:
        return name, 1
    match = ENSEMBLE_NAME.fullmatch(name)
    if match and match["method"] in METHODS and int(match["members"]) >= 2:
        return match["method"], int(match["members"])
    return None


def cell_path(out: Path, dataset: str, method: str) -> Path:
    return out / "cells" / f"{dataset.replace('/', '-')}__{method}.json"


def bucketed(method: str, bucket: bool) -> bool:
    """Whether ``method``'s cells run with ``fit(bucket=True)``: asked for and supported."""
    base = (parse_method(method) or (method, 1))[0]
    return bucket and base in METHODS and get_method(base).pad_features is not None


def run_cell(out: Path, dataset: str, method: str, seeds: int, data_dir, data_options=None,
             bucket: bool = True) -> dict:
    """Run one cell unless its JSON exists (with ``seeds`` seeds, bucketed as asked); write it
    atomically (temp file + rename)."""
    path = cell_path(out, dataset, method)
    record = cached_record(path, seeds)
    if record is not None and (record.get("input_width") is not None) == bucketed(method, bucket):
        return record
    if method in baselines.BASELINES:
        record = baseline_record(dataset, method, seeds, data_dir, data_options or {})
    else:
        base, members = parse_method(method)
        record = {**run_experiment(base, dataset, seeds=seeds, data_dir=data_dir, progress=False,
                                   overrides=data_options, bucket=bucketed(method, bucket), ensemble=members),
                  "method": method}
    write_json(record, path)
    return record


def cached_record(path: Path, seeds: int) -> dict | None:
    """A finished cell's record, or None when there is none with ``seeds`` seeds."""
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    return record if len(record.get("seeds", [])) == seeds else None


def finished_cells(out: Path, datasets: list[str], seeds: int, skip: Collection[str] = (),
                   only: str | None = None) -> list[dict]:
    """The finished cells in ``out`` on ``datasets`` with ``seeds`` seeds of the methods not in
    ``skip`` (or of method ``only``): an earlier run's other methods, which the tables keep (cells
    with another seed count are left out: their means would not be comparable), ensembles
    (``<method>_ens<K>``) included."""
    ensembles = sorted({path.stem.rsplit("__", 1)[-1] for path in (out / "cells").glob("*__*_ens*.json")}
                       - set(METHODS))
    names = (*sorted(METHODS), *baselines.BASELINES, *(m for m in ensembles if parse_method(m)))
    others = [m for m in names if m not in skip and only in (None, m)]
    records = (cached_record(cell_path(out, d, m), seeds) for d in datasets for m in others)
    return [record for record in records if record is not None]


def in_suite_order(rows: list[dict], datasets: list[str]) -> list[dict]:
    """Rows by dataset in the suite's order, then method name, then seed: the same CSV whichever
    invocation ran which cells."""
    position = {d: i for i, d in enumerate(datasets)}
    return sorted(rows, key=lambda r: (position[r["dataset"]], r["method"], r["seed"]))


def data_options_for(dataset: str, max_rows: int) -> dict:
    """ADBench's protocol caps the rows; the built-in sets are small and take no options."""
    return {"max_rows": max_rows} if dataset.startswith("adbench/") else {}


def process_share(cells: list, index: int, count: int) -> list:
    """The cells process ``index`` of ``count`` runs: every count-th one, so that each process
    gets a mix of small and large datasets."""
    return cells[index::count]


def per_seed_rows(record: dict) -> list[dict]:
    n = len(record["seeds"])
    return [{"dataset": record["dataset"], "method": record["method"], "seed": seed,
             "auroc": record["metrics"]["auroc"]["per_seed"][i], "ap": record["metrics"]["ap"]["per_seed"][i],
             # the seeds train as one program: its time is shared out evenly
             "train_seconds": record["train_seconds"] / n, "score_seconds": record["score_seconds"] / n}
            for i, seed in enumerate(record["seeds"])]


METRIC_NAMES = {"auroc": "AUROC", "ap": "AP"}


def results_table(rows: pd.DataFrame, metric: str = "auroc", seconds: bool = True) -> str:
    """Markdown: datasets x methods (mean ``metric`` +- std over seeds), its mean and mean rank
    per method, and (``seconds``) the total seconds per method."""
    stats = rows.groupby(["dataset", "method"])[metric].agg(["mean", "std"]).reset_index()
    order = pd.unique(rows["dataset"])  # the suite's order (ADBench's numbering), not alphabetical
    means = stats.pivot(index="dataset", columns="method", values="mean").reindex(order)
    stds = stats.pivot(index="dataset", columns="method", values="std").fillna(0.0).reindex(order)
    methods = list(means.columns)
    # rank 1 = best among the methods that ran on a dataset ('—' marks a method that cannot take
    # it), averaged over the datasets each method ran on
    ranks = means.rank(axis=1, ascending=False).mean()
    lines = ["| dataset | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for dataset in means.index:
        cells = ["—" if pd.isna(means.loc[dataset, m]) else f"{means.loc[dataset, m]:.3f} ± {stds.loc[dataset, m]:.3f}"
                 for m in methods]
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    name = METRIC_NAMES[metric]
    lines.append(f"| mean {name} (its datasets) | " + " | ".join(f"{means[m].mean():.3f}" for m in methods) + " |")
    lines.append("| mean rank (its datasets) | " + " | ".join(f"{ranks[m]:.2f}" for m in methods) + " |")
    if seconds:
        total = rows.groupby("method")[["train_seconds", "score_seconds"]].sum().sum(axis=1)
        lines.append("| total seconds | " + " | ".join(f"{total[m]:.1f}" for m in methods) + " |")
    return "\n".join(lines)


def auroc_boxplot(rows: pd.DataFrame, path: Path) -> None:
    """A box per method of its per-dataset mean AUROC (seeds averaged), best median first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_dataset = rows.groupby(["method", "dataset"])["auroc"].mean().reset_index()
    order = per_dataset.groupby("method")["auroc"].median().sort_values(ascending=False).index
    data = [per_dataset.loc[per_dataset["method"] == m, "auroc"].to_numpy() for m in order]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(order) + 1.5), 4.0))
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(order) + 1), list(order), rotation=30, ha="right")
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_ylabel("AUROC, one point per dataset")
    ax.set_title(f"{per_dataset['dataset'].nunique()} datasets, mean over seeds; box: quartiles, line: median, triangle: mean")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_outputs(rows: list[dict], out: Path, suite: str, seeds: int) -> None:
    frame = pd.DataFrame(rows)
    write_text_atomic(frame.to_csv(index=False), out / "results.csv")
    stats = rank_statistics(frame)
    md = (results_table(frame) + "\n\n" + ranks_markdown(stats) + "\n\nAverage precision (mean ± std over seeds; "
          "its mean-rank row ranks by AP, the tests above by AUROC):\n\n" + results_table(frame, "ap", seconds=False))
    write_text_atomic(md + "\n", out / "table.md")
    auroc_boxplot(frame, out / "auroc_boxplot.png")
    written = [out / "results.csv", out / "table.md", out / "auroc_boxplot.png"]
    if stats is not None:
        write_json(stats, out / "ranks.json")
        cd_diagram(stats, out / "cd_diagram.png")
        written += [out / "ranks.json", out / "cd_diagram.png"]
    print(f"\nAUROC (mean ± std over {seeds} seeds), {suite} suite:\n")
    print(md)
    print("\nwrote " + ", ".join(str(w) for w in written))


def write_comparison(rows: list[dict], out: Path, a: str, b: str) -> None:
    comparison = paired_comparison(pd.DataFrame(rows), a, b)
    md = comparison_markdown(comparison)
    write_json(comparison, out / f"compare__{a}__{b}.json")
    write_text_atomic(md + "\n", out / f"compare__{a}__{b}.md")
    print(f"\n{md}")


def start_distributed() -> tuple[int, int]:
    """jax.distributed.initialize() with the cluster's own settings (SLURM, Open MPI, TPU pods, or
    the JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID variables read below);
    -> (process index, process count)."""
    import jax

    env = os.environ
    if "JAX_COORDINATOR_ADDRESS" in env:
        jax.distributed.initialize(coordinator_address=env["JAX_COORDINATOR_ADDRESS"],
                                   num_processes=int(env["JAX_NUM_PROCESSES"]),
                                   process_id=int(env["JAX_PROCESS_ID"]))
    else:
        jax.distributed.initialize()
    return jax.process_index(), jax.process_count()


def wait_for_all_processes() -> None:
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices("jaxad.benchmark: every cell written")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", choices=SUITES, default="builtin")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="jaxad methods, <method>_ens<K> ensembles and pyod_* baselines "
                             f"(default: every jaxad method and {', '.join(DEFAULT_ENSEMBLES)})")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--datasets", nargs="+", default=None,
                        help="only these datasets of the suite (e.g. adbench/4_breastw)")
    parser.add_argument("--max-rows", type=int, default=ADBENCH_MAX_ROWS, help="adbench: subsample larger sets")
    parser.add_argument("--out", default=None, help=f"default {DEFAULT_OUT}/<suite>")
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"), default=None,
                        help="also compare method A with method B (each in --methods or with finished cells in --out): "
                             "difference, seed-noise standard error, Wilcoxon signed-rank p")
    parser.add_argument("--no-bucket", dest="bucket", action="store_false",
                        help="compile each dataset's own programs instead of padding tables to shared shapes "
                             "(train.fit's bucket, used by every method with pad_features: ae, deep_svdd, ocnn, rsrae, rsrae_plus, efficient_gan)")
    parser.add_argument("--distributed", action="store_true",
                        help="one process per host: jax.distributed.initialize(), cells shared out")
    args = parser.parse_args(argv)
    methods = args.methods or [*sorted(METHODS), *DEFAULT_ENSEMBLES]
    unknown = sorted(m for m in methods if parse_method(m) is None)
    if unknown:
        print(f"error: --methods {unknown}: unknown; expected some of {sorted(METHODS)}, an ensemble "
              f"<method>_ens<K> with K >= 2 (e.g. deep_svdd_ens5), or {list(baselines.BASELINES)}", file=sys.stderr)
        return 2
    wanted = [m for m in methods if m in baselines.BASELINES]
    if wanted and not baselines.available(wanted):
        print(f"error: {wanted} need PyOD (and PyTorch for {list(baselines.TORCH_BASELINES)}): "
              "pip install 'jaxad[bench]'", file=sys.stderr)
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
    out = Path(args.out) if args.out else DEFAULT_OUT / args.suite
    if args.compare:
        absent = [m for m in args.compare if m not in methods and not finished_cells(out, datasets, args.seeds, only=m)]
        if absent:
            print(f"error: --compare {args.compare}: {absent} neither among --methods {methods} nor with finished "
                  f"{args.seeds}-seed cells in {out / 'cells'}", file=sys.stderr)
            return 2
    cells = [(d, m) for d in datasets for m in methods if m in baselines.BASELINES or applicable(parse_method(m)[0], d)]
    if not cells:
        print(f"error: none of --methods {methods} takes a dataset of the {args.suite} suite", file=sys.stderr)
        return 2
    index, count = start_distributed() if args.distributed else (0, 1)
    mine = process_share(cells, index, count)
    rows = []
    for dataset, method in tqdm(mine, desc=f"{args.suite} suite" + (f" (process {index}/{count})" if count > 1 else ""),
                                unit="cell"):
        rows += per_seed_rows(run_cell(out, dataset, method, args.seeds, args.data_dir,
                                       data_options_for(dataset, args.max_rows), bucket=args.bucket))
    if count > 1:
        wait_for_all_processes()
        if index != 0:
            print(f"process {index}: {len(mine)} cells written to {out / 'cells'}; process 0 writes the tables")
            return 0
        # every other cell is on disk now: run_cell reads it back
        rows = [row for d, m in cells for row in per_seed_rows(
            run_cell(out, d, m, args.seeds, args.data_dir, data_options_for(d, args.max_rows), bucket=args.bucket))]
    earlier = finished_cells(out, datasets, args.seeds, skip=set(methods))
    if earlier:
        print(f"the tables also hold the finished cells of {sorted({r['method'] for r in earlier})} "
              f"in {out / 'cells'} ({args.seeds} seeds)")
    rows = in_suite_order(rows + [row for record in earlier for row in per_seed_rows(record)], datasets)
    write_outputs(rows, out, args.suite, args.seeds)
    if args.compare:
        write_comparison(rows, out, *args.compare)
    return 0


if __name__ == "__main__":
    sys.exit(main())
