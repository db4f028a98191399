"""Significance of benchmark results: two methods head to head, and many methods by rank.

Both follow Demsar, "Statistical Comparisons of Classifiers over Multiple Data Sets", JMLR 7
(2006): the Wilcoxon signed-rank test for two methods over many datasets, and for many methods
Friedman's test of their average ranks with the Nemenyi critical difference, drawn as a
critical-difference diagram. Inputs are the benchmark's per-seed rows (dataset, method, seed,
auroc); a dataset's score of a method is its mean AUROC over seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def paired_comparison(rows: pd.DataFrame, a: str, b: str) -> dict:
    """Method ``a`` against ``b`` over the datasets both ran on, from per-seed rows (dataset,
    method, seed, auroc), as a dict of plain numbers:

    * ``mean_a``, ``mean_b``: mean over those datasets of each method's mean AUROC over seeds;
      ``diff`` = mean_a - mean_b.
    * ``se``: the standard error of ``diff`` from seed noise alone,
      sqrt(sum_d (s_ad^2 / n_ad + s_bd^2 / n_bd)) / D with s the sample std over a dataset's seeds
      (0 for one seed): how far ``diff`` would move with other seeds on the same D datasets.
    * ``wins`` / ``losses`` / ``ties``: datasets where a's mean is above / below / equal to b's.
    * ``wilcoxon_p``: the two-sided Wilcoxon signed-rank test of the D per-dataset differences,
      the test Demsar (JMLR 2006) recommends for two methods over many datasets; None when every
      difference is zero."""
    from scipy.stats import wilcoxon

    missing = [m for m in (a, b) if m not in set(rows["method"])]
    if missing:
        raise ValueError(f"compare: {missing} not among the results' methods {sorted(set(rows['method']))}")
    stats = rows[rows["method"].isin([a, b])].groupby(["dataset", "method"])["auroc"].agg(["mean", "var", "count"])
    wide = stats.unstack("method").dropna(subset=[("mean", a), ("mean", b)])
    diffs = (wide[("mean", a)] - wide[("mean", b)]).to_numpy()

    def variance_of_mean(m: str) -> np.ndarray:  # one seed: no spread measured, counted as 0
        return (wide[("var", m)].fillna(0.0) / wide[("count", m)]).to_numpy()

    noise = variance_of_mean(a) + variance_of_mean(b)
    n = len(diffs)
    tied = np.isclose(diffs, 0.0, rtol=0.0, atol=1e-12)
    p = None if tied.all() else float(wilcoxon(diffs[~tied]).pvalue)
    return {"a": a, "b": b, "datasets": n, "mean_a": float(wide[("mean", a)].mean()),
            "mean_b": float(wide[("mean", b)].mean()), "diff": float(diffs.mean()),
            "se": float(np.sqrt(noise.sum()) / n), "wins": int(((diffs > 0) & ~tied).sum()),
            "losses": int(((diffs < 0) & ~tied).sum()), "ties": int(tied.sum()), "wilcoxon_p": p}


def comparison_markdown(c: dict) -> str:
    p = "n/a (no differences)" if c["wilcoxon_p"] is None else f"{c['wilcoxon_p']:.3f}"
    return "\n".join([
        f"| {c['a']} vs {c['b']} ({c['datasets']} datasets) | |", "|---|---|",
        f"| mean AUROC | {c['mean_a']:.4f} vs {c['mean_b']:.4f} |",
        f"| difference, ± its seed-noise standard error | {c['diff']:+.4f} ± {c['se']:.4f} |",
        f"| datasets better / worse / tied | {c['wins']} / {c['losses']} / {c['ties']} |",
        f"| Wilcoxon signed-rank p (two-sided, over datasets) | {p} |"])


def rank_statistics(rows: pd.DataFrame, alpha: float = 0.05) -> dict | None:
    """Average ranks on a complete block of datasets x methods, Friedman's test, Nemenyi's CD.

    The block: the methods that ran on every dataset (``left_out`` names the others, e.g. image-
    only methods in a mostly tabular suite), or, if fewer than two did, every method on the
    datasets all of them ran on.

    * ``ranks``: method -> average rank (1 = best mean AUROC on a dataset; ties share the mean
      of their ranks), best first.
    * ``friedman_p``: Friedman's chi-square test that all methods rank alike (None for two
      methods: use ``paired_comparison``).
    * ``critical_difference``: CD = q_alpha sqrt(k (k + 1) / (6 N)) for k methods on N datasets,
      q_alpha the studentized range quantile at 1 - alpha over sqrt(2) (Demsar Sec. 3.2.2,
      Table 5: 2.343 for k = 3, 3.164 for k = 10); two methods whose average ranks differ by less
      than CD are not significantly different at level alpha (the Nemenyi post-hoc test).

    None when the block has fewer than two methods or two datasets."""
    from scipy.stats import friedmanchisquare, studentized_range

    means = rows.groupby(["dataset", "method"])["auroc"].mean().unstack("method")
    everywhere = [m for m in means.columns if means[m].notna().all()]
    means = means[everywhere] if len(everywhere) >= 2 else means.dropna()
    left_out = sorted(set(rows["method"]) - set(means.columns))
    n, k = means.shape
    if k < 2 or n < 2:
        return None
    ranks = means.rank(axis=1, ascending=False).mean().sort_values()
    friedman_p = float(friedmanchisquare(*means.T.to_numpy()).pvalue) if k >= 3 else None
    q_alpha = float(studentized_range.ppf(1.0 - alpha, k, np.inf)) / np.sqrt(2.0)
    return {"datasets": n, "methods": k, "left_out": left_out, "alpha": alpha,
            "ranks": {m: float(r) for m, r in ranks.items()}, "friedman_p": friedman_p,
            "critical_difference": q_alpha * np.sqrt(k * (k + 1) / (6.0 * n))}


def rank_cliques(ranks: list[float], cd: float) -> list[tuple[int, int]]:
    """Maximal runs (i, j) of the sorted ranks whose spread r_j - r_i is below ``cd``: groups of
    methods with no significant difference among them (the bars of a CD diagram)."""
    runs = []
    for i in range(len(ranks)):
        j = max(t for t in range(i, len(ranks)) if ranks[t] - ranks[i] < cd)
        if j > i and not any(a <= i and j <= b for a, b in runs):
            runs.append((i, j))
    return runs


def ranks_markdown(stats: dict | None) -> str:
    """One line for the results table: Friedman's p and the critical difference of ``rank_statistics``."""
    if stats is None:
        return "Ranks: no block of two methods on two datasets that all ran on, no rank test."
    p = "" if stats["friedman_p"] is None else f"Friedman p = {stats['friedman_p']:.2g}; "
    scope = f"the {stats['datasets']} datasets"
    if stats["left_out"]:
        scope += f" (without {', '.join(stats['left_out'])}, which did not run on all)"
    return (f"Ranks of {stats['methods']} methods over {scope}: {p}Nemenyi critical difference "
            f"(alpha {stats['alpha']}) = {stats['critical_difference']:.2f}: average ranks closer than that are "
            "not significantly different (`cd_diagram.png`).")


