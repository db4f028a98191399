"""Speed benchmark: jaxad's dense autoencoder against PyOD's ``AutoEncoder`` (PyTorch backend).

    python -m experiments.bench_speed [--data-dir DIR] [--seeds-check N] [--only ecg5000|campaign]
                                      [--json PATH] [--pyod-auroc-seeds K] [--pyod-init pyod|torch]
                                      [--torch-threads T]

Needs PyOD and PyTorch: ``pip install 'jaxad[bench]'``. Not a test: it prints a table, checks the
targets below (PASS/FAIL on measured values) and writes every figure to a JSON file (default
``results/bench_speed.json``).

Every measurement runs in its own fresh Python process (this module, re-run with a hidden
``--_worker`` flag; the result comes back as one JSON line on stdout), so that neither library
benefits from the other's imports, threads or warmed caches:

* jaxad, "cold": a fresh, empty ``JAXAD_CACHE_DIR`` (temporary), so every XLA program is compiled.
* jaxad, "warm": a second process on the same ``JAXAD_CACHE_DIR``: jaxad's persistent XLA
  compilation cache (``$JAXAD_CACHE_DIR/xla``) now serves the compiled programs.
* PyOD.
* The seeds check: jaxad with N seeds vmapped into one ``fit`` against N single-seed fits, in one
  process (steady-state seconds only, so compilation does not enter).

Tasks
-----
1. ECG5000 in TensorFlow's autoencoder-tutorial setting: ``load_split("ecg5000")`` (80/20 split
   with random_state 21, global min-max scaling fitted on the training rows, training on the
   normal training rows only; the test part keeps both classes). Encoder 32-16-8, mirrored
   decoder 16-32-140, 20 epochs, batch 512, lr 1e-3.
2. ADBench ``5_campaign``: ``load_split("adbench/5_campaign")`` (ADBench protocol: stratified
   70/30 split, min-max scaling fitted on train, training part keeps its anomalies). PyOD's
   default layers (64, 32), i.e. 62-64-32-64-62, 50 epochs, batch 256, lr 1e-3.

Both libraries get the very same float32 arrays (the splits above are already scaled, once).

What is matched (read off PyOD's source, ``pyod/models/auto_encoder.py``, ``base_dl.py``,
``utils/torch_utility.py``)
-------------------------------------------------------------------------------------------
==========================  ===========================================  ============================
setting                     PyOD ``AutoEncoder(...)``                    jaxad ``ae`` config
==========================  ===========================================  ============================
layers                      ``hidden_neuron_list=list(hidden)``;          ``hidden=hidden``,
                            encoder Linear blocks over hidden, decoder    ``decoder_hidden=None``
                            blocks over reversed(hidden[:-1]), then a     (mirrors the encoder), then
                            plain ``nn.Linear`` to the input size         a Dense to the input size
block order                 Linear -> [BatchNorm] -> act -> [Dropout]    the same (``MLP``)
hidden activation           ``hidden_activation_name='relu'``             ``activation="relu"``
output activation           none (the last ``nn.Linear`` is bare)         ``output_activation="linear"``
batch norm                  ``batch_norm=False``                          ``batch_norm=False``
dropout                     ``dropout_rate=0.0``                          ``dropout=0.0``
loss                        ``nn.MSELoss()`` (hard-wired: mean over       ``loss="mse"`` (per-sample
                            batch and features)                           feature mean, batch mean)
optimizer                   ``torch.optim.Adam(lr, eps=1e-8,              ``lr``, ``adam_eps=1e-8``,
                            weight_decay=1e-5)`` (L2 added to the         ``weight_decay=1e-5`` (optax
                            gradient, all parameters)                     add_decayed_weights + adam)
weight decay                ``optimizer_params={'weight_decay': 1e-5}``   ``weight_decay=1e-5``
                            (PyOD's default, kept for both tasks)
epochs / batch / lr         ``epoch_num``, ``batch_size``, ``lr``          ``epochs``, ``batch_size``,
                                                                          ``lr``
input scaling               ``preprocessing=False`` (PyOD would else      none (the arrays come
                            z-score with the training mean/std; the       scaled from ``load_split``)
                            arrays are already min-max scaled)
seed                        ``random_state=0``                            ``seeds=(0,)``
misc                        ``verbose=0``, ``device='cpu'``,              ``progress=False``,
                            ``use_compile=False`` (PyOD's default),       early stopping off
                            ``contamination=0.1`` (unused by AUROC)       (``patience=0``)
score                       Euclidean norm of the reconstruction error    per-sample MSE: a monotone
                                                                          function of PyOD's score,
                                                                          so the AUROC is comparable
==========================  ===========================================  ============================

What cannot be matched through either library's options (reported, not hidden):

* Initialisation: both draw PyOD's (``--pyod-init pyod``, the default): jaxad's
  ``initializer="pyod"`` is He-uniform U(+-sqrt(6/fan_in)) hidden kernels with PyTorch's default
  for the biases and the bare output layer, which is what PyOD's ``LinearBlock`` does.
  ``--pyod-init torch`` makes both use PyTorch's ``nn.Linear`` default instead (PyOD's layers are
  reset, jaxad uses ``initializer="torch"``). Same distributions, not the same numbers: the
  two libraries' random streams differ.
* The last partial batch. PyOD's ``DataLoader(shuffle=True, drop_last=True)`` drops it every
  epoch; jaxad here pads it with weight-0 rows and trains on every row (``drop_last=False``; the
  engine can drop it too, as ``ae``'s defaults now do, but the README's table was measured
  padded and is kept comparable to itself). So jaxad runs
  ceil(n/batch) steps per epoch and PyOD floor(n/batch): ECG5000 (2359 rows, batch 512) 5 vs 4
  steps, 5_campaign (28831 rows, batch 256) 113 vs 112. jaxad does more work; the table shows
  seconds per step too.

Timings
-------
* compile: jaxad ``FitResult.compile_seconds`` (tracing + XLA compilation of the epoch program;
  with a warm persistent cache this is tracing + a cache hit). PyOD (eager PyTorch): 0.
* steady-state training: jaxad ``FitResult.loop_seconds`` (all epochs, after compilation, until
  the final state is ready). PyOD: the wall time of ``BaseDeepLearningDetector.train(loader)``,
  the epoch loop called inside ``fit`` (wrapped on the instance): every epoch's shuffling,
  ``DataLoader`` batching, forward, backward and Adam step. It leaves out what ``fit`` does
  around it (input checks, model build, scoring the training data).
* end-to-end: in the fresh worker process, after imports and data loading, from just before
  the model is configured/constructed to having the test scores. This includes all of jaxad's JIT
  compilation (parameter init, epoch, scoring programs) and device placement. Both sides do the
  same work: train, score the training rows (PyOD's ``fit`` always does, for its threshold; jaxad
  scores them as its ``Detector.fit`` does) and score the test rows.
  PyOD's scoring calls ``pyod.utils.stat_models.pairwise_distances_no_broadcast``, a numba
  ``@njit`` function without ``cache=True``: every fresh process JIT-compiles it on its first
  call (inside ``fit``, when it scores the training rows). That is PyOD's only compilation; it is
  inside PyOD's end-to-end time and is printed separately (first scoring call minus an untimed
  second one), while PyOD's "compile" column stays 0 as it has no ahead-of-time step.
* AUROC: ``jaxad.metrics.auroc`` on the test split. The target is checked twice: on the timed
  seed-0 models, and on means over seeds (jaxad: the N vmapped seeds of the seeds check; PyOD:
  ``--pyod-auroc-seeds`` K seeds, the extra ones trained untimed in the PyOD worker), because one
  5_campaign model's AUROC moves by about +-0.02 from seed to seed.
* The machine: timings are wall-clock on whatever else is running. Each worker records the
  1-minute load average before and after; the table notes when it was high. PyTorch's OpenMP
  threads slow down badly when other processes hold the cores (on a busy 2-core machine, 2
  threads ran a 512x140 linear layer 20x slower than 1 thread), so PyOD's numbers are the ones
  most sensitive to it; ``--torch-threads`` sets its thread count (default: PyTorch's choice).

Targets (PASS/FAIL on the measured numbers): steady state >= 30x faster than PyOD; end-to-end
>= 3x on ECG5000 and >= 10x on 5_campaign; |AUROC difference| <= 0.02; jaxad compile < 1.5 s;
warm-cache end-to-end below cold; N vmapped seeds cost no more than N single-seed runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from experiments.jsonio import jsonable, write_json

_PROCESS_START = time.perf_counter()

RESULT_PREFIX = "BENCH_RESULT "
DEFAULT_JSON = Path("results") / "bench_speed.json"
INSTALL_HINT = "pip install 'jaxad[bench]'"
SEED = 0
WEIGHT_DECAY = 1e-5  # PyOD's AutoEncoder default optimizer_params, kept for both libraries
WORKER_TIMEOUT_S = 1800

TASKS: dict[str, dict[str, Any]] = {
    "ecg5000": {"split": "ecg5000", "hidden": (32, 16, 8), "epochs": 20, "batch_size": 512,
                "lr": 1e-3, "title": "ECG5000 (TF tutorial split)"},
    "campaign": {"split": "adbench/5_campaign", "hidden": (64, 32), "epochs": 50, "batch_size": 256,
                 "lr": 1e-3, "title": "ADBench 5_campaign"},
}

TARGETS = {
    "steady_state_speedup_min": 30.0,
    "end_to_end_speedup_min": {"ecg5000": 3.0, "campaign": 10.0},
    "auroc_abs_diff_max": 0.02,
    "compile_seconds_max": 1.5,
    "seeds_ratio_max": 1.0,
}


# ---------------------------------------------------------------- settings of both libraries

def jaxad_overrides(task: dict[str, Any], init: str = "pyod") -> dict[str, Any]:
    """The ``ae`` config that matches PyOD's AutoEncoder as configured in ``pyod_kwargs``;
    ``init`` names the initialisation both libraries use ('pyod' or 'torch')."""
    return {
        "hidden": tuple(task["hidden"]), "decoder_hidden": None,
        "activation": "relu", "output_activation": "linear",
        "batch_norm": False, "dropout": 0.0, "initializer": init,
        "loss": "mse", "score_error": None,
        "lr": float(task["lr"]), "adam_eps": 1e-8, "weight_decay": WEIGHT_DECAY,
        "epochs": int(task["epochs"]), "batch_size": int(task["batch_size"]),
        "patience": 0,
        "standardize": False,  # PyOD runs with preprocessing=False here
        "drop_last": False,  # the padded last batch the table was measured with (see above)
    }


def pyod_kwargs(task: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``pyod.models.auto_encoder.AutoEncoder``."""
    return {
        "contamination": 0.1, "preprocessing": False,
        "lr": float(task["lr"]), "epoch_num": int(task["epochs"]),
        "batch_size": int(task["batch_size"]), "optimizer_name": "adam",
        "device": "cpu", "random_state": SEED, "use_compile": False, "verbose": 0,
        "optimizer_params": {"weight_decay": WEIGHT_DECAY},
        "hidden_neuron_list": list(task["hidden"]), "hidden_activation_name": "relu",
        "batch_norm": False, "dropout_rate": 0.0,
    }


