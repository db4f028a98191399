"""Fashion-MNIST experiments with the dense, convolutional and denoising autoencoders.

    python -m experiments.fashion_mnist tutorial  [--data-dir DIR] [--out DIR] [--epochs N]
    python -m experiments.fashion_mnist one_class [--methods ae conv_ae dae] [--seeds 3] [--epochs N]
    python -m experiments.fashion_mnist german    [--methods ae conv_ae dae] [--seeds 5]
    python -m experiments.fashion_mnist speed

* ``tutorial``: TensorFlow's autoencoder tutorial, examples 1 and 2: the dense autoencoder
  (Dense 64 relu / Dense 784 sigmoid, MSE) on the clean training images and the denoising
  convolutional one (``dae``: noise 0.2) on noisy ones, 10 epochs each, all 60 000 images.
  Writes PNG grids (original / reconstructed; original / noisy / denoised) and prints the test
  reconstruction MSE.
* ``one_class``: each class in turn is normal (its 6000 training images), tested on the whole
  test split (10 000 images; the other 9 classes are anomalies). AUROC per class, mean over
  10 classes x N seeds. Classes x seeds are one ``fit`` with ``data_per_seed``: one vmapped
  program for dense models; convolutional ones on CPU go one member after another, which XLA's
  CPU backend runs faster (see ``Method.cpu_host_loop``).
* ``german``: the German tutorial's task (class 0 normal, class 1 anomalous, threshold = mean +
  1 std of the training reconstruction error): precision, recall and AUROC for each method.
* ``speed``: training images per second of ``conv_ae`` on this machine's default device.

Results go to ``--out`` (default results/fashion_mnist) as JSON, CSV and markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from experiments.jsonio import jsonable, write_json, write_text_atomic
from experiments.run import device_description, run_experiment
from jaxad import metrics as M
from jaxad import train
from jaxad.data import read_raw
from jaxad.methods import ae, conv_ae, resolve_config

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot")
DEFAULT_OUT = Path("results") / "fashion_mnist"


def images(data_dir) -> dict[str, np.ndarray]:
    """x_train (60000, 28, 28, 1), x_test (10000, 28, 28, 1) float32 in [0, 1], labels int."""
    raw = read_raw("fashion_mnist", data_dir)
    to_float = lambda a: (a.astype(np.float32) / 255.0)[..., None]  # noqa: E731
    return {"x_train": to_float(raw["x_train"]), "y_train": raw["y_train"],
            "x_test": to_float(raw["x_test"]), "y_test": raw["y_test"]}


def first_state(result: train.FitResult):
    return jax.tree.map(lambda a: a[0], result.states)


def image_grid(rows: list[tuple[str, np.ndarray]], path: Path, n: int = 10) -> None:
    """A PNG with one row per (title, images (>= n, 28, 28, 1)) pair, n images per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), n, figsize=(1.6 * n, 1.8 * len(rows)))
    for r, (title, imgs) in enumerate(rows):
        for i in range(n):
            ax = axes[r, i]
            ax.imshow(np.squeeze(imgs[i]), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def tutorial(data_dir, out: Path, epochs: int) -> dict:
    data = images(data_dir)
    x_train, x_test = data["x_train"], data["x_test"]
    record = {"device": device_description(), "epochs": epochs}

    dense_cfg = resolve_config("ae", {"epochs": epochs}, preset="tutorial_basic")
    dense = train.fit("ae", dense_cfg, x_train, desc="dense AE (tutorial example 1)")
    recon = np.asarray(ae.reconstruct(first_state(dense), x_test))
    record["dense_test_mse"] = float(np.mean((recon - x_test) ** 2))
    record["dense_train_seconds"] = dense.train_seconds
    image_grid([("original", x_test), ("reconstructed", recon)], out / "tutorial_dense_ae.png")

    dae_cfg = resolve_config("dae", {"epochs": epochs})
    dae = train.fit("dae", dae_cfg, x_train, desc="denoising conv AE (tutorial example 2)")
    noisy = np.asarray(conv_ae.gaussian_corruption(jax.random.PRNGKey(0), x_test, dae_cfg["noise_factor"]))
    state = first_state(dae)
    denoised = np.asarray(conv_ae.reconstruct(state, noisy))
    record["dae_test_mse_noisy_input"] = float(np.mean((denoised - x_test) ** 2))
    record["dae_test_mse_clean_input"] = float(np.mean((np.asarray(conv_ae.reconstruct(state, x_test)) - x_test) ** 2))
    record["noisy_input_mse"] = float(np.mean((noisy - x_test) ** 2))
    record["dae_train_seconds"] = dae.train_seconds
    record["dae_images_per_second"] = epochs * len(x_train) / dae.loop_seconds
    image_grid([("original", x_test), ("original + noise", noisy), ("denoised", denoised)],
               out / "tutorial_dae.png")
    return record


def one_class(data_dir, methods: list[str], n_seeds: int, epochs: int | None) -> pd.DataFrame:
    """AUROC for every (method, normal class, seed): classes x seeds as one fit per method."""
    data = images(data_dir)
    per_class = np.stack([data["x_train"][data["y_train"] == c] for c in range(10)])  # (10, 6000, ...)
    members = [(c, s) for c in range(10) for s in range(n_seeds)]
    x_members = per_class[[c for c, _ in members]]
    rows = []
    for name in methods:
        config = resolve_config(name, {} if epochs is None else {"epochs": epochs})
        t0 = time.perf_counter()
        result = train.fit(name, config, x_members, seeds=[s for _, s in members], data_per_seed=True,
                           desc=f"{name}: 10 classes x {n_seeds} seeds")
        scores = train.fit_result_scores(result, data["x_test"])
        seconds = time.perf_counter() - t0
        for i, (c, s) in enumerate(members):
            rows.append({"method": name, "normal_class": c, "class_name": CLASSES[c], "seed": s,
                         "auroc": M.auroc(data["y_test"] != c, scores[i]),
                         "seconds_per_model": seconds / len(members), "epochs": config["epochs"]})
    return pd.DataFrame(rows)


def one_class_table(frame: pd.DataFrame) -> str:
    stats = frame.groupby(["normal_class", "method"])["auroc"].agg(["mean", "std"]).reset_index()
    methods = list(dict.fromkeys(frame["method"]))
    lines = ["| normal class | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for c in range(10):
        cells = []
        for m in methods:
            row = stats[(stats.normal_class == c) & (stats.method == m)].iloc[0]
            cells.append(f"{row['mean']:.3f} ± {0.0 if np.isnan(row['std']) else row['std']:.3f}")
        lines.append(f"| {c} {CLASSES[c]} | " + " | ".join(cells) + " |")
    means = frame.groupby("method")["auroc"].mean()
    secs = frame.groupby("method")["seconds_per_model"].mean()
    lines.append("| **mean** | " + " | ".join(f"**{means[m]:.3f}**" for m in methods) + " |")
    lines.append("| seconds per model | " + " | ".join(f"{secs[m]:.1f}" for m in methods) + " |")
    return "\n".join(lines)


def german(data_dir, methods: list[str], n_seeds: int) -> pd.DataFrame:
    rows = []
    for name in methods:
        overrides = {"anomaly_classes": (1,), "threshold": "mean_std", "k": 1.0}
        record = run_experiment(name, "fashion_mnist", seeds=n_seeds, data_dir=data_dir, overrides=overrides)
        row = {"method": name, "seeds": n_seeds, "train_seconds": record["train_seconds"]}
        for k in ("precision", "recall", "auroc"):
            row[f"{k}_mean"] = record["metrics"][k]["mean"]
            row[f"{k}_std"] = record["metrics"][k]["std"]
        rows.append(row)
    return pd.DataFrame(rows)


def german_table(frame: pd.DataFrame) -> str:
    lines = ["| method | precision | recall | AUROC | train s |", "|---|---|---|---|---|"]
    for _, r in frame.iterrows():
        lines.append(f"| {r['method']} | {r['precision_mean']:.3f} ± {r['precision_std']:.3f} | "
                     f"{r['recall_mean']:.3f} ± {r['recall_std']:.3f} | {r['auroc_mean']:.3f} ± "
                     f"{r['auroc_std']:.3f} | {r['train_seconds']:.1f} |")
    return "\n".join(lines)


def speed(n: int = 6000, epochs: int = 3) -> dict:
    """Training images per second of conv_ae (tutorial model, batch 32) after compilation."""
    x = np.random.default_rng(0).random((n, 28, 28, 1), dtype=np.float32)
    result = train.fit("conv_ae", resolve_config("conv_ae", {"epochs": epochs}), x, progress=False)
    return {"device": device_description(), "images_per_second": epochs * n / result.loop_seconds,
            "compile_seconds": result.compile_seconds}


def _save(out: Path, name: str, payload, table: str | None = None) -> None:
    if isinstance(payload, pd.DataFrame):
        write_text_atomic(payload.to_csv(index=False), out / f"{name}.csv")
        payload = payload.to_dict(orient="records")
    write_json(payload, out / f"{name}.json")
    if table is not None:
        write_text_atomic(table + "\n", out / f"{name}.md")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.fashion_mnist", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", choices=("tutorial", "one_class", "german", "speed"))
    parser.add_argument("--methods", nargs="+", default=["ae", "conv_ae", "dae"])
    parser.add_argument("--seeds", type=int, default=None, help="default: 3 (one_class), 5 (german)")
    parser.add_argument("--epochs", type=int, default=None, help="default: each method's (10)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        if args.experiment == "tutorial":
            record = tutorial(args.data_dir, out, args.epochs or 10)
            _save(out, "tutorial", record)
            print(json.dumps(jsonable(record), indent=2))
        elif args.experiment == "one_class":
            frame = one_class(args.data_dir, args.methods, args.seeds or 3, args.epochs)
            table = one_class_table(frame)
            _save(out, "one_class", frame, table)
            print(table)
        elif args.experiment == "german":
            frame = german(args.data_dir, args.methods, args.seeds or 5)
            table = german_table(frame)
            _save(out, "german", frame, table)
            print(table)
        else:
            record = speed()
            _save(out, "speed", record)
            print(f"conv_ae training: {record['images_per_second']:.0f} images/s on {record['device']}")
    except (KeyError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
