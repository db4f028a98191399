"""KDD Cup 99 (jaxad.data.kdd): the one-hot encoder and its fixed vocabulary, Zenati et al.'s
split checked against their pandas pipeline on a small fake file, the fast failure without the
file, and the real 10 % set's shape and class balance."""

import gzip
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import MinMaxScaler

from jaxad.data import DATASETS, DatasetNotFoundError, kdd, load_split

LABELS = ("normal.", "smurf.", "neptune.", "back.")


def fake_rows(n: int, seed: int = 0) -> list[list]:
    """KDD-shaped rows: 41 features (categorical ones from small vocabularies) and a label."""
    rng = np.random.default_rng(seed)
    values = {"protocol_type": ["tcp", "udp", "icmp"], "service": ["http", "smtp", "ecr_i", "private"],
              "flag": ["SF", "S0", "REJ"], "land": [0, 1], "logged_in": [0, 1], "is_host_login": [0],
              "is_guest_login": [0, 1]}
    rows = []
    for _ in range(n):
        row = [rng.choice(values[c]) if c in values else round(float(rng.integers(0, 5000) * rng.random()), 2)
               for c in kdd.FEATURES]
        rows.append([*row, rng.choice(LABELS, p=[0.3, 0.4, 0.2, 0.1])])
    return rows


def write_fake_kdd(root, n: int = 400) -> pd.DataFrame:
    path = root / kdd.KDD_RELPATH
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = fake_rows(n)
    with gzip.open(path, "wt") as f:
        f.write("\n".join(",".join(str(v) for v in row) for row in rows) + "\n")
    return pd.DataFrame(rows, columns=list(kdd.COLUMNS))


# ---------------------------------------------------------------- the encoder

def test_encoder_one_hot_by_hand():
    frame = pd.DataFrame([fake_rows(1)[0] for _ in range(3)], columns=list(kdd.COLUMNS))
    frame["protocol_type"] = ["udp", "tcp", "udp"]
    frame["land"] = [1, 0, 0]
    enc = kdd.KDDEncoder.fit(frame)
    assert enc.categories["protocol_type"] == ("tcp", "udp") and enc.categories["land"] == ("0", "1")
    names = enc.feature_names
    assert names[:34] == [c for c in kdd.FEATURES if c not in kdd.CATEGORICAL]
    x = enc.transform(frame)
    assert x.shape == (3, len(names)) and x.dtype == np.float32
    tcp, udp = names.index("protocol_type-tcp"), names.index("protocol_type-udp")
    np.testing.assert_array_equal(x[:, [tcp, udp]], [[0, 1], [1, 0], [0, 1]])
    np.testing.assert_array_equal(x[:, [names.index("land-0"), names.index("land-1")]], [[0, 1], [1, 0], [1, 0]])
    # every categorical column contributes exactly one 1 per row
    assert (x[:, 34:].sum(axis=1) == len(kdd.CATEGORICAL)).all()
    np.testing.assert_array_equal(x[:, 0], frame["duration"].to_numpy(np.float32))


def test_unseen_category_at_transform_is_a_clear_error():
    frame = pd.DataFrame(fake_rows(20), columns=list(kdd.COLUMNS))
    enc = kdd.KDDEncoder.fit(frame)
    new = frame.head(3).copy()
    new["service"] = ["http", "telnet", "gopher"]
    with pytest.raises(ValueError, match=r"service: value\(s\) \['gopher', 'telnet'\] were not seen"):
        enc.transform(new)
    with pytest.raises(ValueError, match=r"missing KDD column\(s\) \['flag'\]"):
        enc.transform(frame.drop(columns="flag"))


# ---------------------------------------------------------------- the split

