"""Fuzzed input (hypothesis): random shapes, dtypes (bool, int, uint, float16/32/64, object,
str, complex), NaN / inf, empty arrays, 0-, 1- and 3-D input, constant columns, duplicated rows,
huge (1e30, 3e38, 1e300) and tiny (1e-30, 1e-300, subnormal) magnitudes, as numpy arrays,
pandas frames and nested lists, through ``Detector.fit`` / ``decision_function`` and the
experiment driver (``run_experiment`` with a given split, and ``main`` with fuzzed key=value
overrides).

The property: every case ends in finite scores or a ValueError whose message starts with the
argument's name, never another exception (a crash inside jit), a hang or non-finite scores; an
input that is valid (numeric, the right rank and shape, finite, within float32's range) is
never rejected, and the driver, which trains on a split as given (unscaled), may only stop
with DivergenceError when the values are huge. ``CASES`` counts the cases tried and
``test_count_of_cases_tried`` prints the figure (``pytest -s``).

One small fixed config (``FUZZ``) and a few row counts keep the compiled programs reused. The
cases are derandomized, so CI tries the same ones every run; ``JAXAD_FUZZ_RANDOM=1`` draws new
ones (and ``JAXAD_FUZZ_SCALE=10`` tries ten times as many).
"""

import collections
import os
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experiments import run
from jaxad import Detector, DivergenceError, train
from jaxad.detector import UNSCALED_MAX
from jaxad.data.splits import ADSplit

FUZZ = {"epochs": 1, "batch_size": 16, "hidden": (4, 2)}
# Repeats weight the draws towards valid input, so that both outcomes get many cases.
ROWS = (0, 1, 2, 33, 33, 33)
COLS = (0, 1, 3, 3)
NUMERIC = ("bool", "int8", "uint8", "int64", "float16", "float32", "float32", "float64", "float64")
DTYPES = NUMERIC + ("object", "str", "complex64")
MAGNITUDES = (1.0, 1.0, 1e-30, 1e30, 3e38, 1e-300, 1e300)
SPECIALS = (np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, 1e-30, 1e30, 1.7e308, -3.4e38)
F32_MAX = float(np.finfo(np.float32).max)
MODERATE = 1e6  # inputs up to this size must give finite scores, not errors
FUZZ_SETTINGS = settings(deadline=None, derandomize=os.environ.get("JAXAD_FUZZ_RANDOM") != "1", database=None,
                         print_blob=True, suppress_health_check=list(HealthCheck))
SCALE = int(os.environ.get("JAXAD_FUZZ_SCALE", 1))

CASES: collections.Counter = collections.Counter()


