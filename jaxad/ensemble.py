"""Seed ensembles: K networks of one method, trained as one vmapped program, scored together.

A deep detector's score depends on its random initialisation (and minibatch order); on small
tables one seed's AUROC can differ from the next by 0.3. Averaging the scores of K independently
initialised members removes much of it (on the 35 ADBench sets, 5 members halve Deep SVDD's
and the autoencoder's per-set spread over seeds; see README, "Benchmark suite"). Each member's
scores are first standardised by its own training scores (z-scores: mean 0, standard deviation
1 over the training rows), so that members whose scores live on different scales weigh alike,
then averaged: the "averaging of
standardised scores" of Aggarwal & Sathe, "Theoretical foundations and algorithms for outlier
ensembles", SIGKDD Explorations 17(1), 2015, and PyOD's ``combination.average`` after its
``standardizer``. The members differ only in their seed; in jaxad they are more seeds on the
vmapped seed axis of ``train.fit``, so K members cost one compiled program, not K.

Higher = more abnormal, as every member's score.
"""

from __future__ import annotations

import numpy as np


def check_members(members) -> int:
    """``members`` as an int >= 1, or ValueError naming the argument."""
    if isinstance(members, bool) or not isinstance(members, int | np.integer) or members < 1:
        raise ValueError(f"ensemble={members!r}: expected an integer >= 1 (the number of members)")
    return int(members)


def member_seeds(seed: int, members: int) -> tuple[int, ...]:
    """The training seeds of ensemble ``seed``'s members: seed * members .. seed * members +
    members - 1. Ensembles 0, 1, 2, ... of the same size share no member, and members = 1 gives
    (seed,): a one-member ensemble is the single network of that seed."""
    return tuple(range(seed * members, (seed + 1) * members))


def training_stats(train_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-member mean and standard deviation of the training scores (members, n) -> (members,)
    each, in float64; a member whose training scores are all equal gets standard deviation 1 (its
    standardised scores are then its shifted scores, not a division by zero)."""
    scores = np.asarray(train_scores, np.float64)
    std = scores.std(axis=1)
    return scores.mean(axis=1), np.where(std > 0, std, 1.0)


def combine(member_scores: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The ensemble's score of each row: the mean over members of (score - mean) / std.
    member_scores (members, n), mean and std (members,) from ``training_stats`` -> (n,) float64."""
    scores = np.asarray(member_scores, np.float64)
    return ((scores - mean[:, None]) / std[:, None]).mean(axis=0)


def combine_seeds(train_scores: np.ndarray, test_scores: np.ndarray,
                  members: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores of ``seeds * members`` networks, row g * members + j being member j of ensemble g
    (``member_seeds``), as ``seeds`` ensembles: (seeds * members, n_train) and (seeds * members,
    n_test) -> (seeds, n_train) and (seeds, n_test). members = 1 returns the scores unchanged."""
    if members == 1:
        return np.asarray(train_scores), np.asarray(test_scores)
    if len(train_scores) % members or len(test_scores) != len(train_scores):
        raise ValueError(f"train_scores, test_scores: expected the same number of rows, a multiple of "
                         f"members={members}, got {len(train_scores)} and {len(test_scores)}")
    train_out, test_out = [], []
    for start in range(0, len(train_scores), members):
        mean, std = training_stats(train_scores[start:start + members])
        train_out.append(combine(train_scores[start:start + members], mean, std))
        test_out.append(combine(test_scores[start:start + members], mean, std))
    return np.stack(train_out), np.stack(test_out)
