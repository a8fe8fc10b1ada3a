"""Tests for prviz.curves.pr_math: hand-made toys, scikit-learn as oracle, MLlib reference."""

import itertools
import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import auc, average_precision_score, precision_recall_curve

from prviz.curves import pr_math
from prviz.curves.pr_math import (
    CURVE_COLUMNS,
    SUMMARY_KEYS,
    PRVizUndefinedMetricWarning,
    ap_error_bound,
    average_precision_bounds,
    average_precision_from_counts,
    cumulative_counts,
    curve_points,
    merge_counts,
    pr_auc_trapezoid_from_counts,
    precision_recall_curve_from_counts,
    quantize_scores,
    summarize_counts,
    thin_curve,
)

ATOL = 1e-12


def assert_close(actual, expected, atol=ATOL):
    np.testing.assert_allclose(actual, expected, rtol=0, atol=atol)


# --------------------------------------------------------------------------------------
# Helpers: samples <-> counts, independent references
# --------------------------------------------------------------------------------------


def counts_from_samples(y, s, rng=None):
    """Score counts of labeled samples; with ``rng``, rows are split, padded and shuffled."""
    score, inverse = np.unique(s, return_inverse=True)
    n_pos = np.bincount(inverse, weights=y, minlength=score.size).astype(np.int64)
    n_neg = np.bincount(inverse, weights=1 - y, minlength=score.size).astype(np.int64)
    if rng is None:
        return score, n_pos, n_neg
    # Split every row in two (as two days would) and add an empty row, then shuffle.
    pos_a = rng.integers(0, n_pos + 1)
    neg_a = rng.integers(0, n_neg + 1)
    score = np.concatenate((score, score, [score[0]]))
    n_pos = np.concatenate((pos_a, n_pos - pos_a, [0]))
    n_neg = np.concatenate((neg_a, n_neg - neg_a, [0]))
    order = rng.permutation(score.size)
    return score[order], n_pos[order], n_neg[order]


def samples_from_counts(score, n_pos, n_neg):
    score, n_pos, n_neg = (np.asarray(a) for a in (score, n_pos, n_neg))
    s = np.concatenate((np.repeat(score, n_pos), np.repeat(score, n_neg)))
    y = np.concatenate((np.ones(n_pos.sum()), np.zeros(n_neg.sum())))
    return y, s


def random_samples(seed, ties, n=400):
    rng = np.random.default_rng(seed)
    base_rate = rng.uniform(0.05, 0.6)
    y = (rng.random(n) < base_rate).astype(np.float64)
    s = rng.beta(2 + 3 * y, 3.0)
    if ties == "decimals":
        s = np.round(s, 2)
    elif ties == "integer":
        s = np.round(s * 5)
    return y, s


def mllib_area_under_pr_reference(y, s):
    """Slow transcription of MLlib's BinaryClassificationMetrics(numBins=0).areaUnderPR.

    combineByKey per score -> sortByKey(descending) -> cumulative counts -> (recall,
    precision) per score -> prepend (0, first precision) -> AreaUnderCurve.of (trapezoid).
    """
    by_score = {}
    for score, label in zip(s.tolist(), y.tolist(), strict=True):
        counter = by_score.setdefault(score, [0, 0])
        counter[0 if label > 0.5 else 1] += 1
    total_pos = sum(c[0] for c in by_score.values())
    tp = fp = 0
    curve = []
    for score in sorted(by_score, reverse=True):
        tp += by_score[score][0]
        fp += by_score[score][1]
        precision = 1.0 if tp + fp == 0 else tp / (tp + fp)
        recall = 0.0 if total_pos == 0 else tp / total_pos
        curve.append((recall, precision))
    points = [(0.0, curve[0][1])] + curve
    area = 0.0
    for (x1, y1), (x2, y2) in itertools.pairwise(points):
        area += (x2 - x1) * (y2 + y1) / 2.0
    return area, points


def reference_ap(groups):
    """AP of an ordered sequence of tie groups ``(positives, negatives)``."""
    total = sum(p for p, _ in groups)
    tp = predicted = 0
    ap = 0.0
    for p, q in groups:
        tp += p
        predicted += p + q
        if p:
            ap += p * tp / predicted
    return ap / total


def refinements(a, b):
    """Every ordered sequence of non-empty tie groups splitting a positives, b negatives."""
    if a == 0 and b == 0:
        yield ()
        return
    for p in range(a + 1):
        for q in range(b + 1):
            if p + q:
                for rest in refinements(a - p, b - q):
                    yield ((p, q),) + rest