def authors_pipeline(frame: pd.DataFrame, rho: float = 0.2):
    """houssamzenati/Efficient-GAN-Anomaly-Detection data/kdd.py, with the MinMax kept."""
    df = frame.copy()
    for name in kdd.CATEGORICAL:
        dummies = pd.get_dummies(df[name].astype(str))
        for value in dummies.columns:
            df[f"{name}-{value}"] = dummies[value]
        df = df.drop(columns=name)
    df["label"] = (df["label"] == "normal.").astype(int)
    df_train = df.sample(frac=0.5, random_state=42)
    df_test = df.loc[~df.index.isin(df_train.index)]
    cols = [c for c in df.columns if c != "label"]
    x_train = df_train[cols].to_numpy(np.float32)[df_train["label"].to_numpy() != 1]
    x, y = df_test[cols].to_numpy(np.float32), df_test["label"].to_numpy()
    rng = np.random.RandomState(42)
    inl, out = x[y == 0], x[y == 1]
    out = out[rng.permutation(len(out))][:int(len(inl) * rho / (1 - rho))]
    xt = np.concatenate([inl, out])
    yt = np.concatenate([np.zeros(len(inl)), np.ones(len(out))])
    order = rng.permutation(len(xt))
    scaler = MinMaxScaler().fit(x_train)
    return cols, scaler.transform(x_train), scaler.transform(xt[order]), yt[order]


def test_split_matches_the_authors_pipeline_on_a_fake_file(tmp_path):
    frame = write_fake_kdd(tmp_path)
    split = load_split("kddcup99", data_dir=tmp_path)
    cols, x_train, x_test, y_test = authors_pipeline(kdd.read_kddcup99(tmp_path))
    assert kdd.KDDEncoder.fit(frame).feature_names == cols
    np.testing.assert_allclose(split.x_train, x_train, atol=1e-6)
    np.testing.assert_allclose(split.x_test, x_test, atol=1e-6)
    np.testing.assert_array_equal(split.y_test, y_test)
    assert split.x_train.min() == 0.0 and split.x_train.max() == 1.0
    assert split.info["scaling"] == "minmax" and split.info["split_seed"] == 42


def test_split_options(tmp_path):
    write_fake_kdd(tmp_path)
    raw = load_split("kddcup99", data_dir=tmp_path, scaling=None)  # the authors' data as it was used
    assert raw.x_train.max() > 1.0
    other = load_split("kddcup99", data_dir=tmp_path, test_anomaly_ratio=0.1)
    assert other.y_test.mean() < 0.12
    with pytest.raises(ValueError, match="scaling='standard'"):
        load_split("kddcup99", data_dir=tmp_path, scaling="standard")
    with pytest.raises(ValueError, match="test_anomaly_ratio=1.5"):
        load_split("kddcup99", data_dir=tmp_path, test_anomaly_ratio=1.5)


def test_missing_file_fails_fast_and_says_where(tmp_path):
    assert DATASETS["kddcup99"].needs_files
    start = time.perf_counter()
    with pytest.raises(DatasetNotFoundError, match=r"kddcup99/kddcup.data_10_percent.gz.*--download"):
        load_split("kddcup99", data_dir=tmp_path)
    assert time.perf_counter() - start < 1.0


def test_corrupt_file_is_a_value_error(tmp_path):
    path = tmp_path / kdd.KDD_RELPATH
    path.parent.mkdir(parents=True)
    with gzip.open(path, "wt") as f:
        f.write("0,tcp,http\n")
    with pytest.raises(ValueError, match="fewer than 42 columns|not a KDD"):
        load_split("kddcup99", data_dir=tmp_path)


# ---------------------------------------------------------------- the real file

@pytest.mark.data
def test_real_kdd_10_percent(shared_data_dir):
    split = load_split("kddcup99", data_dir=shared_data_dir)
    # 494 021 rows: 247 010 sampled for training, of which 198 361 attacks; the test half keeps
    # its 198 382 attacks and all 48 629 of its normal. rows (fewer than 20 % of 247 011 allows).
    assert split.x_train.shape == (198361, 121) and split.x_test.shape == (247011, 121)
    assert int(split.y_test.sum()) == 48629
    assert 0.19 < split.y_test.mean() < 0.2
    assert split.x_train.min() == 0.0 and split.x_train.max() == 1.0
    assert split.x_train.dtype == np.float32 and split.info["n_features"] == 121
