"""What ``experiments.run METHOD DATASET`` does with no overrides.

A setup has three flat sections whose keys never collide, so ``key=value`` on the command line
finds its section by name: the method config (``jaxad.resolve_config``), the dataset options
(``jaxad.data.load_split``) and the evaluation options (``EVAL_DEFAULTS``). A method preset
named after the dataset (e.g. ``ae``'s ``ecg5000``) is used when present; a ``SETUPS`` entry
may also set method keys (``"config"``), applied over the preset and under the overrides.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from typing import Any

from jaxad.data import get_spec
from jaxad.data.registry import check_options
from jaxad.methods import get_method, resolve_config
from jaxad.methods.base import check_choice
from jaxad.validation import check_contamination

EVAL_DEFAULTS: dict[str, Any] = {
    # How the flagging threshold is set: PyOD's contamination percentile of the training scores,
    # the tutorials' mean + k * std, the top share of the test scores, or a fixed value.
    "threshold": "contamination",
    "contamination": 0.1,
    "k": 1.0,
    "threshold_value": None,
    # The class whose precision / recall is reported (TensorFlow's ECG tutorial uses 'normal').
    "positive": "anomaly",
}
THRESHOLD_RULES = ("contamination", "mean_std", "top_fraction", "fixed")

# (method, dataset) -> the seed reproductions' data and evaluation protocols.
SETUPS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    # TensorFlow's autoencoder tutorial: threshold mean + 1 std of the training MAE, and
    # accuracy / precision / recall with "normal" as the positive class.
    ("ae", "ecg5000"): {"eval": {"threshold": "mean_std", "k": 1.0, "positive": "normal"}},
    # Schulze's Fashion-MNIST tutorial: class 0 normal, class 1 anomalous, Gaussian threshold.
    ("ae", "fashion_mnist"): {"data": {"normal_class": 0, "anomaly_classes": (1,)},
                              "eval": {"threshold": "mean_std", "k": 1.0}},
    # The convolutional methods take the built-in digits as 8x8 images.
    ("conv_ae", "digits"): {"data": {"images": True}},
    ("dae", "digits"): {"data": {"images": True}},
    # The OC-NN notebook's 2-D task: a point is flagged when r - y_hat > 0 (the decision rule of
    # the paper), so the share of test normals flagged should be about nu.
    ("ocnn", "blobs2d"): {"eval": {"threshold": "fixed", "threshold_value": 0.0}},
    # Zenati et al.'s KDD Cup 99 protocol (bigan/run_kdd.py): flag the top 20 % of the test
    # scores; precision, recall and F1 with the anomaly class (`normal.`) as positive.
    **{(m, "kddcup99"): {"eval": {"threshold": "top_fraction", "contamination": 0.2}}
       for m in ("efficient_gan", "ae", "deep_svdd")},
    # The RSRAE seed notebook (../shared/seeds/000_rsrae_keras_20newsgroups.txt; the dataset's
    # defaults are its pool and USE embeddings): Dense 64-128-256 (relu, output relu too), d = 10,
    # Keras' Adam (lr 1e-3, epsilon 1e-7), batch 128, 10 epochs, MSE losses, A ~ N(0, 0.05^2)
    # (Keras' random_normal), batch norm in inference mode (its train_step calls self.call
    # without training=True, so Keras normalises with the initial moving statistics).
    **{(m, "20newsgroups"): {"config": {
        "hidden": (64, 128, 256), "intrinsic_size": 10, "activation": "relu", "lr": 1e-3,
        "adam_eps": 1e-7, "batch_size": 128, "epochs": 10, "loss": "mse", "rsr_loss": "mse",
        "rsr_init_std": 0.05, "batch_norm": "frozen", "network": "dense"}}
       for m in ("rsrae", "rsrae_plus")},
    # The plain autoencoder beside it: the same widths with a 10-d code instead of the RSR layer.
    ("ae", "20newsgroups"): {"config": {
        "hidden": (64, 128, 256, 10), "activation": "relu", "output_activation": "relu",
        "batch_norm": True, "bn_momentum": 0.99, "bn_unbiased_var": False, "dropout": 0.0, "weight_decay": 0.0, "initializer": "keras",
        "lr": 1e-3, "adam_eps": 1e-7, "batch_size": 128, "epochs": 10, "loss": "mse", "drop_last": False,
        # the embeddings as the RSRAE models see them (unit rows), not standardised
        "standardize": False}},
}


def applicable(method: str, dataset: str) -> bool:
    """Whether the method can take the dataset as set up here: tabular methods take every
    dataset; image-only ones those whose setup gives images (Fashion-MNIST, digits as images)."""
    m = get_method(method)
    if 2 in m.input_ndims:
        return True
    return dataset == "fashion_mnist" or SETUPS.get((m.name, dataset), {}).get("data", {}).get("images", False)


def parse_value(text: str) -> Any:
    """A command-line value: Python literal if it parses ('(32, 16)', '1e-3', 'None', 'True'),
    lower-case true/false/none too, else the string itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "false", "none", "null"):
        return {"true": True, "false": False}.get(lowered)
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"override {pair!r}: expected key=value")
        key, value = pair.split("=", 1)
        out[key.strip()] = parse_value(value)
    return out


def check_finite(options: Mapping[str, Any], key: str, allow_none: bool = False) -> None:
    value = options[key]
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key}={value!r}: expected a finite number{' or None' if allow_none else ''}")


def validate_eval(options: Mapping[str, Any]) -> None:
    """ValueError naming the evaluation option (``EVAL_DEFAULTS``) that is bad."""
    check_choice(options, "threshold", THRESHOLD_RULES)
    check_choice(options, "positive", ("anomaly", "normal"))
    check_contamination(options["contamination"])
    check_finite(options, "k")
    check_finite(options, "threshold_value", allow_none=True)
    if options["threshold"] == "fixed" and options["threshold_value"] is None:
        raise ValueError("threshold_value=None: threshold='fixed' needs threshold_value=<number>")


def resolve_setup(method: str, dataset: str, overrides: Mapping[str, Any] | None = None):
    """(method config, dataset options, eval options) after presets and overrides.

    Raises KeyError for an unknown method, dataset or key, ValueError for a bad value, all
    before any data is read or anything compiled."""
    m = get_method(method)
    spec = get_spec(dataset)
    setup = SETUPS.get((m.name, dataset), {})
    data_opts = {**spec.options, **setup.get("data", {})}
    eval_opts = {**EVAL_DEFAULTS, **setup.get("eval", {})}
    method_over = dict(setup.get("config", {}))
    for key, value in (overrides or {}).items():
        if key in data_opts:
            data_opts[key] = value
        elif key in eval_opts:
            eval_opts[key] = value
        elif key in m.defaults:
            method_over[key] = value
        else:
            raise KeyError(f"config key {key!r} is unknown: not a {m.name!r} setting "
                           f"({sorted(m.defaults)}), nor a {dataset!r} option ({sorted(data_opts)}), "
                           f"nor an evaluation option ({sorted(eval_opts)})")
    config = resolve_config(m, method_over, preset=dataset if dataset in m.presets else None)
    check_options(spec, data_opts)
    validate_eval(eval_opts)
    return config, data_opts, eval_opts