# Toy: 0.9 -> 2 pos (all-positive tie), 0.7 -> 1 pos + 1 neg, 0.5 -> 3 neg (all-negative
# tie), 0.2 -> 1 pos + 2 neg.  Given unsorted, with a split duplicate and an empty row.
TOY_SCORE = [0.5, 0.7, 0.2, 0.9, 0.7, 0.3]
TOY_POS = [0, 1, 1, 2, 0, 0]
TOY_NEG = [3, 0, 2, 0, 1, 0]
TOY = (TOY_SCORE, TOY_POS, TOY_NEG)


# --------------------------------------------------------------------------------------
# Hand-computed toys
# --------------------------------------------------------------------------------------


def test_merge_counts_toy():
    score, pos, neg = merge_counts(*TOY)
    np.testing.assert_array_equal(score, [0.9, 0.7, 0.5, 0.2])
    np.testing.assert_array_equal(pos, [2, 1, 0, 1])
    np.testing.assert_array_equal(neg, [0, 1, 3, 2])
    assert (score.dtype, pos.dtype, neg.dtype) == (np.float64, np.int64, np.int64)


def test_merge_counts_negative_zero_is_zero():
    score, pos, neg = merge_counts([-0.0, 0.0, 1.0], [1, 1, 0], [0, 2, 1])
    np.testing.assert_array_equal(score, [1.0, 0.0])
    assert not np.signbit(score[1])
    np.testing.assert_array_equal(pos, [0, 2])
    np.testing.assert_array_equal(neg, [1, 2])


def test_cumulative_counts_toy():
    thresholds, tps, fps = cumulative_counts(*TOY)
    np.testing.assert_array_equal(thresholds, [0.9, 0.7, 0.5, 0.2])
    np.testing.assert_array_equal(tps, [2, 3, 3, 4])
    np.testing.assert_array_equal(fps, [0, 1, 4, 6])


def test_precision_recall_curve_toy():
    precision, recall, thresholds = precision_recall_curve_from_counts(*TOY)
    assert_close(precision, [0.4, 3 / 7, 0.75, 1.0, 1.0])
    assert_close(recall, [1.0, 0.75, 0.75, 0.5, 0.0])
    np.testing.assert_array_equal(thresholds, [0.2, 0.5, 0.7, 0.9])


def test_precision_recall_curve_sklearn_docstring_example():
    # sklearn: y_true = [0, 0, 1, 1], y_scores = [0.1, 0.4, 0.35, 0.8]
    precision, recall, thresholds = precision_recall_curve_from_counts(
        [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], [1, 1, 0, 0]
    )
    assert_close(precision, [0.5, 2 / 3, 0.5, 1.0, 1.0])
    assert_close(recall, [1.0, 1.0, 0.5, 0.5, 0.0])
    np.testing.assert_array_equal(thresholds, [0.1, 0.35, 0.4, 0.8])
    assert average_precision_from_counts(
        [0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], [1, 1, 0, 0]
    ) == pytest.approx(0.8333333333333333, abs=ATOL)


def test_average_precision_and_pr_auc_toy():
    # AP = 0.5 * 1 + 0.25 * 0.75 + 0 * 3/7 + 0.25 * 0.4
    assert average_precision_from_counts(*TOY) == pytest.approx(0.7875, abs=ATOL)
    # MLlib points (0, 1), (.5, 1), (.75, .75), (.75, 3/7), (1, .4)
    expected = 0.5 * 1.0 + 0.25 * (1.0 + 0.75) / 2 + 0.0 + 0.25 * (3 / 7 + 0.4) / 2
    assert pr_auc_trapezoid_from_counts(*TOY) == pytest.approx(expected, abs=ATOL)


def test_pr_auc_pyspark_docstring_example():
    # pyspark.mllib.evaluation.BinaryClassificationMetrics docstring: areaUnderPR 0.83...
    score = [0.1, 0.1, 0.4, 0.6, 0.6, 0.6, 0.8]
    label = [0, 1, 0, 0, 1, 1, 1]
    counts = counts_from_samples(np.array(label, float), np.array(score))
    expected = 0.25 * 1.0 + 0.5 * (1.0 + 0.75) / 2 + 0.25 * (0.6 + 4 / 7) / 2
    assert pr_auc_trapezoid_from_counts(*counts) == pytest.approx(expected, abs=ATOL)
    assert f"{expected:.2f}" == "0.83"


