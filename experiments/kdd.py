"""KDD Cup 99: Efficient GAN with both scores, against ``ae`` and ``deep_svdd``, on one split.

    python -m experiments.kdd [--seeds 5] [--settings authors lr1e-4] [--baselines ae deep_svdd]
                              [--epochs N] [--data-dir DIR] [--download] [--out DIR] [--no-progress]

Zenati et al.'s protocol (``jaxad.data.kdd``; ``experiments.presets``): the 10 % set, one-hot
to 121 features, ``normal.`` = anomaly, 50/50 split with seed 42, training on the attacks only,
20 % anomalies in the test set, MinMax fitted on the training rows, the top 20 % of the test
scores flagged. Each Efficient GAN setting trains its seeds once (one vmapped program) and is
scored twice: feature matching (``fm``) and cross-entropy (``ce``). The baselines run with their
default configs through ``experiments.run`` on the same split.

GAN settings (``GAN_SETTINGS``): ``authors`` is the method's defaults (Adam lr 1e-5, the
default epochs), i.e. ``python -m experiments.run efficient_gan kddcup99``; ``lr1e-4`` takes ten
times the step size for fewer epochs (see the README for why).

Writes ``--out`` (default results/kdd): ``runs/*.json`` (each training run's rows as soon as it
ends; a rerun reuses them, so an interrupted experiment resumes; ``--fresh`` starts over),
``kdd.json`` (every row with its per-seed metrics, the configs, the per-epoch history, timings
and the device), ``kdd.csv`` (one row per method, setting and score) and ``table.md``; prints
the markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.presets import resolve_setup
from experiments.jsonio import write_json, write_text_atomic
from experiments.run import device_description, seed_thresholds
from jaxad import metrics as M
from jaxad import train
from jaxad.data import load_split
from jaxad.methods import efficient_gan, get_method

DATASET = "kddcup99"
DEFAULT_OUT = Path("results") / "kdd"
GAN_SETTINGS: dict[str, dict] = {
    "authors": {},
    "lr1e-4": {"lr": 1e-4, "epochs": 8},
}
BASELINES = ("ae", "deep_svdd")
METRICS = ("precision", "recall", "f1", "auroc", "ge_f1")
# Zenati et al. 2018, Table 2 (KDD99, best Efficient GAN, feature matching).
PUBLISHED = {"method": "efficient_gan (published)", "setting": "Zenati et al. 2018", "score": "fm",
             "precision_mean": 0.920, "recall_mean": 0.958, "f1_mean": 0.937}


def evaluate_scores(y_test: np.ndarray, scores: np.ndarray, eval_opts: dict) -> dict:
    """Per-seed metrics at the protocol's threshold: scores (n_seeds, n) -> {metric: summary}.

    jaxad flags ``score > threshold``; the authors flag ``score >= threshold``. The two differ
    only when tied scores straddle the percentile, which KDD's many duplicate rows make possible
    (an untrained model gives 39 % of the test rows, identical smurf rows, one score), so the
    ``ge_*`` metrics give the authors' rule."""
    per_seed = []
    for s in scores:
        thr = seed_thresholds(eval_opts, None, s)
        # In float64, "> the next double below thr" is exactly ">= thr" for float32 scores.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # nothing flagged: handled below
            ge = M.classification_metrics(y_test, s.astype(np.float64), float(np.nextafter(thr, -np.inf)),
                                          positive=eval_opts["positive"])
            seed = {**M.evaluate(y_test, s, thr, positive=eval_opts["positive"]), "threshold": thr,
                    **{f"ge_{k}": ge[k] for k in ("precision", "recall", "f1")}}
        # A seed that flags nothing scores 0 (scikit-learn's zero_division=0), not NaN, which
        # the mean over seeds would silently skip.
        per_seed.append({k: 0.0 if k.endswith(("precision", "recall", "f1")) and np.isnan(v) else v
                         for k, v in seed.items()})
    return M.summarize(per_seed)


def train_and_score(method: str, overrides: dict, split, seeds: int, progress: bool, desc: str):
    """Fit ``seeds`` seeds of ``method`` (one program) on the split: (config, eval options, result)."""
    config, _, eval_opts = resolve_setup(method, DATASET, overrides)
    get_method(method).validate(config, split.x_train.shape)
    result = train.fit(method, config, split.x_train, seeds=range(seeds), progress=progress, desc=desc)
    return config, eval_opts, result


def row(method: str, setting: str, kind: str, config: dict, result, metrics: dict, seeds: int) -> dict:
    return {"method": method, "setting": setting, "score": kind, "lr": config.get("lr"),
            "epochs": config.get("epochs"), "metrics": metrics, "train_seconds": result.train_seconds,
            "compile_seconds": result.compile_seconds, "seeds": seeds, "config": config,
            "history": {k: v.tolist() for k, v in result.history.items()}}


