"""Peak memory of scoring and training on large arrays: prints a table (and writes JSON).

    python -m experiments.bench_memory [--rows 10000000] [--features 30] [--fit-rows 4000000]
        [--budget-mb 64] [--out results/bench_memory.json]

Each case runs in a fresh process, so its peak resident set size (``resource.getrusage``'s
``ru_maxrss``) is its own. A case records the RSS before the input exists (Python, JAX and a
detector fitted on 2 000 rows), the RSS once the input is allocated, and the peak while the
measured call runs; "beyond the input" is the peak minus the RSS with the input:

* ``score float32`` / ``score float64``: ``Detector("ae").decision_function`` on ``--rows`` x
  ``--features`` standard-normal values (the detector standardises, then scores in chunks of
  65 536 rows; the float64 input is converted a chunk at a time).
* ``fit on device`` / ``fit streamed``: one epoch of ``train.fit("ae")`` (batch 1024) on
  ``--fit-rows`` x ``--features`` float32 rows, with the default device budget (1 GiB: the
  set goes to the device whole) and with ``--budget-mb`` (batches stream from host memory).
  On a CPU the device's memory is the process's, so the difference shows in the RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from experiments.jsonio import write_json

DEFAULT_OUT = Path("results") / "bench_memory.json"
CASES = ("score float32", "score float64", "fit on device", "fit streamed")


def rss_bytes() -> int:
    """The current resident set size (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def standard_normal(rows: int, features: int, dtype) -> np.ndarray:
    """rows x features N(0, 1) values, drawn in float32 blocks (no float64 temporary of the
    whole array)."""
    rng = np.random.default_rng(0)
    out = np.empty((rows, features), dtype)
    block = 1 << 20
    for start in range(0, rows, block):
        stop = min(rows, start + block)
        out[start:stop] = rng.standard_normal((stop - start, features), dtype=np.float32)
    return out


def run_case(case: str, rows: int, features: int, fit_rows: int, budget_mb: int) -> dict:
    """One measurement, in this process."""
    from jaxad import Detector, train
    from jaxad.methods import resolve_config

    if case.startswith("score"):
        dtype = np.float32 if case.endswith("float32") else np.float64
        det = Detector("ae", epochs=1, seed=0).fit(standard_normal(2000, features, np.float32))
        before = rss_bytes()
        x = standard_normal(rows, features, dtype)
        with_input = rss_bytes()
        start = time.perf_counter()
        scores = det.decision_function(x)
        seconds = time.perf_counter() - start
        assert scores.shape == (rows,) and np.isfinite(scores).all()
    else:
        config = resolve_config("ae", {"epochs": 1, "batch_size": 1024})
        budget = budget_mb << 20 if case == "fit streamed" else None
        train.fit("ae", config, standard_normal(2048, features, np.float32), progress=False)  # runtime loaded
        before = rss_bytes()
        x = standard_normal(fit_rows, features, np.float32)
        with_input = rss_bytes()
        start = time.perf_counter()
        result = train.fit("ae", config, x, progress=False, device_budget_bytes=budget)
        seconds = time.perf_counter() - start
        assert result.data_placement == ("streamed" if budget else "device"), (
            f"{case}: the data ({x.nbytes} bytes) must be larger than --budget-mb and smaller than 1 GiB")
    peak = peak_rss_bytes()
    return {"case": case, "input_bytes": int(x.nbytes), "shape": list(x.shape), "dtype": str(x.dtype),
            "rss_before_input": before, "rss_with_input": with_input, "peak_rss": peak,
            "peak_beyond_input": peak - with_input, "seconds": seconds}


def format_table(rows: list[dict]) -> str:
    gb = 1e9
    lines = ["| case | input | RSS before input | RSS with input | peak RSS | peak beyond the input | seconds |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        shape = " x ".join(f"{d:,}" for d in r["shape"])
        lines.append(f"| {r['case']} | {shape} {r['dtype']} ({r['input_bytes'] / gb:.2f} GB) | "
                     f"{r['rss_before_input'] / gb:.2f} GB | {r['rss_with_input'] / gb:.2f} GB | "
                     f"{r['peak_rss'] / gb:.2f} GB | {r['peak_beyond_input'] / gb:.2f} GB | {r['seconds']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows scored (default 10 000 000)")
    parser.add_argument("--features", type=int, default=30, help="features per row (default 30)")
    parser.add_argument("--fit-rows", type=int, default=4_000_000, help="rows trained on (default 4 000 000)")
    parser.add_argument("--budget-mb", type=int, default=64, help="device budget of the streamed fit (default 64)")
    parser.add_argument("--cases", nargs="*", choices=CASES, default=list(CASES))
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"where the JSON goes (default {DEFAULT_OUT})")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # one case, in this process (the child)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.case, args.rows, args.features, args.fit_rows, args.budget_mb)))
        return 0
    rows = []
    for case in args.cases:
        child = [sys.executable, "-m", "experiments.bench_memory", "--case", case, "--rows", str(args.rows),
                 "--features", str(args.features), "--fit-rows", str(args.fit_rows), "--budget-mb", str(args.budget_mb)]
        proc = subprocess.run(child, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"error: case {case!r} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
            return 1
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    print(format_table(rows))
    out = Path(args.out)
    write_json(rows, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