@pytest.mark.parametrize(
    ("seed", "rounded", "spark_value"),
    [(0, False, 0.7379315533636113), (1, True, 0.6993546450458538)],
)
def test_pr_auc_matches_recorded_spark_values(seed, rounded, spark_value):
    # Recorded from pyspark 4.3.0: BinaryClassificationEvaluator(metricName="areaUnderPR",
    # numBins=0) on exactly these samples (2889 and 101 distinct scores).
    rng = np.random.default_rng(seed)
    y = (rng.random(3000) < 0.3).astype(float)
    s = np.clip(rng.normal(0.4 + 0.3 * y, 0.2), 0, 1)
    if rounded:
        s = np.round(s, 2)
    assert pr_auc_trapezoid_from_counts(*counts_from_samples(y, s)) == pytest.approx(
        spark_value, abs=ATOL
    )


def test_curve_points_toy():
    points = curve_points(*TOY)
    assert tuple(points.columns) == CURVE_COLUMNS
    assert [str(t) for t in points.dtypes] == [
        "float64",
        "int64",
        "int64",
        "int64",
        "int64",
        "float64",
        "float64",
        "float64",
    ]
    expected = pd.DataFrame(
        {
            "threshold": [0.9, 0.7, 0.5, 0.2],
            "tp": [2, 3, 3, 4],
            "fp": [0, 1, 4, 6],
            "fn": [2, 1, 1, 0],
            "tn": [6, 5, 2, 0],
            "precision": [1.0, 0.75, 3 / 7, 0.4],
            "recall": [0.5, 0.75, 0.75, 1.0],
            "f1": [2 / 3, 0.75, 6 / 11, 4 / 7],
        }
    )
    pd.testing.assert_frame_equal(points, expected, check_exact=False, rtol=0, atol=ATOL)


def test_summarize_counts_toy():
    summary = summarize_counts(*TOY)
    assert tuple(summary) == SUMMARY_KEYS
    expected = {
        "n_labeled": 10,
        "n_positives": 4,
        "base_rate": 0.4,
        "average_precision": 0.7875,
        "pr_auc": 0.5 + 0.25 * 1.75 / 2 + 0.25 * (3 / 7 + 0.4) / 2,
        "best_f1": 0.75,
        "best_f1_threshold": 0.7,
        "precision_at_recall_50": 1.0,
        "precision_at_recall_80": 0.4,
        "precision_at_recall_90": 0.4,
        "recall_at_precision_50": 0.75,
        "recall_at_precision_80": 0.5,
        "recall_at_precision_90": 0.5,
        "n_thresholds": 4,
    }
    assert summary == pytest.approx(expected, abs=ATOL)
    for key, value in summary.items():
        expected_type = int if key.startswith("n_") else float
        assert type(value) is expected_type, key


def test_summarize_levels_reached_exactly():
    # Levels reached exactly on the boundary count: recall 0.8 and precision 0.8 at tp=8,
    # fp=2 out of 10 positives; the later, lower-precision points do not win.
    score = [0.9, 0.7, 0.5, 0.3]
    n_pos = [8, 0, 1, 1]
    n_neg = [2, 3, 5, 10]
    summary = summarize_counts(score, n_pos, n_neg)
    assert summary["precision_at_recall_50"] == pytest.approx(0.8, abs=ATOL)
    assert summary["precision_at_recall_80"] == pytest.approx(0.8, abs=ATOL)
    assert summary["precision_at_recall_90"] == pytest.approx(9 / 19, abs=ATOL)
    assert summary["recall_at_precision_50"] == pytest.approx(0.8, abs=ATOL)
    assert summary["recall_at_precision_80"] == pytest.approx(0.8, abs=ATOL)
    assert summary["recall_at_precision_90"] == 0.0


def test_precision_at_recall_is_best_point_reaching_the_recall():
    # After a dip, precision recovers: at recall >= 0.5 the best point is the later one.
    score = [0.9, 0.8, 0.7, 0.6]
    n_pos = [1, 0, 2, 1]
    n_neg = [0, 3, 0, 0]
    summary = summarize_counts(score, n_pos, n_neg)
    # points: (r .25, p 1), (r .25, p .25), (r .75, p .5), (r 1, p 4/7)
    assert summary["precision_at_recall_50"] == pytest.approx(4 / 7, abs=ATOL)
    assert summary["recall_at_precision_50"] == pytest.approx(1.0, abs=ATOL)


def test_recall_at_precision_zero_when_unreachable():
    # The best precision is 1/3: no threshold reaches 0.5.
    summary = summarize_counts([0.9, 0.1], [1, 0], [2, 5])
    assert summary["recall_at_precision_50"] == 0.0
    assert summary["precision_at_recall_90"] == pytest.approx(1 / 3, abs=ATOL)