def gan_rows(split, setting: str, overrides: dict, seeds: int, progress: bool) -> list[dict]:
    """Train one Efficient GAN setting over ``seeds`` seeds; one row per score (fm, ce)."""
    config, eval_opts, result = train_and_score("efficient_gan", overrides, split, seeds, progress,
                                                f"efficient_gan ({setting})")
    rows = []
    for kind in efficient_gan.SCORES:
        scores = train.score("efficient_gan", efficient_gan.with_score(result.states, kind), split.x_test)
        rows.append(row("efficient_gan", setting, kind, {**config, "score": kind}, result,
                        evaluate_scores(split.y_test, scores, eval_opts), seeds))
    return rows


def baseline_rows(split, method: str, seeds: int, progress: bool) -> list[dict]:
    """A baseline with its default config, as ``experiments.run METHOD kddcup99`` runs it."""
    config, eval_opts, result = train_and_score(method, {}, split, seeds, progress, method)
    scores = train.score(method, result.states, split.x_test)
    return [row(method, "defaults", "-", config, result, evaluate_scores(split.y_test, scores, eval_opts), seeds)]


def cached_rows(folder: Path, name: str, compute) -> list[dict]:
    """Rows of one training run, read from ``folder/name.json`` if an earlier run wrote them,
    else computed and written at once (atomically), so an interrupted experiment resumes."""
    path = folder / f"{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    rows = compute()
    write_json(rows, path, indent=None)
    return rows


def frame(rows: list[dict]) -> pd.DataFrame:
    """One line per row: metric means and stds, the 5-seed program's seconds and per seed."""
    lines = []
    for r in rows:
        line = {k: r[k] for k in ("method", "setting", "score", "lr", "epochs", "seeds")}
        for m in METRICS:
            line[f"{m}_mean"] = r["metrics"][m]["mean"]
            line[f"{m}_std"] = r["metrics"][m]["std"]
        line["train_seconds"] = r["train_seconds"]
        line["seconds_per_seed"] = r["train_seconds"] / r["seeds"]
        lines.append(line)
    return pd.DataFrame(lines)


def markdown(df: pd.DataFrame) -> str:
    header = ["method", "setting", "score", "epochs", "precision", "recall", "F1", "AUROC", "F1 (>=)",
              "train s (all seeds)"]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in df.iterrows():
        cells = [r["method"], r["setting"], r["score"], str(r["epochs"])]
        cells += [f"{r[f'{m}_mean']:.3f} ± {r[f'{m}_std']:.3f}" for m in METRICS]
        cells.append(f"{r['train_seconds']:.0f}")
        out.append("| " + " | ".join(cells) + " |")
    p = PUBLISHED
    out.append(f"| {p['method']} | {p['setting']} | fm | ? | {p['precision_mean']:.3f} | {p['recall_mean']:.3f} | "
               f"{p['f1_mean']:.3f} | — | — | — |")
    return "\n".join(out)


def write(out: Path, rows: list[dict], df: pd.DataFrame, md: str, meta: dict) -> None:
    write_json({**meta, "rows": rows, "published": PUBLISHED}, out / "kdd.json", indent=1)
    write_text_atomic(df.to_csv(index=False), out / "kdd.csv")
    write_text_atomic(md + "\n", out / "table.md")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.kdd", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--settings", nargs="*", default=list(GAN_SETTINGS), choices=list(GAN_SETTINGS),
                        help="Efficient GAN settings to run (default: all)")
    parser.add_argument("--baselines", nargs="*", default=list(BASELINES), choices=list(BASELINES))
    parser.add_argument("--epochs", type=int, default=None, help="override every GAN setting's epochs (quick runs)")
    parser.add_argument("--data-dir", default=None, help="folder with kddcup99/ (default $JAXAD_DATA_DIR)")
    parser.add_argument("--download", action="store_true", help="fetch the file into the cache if absent")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--fresh", action="store_true", help="ignore the runs an earlier call left in OUT/runs")
    args = parser.parse_args(argv)
    try:
        split = load_split(DATASET, data_dir=args.data_dir, download=args.download)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    progress, out = not args.no_progress, Path(args.out)
    cells = out / "runs" if not args.fresh else out / "runs" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    rows = []
    for setting in args.settings:
        overrides = dict(GAN_SETTINGS[setting])
        if args.epochs is not None:
            overrides["epochs"] = args.epochs
        name = f"efficient_gan__{setting}__{overrides.get('epochs', 'default')}ep__{args.seeds}seeds"
        rows += cached_rows(cells, name, lambda: gan_rows(split, setting, overrides, args.seeds, progress))
        print(frame(rows[-2:]).to_string(index=False), flush=True)
    for method in args.baselines:
        rows += cached_rows(cells, f"{method}__{args.seeds}seeds",
                            lambda: baseline_rows(split, method, args.seeds, progress))
        print(frame(rows[-1:]).to_string(index=False), flush=True)
    df = frame(rows)
    md = markdown(df)
    print(md)
    meta = {"dataset": DATASET, "device": device_description(), "split": split.summary(),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    write(out, rows, df, md, meta)
    print(f"wrote {Path(args.out) / 'kdd.json'}, kdd.csv, table.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
