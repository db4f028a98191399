"""experiments.benchmark end to end: real cells on a small ADBench-shaped data dir, the outputs
(CSV, markdown table, box plot), resuming, and one process per host through jax.distributed."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments import benchmark, significance

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def adbench_dir(tmp_path_factory) -> Path:
    """Two ADBench-shaped sets, large enough for the real protocol: Gaussian normals, anomalies
    shifted 6 standard deviations away (an easy task)."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    (root / "adbench_classical").mkdir()
    for name, (n, d) in {"1_easy": (240, 5), "2_wide": (200, 9)}.items():
        y = (np.arange(n) % 10 == 0).astype(np.int64)
        x = rng.normal(size=(n, d)) + 6.0 * y[:, None]
        np.savez(root / "adbench_classical" / f"{name}.npz", X=x.astype(np.float32), y=y)
    return root


def test_suites_list_their_datasets(adbench_dir):
    assert benchmark.suite_datasets("adbench", adbench_dir) == ["adbench/1_easy", "adbench/2_wide"]
    assert benchmark.suite_datasets("all", adbench_dir) == [*benchmark.suite_datasets("builtin"),
                                                            "adbench/1_easy", "adbench/2_wide"]
    assert benchmark.data_options_for("adbench/1_easy", 10_000) == {"max_rows": 10_000}
    assert benchmark.data_options_for("wine", 10_000) == {}


def test_process_share_splits_cells_without_overlap():
    cells = [(d, m) for d in "abcde" for m in ("ae", "ocnn")]
    shares = [benchmark.process_share(cells, i, 3) for i in range(3)]
    assert sorted(c for share in shares for c in share) == sorted(cells)
    assert [len(s) for s in shares] == [4, 3, 3]


def test_benchmark_writes_csv_table_and_plot_and_resumes(adbench_dir, tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["--suite", "adbench", "--methods", "ae", "deep_svdd", "--seeds", "2", "--data-dir",
            str(adbench_dir), "--out", str(out)]
    assert benchmark.main(argv) == 0
    rows = pd.read_csv(out / "results.csv")
    assert list(rows.columns) == ["dataset", "method", "seed", "auroc", "ap", "train_seconds", "score_seconds"]
    assert len(rows) == 2 * 2 * 2 and set(rows["seed"]) == {0, 1}
    # anomalies 6 standard deviations away: both methods find them (the default ae is
    # overcomplete on 5 features, so it can reconstruct them too: its floor is lower)
    assert rows["auroc"].min() > 0.8 and rows["auroc"].mean() > 0.9, rows
    table = (out / "table.md").read_text()
    assert "| adbench/1_easy |" in table and "mean rank" in table and "total seconds" in table
    assert (out / "auroc_boxplot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "cd_diagram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ranks = json.loads((out / "ranks.json").read_text())
    assert ranks["datasets"] == 2 and sorted(ranks["ranks"]) == ["ae", "deep_svdd"]
    assert sum(ranks["ranks"].values()) == pytest.approx(3.0)  # ranks 1 and 2 on each set
    assert "Nemenyi critical difference" in table
    assert "Average precision" in table and "| mean AP (its datasets) |" in table

    # a rerun reads every cell back: same numbers, nothing trained; --compare adds the pair
    stamps = {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    assert benchmark.main(argv + ["--compare", "ae", "deep_svdd"]) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")} == stamps
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), rows)
    assert not list((out / "cells").glob("*.tmp"))
    comparison = json.loads((out / "compare__ae__deep_svdd.json").read_text())
    means = rows.groupby("method")["auroc"].mean()
    assert comparison["datasets"] == 2 and comparison["wins"] + comparison["losses"] + comparison["ties"] == 2
    assert comparison["diff"] == pytest.approx(means["ae"] - means["deep_svdd"])
    assert "Wilcoxon" in (out / "compare__ae__deep_svdd.md").read_text()

    # one method into the same folder keeps the other's cells in the tables (same CSV), but not
    # a cell with another seed count
    fake = json.loads(benchmark.cell_path(out, "adbench/1_easy", "ae").read_text())
    fake.update(method="ocnn", seeds=[0])
    benchmark.write_json(fake, benchmark.cell_path(out, "adbench/1_easy", "ocnn"))
    capsys.readouterr()
    (out / "compare__ae__deep_svdd.json").unlink()
    assert benchmark.main(argv[:3] + ["deep_svdd"] + argv[5:] + ["--compare", "ae", "deep_svdd"]) == 0
    assert "finished cells of ['ae']" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_csv(out / "results.csv"), rows)
    assert "| dataset | ae | deep_svdd |" in (out / "table.md").read_text()
    # --compare may name a method that only has finished cells in --out (ae here)
    assert json.loads((out / "compare__ae__deep_svdd.json").read_text()) == comparison