def test_best_f1_tie_takes_highest_threshold():
    # f1 = 2/3 at both thresholds: tp=1, fp=0, fn=1 and tp=2, fp=2, fn=0.
    summary = summarize_counts([0.8, 0.3], [1, 1], [0, 2])
    assert summary["best_f1"] == pytest.approx(2 / 3, abs=ATOL)
    assert summary["best_f1_threshold"] == 0.8


# --------------------------------------------------------------------------------------
# scikit-learn as oracle
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("ties", ["none", "decimals", "integer"])
@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn(seed, ties):
    y, s = random_samples(seed, ties)
    counts = counts_from_samples(y, s, rng=np.random.default_rng(100 + seed))

    precision, recall, thresholds = precision_recall_curve_from_counts(*counts)
    sk_precision, sk_recall, sk_thresholds = precision_recall_curve(y, s)
    assert precision.shape == sk_precision.shape
    assert_close(precision, sk_precision)
    assert_close(recall, sk_recall)
    np.testing.assert_array_equal(thresholds, sk_thresholds)
    assert_close(average_precision_from_counts(*counts), average_precision_score(y, s))

    points = curve_points(*counts)
    assert_close(points["precision"], sk_precision[:-1][::-1])
    assert_close(points["recall"], sk_recall[:-1][::-1])
    np.testing.assert_array_equal(points["threshold"], sk_thresholds[::-1])
    predicted = s[None, :] >= points["threshold"].to_numpy()[:, None]
    tps = (predicted & (y == 1)).sum(axis=1)
    fps = (predicted & (y == 0)).sum(axis=1)
    expected = {"tp": tps, "fp": fps, "fn": y.sum() - tps, "tn": (1 - y).sum() - fps}
    for column, values in expected.items():
        np.testing.assert_array_equal(points[column], values.astype(np.int64))
    p, r = sk_precision[:-1][::-1], sk_recall[:-1][::-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        sk_f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    assert_close(points["f1"], sk_f1)


@pytest.mark.parametrize("ties", ["none", "integer"])
@pytest.mark.parametrize("seed", range(3))
def test_pr_auc_matches_mllib_reference(seed, ties):
    y, s = random_samples(seed, ties, n=300)
    counts = counts_from_samples(y, s)
    reference, points = mllib_area_under_pr_reference(y, s)
    ours = pr_auc_trapezoid_from_counts(*counts)
    assert_close(ours, reference)
    x, p = np.array(points).T
    assert_close(ours, auc(x, p))


def test_reference_ap_matches_sklearn():
    # The brute-force AP reference used below agrees with scikit-learn.
    rng = np.random.default_rng(7)
    for _ in range(20):
        groups = [tuple(g) for g in rng.integers(0, 3, size=(rng.integers(1, 6), 2))]
        groups = [g for g in groups if sum(g)]
        if not groups or sum(p for p, _ in groups) == 0:
            continue
        score = np.arange(len(groups), 0, -1, dtype=float)
        y, s = samples_from_counts(score, [p for p, _ in groups], [q for _, q in groups])
        assert_close(reference_ap(groups), average_precision_score(y, s))


# --------------------------------------------------------------------------------------
# Invariants
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_curve_invariants(seed):
    y, s = random_samples(seed, "decimals")
    points = curve_points(*counts_from_samples(y, s))
    assert np.all(np.diff(points["threshold"]) < 0)
    assert np.all(np.diff(points["recall"]) >= 0)
    assert np.all(np.diff(points["tp"]) >= 0) and np.all(np.diff(points["fp"]) >= 0)
    assert points["precision"].between(0, 1).all() and points["f1"].between(0, 1).all()
    assert points["recall"].iloc[-1] == 1.0
    assert (points["tp"] + points["fn"]).nunique() == 1
    assert (points["fp"] + points["tn"]).nunique() == 1


@pytest.mark.parametrize("transform", [lambda s: 3.0 * s + 0.5, lambda s: 0.25 * s - 7.0, np.exp])
def test_monotone_rescaling_invariance(transform):
    rng = np.random.default_rng(3)
    y = (rng.random(500) < 0.3).astype(float)
    s = rng.integers(0, 200, 500) / 200
    base = counts_from_samples(y, s)
    moved = counts_from_samples(y, transform(s))
    p1, r1, t1 = precision_recall_curve_from_counts(*base)
    p2, r2, t2 = precision_recall_curve_from_counts(*moved)
    assert_close(p1, p2)
    assert_close(r1, r2)
    assert_close(transform(t1), t2)
    assert_close(average_precision_from_counts(*base), average_precision_from_counts(*moved))
    assert_close(pr_auc_trapezoid_from_counts(*base), pr_auc_trapezoid_from_counts(*moved))


def test_merging_two_days_equals_union():
    y1, s1 = random_samples(11, "decimals")
    y2, s2 = random_samples(12, "decimals", n=250)
    day1, day2 = counts_from_samples(y1, s1), counts_from_samples(y2, s2)
    stacked = [np.concatenate((a, b)) for a, b in zip(day1, day2, strict=True)]
    y, s = np.concatenate((y1, y2)), np.concatenate((s1, s2))

    merged = merge_counts(*stacked)
    union = counts_from_samples(y, s)
    for got, expected in zip(merged, (u[::-1] for u in union), strict=True):
        np.testing.assert_array_equal(got, expected)
    assert_close(average_precision_from_counts(*stacked), average_precision_score(y, s))
    pd.testing.assert_frame_equal(curve_points(*stacked), curve_points(*union))


# --------------------------------------------------------------------------------------
# Quantization and the AP error bound
# --------------------------------------------------------------------------------------

SPARK_ROUND_CASES = [
    # (value, decimals, Spark SQL round(value, decimals)), checked on pyspark 4.3.0
    (0.125, 2, 0.13),
    (2.675, 2, 2.68),
    (1.005, 2, 1.01),
    (0.285, 2, 0.29),
    (8.345, 2, 8.35),
    (1.45, 1, 1.5),
    (0.15, 1, 0.2),
    (0.35, 1, 0.4),
    (0.0049999, 2, 0.0),
    (-0.5, 0, -1.0),
    (2.5, 0, 3.0),
    (-2.5, 0, -3.0),
    (1234.5, -1, 1230.0),
    (1235.0, -1, 1240.0),
    (0.1 + 0.2, 2, 0.3),
    (0.1 + 0.2, 17, 0.30000000000000004),
    (1e-20, 3, 0.0),
]


@pytest.mark.parametrize(("value", "decimals", "expected"), SPARK_ROUND_CASES)
def test_quantize_half_up_matches_spark(value, decimals, expected):
    assert quantize_scores([value], decimals)[0] == expected


def test_quantize_numpy_rounding_and_special_values():
    assert quantize_scores([0.125, 1.005], 2, rounding="numpy").tolist() == [0.12, 1.0]
    rounded = quantize_scores([-0.001, -0.4, np.nan, np.inf], 0)
    assert rounded[:2].tolist() == [0.0, 0.0] and not np.signbit(rounded[:2]).any()
    assert np.isnan(rounded[2]) and rounded[3] == np.inf


def test_quantize_fast_path_equals_decimal_path():
    rng = np.random.default_rng(5)
    values = np.concatenate(
        (
            rng.random(300),
            rng.normal(0, 1e3, 100),
            rng.random(50) * 1e17,
            # exact-looking ties at several positions
            (rng.integers(0, 10**4, 200) * 10 + 5) / 10.0 ** rng.integers(1, 7, 200),
        )
    )
    for decimals in (-2, 0, 1, 2, 3, 5, 8, 16, 20):
        expected = [pr_math._round_half_up_decimal(v, decimals) for v in values]
        np.testing.assert_array_equal(quantize_scores(values, decimals), expected)
    ordered = np.sort(values)
    for decimals in (0, 2, 4):
        assert np.all(np.diff(quantize_scores(ordered, decimals)) >= 0)


def test_quantize_errors():
    with pytest.raises(TypeError, match=re.escape("decimals must be an integer, got 1.5")):
        quantize_scores([0.1], 1.5)
    with pytest.raises(ValueError, match="decimals must be between -300 and 300, got 301"):
        quantize_scores([0.1], 301)
    with pytest.raises(ValueError, match="rounding must be 'half_up' or 'numpy', got 'even'"):
        quantize_scores([0.1], 1, rounding="even")
    with pytest.raises(ValueError, match="score must be real-valued, got dtype <U1"):
        quantize_scores(["a"], 1)


BUCKET_CASES = [
    [(2, 2)],
    [(1, 2), (2, 1)],
    [(0, 2), (2, 2), (1, 0)],
    [(3, 1), (1, 1)],
    [(1, 0), (0, 1), (2, 1), (1, 2)],
    [(2, 0), (2, 3)],
    [(0, 3), (3, 0)],
]


@pytest.mark.parametrize("buckets", BUCKET_CASES)
def test_ap_bounds_equal_brute_force_over_all_refinements(buckets):
    per_bucket = [list(refinements(a, b)) for a, b in buckets]
    values = []
    for choice in np.ndindex(*(len(options) for options in per_bucket)):
        groups = [g for j, i in enumerate(choice) for g in per_bucket[j][i]]
        values.append(reference_ap(groups))
    score = np.arange(len(buckets), 0, -1, dtype=float)
    n_pos, n_neg = [a for a, _ in buckets], [b for _, b in buckets]

    ap_low, ap_high = average_precision_bounds(score, n_pos, n_neg)
    assert_close(ap_low, min(values))
    assert_close(ap_high, max(values))
    reported = average_precision_from_counts(score, n_pos, n_neg)
    assert_close(reported, reference_ap(list(buckets)))
    assert ap_low - ATOL <= reported <= ap_high + ATOL
    assert_close(ap_error_bound(score, n_pos, n_neg), max(ap_high - reported, reported - ap_low))


def rounding_functions():
    return {
        "half_up": lambda s, d: quantize_scores(s, d),
        "numpy": lambda s, d: quantize_scores(s, d, rounding="numpy"),
        "floor": lambda s, d: np.floor(s * 10.0**d) / 10.0**d,
    }


@pytest.mark.parametrize("rounding", ["half_up", "numpy", "floor"])
def test_ap_bounds_contain_exact_ap_on_random_data(rounding):
    quantize = rounding_functions()[rounding]
    for seed in range(25):
        y, s = random_samples(seed, "none", n=300)
        if y.sum() == 0:
            continue
        exact = average_precision_score(y, s)
        for decimals in (0, 1, 2):
            buckets = counts_from_samples(y, quantize(s, decimals))
            ap_low, ap_high = average_precision_bounds(*buckets)
            reported = average_precision_from_counts(*buckets)
            bound = ap_error_bound(*buckets)
            assert ap_low - ATOL <= exact <= ap_high + ATOL
            assert abs(reported - exact) <= bound + ATOL


def test_ap_bounds_collapse_without_quantization_ties():
    y, s = random_samples(0, "none")
    counts = counts_from_samples(y, s)  # every bucket holds a single prediction
    ap_low, ap_high = average_precision_bounds(*counts)
    assert_close(ap_low, ap_high)
    assert_close(ap_low, average_precision_score(y, s))
    assert ap_error_bound(*counts) <= ATOL
    assert ap_error_bound(*counts, exact=True) == 0.0


@pytest.mark.parametrize(
    ("above", "bucket"),
    [((1000, 50_000), (200_000, 3_000_000)), ((0, 5), (100_000, 0)), ((7, 3), (40, 10**9))],
)
def test_ap_bounds_closed_form_on_large_buckets(above, bucket):
    (t0, n0), (a, b) = above, bucket
    total = t0 + a
    k0 = np.arange(1, t0 + 1, dtype=float)
    k = np.arange(1, a + 1, dtype=float)
    low = (math.fsum(k0 / (n0 + k0)) + math.fsum((t0 + k) / (t0 + n0 + b + k))) / total
    # first bucket: all its positives first -> precision 1; second enters at (t0, t0 + n0)
    high = (t0 + a * (t0 + a) / (t0 + n0 + a)) / total
    ap_low, ap_high = average_precision_bounds([2.0, 1.0], [t0, a], [n0, b])
    assert ap_low == pytest.approx(low, rel=1e-12, abs=ATOL)
    assert ap_high == pytest.approx(high, rel=1e-12, abs=ATOL)


def test_harmonic_difference_against_fsum():
    cases = [
        (0, 0),
        (0, 1),
        (3, 31),
        (10, 32),
        (31, 33),
        (0, 5000),
        (32, 10**5),
        (10**6, 10**6 + 3),
    ]
    for m, n in cases:
        expected = math.fsum(1.0 / j for j in range(m + 1, n + 1))
        got = float(pr_math._harmonic_difference(np.array([m]), np.array([n]))[0])
        assert got == pytest.approx(expected, rel=1e-13, abs=1e-15), (m, n)


# --------------------------------------------------------------------------------------
# Undefined metrics and invalid input
# --------------------------------------------------------------------------------------

NO_POSITIVES = ([0.9, 0.4, 0.1], [0, 0, 0], [2, 1, 3])
EMPTY = ([], [], [])


def test_no_positives_warns_and_returns_nan():
    with pytest.warns(PRVizUndefinedMetricWarning, match="No positive labels"):
        assert math.isnan(average_precision_from_counts(*NO_POSITIVES))
    with pytest.warns(PRVizUndefinedMetricWarning, match="No positive labels"):
        assert math.isnan(pr_auc_trapezoid_from_counts(*NO_POSITIVES))
    with pytest.warns(PRVizUndefinedMetricWarning, match="No positive labels"):
        bounds = average_precision_bounds(*NO_POSITIVES)
    assert all(math.isnan(v) for v in bounds)
    with pytest.warns(PRVizUndefinedMetricWarning, match="No positive labels"):
        assert math.isnan(ap_error_bound(*NO_POSITIVES))


def test_no_positives_curve_follows_sklearn():
    with pytest.warns(PRVizUndefinedMetricWarning, match="recall is set to one"):
        precision, recall, thresholds = precision_recall_curve_from_counts(*NO_POSITIVES)
    y, s = samples_from_counts(*NO_POSITIVES)
    with pytest.warns(UserWarning, match="No positive class found"):
        expected = precision_recall_curve(y, s)
    for got, want in zip((precision, recall, thresholds), expected, strict=True):
        assert_close(got, want)


def test_no_positives_curve_points_have_nan_recall():
    with pytest.warns(PRVizUndefinedMetricWarning, match="No positive labels"):
        points = curve_points(*NO_POSITIVES)
    assert len(points) == 3
    assert points["recall"].isna().all() and points["f1"].isna().all()
    assert (points["precision"] == 0).all()
    np.testing.assert_array_equal(points["tn"], [4, 3, 0])


def test_summarize_no_positives():
    with pytest.warns(PRVizUndefinedMetricWarning) as record:
        summary = summarize_counts(*NO_POSITIVES)
    assert len(record) == 1
    assert summary["n_labeled"] == 6 and summary["n_positives"] == 0
    assert summary["base_rate"] == 0.0 and summary["n_thresholds"] == 3
    undefined = set(SUMMARY_KEYS) - {"n_labeled", "n_positives", "base_rate", "n_thresholds"}
    assert all(summary[key] is None for key in undefined)


def test_summarize_empty():
    with pytest.warns(PRVizUndefinedMetricWarning, match="No labeled predictions"):
        summary = summarize_counts(*EMPTY)
    assert tuple(summary) == SUMMARY_KEYS
    assert summary["n_labeled"] == 0 and summary["n_positives"] == 0
    assert summary["n_thresholds"] == 0
    assert all(summary[key] is None for key in SUMMARY_KEYS if not key.startswith("n_"))
    # Rows whose counts are all zero are dropped: same as empty.
    with pytest.warns(PRVizUndefinedMetricWarning):
        assert summarize_counts([0.5], [0], [0]) == summary


def test_empty_curves():
    with pytest.warns(PRVizUndefinedMetricWarning, match="No labeled predictions"):
        points = curve_points(*EMPTY)
    assert points.empty and tuple(points.columns) == CURVE_COLUMNS
    assert points.dtypes["tp"] == np.int64 and points.dtypes["recall"] == np.float64
    with pytest.warns(PRVizUndefinedMetricWarning):
        precision, recall, thresholds = precision_recall_curve_from_counts(*EMPTY)
    assert precision.tolist() == [1.0] and recall.tolist() == [0.0] and thresholds.size == 0
    with pytest.warns(PRVizUndefinedMetricWarning, match="No labeled predictions"):
        assert math.isnan(average_precision_from_counts(*EMPTY))


def test_defined_metrics_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summarize_counts(*TOY)
        curve_points(*TOY)
        precision_recall_curve_from_counts(*TOY)
        ap_error_bound(*TOY)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([[0.1, 0.2]], [1], [0]), "score must be 1-D, got an array of shape (1, 2)"),
        (([0.1, 0.2], [[1, 0]], [0, 1]), "n_pos must be 1-D, got an array of shape (1, 2)"),
        (
            ([0.1, 0.2, 0.3], [1, 0], [0, 1, 1]),
            "score, n_pos and n_neg must have the same length, got 3, 2 and 3",
        ),
        (
            ([0.1, np.nan, np.inf], [1, 0, 1], [0, 1, 1]),
            "score must be finite, got 2 NaN or infinite value(s)",
        ),
        ((["a"], [1], [0]), "score must be real-valued, got dtype <U1"),
        (([0.1, 0.2], [1, 0], [0, -1]), "n_neg must be non-negative, got 1 negative value(s)"),
        (([0.1, 0.2], [1.5, 0], [0, 1]), "n_pos must contain integers, got non-integer value(s)"),
        (([0.1], [np.nan], [0]), "n_pos must contain integers, got non-integer value(s)"),
        (([0.1], [None], [0]), "n_pos must be an integer array, got dtype object"),
    ],
)
def test_invalid_input_messages(args, message):
    # Every public entry point on counts validates through the same checks.
    for function in (
        merge_counts,
        cumulative_counts,
        precision_recall_curve_from_counts,
        average_precision_from_counts,
        pr_auc_trapezoid_from_counts,
        curve_points,
        summarize_counts,
        average_precision_bounds,
        ap_error_bound,
    ):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            function(*args)