def cd_diagram(stats: dict, path: Path) -> None:
    """The critical-difference diagram of ``rank_statistics``: methods on an axis of average rank
    (best on the left), a bar joining each group not significantly different, the CD on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, ranks = list(stats["ranks"]), list(stats["ranks"].values())
    k, cd = len(names), stats["critical_difference"]
    half = (k + 1) // 2  # the better half is labelled on the left, the rest on the right
    fig, ax = plt.subplots(figsize=(9.0, 1.2 + 0.3 * half))
    ax.set_xlim(-1.2, k + 2.2)
    ax.set_ylim(-(0.9 * half + 0.6), 1.6)
    ax.axis("off")
    ax.plot([1, k], [0, 0], color="black", lw=1)
    for r in range(1, k + 1):
        ax.plot([r, r], [0, 0.12], color="black", lw=1)
        ax.text(r, 0.22, str(r), ha="center", va="bottom", fontsize=8)
    ax.plot([1, 1 + cd], [1.1, 1.1], color="black", lw=1.5)
    ax.text(1 + cd / 2, 1.2, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8)
    for i, (name, rank) in enumerate(zip(names, ranks)):
        left = i < half
        y = -0.2 - 0.9 * (i + 1 if left else k - i)
        x_end = 0.6 if left else k + 0.4
        ax.plot([rank, rank, x_end], [0, y, y], color="black", lw=0.8)
        ax.text(x_end + (-0.05 if left else 0.05), y, f"{name} ({rank:.2f})", ha="right" if left else "left",
                va="center", fontsize=8)
    for level, (i, j) in enumerate(rank_cliques(ranks, cd)):
        y = -0.15 - 0.2 * level
        ax.plot([ranks[i] - 0.03, ranks[j] + 0.03], [y, y], color="tab:red", lw=2.5, solid_capstyle="butt")
    p = stats["friedman_p"]
    ax.set_title(f"average rank of mean AUROC over {stats['datasets']} datasets; bars: no significant difference "
                 f"(Nemenyi, alpha {stats['alpha']})" + ("" if p is None else f"; Friedman p = {p:.2g}"), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