# ---------------------------------------------------------------- workers (fresh processes)

def _load(task: dict[str, Any], data_dir: str | None):
    from jaxad.data import load_split

    # source="files": the plain readers (same arrays as the tfds builders), so no tfds build or
    # cache writes happen in a worker.
    split = load_split(task["split"], data_dir=data_dir, source="files")
    import numpy as np

    return (np.ascontiguousarray(split.x_train, dtype=np.float32),
            np.ascontiguousarray(split.x_test, dtype=np.float32), np.asarray(split.y_test))


def _steps(n: int, batch: int, drop_last: bool) -> int:
    return n // batch if drop_last else -(-n // min(batch, n))


def worker_jaxad(task: dict[str, Any], data_dir: str | None, init: str = "pyod") -> dict[str, Any]:
    t = time.perf_counter()
    import jax

    import jaxad
    from jaxad import train
    from jaxad.metrics import auroc
    from jaxad.methods import get_method, resolve_config

    import_seconds = time.perf_counter() - t
    x_train, x_test, y_test = _load(task, data_dir)

    t0 = time.perf_counter()
    method = get_method("ae")
    config = resolve_config(method, jaxad_overrides(task, init))
    method.validate(config, x_train.shape)
    result = train.fit(method, config, x_train, seeds=(SEED,), progress=False)
    t_fit = time.perf_counter()
    train_scores = train.fit_result_scores(result, x_train)[0]
    test_scores = train.fit_result_scores(result, x_test)[0]
    t_end = time.perf_counter()
    return {
        "library": "jaxad", "version": jaxad.__version__, "jax_version": jax.__version__,
        "device": f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind} x{jax.device_count()}",
        "compile_seconds": result.compile_seconds,
        "steady_state_seconds": result.loop_seconds,
        "fit_seconds": result.train_seconds,
        "fit_overhead_seconds": result.train_seconds - result.compile_seconds - result.loop_seconds,
        "score_seconds": t_end - t_fit,
        "end_to_end_seconds": t_end - t0,
        "import_seconds": import_seconds,
        "steps_per_epoch": _steps(len(x_train), task["batch_size"], drop_last=False),
        "epochs_run": int(result.epochs_run[0]),
        "final_loss": float(result.history["loss"][-1, 0]),
        "auroc": auroc(y_test, test_scores),
        "train_score_mean": float(train_scores.mean()),
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
        "cache_dir": jax.config.jax_compilation_cache_dir,
    }