def test_integral_float_counts_are_accepted():
    _, pos, neg = merge_counts([0.2, 0.1], [1.0, 2.0], [0.0, 3.0])
    assert pos.dtype == np.int64
    assert pos.tolist() == [1, 2]
    assert neg.tolist() == [0, 3]


# --------------------------------------------------------------------------------------
# thin_curve
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_curve():
    rng = np.random.default_rng(21)
    y = (rng.random(6000) < 0.2).astype(float)
    s = rng.beta(1 + 4 * y, 3.0)
    return curve_points(*counts_from_samples(y, s))


@pytest.mark.parametrize("max_points", [3, 4, 50, 200])
def test_thin_curve_keeps_real_rows(long_curve, max_points):
    thinned = thin_curve(long_curve, max_points=max_points)
    assert len(thinned) == max_points
    assert list(thinned.columns) == list(long_curve.columns)
    assert (thinned.dtypes == long_curve.dtypes).all()
    assert np.all(np.diff(thinned["threshold"]) < 0)
    # every row is an untouched input row
    original = long_curve.set_index("threshold")
    pd.testing.assert_frame_equal(
        thinned.set_index("threshold"), original.loc[thinned["threshold"]]
    )
    # end points and best-F1 row are kept
    best = long_curve.loc[long_curve["f1"].idxmax(), "threshold"]
    kept = set(thinned["threshold"])
    assert {long_curve["threshold"].iloc[0], long_curve["threshold"].iloc[-1], best} <= kept


