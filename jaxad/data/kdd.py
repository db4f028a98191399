"""KDD Cup 1999 (10 % set) as Zenati et al.'s anomaly-detection task (dataset ``kddcup99``).

File: ``<data_dir>/kddcup99/kddcup.data_10_percent.gz`` (gzipped CSV, no header, 494 021 rows of
41 features and a label with a trailing dot, e.g. ``normal.``, ``smurf.``). Looked up in the data
dir, then the download cache; ``download=True`` fetches it from scikit-learn's mirror of the UCI
file (sha256-checked) into the cache.

The protocol of Zenati et al.'s code (houssamzenati/Efficient-GAN-Anomaly-Detection,
``data/kdd.py``), used by DAGMM and ALAD too:

* one-hot encode the categorical columns ``protocol_type, service, flag, land, logged_in,
  is_host_login, is_guest_login`` (``pd.get_dummies``): 34 numeric + 87 indicator columns = 121
  features, numeric columns first in file order, then each categorical column's indicators in
  sorted category order, named ``"<column>-<value>"`` as theirs;
* ``normal.`` is the anomaly class (label 1): it is the minority (about 20 %); every attack is
  normal;
* a 50/50 split, ``DataFrame.sample(frac=0.5, random_state=42)`` for training, the other rows
  for testing;
* training keeps only the normal class (the attacks);
* the test set keeps every one of its normal rows and a random share of its anomalies such that
  they are ``test_anomaly_ratio`` (0.2) of the test set (or all of them if there are fewer;
  ``np.random.RandomState(42)``, then shuffled with it, as their ``_adapt``);
* MinMax scaling fitted on the training rows and applied to both parts. Their code calls
  ``scaler.transform(x_train)`` and ``scaler.transform(x_test)`` without keeping the results, so
  their model trains on unscaled features (src_bytes up to ~7e8). Here the transform is kept;
  ``scaling=None`` reproduces their data as it was actually used.

The category vocabulary is fixed when ``KDDEncoder.fit`` sees the data (here: every row of the
file, as ``pd.get_dummies`` over the whole frame in their code; no label is used). Transforming
rows with a category it never saw raises ValueError naming the column and the values.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from jaxad.data import download as dl
from jaxad.data.paths import download_cache_dir, locate_files
from jaxad.data.splits import ADSplit, apply_scaler, fit_scaler

KDD_RELPATH = "kddcup99/kddcup.data_10_percent.gz"
# scikit-learn's mirror of the UCI file (sklearn.datasets.fetch_kddcup99); same sha256 as the
# shared data folder's copy (MANIFEST.md).
KDD_URL = "https://ndownloader.figshare.com/files/5976042"
KDD_SHA256 = "8045aca0d84e70e622d1148d7df782496f6333bf6eb979a1b0837c42a9fd9561"

FEATURES = (
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land",
    "wrong_fragment", "urgent", "hot", "num_failed_logins", "logged_in", "num_compromised",
    "root_shell", "su_attempted", "num_root", "num_file_creations", "num_shells",
    "num_access_files", "num_outbound_cmds", "is_host_login", "is_guest_login", "count",
    "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate",
    "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate", "dst_host_count",
    "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
)
COLUMNS = (*FEATURES, "label")
# The authors' text_l: one-hot encoded, in this order.
CATEGORICAL = ("protocol_type", "service", "flag", "land", "logged_in", "is_host_login", "is_guest_login")
ANOMALY_LABEL = "normal."


def kdd_file(data_dir=None, download: bool = False) -> Path:
    """The path of ``kddcup99/kddcup.data_10_percent.gz``: data dir, else download cache, else
    (only if ``download``) downloaded; else DatasetNotFoundError, at once."""

    def fetch(relpaths: list[str]) -> list[Path]:
        dest = download_cache_dir(create=True) / relpaths[0]
        return [dl.download_file(KDD_URL, dest, algorithm="sha256", digest=KDD_SHA256)]

    return locate_files("kddcup99", data_dir, [KDD_RELPATH], download=download, fetch=fetch,
                        source_host="ndownloader.figshare.com (scikit-learn's mirror of UCI)")[0]


def read_kddcup99(data_dir=None, download: bool = False, path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The raw table: 42 columns (``COLUMNS``), categorical columns as str, the others float64,
    ``label`` as in the file (``normal.``, ``smurf.``, ...). ``path`` reads another file of the
    same format (e.g. ``corrected.gz``)."""
    path = Path(path) if path is not None else kdd_file(data_dir, download)
    dtypes = {c: (str if c in CATEGORICAL or c == "label" else np.float64) for c in COLUMNS}
    try:
        frame = pd.read_csv(path, header=None, names=list(COLUMNS), dtype=dtypes)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a KDD Cup 99 CSV of {len(COLUMNS)} columns ({err})") from err
    if frame.isna().any().any():
        raise ValueError(f"{path}: has empty fields or rows with fewer than {len(COLUMNS)} columns")
    return frame