def _pyod_detector(kwargs: dict[str, Any], init: str):
    """PyOD's AutoEncoder; ``init="torch"`` re-initialises every nn.Linear with PyTorch's default
    (what jaxad's ``initializer="torch"`` draws) instead of PyOD's He-uniform hidden weights."""
    import torch
    from pyod.models.auto_encoder import AutoEncoder

    clf = AutoEncoder(**kwargs)
    if init == "torch":
        build = clf.build_model

        def build_with_torch_init():
            build()
            for module in clf.model.modules():
                if isinstance(module, torch.nn.Linear):
                    module.reset_parameters()

        clf.build_model = build_with_torch_init
    return clf


def worker_pyod(task: dict[str, Any], data_dir: str | None, init: str = "pyod",
                threads: int | None = None, extra_seeds: int = 0) -> dict[str, Any]:
    t = time.perf_counter()
    import numpy as np
    import pyod
    import torch
    from pyod.models.auto_encoder import AutoEncoder  # noqa: F401  (import cost counted here)

    from jaxad.metrics import auroc

    import_seconds = time.perf_counter() - t
    if threads:
        torch.set_num_threads(int(threads))
    x_train, x_test, y_test = _load(task, data_dir)
    kwargs = pyod_kwargs(task)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    clf = _pyod_detector(kwargs, init)
    epoch_loop = clf.train  # BaseDeepLearningDetector.train: the epoch loop that fit calls
    scorer = clf.decision_function  # fit scores the training rows with it after the loop

    def timed_epoch_loop(loader):
        start = time.perf_counter()
        out = epoch_loop(loader)
        timings["loop"] = time.perf_counter() - start
        return out

    def timed_scorer(X, *a, **k):
        start = time.perf_counter()
        out = scorer(X, *a, **k)
        timings.setdefault("train_scoring", time.perf_counter() - start)
        return out

    clf.train, clf.decision_function = timed_epoch_loop, timed_scorer
    clf.fit(x_train)
    t_fit = time.perf_counter()
    test_scores = scorer(x_test)
    t_end = time.perf_counter()
    clf.train, clf.decision_function = epoch_loop, scorer
    # Outside the timed span: the same training-row scoring again, now that numba's JIT of
    # pyod.utils.stat_models.pairwise_distances_no_broadcast is done.
    t_rescore = time.perf_counter()
    scorer(x_train)
    rescore = time.perf_counter() - t_rescore
    aurocs = [auroc(y_test, np.asarray(test_scores))]
    for seed in range(1, 1 + extra_seeds):  # AUROC only, not timed
        other = _pyod_detector({**kwargs, "random_state": SEED + seed}, init)
        aurocs.append(auroc(y_test, np.asarray(other.fit(x_train).decision_function(x_test))))
    return {
        "library": "pyod", "version": pyod.__version__, "torch_version": torch.__version__,
        "device": "cpu", "torch_threads": torch.get_num_threads(), "init": init,
        "compile_seconds": 0.0,
        "steady_state_seconds": timings["loop"],
        "fit_seconds": t_fit - t0,
        "fit_overhead_seconds": (t_fit - t0) - timings["loop"],
        "train_scoring_seconds": timings["train_scoring"],
        "train_rescoring_seconds": rescore,
        "numba_jit_seconds_estimate": timings["train_scoring"] - rescore,
        "score_seconds": t_end - t_fit,
        "end_to_end_seconds": t_end - t0,
        "import_seconds": import_seconds,
        "steps_per_epoch": _steps(len(x_train), task["batch_size"], drop_last=True),
        "epochs_run": int(kwargs["epoch_num"]),
        "auroc": aurocs[0],
        "seed_aurocs": aurocs,
        "train_score_mean": float(np.mean(clf.decision_scores_)),
        "kwargs": kwargs,
        "model": str(clf.model),
    }