def test_thin_curve_spreads_points(long_curve):
    thinned = thin_curve(long_curve, max_points=200)
    assert np.diff(thinned["recall"]).max() < 0.03
    assert abs(np.diff(thinned["precision"])).max() < 0.2


def test_thin_curve_short_input_is_copied(long_curve):
    short = long_curve.iloc[:10]
    thinned = thin_curve(short, max_points=10)
    assert thinned is not short
    pd.testing.assert_frame_equal(thinned, short)


def test_thin_curve_without_positives():
    rng = np.random.default_rng(0)
    with pytest.warns(PRVizUndefinedMetricWarning):
        points = curve_points(rng.random(50), np.zeros(50, int), np.ones(50, int))
    thinned = thin_curve(points, max_points=10)
    assert len(thinned) == 10
    assert thinned["threshold"].iloc[0] == points["threshold"].iloc[0]
    assert thinned["threshold"].iloc[-1] == points["threshold"].iloc[-1]


@pytest.mark.parametrize("max_points", [2, 0, 3.0, "5", True])
def test_thin_curve_validates_max_points(long_curve, max_points):
    with pytest.raises(ValueError, match="max_points must be an integer >= 3, got"):
        thin_curve(long_curve, max_points=max_points)


def test_thin_curve_requires_columns(long_curve):
    with pytest.raises(ValueError, match="points is missing required column"):
        thin_curve(long_curve.drop(columns=["f1"]), max_points=10)


def test_merging_merged_counts_is_the_identity_and_keeps_zero_signs_merged():
    score = np.array([0.9, 0.5, 0.5, 0.0, -0.0, 0.3])
    pos = np.array([1, 0, 1, 0, 1, 0])
    neg = np.array([0, 1, 0, 1, 0, 0])
    merged = pr_math.merge_counts(score, pos, neg)
    again = pr_math.merge_counts(*merged)
    for first, second in zip(merged, again, strict=True):
        np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(merged[0], [0.9, 0.5, 0.0])
    np.testing.assert_array_equal(merged[1], [1, 1, 1])
    np.testing.assert_array_equal(merged[2], [0, 1, 1])
    # strictly decreasing but with -0.0 beside 0.0 is not "merged": it takes the full path
    signed = pr_math.merge_counts(np.array([1.0, 0.0, -0.0]), np.array([1, 1, 0]),
                                  np.array([0, 0, 1]))  # fmt: skip
    np.testing.assert_array_equal(signed[0], [1.0, 0.0])
    np.testing.assert_array_equal(signed[1], [1, 1])
    np.testing.assert_array_equal(signed[2], [0, 1])