@dataclasses.dataclass(frozen=True)
class KDDEncoder:
    """One-hot encoding of KDD's categorical columns with a vocabulary fixed at ``fit``.

    ``numeric``: the other feature columns, in order; ``categories``: column -> its sorted
    values. ``transform`` gives the numeric columns, then each categorical column's indicators
    (``feature_names``), float64 (n, n_features)."""

    numeric: tuple[str, ...]
    categories: Mapping[str, tuple[str, ...]]

    @classmethod
    def fit(cls, frame: pd.DataFrame, categorical: Sequence[str] = CATEGORICAL) -> "KDDEncoder":
        _check_columns(frame, FEATURES)
        numeric = tuple(c for c in FEATURES if c not in categorical)
        categories = {c: tuple(sorted(frame[c].astype(str).unique())) for c in categorical}
        return cls(numeric, categories)

    @property
    def feature_names(self) -> list[str]:
        return [*self.numeric, *(f"{c}-{v}" for c, values in self.categories.items() for v in values)]

    def transform(self, frame: pd.DataFrame, dtype=np.float32) -> np.ndarray:
        """(n, n_features) of ``dtype`` (float32 as the authors' ``astype(np.float32)``).
        Raises ValueError for a missing column or a category value not seen at fit time
        (naming the column and the values)."""
        _check_columns(frame, (*self.numeric, *self.categories))
        n = len(frame)
        out = np.zeros((n, len(self.feature_names)), dtype)
        out[:, :len(self.numeric)] = frame[list(self.numeric)].to_numpy(np.float64)
        offset, rows = len(self.numeric), np.arange(n)
        for column, values in self.categories.items():
            text = frame[column].astype(str)
            codes = pd.Index(values).get_indexer(text)  # -1 where unseen
            if (codes < 0).any():
                unseen = sorted(set(text[codes < 0]))
                raise ValueError(
                    f"{column}: value(s) {unseen[:10]} were not seen when the encoder was fitted "
                    f"(known: {list(values)[:20]}{' ...' if len(values) > 20 else ''}); fit the "
                    "encoder on data that holds them, or drop those rows")
            out[rows, offset + codes] = 1.0
            offset += len(values)
        return out


def _check_columns(frame: pd.DataFrame, needed: Sequence[str]) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"frame: missing KDD column(s) {missing[:10]}")


def anomaly_labels(frame: pd.DataFrame) -> np.ndarray:
    """1 where the label is ``normal.`` (the minority class, the anomaly here), else 0: (n,) int64."""
    return (frame["label"].to_numpy() == ANOMALY_LABEL).astype(np.int64)


def adapt_test(x: np.ndarray, y: np.ndarray, ratio: float = 0.2, seed: int = 42):
    """The authors' ``_adapt``: all normal rows (y = 0) plus the first int(n_normal * ratio /
    (1 - ratio)) anomalies of a RandomState(seed) permutation, then the whole shuffled by the same
    generator (seed 42 in their code, as the split's). Returns (x, y); x may be row indices."""
    rng = np.random.RandomState(seed)
    inliers, outliers = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    outliers = outliers[rng.permutation(len(outliers))]
    outliers = outliers[:int(len(inliers) * ratio / (1 - ratio))]
    rows = np.concatenate([inliers, outliers])
    rows = rows[rng.permutation(len(rows))]
    return x[rows], y[rows]


def kdd_split(frame: pd.DataFrame, *, split_seed: int = 42, test_anomaly_ratio: float = 0.2,
              scaling: str | None = "minmax", encoder: KDDEncoder | None = None) -> ADSplit:
    """Zenati et al.'s KDD split of a raw table (``read_kddcup99``); see the module docstring.
    ``encoder`` defaults to one fitted on all of ``frame``."""
    if not 0.0 < test_anomaly_ratio < 1.0:
        raise ValueError(f"test_anomaly_ratio={test_anomaly_ratio!r}: expected a number in (0, 1)")
    if scaling not in ("minmax", None):
        raise ValueError(f"scaling={scaling!r}: expected 'minmax' or None (the authors' unscaled data)")
    encoder = KDDEncoder.fit(frame) if encoder is None else encoder
    frame = frame.reset_index(drop=True)
    y = anomaly_labels(frame)
    # DataFrame.sample draws RandomState(seed).choice(n, round(n / 2), replace=False), in the
    # drawn order; the test part keeps file order. Both as the authors' code.
    train_pos = np.asarray(frame.sample(frac=0.5, random_state=split_seed).index)
    test_mask = np.ones(len(frame), bool)
    test_mask[train_pos] = False
    train_pos = train_pos[y[train_pos] == 0]
    test_pos, y_test = adapt_test(np.flatnonzero(test_mask), y[test_mask], test_anomaly_ratio, split_seed)
    x_train = encoder.transform(frame.iloc[train_pos])
    x_test = encoder.transform(frame.iloc[test_pos])
    shift, scale = fit_scaler(x_train, scaling)
    return ADSplit("kddcup99", apply_scaler(x_train, shift, scale), np.zeros(len(x_train), np.int64),
                   apply_scaler(x_test, shift, scale), y_test,
                   {"protocol": "zenati_kdd", "split_seed": split_seed, "test_anomaly_ratio": test_anomaly_ratio,
                    "scaling": scaling, "n_features": x_train.shape[1]})


def load_kddcup99(data_dir=None, download: bool = False, *, split_seed: int = 42,
                  test_anomaly_ratio: float = 0.2, scaling: str | None = "minmax") -> ADSplit:
    """Read the 10 % file and build the split (the ``kddcup99`` dataset)."""
    return kdd_split(read_kddcup99(data_dir, download), split_seed=split_seed,
                     test_anomaly_ratio=test_anomaly_ratio, scaling=scaling)