def test_paired_comparison_by_hand():
    # a beats b by 0.1 on d1 (seed values 0.8/0.9 vs 0.7/0.8) and loses by 0.1 on d2; ties on d3
    rows = pd.DataFrame([
        ("d1", "a", 0, 0.8), ("d1", "a", 1, 0.9), ("d1", "b", 0, 0.7), ("d1", "b", 1, 0.8),
        ("d2", "a", 0, 0.5), ("d2", "a", 1, 0.5), ("d2", "b", 0, 0.6), ("d2", "b", 1, 0.6),
        ("d3", "a", 0, 0.7), ("d3", "b", 0, 0.7), ("d4", "b", 0, 0.9),  # d4: only b ran there
    ], columns=["dataset", "method", "seed", "auroc"])
    c = significance.paired_comparison(rows, "a", "b")
    assert c["datasets"] == 3 and (c["wins"], c["losses"], c["ties"]) == (1, 1, 1)
    assert c["mean_a"] == pytest.approx((0.85 + 0.5 + 0.7) / 3)
    assert c["diff"] == pytest.approx(0.0, abs=1e-12)
    # only d1 has seed variance: s^2 = 0.005 for each method, n = 2 -> sqrt(0.005) / 3
    assert c["se"] == pytest.approx(np.sqrt(0.005 / 2 + 0.005 / 2) / 3)
    assert c["wilcoxon_p"] == pytest.approx(1.0)  # +0.1 and -0.1: no direction

    six = pd.DataFrame([(f"d{i}", m, 0, 0.5 + (0.01 * (i + 1) if m == "a" else 0.0))
                        for i in range(6) for m in ("a", "b")], columns=["dataset", "method", "seed", "auroc"])
    c = significance.paired_comparison(six, "a", "b")
    assert c["wins"] == 6 and c["se"] == 0.0
    assert c["wilcoxon_p"] == pytest.approx(2 / 2 ** 6)  # exact: all six signs positive
    assert significance.paired_comparison(six, "a", "a")["wilcoxon_p"] is None
    with pytest.raises(ValueError, match="not among"):
        significance.paired_comparison(six, "a", "c")


def test_compare_must_name_methods_that_run_or_have_cells(tmp_path, capsys):
    argv = ["--methods", "ae", "--out", str(tmp_path), "--compare", "ae"]
    assert benchmark.main(argv + ["deep_svdd"]) == 2
    err = capsys.readouterr().err
    assert "--compare" in err and "['deep_svdd']" in err and "finished 3-seed cells" in err
    assert benchmark.main(argv + ["nonsense"]) == 2
    assert not (tmp_path / "cells").exists()  # refused before anything trained


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_one_process_per_host_through_jax_distributed(adbench_dir, tmp_path):
    """Two processes on this machine stand in for two hosts: each runs its share of the cells,
    process 0 writes the tables once both are done."""
    out = tmp_path / "bench"
    port = _free_port()
    procs = []
    for pid in range(2):
        env = {**os.environ, "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": "2",
               "JAX_PROCESS_ID": str(pid), "JAXAD_DATA_DIR": str(adbench_dir)}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "experiments.benchmark", "--suite", "adbench", "--methods", "ae", "deep_svdd",
             "--seeds", "1", "--out", str(out), "--distributed"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(log[-3000:] for log in logs)
    assert "process 1: 2 cells written" in logs[1]
    rows = pd.read_csv(out / "results.csv")
    assert sorted(zip(rows["dataset"], rows["method"])) == [
        ("adbench/1_easy", "ae"), ("adbench/1_easy", "deep_svdd"), ("adbench/2_wide", "ae"), ("adbench/2_wide", "deep_svdd")]
    assert (out / "auroc_boxplot.png").exists()