@st.composite
def fuzzed_arrays(draw, ranks=(0, 1, 2, 3, 4), cols=COLS, containers=("numpy", "numpy", "frame", "list"),
                  dtypes=DTYPES):
    """(X as passed, the numpy array it holds). Half the cases lean valid (rank 2 or 4, rows and
    features, a numeric dtype, finite special values only), half draw anything from ``ranks``,
    ``cols`` and ``dtypes``. Values: N(0, 1) times a magnitude, with an optional constant column
    (hypothesis's own adversarial floats), duplicated rows and special values at random places,
    then cast to the dtype (overflow to inf included)."""
    lean_valid = draw(st.booleans())
    rank = draw(st.sampled_from([r for r in ranks if r in (2, 4)] or ranks)) if lean_valid else draw(st.sampled_from(ranks))
    n = draw(st.sampled_from([r for r in ROWS if r] if lean_valid else ROWS))
    d = draw(st.sampled_from([c for c in cols if c] or cols)) if lean_valid else draw(st.sampled_from(cols))
    shape = {0: (), 1: (n,), 2: (n, d), 3: (n, d, 2), 4: (n, 2, 2, 1)}[rank]
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    values = np.asarray(rng.normal(size=shape) * draw(st.sampled_from(MAGNITUDES)))
    if rank >= 2 and values.size and draw(st.booleans()):
        values[:, 0] = draw(st.floats(allow_nan=False, allow_infinity=False))  # a constant column
    if rank >= 1 and n > 1 and draw(st.booleans()):
        values = values[rng.integers(0, max(1, n // 2), n)]  # duplicated rows
    if draw(st.booleans()):
        specials = [v for v in SPECIALS if np.isfinite(v)] if lean_valid else SPECIALS
        for special in draw(st.lists(st.sampled_from(specials), min_size=1, max_size=2)):
            if values.size:
                values.flat[rng.integers(values.size)] = special
    dtype = draw(st.sampled_from([t for t in dtypes if t in NUMERIC] if lean_valid else dtypes))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dtype == "bool":
            arr = values > 0
        elif dtype[0] in "iu":
            info = np.iinfo(dtype)
            arr = np.clip(np.nan_to_num(values), info.min, info.max).astype(dtype)
        else:
            arr = np.asarray(values.astype(dtype))
    container = draw(st.sampled_from(containers)) if rank == 2 else draw(st.sampled_from(("numpy", "list")))
    if container == "frame":
        return pd.DataFrame(arr), arr
    if container == "list":
        return arr.tolist(), arr
    return arr, arr


def is_valid(X, arr: np.ndarray, ndims=(2,), sample_shape=None, fit=False) -> bool:
    """What the Detector must accept: numeric (bool, int, float; an object or string frame is
    not; a nested list of numbers is), a rank in ``ndims``, rows and features, finite, within
    float32's range, and ``sample_shape`` when given. To ``fit``, images (which scale='auto'
    leaves unscaled) within UNSCALED_MAX."""
    if isinstance(X, list):
        try:
            arr = np.asarray(X)
        except ValueError:
            return False
    if arr.dtype.kind not in "biuf" or arr.ndim not in ndims or arr.size == 0:
        return False
    if sample_shape is not None and arr.shape[1:] != sample_shape:
        return False
    values = arr.astype(np.float64)
    limit = UNSCALED_MAX if fit and arr.ndim == 4 else F32_MAX
    return bool(np.isfinite(values).all() and np.abs(values).max() <= limit)


def largest(arr) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            values = np.asarray(arr, dtype=np.float64)
        except (TypeError, ValueError):
            return np.inf
    return float(np.abs(values).max()) if values.size else 0.0


def assert_names(err: ValueError, *names: str) -> None:
    assert str(err).startswith(names), f"the error does not name {names}: {err}"


@settings(FUZZ_SETTINGS, max_examples=60 * SCALE)
@given(case=fuzzed_arrays())
def test_detector_fit_ends_in_finite_scores_or_a_value_error(case):
    X, arr = case
    det = Detector("ae", **FUZZ)
    try:
        det.fit(X)
    except ValueError as err:
        assert_names(err, "X")
        assert not is_valid(X, arr, ndims=(2, 4), fit=True), f"valid input rejected: {err}"
        CASES["fit: ValueError"] += 1
        return
    assert is_valid(X, arr, ndims=(2, 4), fit=True)
    n = len(np.asarray(X))
    assert det.decision_scores_.shape == (n,) and np.isfinite(det.decision_scores_).all()
    assert np.isfinite(det.threshold_)
    scores = det.decision_function(X)
    assert scores.shape == (n,) and np.isfinite(scores).all()
    CASES["fit: finite scores"] += 1


@pytest.fixture(scope="module")
def fitted():
    x = np.random.default_rng(0).normal(size=(33, 3))
    return Detector("ae", **FUZZ).fit(x)


@settings(FUZZ_SETTINGS, max_examples=200 * SCALE)
@given(case=fuzzed_arrays(ranks=(0, 1, 2, 3), cols=(0, 1, 3, 3)))
def test_decision_function_ends_in_finite_scores_or_a_value_error(fitted, case):
    X, arr = case
    valid = is_valid(X, arr, sample_shape=(3,))
    try:
        scores = fitted.decision_function(X)
    except ValueError as err:
        assert_names(err, "X")
        assert not valid or largest(arr) > MODERATE, f"valid input rejected: {err}"
        CASES["decision_function: ValueError"] += 1
        return
    assert valid and scores.shape == (len(np.asarray(X)),) and np.isfinite(scores).all()
    CASES["decision_function: finite scores"] += 1


@st.composite
def fuzzed_labels(draw, n: int):
    kind = draw(st.sampled_from(("binary", "binary", "binary", "one class", "other values", "floats", "strings")))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    if kind == "binary":
        return (np.arange(n) % 3 == 0).astype(draw(st.sampled_from((np.int64, np.int8, bool, np.float32))))
    if kind == "one class":
        return np.zeros(n, np.int64)
    if kind == "other values":
        return rng.integers(-1, 3, n)
    if kind == "floats":
        return rng.uniform(size=n)
    return np.array(["normal", "anomaly"] * n)[:n]


@st.composite
def fuzzed_splits(draw):
    arrays = fuzzed_arrays(ranks=(1, 2, 4), cols=(0, 3), containers=("numpy",), dtypes=NUMERIC + ("str",))
    x_train, x_test = draw(arrays)[1], draw(arrays)[1]
    y_test = draw(fuzzed_labels(len(x_test)))
    return ADSplit("fuzz", x_train, np.zeros(len(x_train), np.int64), x_test, y_test)


@settings(FUZZ_SETTINGS, max_examples=30 * SCALE)
@given(split=fuzzed_splits())
def test_driver_ends_in_finite_scores_or_a_clear_error(split):
    scored = []

    def keep_scores(result, split):
        scored.append(train.fit_result_scores(result, split.x_test))

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # metrics of one-class labels are NaN, with a warning
            record = run.run_experiment("ae", "wine", seeds=1, split=split, overrides=FUZZ, progress=False,
                                        on_fit=keep_scores)
    except ValueError as err:
        assert_names(err, "x_train", "x_test", "y_test", "X")
        CASES["driver: ValueError"] += 1
        return
    except DivergenceError as err:  # the driver trains on the split as given, unscaled
        assert max(largest(split.x_train), largest(split.x_test)) > MODERATE, err
        CASES["driver: DivergenceError (huge unscaled input)"] += 1
        return
    assert record["seeds"] == [0] and np.isfinite(scored[0]).all()
    CASES["driver: finite scores"] += 1


# Method, dataset and evaluation keys, validated before anything is loaded or compiled.
OVERRIDE_KEYS = ("epochs", "batch_size", "hidden", "lr", "dropout", "loss", "test_size", "normal_class",
                 "split_seed", "threshold", "contamination", "k", "bogus")
OVERRIDE_VALUES = ("1", "2", "0", "-1", "1.5", "1e400", "nan", "inf", "(4, 2)", "()", "(4, -1)", "None", "true",
                   "abc", "[4]", "[1]", "{}", "0.3", "1e30", "mae", "mean_std", "'1'", "")


@settings(FUZZ_SETTINGS, max_examples=25 * SCALE)
@given(pairs=st.lists(st.tuples(st.sampled_from(OVERRIDE_KEYS), st.sampled_from(OVERRIDE_VALUES)), max_size=3))
def test_driver_command_line_returns_0_or_2_with_a_message(pairs, tmp_path_factory, capsys):
    out = tmp_path_factory.mktemp("runs")
    argv = ["ae", "wine", "--seeds", "1", "--no-progress", "--out", str(out), "epochs=1", "hidden=(4, 2)",
            *[f"{k}={v}" for k, v in pairs]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        code = run.main(argv)
    err = capsys.readouterr().err
    assert code in (0, 2)
    if code == 2:
        assert err.startswith("error: "), err
        CASES["command line: error message, exit 2"] += 1
    else:
        assert len(list(out.glob("*.json"))) == 1
        CASES["command line: results written"] += 1


def test_count_of_cases_tried():
    total = sum(CASES.values())
    print(f"\nfuzz cases tried: {total}: " + ", ".join(f"{k} {v}" for k, v in sorted(CASES.items())))
    if {key.split(":")[0] for key in CASES} == {"fit", "decision_function", "driver", "command line"}:
        assert total >= 300  # all four property tests ran in this session
