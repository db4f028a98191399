"""The OC-NN seed notebook's 2-D task, for several nu.

    python -m experiments.ocnn_blobs [--nu 0.05 0.1 0.5] [--seeds 5] [--out DIR] [--figure PNG]

Data (``blobs2d``, drawn exactly as the Spanish notebook from seed 42): x_train = 0.3 * randn
(5000, 2) shifted to +2 and -2 (10 000 points), 400 test points from the same law, 200 outliers
uniform on [-4, 4]^2. A point is flagged when r - y_hat > 0. For each nu: the share of test
normals flagged (ideally nu), the share of outliers flagged and the AUROC of test vs outliers,
mean +- std over the seeds, for

* ``ocnn``: the ``blobs2d`` preset (256 random Fourier features, bias-free linear output);
* ``ocnn, 1024 features``: the default network's 1024 features;
* ``ocnn (notebook net)``: the seed notebook's Dense 32-16 relu network (preset ``notebook``);
* ``OneClassSVM``: scikit-learn's, gamma='scale', the same nu (the kernel method OC-NN
  generalises; deterministic, one run);
* ``Bayes (true density)``: flags the points of lowest true density, at the training points'
  nu-quantile: the best any detector can do on this draw.

Writes ``table.md``, ``results.csv`` and one driver JSON per (network, nu) to --out, and a PNG of
each nu's decision function (first seed) with the three point sets.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.svm import OneClassSVM  # noqa: E402

from experiments.jsonio import write_text_atomic  # noqa: E402
from experiments.run import run_experiment, write_record  # noqa: E402
from jaxad import metrics as M  # noqa: E402
from jaxad import train  # noqa: E402
from jaxad.data.builtin import blobs2d_arrays  # noqa: E402

DEFAULT_OUT = Path("results") / "ocnn_blobs"
DEFAULT_FIGURE = Path("docs") / "figures" / "ocnn_blobs2d.png"
NETWORKS = {"ocnn": {}, "ocnn, 1024 features": {"fourier_dim": 1024},
            "ocnn (notebook net)": {"hidden": (32, 16), "fourier_dim": 0, "delta": 0.025}}
BLOB_STD, BLOB_CENTRES = 0.3, (2.0, -2.0)


def true_density(x: np.ndarray) -> np.ndarray:
    """The normal law's density up to a constant: two isotropic Gaussians at (+-2, +-2). (n, 2) -> (n,)."""
    return sum(np.exp(-np.sum((x - c) ** 2, axis=1) / (2 * BLOB_STD ** 2)) for c in BLOB_CENTRES)


def flag_rates(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    out = M.classification_metrics(y, scores, threshold)
    return {"normal_flagged": out["normal_flagged"], "anomaly_flagged": out["anomaly_flagged"],
            "auroc": M.auroc(y, scores)}


def reference_rows(nu: float) -> list[dict]:
    """OneClassSVM and the Bayes detector at this nu (scores: higher = more abnormal)."""
    x_train, x_test, x_out = blobs2d_arrays()
    y = np.r_[np.zeros(len(x_test)), np.ones(len(x_out))]
    x_eval = np.r_[x_test, x_out]
    t0 = time.perf_counter()
    svm = OneClassSVM(nu=nu, gamma="scale").fit(x_train)
    seconds = time.perf_counter() - t0
    rows = [{"network": "OneClassSVM", "nu": nu, **flag_rates(y, -svm.decision_function(x_eval), 0.0),
             "train_seconds": seconds}]
    bayes_threshold = np.quantile(-true_density(x_train), 1 - nu)
    rows.append({"network": "Bayes (true density)", "nu": nu,
                 **flag_rates(y, -true_density(x_eval), bayes_threshold), "train_seconds": 0.0})
    return rows


def plot_decision_functions(panels: list[tuple[float, train.FitResult]], path: Path) -> None:
    """One panel per nu: the score r - y_hat over the plane (first seed), its zero contour (the
    decision boundary), training points, test normals and outliers."""
    x_train, x_test, x_out = blobs2d_arrays()
    grid = np.linspace(-5, 5, 200)
    xx, yy = np.meshgrid(grid, grid)
    plane = np.c_[xx.ravel(), yy.ravel()].astype(np.float32)
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 5), squeeze=False)
    for ax, (nu, result) in zip(axes[0], panels, strict=True):
        first = jax.tree.map(lambda a: a[:1], result.states)
        z = train.score(result.method, first, plane)[0].reshape(xx.shape)
        ax.contourf(xx, yy, -z, levels=np.linspace(-z.max(), -z.min(), 12), cmap="Blues_r")
        ax.contour(xx, yy, z, levels=[0.0], colors="darkred", linewidths=2)
        ax.scatter(*x_train[::10].T, s=4, c="white", edgecolors="none", label="train (1 in 10)")
        ax.scatter(*x_test.T, s=12, c="blueviolet", edgecolors="k", linewidths=0.3, label="test normals")
        ax.scatter(*x_out.T, s=14, c="gold", edgecolors="k", linewidths=0.3, label="outliers")
        ax.set(title=f"OC-NN, nu = {nu}: boundary r - y_hat = 0", xlim=(-5, 5), ylim=(-5, 5))
        ax.set_aspect("equal")
    axes[0][0].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def record_row(network: str, nu: float, record: dict) -> dict:
    m = record["metrics"]
    row = {"network": network, "nu": nu, "train_seconds": record["train_seconds"] / len(record["seeds"])}
    for key in ("normal_flagged", "anomaly_flagged", "auroc"):
        row[key], row[key + "_std"] = m[key]["mean"], m[key]["std"]
    return row


def markdown(rows: pd.DataFrame) -> str:
    def cell(row, key):
        std = row.get(key + "_std")
        return f"{row[key]:.3f}" + ("" if pd.isna(std) else f" ± {std:.3f}")

    lines = ["| network | nu | test normals flagged | outliers flagged | AUROC | s per model |",
             "|---|---|---|---|---|---|"]
    for _, row in rows.iterrows():
        lines.append(f"| {row['network']} | {row['nu']} | {cell(row, 'normal_flagged')} | "
                     f"{cell(row, 'anomaly_flagged')} | {cell(row, 'auroc')} | {row['train_seconds']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nu", type=float, nargs="+", default=[0.05, 0.1, 0.5])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--figure", type=Path, default=DEFAULT_FIGURE)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    bad = [nu for nu in args.nu if not 0 < nu < 1]
    if bad:
        parser.error(f"--nu {bad}: expected values in (0, 1)")

    rows, panels = [], []
    for nu in args.nu:
        for network in args.networks:
            keep = (lambda result, split, nu=nu: panels.append((nu, result))) if network == "ocnn" else None
            record = run_experiment("ocnn", "blobs2d", seeds=args.seeds, overrides={"nu": nu, **NETWORKS[network]},
                                    progress=not args.no_progress, on_fit=keep)
            record["network"] = network
            write_record(record, args.out / "runs")
            rows.append(record_row(network, nu, record))
        rows.extend(reference_rows(nu))
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(table.to_csv(index=False), args.out / "results.csv")
    text = markdown(table)
    write_text_atomic(text, args.out / "table.md")
    print(text)
    if panels:
        plot_decision_functions(panels, args.figure)
        print(f"wrote {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