def worker_seeds(task: dict[str, Any], data_dir: str | None, n_seeds: int, init: str = "pyod") -> dict[str, Any]:
    from jaxad import train
    from jaxad.metrics import auroc
    from jaxad.methods import get_method, resolve_config

    x_train, x_test, y_test = _load(task, data_dir)
    method = get_method("ae")
    config = resolve_config(method, jaxad_overrides(task, init))
    seeds = tuple(range(n_seeds))
    singles = []
    for s in seeds:
        r = train.fit(method, config, x_train, seeds=(s,), progress=False)
        singles.append(r.loop_seconds)
    vm = train.fit(method, config, x_train, seeds=seeds, progress=False)
    scores = train.fit_result_scores(vm, x_test)
    aurocs = [auroc(y_test, scores[i]) for i in range(n_seeds)]
    return {
        "n_seeds": n_seeds,
        "vmapped_steady_state_seconds": vm.loop_seconds,
        "vmapped_compile_seconds": vm.compile_seconds,
        "single_steady_state_seconds": singles,
        "singles_total_seconds": float(sum(singles)),
        "ratio_vmapped_over_singles": vm.loop_seconds / sum(singles),
        "vmapped_aurocs": aurocs,
        "sharding": vm.sharding,
    }


def run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    task = TASKS[spec["task"]]
    load_before = os.getloadavg()[0]
    if spec["kind"] == "jaxad":
        out = worker_jaxad(task, spec["data_dir"], spec.get("init", "pyod"))
    elif spec["kind"] == "pyod":
        out = worker_pyod(task, spec["data_dir"], spec.get("init", "pyod"), spec.get("threads"),
                          int(spec.get("extra_seeds", 0)))
    elif spec["kind"] == "seeds":
        out = worker_seeds(task, spec["data_dir"], int(spec["n_seeds"]), spec.get("init", "pyod"))
    else:
        raise ValueError(f"unknown worker kind {spec['kind']!r}")
    out["process_seconds_in_worker"] = time.perf_counter() - _PROCESS_START
    out["load_average_1min"] = [load_before, os.getloadavg()[0]]  # other processes on the machine
    return out


