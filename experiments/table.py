"""Turn a folder of run JSONs into one table: ``python -m experiments.table DIR``.

Writes DIR/table.md (mean +- std per metric) and DIR/table.csv (one row per run: method,
dataset, seeds, <metric>_mean, <metric>_std, train_seconds, device) and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from experiments.jsonio import write_text_atomic

DEFAULT_METRICS = ("auroc", "ap", "precision", "recall", "f1", "accuracy")


def load_runs(folder: Path) -> list[dict]:
    runs = []
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        if {"method", "dataset", "metrics"} <= set(record):
            runs.append(record)
    return runs


def runs_frame(runs: list[dict]) -> pd.DataFrame:
    """One row per run; the latest run wins where a (method, dataset) pair ran twice."""
    rows = []
    for r in runs:
        row = {"method": r["method"], "dataset": r["dataset"], "seeds": len(r.get("seeds", [])),
               "train_seconds": r.get("train_seconds"), "device": r.get("device"), "created": r.get("created", "")}
        for name, m in r["metrics"].items():
            if name == "threshold":
                continue
            row[f"{name}_mean"], row[f"{name}_std"] = m["mean"], m["std"]
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df = df.sort_values("created").drop_duplicates(["method", "dataset"], keep="last")
    return df.sort_values(["dataset", "method"]).drop(columns="created").reset_index(drop=True)


def markdown(df: pd.DataFrame, metrics=DEFAULT_METRICS) -> str:
    present = [m for m in metrics if f"{m}_mean" in df]
    header = ["dataset", "method", "seeds", *present, "train s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in df.iterrows():
        cells = [row["dataset"], row["method"], str(row["seeds"])]
        for m in present:
            mean, std = row.get(f"{m}_mean"), row.get(f"{m}_std")
            cells.append("n/a" if pd.isna(mean) else f"{mean:.3f} ± {std:.3f}")
        cells.append(f"{row['train_seconds']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_tables(folder: Path) -> str:
    df = runs_frame(load_runs(folder))
    if df.empty:
        raise FileNotFoundError(f"{folder}: no run JSON files found")
    md = markdown(df)
    write_text_atomic(md + "\n", folder / "table.md")
    write_text_atomic(df.to_csv(index=False), folder / "table.csv")
    return md


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.table", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder")
    args = parser.parse_args(argv)
    try:
        print(write_tables(Path(args.folder)))
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