def test_benchmark_shards_the_seeds_over_several_devices(adbench_dir, tmp_path):
    """The same command on 3 (forced CPU) devices: each device trains one of the 3 seeds, and the
    AUROCs equal those of a one-device run to float32 noise."""
    out = {}
    for n_dev in (1, 3):
        out[n_dev] = tmp_path / f"bench{n_dev}"
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={n_dev}",
               "JAXAD_DATA_DIR": str(adbench_dir)}
        proc = subprocess.run(
            [sys.executable, "-m", "experiments.benchmark", "--suite", "adbench", "--datasets", "adbench/1_easy",
             "--methods", "deep_svdd", "--seeds", "3", "--out", str(out[n_dev])],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    cell = json.loads((out[3] / "cells" / "adbench-1_easy__deep_svdd.json").read_text())
    assert cell["device"].endswith("x3")
    one, three = (pd.read_csv(out[n] / "results.csv") for n in (1, 3))
    np.testing.assert_allclose(three["auroc"], one["auroc"], atol=0.02)


def test_rank_statistics_and_critical_difference_by_hand():
    # three methods, four datasets: a always first, b second, c third except one b/c tie
    auroc = {"d1": (0.9, 0.8, 0.7), "d2": (0.9, 0.8, 0.7), "d3": (0.9, 0.8, 0.7), "d4": (0.9, 0.6, 0.6)}
    rows = pd.DataFrame([(d, m, 0, v[i]) for d, v in auroc.items() for i, m in enumerate("abc")]
                        + [("d5", "a", 0, 0.5)],  # only a ran on d5: d5 is left out of the ranks
                        columns=["dataset", "method", "seed", "auroc"])
    stats = significance.rank_statistics(rows)
    assert stats["datasets"] == 4 and stats["methods"] == 3 and stats["left_out"] == []
    assert stats["ranks"] == {"a": 1.0, "b": pytest.approx((2 + 2 + 2 + 2.5) / 4), "c": pytest.approx((3 + 3 + 3 + 2.5) / 4)}
    # Demsar (2006) Table 5: q_0.05 = 2.343 for k = 3; CD = q sqrt(3 * 4 / (6 * 4))
    assert stats["critical_difference"] == pytest.approx(2.343 * np.sqrt(0.5), abs=1e-3)
    assert 0.0 < stats["friedman_p"] < 0.05
    assert significance.rank_statistics(rows[rows["dataset"] == "d1"]) is None  # one dataset
    # d (like an image-only method) ran on one set only: the block is the methods that ran on all
    wide = pd.concat([rows[rows["dataset"] != "d5"], pd.DataFrame([("d1", "d", 0, 0.1)], columns=rows.columns)])
    stats = significance.rank_statistics(wide)
    assert stats["left_out"] == ["d"] and stats["methods"] == 3 and stats["datasets"] == 4


def test_rank_cliques_join_methods_closer_than_the_cd():
    assert significance.rank_cliques([1.0, 1.5, 2.0, 4.0, 4.2], cd=1.1) == [(0, 2), (3, 4)]
    assert significance.rank_cliques([1.0, 2.0, 3.0], cd=1.5) == [(0, 1), (1, 2)]
    assert significance.rank_cliques([1.0, 3.0], cd=1.0) == []