# ---------------------------------------------------------------- the driver

def spawn(spec: dict[str, Any], env_extra: dict[str, str]) -> dict[str, Any]:
    """Run one worker in a fresh interpreter; return its JSON result (plus the process wall time)."""
    env = dict(os.environ)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)  # jaxad's own cache dir only, fresh or reused on purpose
    env.update(env_extra)
    cmd = [sys.executable, "-m", "experiments.bench_speed", "--_worker", json.dumps(spec)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=WORKER_TIMEOUT_S)
    wall = time.perf_counter() - start
    lines = [l for l in proc.stdout.splitlines() if l.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise RuntimeError(f"worker {spec} failed with exit code {proc.returncode}")
    result = json.loads(lines[-1][len(RESULT_PREFIX):])
    result["process_wall_seconds"] = wall
    return result


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf")


def _mean_std(values) -> tuple[float, float]:
    import numpy as np

    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def bench_task(name: str, data_dir: str | None, opts: argparse.Namespace) -> dict[str, Any]:
    task = TASKS[name]
    n_seeds = opts.seeds_check
    cache_root = tempfile.mkdtemp(prefix=f"jaxad-bench-{name}-")
    try:
        env = {"JAXAD_CACHE_DIR": cache_root, "JAXAD_COMPILATION_CACHE": "1"}
        spec = {"task": name, "data_dir": data_dir, "init": opts.pyod_init}
        print(f"[{name}] jaxad, cold cache ({cache_root}) ...", flush=True)
        cold = spawn({**spec, "kind": "jaxad"}, env)
        n_entries = sum(1 for f in Path(cache_root, "xla").rglob("*") if f.is_file())
        print(f"[{name}] jaxad, warm cache ({n_entries} files in the XLA cache) ...", flush=True)
        warm = spawn({**spec, "kind": "jaxad"}, env)
        print(f"[{name}] PyOD (+ {opts.pyod_auroc_seeds - 1} untimed seeds for the AUROC) ...", flush=True)
        pyod = spawn({**spec, "kind": "pyod", "init": opts.pyod_init, "threads": opts.torch_threads,
                      "extra_seeds": opts.pyod_auroc_seeds - 1}, {})
        seeds = None
        if n_seeds > 0:
            print(f"[{name}] seeds check: {n_seeds} vmapped vs {n_seeds} single fits ...", flush=True)
            seeds = spawn({**spec, "kind": "seeds", "n_seeds": n_seeds}, env)
    finally:
        shutil.rmtree(cache_root, ignore_errors=True)

    for r in (cold, warm, pyod):
        r["seconds_per_step"] = r["steady_state_seconds"] / (r["steps_per_epoch"] * r["epochs_run"])
    ratios = {
        "steady_state_pyod_over_jaxad": _ratio(pyod["steady_state_seconds"], cold["steady_state_seconds"]),
        "per_step_pyod_over_jaxad": _ratio(pyod["seconds_per_step"], cold["seconds_per_step"]),
        "end_to_end_pyod_over_jaxad_cold": _ratio(pyod["end_to_end_seconds"], cold["end_to_end_seconds"]),
        "end_to_end_pyod_over_jaxad_warm": _ratio(pyod["end_to_end_seconds"], warm["end_to_end_seconds"]),
        "auroc_jaxad_minus_pyod": cold["auroc"] - pyod["auroc"],
        "warm_over_cold_end_to_end": _ratio(warm["end_to_end_seconds"], cold["end_to_end_seconds"]),
    }
    auroc_means = None
    if seeds is not None and len(pyod["seed_aurocs"]) > 1:
        (jm, js), (pm, ps) = _mean_std(seeds["vmapped_aurocs"]), _mean_std(pyod["seed_aurocs"])
        auroc_means = {"jaxad_mean": jm, "jaxad_std": js, "jaxad_n": len(seeds["vmapped_aurocs"]),
                       "pyod_mean": pm, "pyod_std": ps, "pyod_n": len(pyod["seed_aurocs"]),
                       "difference": jm - pm}
        ratios["auroc_mean_jaxad_minus_pyod"] = jm - pm

    e2e_min = TARGETS["end_to_end_speedup_min"][name]
    tol = TARGETS["auroc_abs_diff_max"]
    checks = [
        (f"steady state >= {TARGETS['steady_state_speedup_min']:g}x faster",
         ratios["steady_state_pyod_over_jaxad"] >= TARGETS["steady_state_speedup_min"],
         f"{ratios['steady_state_pyod_over_jaxad']:.1f}x"),
        (f"end-to-end >= {e2e_min:g}x faster (cold cache)",
         ratios["end_to_end_pyod_over_jaxad_cold"] >= e2e_min,
         f"{ratios['end_to_end_pyod_over_jaxad_cold']:.1f}x"),
        (f"|AUROC difference| <= {tol:g} (seed {SEED})", abs(ratios["auroc_jaxad_minus_pyod"]) <= tol,
         f"{ratios['auroc_jaxad_minus_pyod']:+.4f}"),
    ]
    if auroc_means is not None:
        checks.append((f"|AUROC difference| <= {tol:g} (means over seeds)", abs(auroc_means["difference"]) <= tol,
                       f"{auroc_means['difference']:+.4f} (jaxad {auroc_means['jaxad_n']} seeds, "
                       f"PyOD {auroc_means['pyod_n']})"))
    checks += [
        (f"jaxad compile < {TARGETS['compile_seconds_max']:g} s (cold cache)",
         cold["compile_seconds"] < TARGETS["compile_seconds_max"], f"{cold['compile_seconds']:.2f} s"),
        ("warm-cache end-to-end < cold", warm["end_to_end_seconds"] < cold["end_to_end_seconds"],
         f"{warm['end_to_end_seconds']:.2f} s vs {cold['end_to_end_seconds']:.2f} s"),
    ]
    if seeds is not None:
        checks.append((f"{n_seeds} vmapped seeds <= {n_seeds} single runs (steady state)",
                       seeds["ratio_vmapped_over_singles"] <= TARGETS["seeds_ratio_max"],
                       f"{seeds['vmapped_steady_state_seconds']:.2f} s vs "
                       f"{seeds['singles_total_seconds']:.2f} s = {seeds['ratio_vmapped_over_singles']:.2f}"))
    loads = [x for r in (cold, warm, pyod, seeds) if r for x in r["load_average_1min"]]
    return {
        "task": {**task, "hidden": list(task["hidden"])},
        "jaxad_cold": cold, "jaxad_warm": warm, "pyod": pyod, "seeds_check": seeds,
        "ratios": ratios, "auroc_over_seeds": auroc_means,
        "max_load_average_1min": max(loads),
        "checks": [{"target": t, "passed": bool(ok), "measured": m} for t, ok, m in checks],
    }


def format_task(name: str, rec: dict[str, Any]) -> str:
    cold, warm, pyod, ratios = rec["jaxad_cold"], rec["jaxad_warm"], rec["pyod"], rec["ratios"]
    task = rec["task"]
    head = (f"{TASKS[name]['title']}: hidden {tuple(task['hidden'])} mirrored, {task['epochs']} epochs, "
            f"batch {task['batch_size']}, lr {task['lr']:g}, weight decay {WEIGHT_DECAY:g}")
    cols = (f"{'':20s} {'compile s':>9s} {'steady s':>9s} {'ms/step':>8s} {'steps':>6s} "
            f"{'end-to-end s':>12s} {'AUROC':>7s}")
    rows = [head, cols, "-" * len(cols)]
    for label, r in (("jaxad (cold cache)", cold), ("jaxad (warm cache)", warm),
                     (f"PyOD ({pyod['torch_threads']} threads)", pyod)):
        steps = r["steps_per_epoch"] * r["epochs_run"]
        rows.append(f"{label:20s} {r['compile_seconds']:9.3f} {r['steady_state_seconds']:9.3f} "
                    f"{1e3 * r['seconds_per_step']:8.3f} {steps:6d} {r['end_to_end_seconds']:12.3f} "
                    f"{r['auroc']:7.4f}")
    rows.append(f"PyOD/jaxad: steady state {ratios['steady_state_pyod_over_jaxad']:.1f}x "
                f"(per step {ratios['per_step_pyod_over_jaxad']:.1f}x); end-to-end "
                f"{ratios['end_to_end_pyod_over_jaxad_cold']:.1f}x (cold) / "
                f"{ratios['end_to_end_pyod_over_jaxad_warm']:.1f}x (warm); "
                f"AUROC jaxad - PyOD {ratios['auroc_jaxad_minus_pyod']:+.4f}")
    rows.append(f"jaxad end-to-end = compile {cold['compile_seconds']:.2f} + loop "
                f"{cold['steady_state_seconds']:.2f} + rest of fit (init program, placement) "
                f"{cold['fit_overhead_seconds']:.2f} + scoring train+test {cold['score_seconds']:.2f} s (cold); "
                f"warm: {warm['compile_seconds']:.2f} + {warm['steady_state_seconds']:.2f} + "
                f"{warm['fit_overhead_seconds']:.2f} + {warm['score_seconds']:.2f} s")
    rows.append(f"PyOD end-to-end = epoch loop {pyod['steady_state_seconds']:.2f} + rest of fit "
                f"{pyod['fit_overhead_seconds']:.2f} (of it scoring the training rows "
                f"{pyod['train_scoring_seconds']:.2f}, ~{pyod['numba_jit_seconds_estimate']:.2f} of that numba JIT) "
                f"+ test scoring {pyod['score_seconds']:.2f} s")
    rows.append(f"imports (not timed): jaxad {cold['import_seconds']:.2f} s, torch + pyod {pyod['import_seconds']:.2f} s")
    m = rec["auroc_over_seeds"]
    if m is not None:
        rows.append(f"AUROC over seeds: jaxad {m['jaxad_mean']:.4f} +- {m['jaxad_std']:.4f} ({m['jaxad_n']} seeds), "
                    f"PyOD {m['pyod_mean']:.4f} +- {m['pyod_std']:.4f} ({m['pyod_n']} seeds, init={pyod['init']})")
    s = rec["seeds_check"]
    if s is not None:
        rows.append(f"seeds check: {s['n_seeds']} seeds vmapped {s['vmapped_steady_state_seconds']:.3f} s vs "
                    f"{s['n_seeds']} single fits {s['singles_total_seconds']:.3f} s in all "
                    f"(ratio {s['ratio_vmapped_over_singles']:.2f})")
    if rec["max_load_average_1min"] > (os.cpu_count() or 1):
        rows.append(f"note: 1-min load average up to {rec['max_load_average_1min']:.1f} on {os.cpu_count()} CPUs "
                    "during the runs: other processes competed for the CPUs")
    for c in rec["checks"]:
        rows.append(f"  [{'PASS' if c['passed'] else 'FAIL'}] {c['target']}: {c['measured']}")
    return "\n".join(rows)


def check_bench_deps() -> str | None:
    """None when PyOD (with its PyTorch backend) can be imported, else the error message."""
    missing = [m for m in ("torch", "pyod") if importlib.util.find_spec(m) is None]
    if missing:
        return (f"this benchmark needs PyOD >= 2.0 and PyTorch ({', '.join(missing)} not installed): "
                f"{INSTALL_HINT}")
    from importlib.metadata import version

    major = int(version("pyod").split(".")[0])
    if major < 2:
        return f"PyOD {version('pyod')} has no PyTorch AutoEncoder; PyOD >= 2.0 is needed: {INSTALL_HINT}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench_speed",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="folder with the data files (default $JAXAD_DATA_DIR)")
    parser.add_argument("--seeds-check", type=int, default=8, metavar="N",
                        help="seeds for the vmapped-vs-single check (default 8; 0 skips it)")
    parser.add_argument("--only", choices=sorted(TASKS), default=None, help="run one task only")
    parser.add_argument("--json", default=str(DEFAULT_JSON), help=f"output JSON (default {DEFAULT_JSON})")
    parser.add_argument("--pyod-auroc-seeds", type=int, default=3, metavar="K",
                        help="PyOD seeds for the AUROC-over-seeds comparison; seeds past the first are "
                             "trained untimed in the PyOD process (default 3; 1 = timed seed only)")
    parser.add_argument("--pyod-init", choices=("pyod", "torch"), default="pyod",
                        help="'pyod': PyOD as shipped (He-uniform hidden weights); 'torch': reset every "
                             "nn.Linear to PyTorch's default init, the distribution jaxad's "
                             "initializer='torch' draws (default pyod)")
    parser.add_argument("--torch-threads", type=int, default=None, metavar="T",
                        help="torch.set_num_threads(T) in the PyOD worker (default: PyTorch's own choice)")
    parser.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._worker is not None:
        result = run_worker(json.loads(args._worker))
        print(RESULT_PREFIX + json.dumps(jsonable(result)), flush=True)
        return 0

    problem = check_bench_deps()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.seeds_check < 0:
        parser.error("--seeds-check: expected an integer >= 0")
    if args.pyod_auroc_seeds < 1:
        parser.error("--pyod-auroc-seeds: expected an integer >= 1")
    data_dir = args.data_dir or os.environ.get("JAXAD_DATA_DIR")
    if data_dir is None:
        print("error: the datasets need a data dir: pass --data-dir DIR or set JAXAD_DATA_DIR",
              file=sys.stderr)
        return 2

    started = time.perf_counter()
    names = [args.only] if args.only else list(TASKS)
    records = {name: bench_task(name, data_dir, args) for name in names}
    total = time.perf_counter() - started

    from importlib.metadata import version

    report = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpu_count": os.cpu_count(), "processor": platform.processor()},
        "versions": {p: version(p) for p in ("jax", "jaxlib", "flax", "optax", "torch", "pyod", "numpy")},
        "settings": {"seed": SEED, "weight_decay": WEIGHT_DECAY, "seeds_check": args.seeds_check,
                     "pyod_auroc_seeds": args.pyod_auroc_seeds, "pyod_init": args.pyod_init,
                     "torch_threads": args.torch_threads,
                     "jaxad_config": {n: jsonable(jaxad_overrides(TASKS[n], args.pyod_init)) for n in names},
                     "pyod_kwargs": {n: pyod_kwargs(TASKS[n]) for n in names}},
        "targets": TARGETS,
        "tasks": records,
        "all_passed": all(c["passed"] for r in records.values() for c in r["checks"]),
        "benchmark_seconds": total,
    }
    print()
    print(f"jaxad vs PyOD {report['versions']['pyod']} (torch {report['versions']['torch']}), "
          f"jax {report['versions']['jax']}, {os.cpu_count()} CPUs, seed {SEED}")
    for name, rec in records.items():
        print()
        print(format_task(name, rec))
    print()
    passed = sum(c["passed"] for r in records.values() for c in r["checks"])
    n_checks = sum(len(r["checks"]) for r in records.values())
    print(f"{passed}/{n_checks} targets met; benchmark took {total:.0f} s")
    out = write_json(report, Path(args.json))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
