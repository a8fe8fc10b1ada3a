"""Precision-recall maths on *score counts*.

Rationale
---------
Every threshold metric of a binary classifier -- the precision-recall curve, average
precision, the F1 score at a threshold -- depends on the labeled predictions only through
the number of positive and negative labels observed at each distinct score.  The daily
Spark job therefore reduces billions of labeled predictions to *score counts*: one row per
distinct ``score`` with the int64 columns ``n_pos`` and ``n_neg``.  Counts are mergeable
(summing per score combines days, shards or variants exactly), they are small (at most one
row per distinct score, far fewer once scores are quantized) and everything in this module
is computed from them with numpy and pandas only, without Spark, Dagster or I/O.

The module is laid out like :mod:`sklearn.metrics._ranking`: input validation is kept
apart from the maths, and small layers build on each other::

    validate -> merge / sort by score descending  (merge_counts)
             -> cumulative counts at thresholds    (cumulative_counts)
             -> curve                              (precision_recall_curve_from_counts,
                                                    curve_points)
             -> scores                             (average_precision_from_counts,
                                                    pr_auc_trapezoid_from_counts,
                                                    summarize_counts)

Conventions
-----------
* A prediction is *predicted positive* at threshold ``t`` when ``score >= t``; the
  thresholds are the distinct scores, so tied scores always enter the curve together.
* :func:`precision_recall_curve_from_counts` and :func:`average_precision_from_counts`
  reproduce :func:`sklearn.metrics.precision_recall_curve` and
  :func:`sklearn.metrics.average_precision_score` on the expanded samples (to rounding
  error).  :func:`pr_auc_trapezoid_from_counts` reproduces Spark MLlib's
  ``BinaryClassificationMetrics.areaUnderPR``.  The two areas differ on purpose; see the
  function docstrings.
* Undefined metrics (no labeled predictions, no positive labels) never raise: they
  produce NaN (or ``None`` in :func:`summarize_counts`, so that they become Parquet
  nulls) together with a :class:`PRVizUndefinedMetricWarning`, mirroring scikit-learn's
  ``UndefinedMetricWarning``.  Invalid *input* raises :class:`ValueError`.

Quantization
------------
At scale the Spark job may round scores to ``score_decimals`` decimals before counting
(:func:`quantize_scores` reproduces Spark's ``round``).  This merges nearby scores into one
tie group, which changes the curve and the average precision.  Because rounding is
monotone, it never reorders predictions across buckets; only the order *inside* a bucket
is lost.  :func:`average_precision_bounds` turns this into a certified interval for the
AP of the unquantized scores and :func:`ap_error_bound` into a single error bar.
"""

import decimal
import math
import operator
import warnings

import numpy as np
import pandas as pd

__all__ = [
    "CURVE_COLUMNS",
    "SUMMARY_KEYS",
    "PRVizUndefinedMetricWarning",
    "ap_error_bound",
    "average_precision_bounds",
    "average_precision_from_counts",
    "cumulative_counts",
    "curve_points",
    "merge_counts",
    "pr_auc_trapezoid_from_counts",
    "precision_recall_curve_from_counts",
    "quantize_scores",
    "summarize_counts",
    "thin_curve",
]

#: Columns of :func:`curve_points`, in order.
CURVE_COLUMNS = ("threshold", "tp", "fp", "fn", "tn", "precision", "recall", "f1")

#: Keys of :func:`summarize_counts`, in order.
SUMMARY_KEYS = (
    "n_labeled",
    "n_positives",
    "base_rate",
    "average_precision",
    "pr_auc",
    "best_f1",
    "best_f1_threshold",
    "precision_at_recall_50",
    "precision_at_recall_80",
    "precision_at_recall_90",
    "recall_at_precision_50",
    "recall_at_precision_80",
    "recall_at_precision_90",
    "n_thresholds",
)

# Levels of the summary as exact fractions (numerator, denominator), compared on the
# integer counts: recall >= 4/5  <=>  5 * tp >= 4 * n_positives, free of rounding.
_LEVELS = {"50": (1, 2), "80": (4, 5), "90": (9, 10)}

_NO_LABELED_MSG = "No labeled predictions (all counts are zero); {what} is undefined."
_NO_POSITIVE_MSG = "No positive labels in the counts; {what} is undefined."


class PRVizUndefinedMetricWarning(UserWarning):
    """Warning emitted when a metric is undefined for the given counts.

    Like scikit-learn's ``UndefinedMetricWarning``: the function still returns (NaN,
    ``None`` or a documented convention) instead of raising, because an empty day or a
    day without positive labels is a legitimate state of a monitoring pipeline.
    """


def _warn_undefined(message, stacklevel=3):
    warnings.warn(message, PRVizUndefinedMetricWarning, stacklevel=stacklevel)


# --------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------


def _check_1d(values, name):
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got an array of shape {array.shape}")
    return array


def _check_score(score):
    score = _check_1d(score, "score")
    if score.dtype.kind not in "iuf":
        raise ValueError(f"score must be real-valued, got dtype {score.dtype}")
    score = score.astype(np.float64)
    n_bad = int(np.count_nonzero(~np.isfinite(score)))
    if n_bad:
        raise ValueError(f"score must be finite, got {n_bad} NaN or infinite value(s)")
    # -0.0 + 0.0 == +0.0: one threshold for both zeros, printed without a sign.
    return score + 0.0


def _check_count(count, name):
    count = _check_1d(count, name)
    if count.dtype.kind == "f":
        if not np.all(np.isfinite(count) & (count == np.floor(count))):
            raise ValueError(f"{name} must contain integers, got non-integer value(s)")
    elif count.dtype.kind not in "iu":
        raise ValueError(f"{name} must be an integer array, got dtype {count.dtype}")
    n_negative = int(np.count_nonzero(count < 0))
    if n_negative:
        raise ValueError(f"{name} must be non-negative, got {n_negative} negative value(s)")
    return count.astype(np.int64)


def _check_counts(score, n_pos, n_neg):
    """Validate score counts; return float64 score and int64 counts, unsorted."""
    score = _check_score(score)
    n_pos = _check_count(n_pos, "n_pos")
    n_neg = _check_count(n_neg, "n_neg")
    if not score.shape[0] == n_pos.shape[0] == n_neg.shape[0]:
        raise ValueError(
            "score, n_pos and n_neg must have the same length, got "
            f"{score.shape[0]}, {n_pos.shape[0]} and {n_neg.shape[0]}"
        )
    return score, n_pos, n_neg


# --------------------------------------------------------------------------------------
# Layer 1: merge and sort
# --------------------------------------------------------------------------------------


def _merge_checked(score, n_pos, n_neg):
    """Sum duplicate scores, sort by score descending and drop empty rows."""
    if score.shape[0] == 0:
        return np.empty(0, np.float64), np.empty(0, np.int64), np.empty(0, np.int64)
    if np.all(score[:-1] > score[1:]) and np.all((n_pos + n_neg) > 0):
        # Already merged (strictly decreasing, no empty row): merging is the identity, and an
        # O(n) check replaces the O(n log n) sort. -0.0 next to 0.0 fails the strict test.
        return score, n_pos, n_neg
    order = np.argsort(score, kind="stable")[::-1]
    score, n_pos, n_neg = score[order], n_pos[order], n_neg[order]
    starts = np.flatnonzero(np.concatenate(([True], score[1:] != score[:-1])))
    score = score[starts]
    n_pos = np.add.reduceat(n_pos, starts)
    n_neg = np.add.reduceat(n_neg, starts)
    keep = (n_pos + n_neg) > 0
    return score[keep], n_pos[keep], n_neg[keep]


def merge_counts(score, n_pos, n_neg):
    """Merge score counts into one row per distinct score, sorted by score descending.

    Parameters
    ----------
    score : array-like of shape (n_rows,)
        Scores, real and finite.  The same score may appear on several rows (e.g. counts
        from several days concatenated).  ``-0.0`` and ``0.0`` are the same score.
    n_pos : array-like of shape (n_rows,)
        Number of positive labeled predictions with that score (non-negative integers;
        integral floats are accepted).
    n_neg : array-like of shape (n_rows,)
        Number of negative labeled predictions with that score.

    Returns
    -------
    score_desc : ndarray of shape (n_distinct,), float64
        Distinct scores, strictly decreasing.
    pos : ndarray of shape (n_distinct,), int64
        Summed positive counts per distinct score.
    neg : ndarray of shape (n_distinct,), int64
        Summed negative counts per distinct score.

    Rows whose merged ``pos + neg`` is zero are dropped, so every returned row holds at
    least one labeled prediction.

    Raises
    ------
    ValueError
        If an input is not 1-D, the lengths differ, a score is not finite, or a count is
        negative or not an integer.  The message names the offending input.
    """
    return _merge_checked(*_check_counts(score, n_pos, n_neg))


# --------------------------------------------------------------------------------------
# Layer 2: cumulative counts at thresholds
# --------------------------------------------------------------------------------------


def _cumulative_checked(score, n_pos, n_neg):
    thresholds, pos, neg = merge_counts(score, n_pos, n_neg)
    return thresholds, np.cumsum(pos), np.cumsum(neg)


def cumulative_counts(score, n_pos, n_neg):
    """True and false positive counts at each distinct score used as a threshold.

    Parameters
    ----------
    score, n_pos, n_neg : array-like of shape (n_rows,)
        Score counts, see :func:`merge_counts`.

    Returns
    -------
    thresholds : ndarray of shape (n_thresholds,), float64
        Distinct scores holding at least one labeled prediction, strictly decreasing.
    tps : ndarray of shape (n_thresholds,), int64
        ``tps[i]`` is the number of positives with ``score >= thresholds[i]``.
    fps : ndarray of shape (n_thresholds,), int64
        ``fps[i]`` is the number of negatives with ``score >= thresholds[i]``.

    Both ``tps`` and ``fps`` are non-decreasing, ``tps[-1]`` is the total number of
    positives and ``fps[-1]`` the total number of negatives.  Ties are grouped: all
    predictions sharing a score enter at the same threshold.
    """
    return _cumulative_checked(score, n_pos, n_neg)


# --------------------------------------------------------------------------------------
# Layer 3: curves
# --------------------------------------------------------------------------------------


def _precision(tps, fps):
    # Every threshold holds at least one labeled prediction, so tps + fps >= 1.
    return tps / (tps + fps)


def _recall(tps):
    """Recall at each threshold, NaN everywhere when there are no positives."""
    if tps.shape[0] == 0 or tps[-1] == 0:
        return np.full(tps.shape, np.nan)
    return tps / tps[-1]


def precision_recall_curve_from_counts(score, n_pos, n_neg):
    """Precision-recall pairs for each distinct score, in scikit-learn's convention.

    Equal (to rounding error) to ``sklearn.metrics.precision_recall_curve(y_true,
    y_score)`` on the samples the counts describe (``drop_intermediate=False``).

    Parameters
    ----------
    score, n_pos, n_neg : array-like of shape (n_rows,)
        Score counts, see :func:`merge_counts`.

    Returns
    -------
    precision : ndarray of shape (n_thresholds + 1,), float64
        ``precision[i]`` is the precision of predictions with ``score >=
        thresholds[i]``; the last element is 1 and has no threshold.
    recall : ndarray of shape (n_thresholds + 1,), float64
        Non-increasing; ``recall[i]`` is the recall of predictions with ``score >=
        thresholds[i]``; the first element is 1 and the last element is 0.
    thresholds : ndarray of shape (n_thresholds,), float64
        The distinct scores holding labeled predictions, strictly increasing.  Ties are
        grouped into one threshold.

    Notes
    -----
    As in the scikit-learn versions this project supports (>= 1.4; checked on 1.9), every
    distinct score is kept: points after full recall is reached are *not* dropped.  With no positive labels scikit-learn sets recall to 1 at
    every threshold and warns; this function does the same with a
    :class:`PRVizUndefinedMetricWarning`.  With no labeled predictions at all (where
    scikit-learn raises) it warns and returns ``precision=[1.]``, ``recall=[0.]`` and no
    thresholds: the lone end point.
    """
    thresholds, tps, fps = _cumulative_checked(score, n_pos, n_neg)
    if thresholds.shape[0] == 0:
        _warn_undefined(_NO_LABELED_MSG.format(what="the precision-recall curve"))
        return np.array([1.0]), np.array([0.0]), np.empty(0, np.float64)
    precision = _precision(tps, fps)
    if tps[-1] == 0:
        _warn_undefined(
            "No positive labels in the counts; recall is set to one for all thresholds."
        )
        recall = np.ones(tps.shape, np.float64)
    else:
        recall = _recall(tps)
    return (
        np.concatenate((precision[::-1], [1.0])),
        np.concatenate((recall[::-1], [0.0])),
        thresholds[::-1].copy(),
    )


def _curve_frame(thresholds, tps, fps):
    """Assemble the curve_points frame from cumulative counts (no warnings)."""
    n_positives = int(tps[-1]) if tps.shape[0] else 0
    n_negatives = int(fps[-1]) if fps.shape[0] else 0
    fns = n_positives - tps
    tns = n_negatives - fps
    precision = _precision(tps, fps).astype(np.float64)
    recall = _recall(tps)
    if n_positives:
        # == 2PR / (P + R), computed on counts; 2 tp + fp + fn >= fn > 0 when tp == 0.
        f1 = 2 * tps / (2 * tps + fps + fns)
    else:
        f1 = np.full(tps.shape, np.nan)
    return pd.DataFrame(
        {
            "threshold": thresholds.astype(np.float64),
            "tp": tps.astype(np.int64),
            "fp": fps.astype(np.int64),
            "fn": np.asarray(fns, np.int64),
            "tn": np.asarray(tns, np.int64),
            "precision": precision,
            "recall": recall.astype(np.float64),
            "f1": np.asarray(f1, np.float64),
        },
        columns=list(CURVE_COLUMNS),
    )


def curve_points(score, n_pos, n_neg):
    """The confusion matrix and precision, recall and F1 at every distinct threshold.

    Parameters
    ----------
    score, n_pos, n_neg : array-like of shape (n_rows,)
        Score counts, see :func:`merge_counts`.

    Returns
    -------
    points : pandas.DataFrame of shape (n_thresholds, 8)
        Columns ``threshold, tp, fp, fn, tn, precision, recall, f1``; ``threshold``,
        ``precision``, ``recall`` and ``f1`` are float64, the counts int64.  One row per
        distinct score holding labeled predictions, ordered by threshold *descending*, so
        ``tp``, ``fp`` and ``recall`` are non-decreasing down the rows.  Row ``i``
        describes predicting positive when ``score >= threshold``.

        * ``precision = tp / (tp + fp)`` and ``recall = tp / (tp + fn)``: equal to
          scikit-learn's ``precision[:-1]`` and ``recall[:-1]`` read backwards (the
          artificial end point ``(recall=0, precision=1)`` has no threshold and no row).
        * ``f1 = 2 * precision * recall / (precision + recall)``, 0 where ``precision +
          recall == 0``; computed as the equal ``2 tp / (2 tp + fp + fn)``.
        * With no positive labels, ``recall`` and ``f1`` are NaN and a
          :class:`PRVizUndefinedMetricWarning` is emitted (scikit-learn would report a
          recall of 1).  With no labeled predictions the frame is empty (with the
          columns and dtypes above) and a warning is emitted.
    """
    thresholds, tps, fps = _cumulative_checked(score, n_pos, n_neg)
    if thresholds.shape[0] == 0:
        _warn_undefined(_NO_LABELED_MSG.format(what="the precision-recall curve"))
    elif tps[-1] == 0:
        _warn_undefined(_NO_POSITIVE_MSG.format(what="recall (and F1)"))
    return _curve_frame(thresholds, tps, fps)


# --------------------------------------------------------------------------------------
# Layer 4: scores
# --------------------------------------------------------------------------------------


def _average_precision(tps, fps):
    """Step-wise AP; requires tps[-1] > 0."""
    precision = _precision(tps, fps)
    recall = tps / tps[-1]
    delta_recall = np.diff(recall, prepend=0.0)
    # Clip the -0.0 that rounding can produce, as scikit-learn does.
    return float(max(0.0, np.sum(delta_recall * precision)))


def _undefined_reason(tps):
    if tps.shape[0] == 0:
        return _NO_LABELED_MSG
    if tps[-1] == 0:
        return _NO_POSITIVE_MSG
    return None


def average_precision_from_counts(score, n_pos, n_neg):
    """Average precision (AP), scikit-learn's ``average_precision_score``.

    .. math::
        \\text{AP} = \\sum_n (R_n - R_{n-1}) P_n

    over the distinct thresholds in decreasing order, with :math:`R_0 = 0`; :math:`P_n`
    and :math:`R_n` are the precision and recall at the n-th threshold.  Each tie group
    contributes its positives at the precision reached *after* the whole group, and there
    is no interpolation between operating points.

    Parameters
    ----------
    score, n_pos, n_neg : array-like of shape (n_rows,)
        Score counts, see :func:`merge_counts`.

    Returns
    -------
    average_precision : float
        In ``[0, 1]``.  ``nan`` with a :class:`PRVizUndefinedMetricWarning` when there
        are no positive labels or no labeled predictions (scikit-learn returns 0.0 there,
        which would read as a terrible model rather than a missing label).
    """
    _, tps, fps = _cumulative_checked(score, n_pos, n_neg)
    reason = _undefined_reason(tps)
    if reason:
        _warn_undefined(reason.format(what="average precision"))
        return float("nan")
    return _average_precision(tps, fps)


def _mllib_pr_auc(tps, fps):
    """Trapezoid area under MLlib's PR curve; requires tps[-1] > 0."""
    precision = _precision(tps, fps)
    recall = tps / tps[-1]
    x = np.concatenate(([0.0], recall))
    y = np.concatenate(([precision[0]], precision))
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def pr_auc_trapezoid_from_counts(score, n_pos, n_neg):
    """Area under the PR curve by the trapezoid rule, as Spark MLlib computes it.

    Reproduces Spark MLlib's ``BinaryClassificationMetrics.areaUnderPR`` without
    down-sampling (``numBins=0``, the default of the Scala RDD constructor), i.e.
    ``BinaryClassificationMetrics.pr()`` followed by ``AreaUnderCurve.of``:

    1. one point ``(recall_k, precision_k)`` per distinct score ``s_1 > s_2 > ... >
       s_n``, from the counts with ``score >= s_k``;
    2. the point ``(0, precision_1)`` is prepended (Spark >= 2.3; earlier versions
       prepended ``(0, 1)``);
    3. the area is ``sum_k (r_k - r_{k-1}) * (p_k + p_{k-1}) / 2`` over consecutive
       points, with ``(r_0, p_0) = (0, precision_1)``.

    Spark's ``Precision`` is 1 when nothing is predicted positive, which cannot happen
    here (every threshold holds a labeled prediction).  Checked against
    ``pyspark.ml.evaluation.BinaryClassificationEvaluator(metricName="areaUnderPR",
    numBins=0)`` of pyspark 4.3.0: equal to 1e-15.  Beware that the evaluator defaults
    to ``numBins=1000`` (and the ``pyspark.mllib`` wrapper also down-samples): with at
    least ``2 * numBins`` distinct scores MLlib first merges runs of ``n_distinct //
    numBins`` consecutive distinct scores into one point, which changes the area (by
    ~1e-4 on 3000 distinct scores).  Below ``2 * numBins`` distinct scores, e.g. on
    quantized scores, the default agrees too.

    Parameters
    ----------
    score, n_pos, n_neg : array-like of shape (n_rows,)
        Score counts, see :func:`merge_counts`.

    Returns
    -------
    pr_auc : float
        In ``[0, 1]``.  ``nan`` with a :class:`PRVizUndefinedMetricWarning` when there
        are no positive labels (MLlib defines recall as 0 there and returns 0.0) or no
        labeled predictions (MLlib fails on the empty curve).

    Notes
    -----
    This differs from :func:`average_precision_from_counts` on purpose, it is what Spark
    users are used to.  The first segment is the same rectangle ``r_1 * p_1`` in both,
    but afterwards the trapezoid uses the mean of the precisions at both ends of a recall
    step where AP uses the precision at the end, so ``pr_auc - AP = sum_k (r_k -
    r_{k-1}) * (p_{k-1} - p_k) / 2``.  Linear interpolation in PR space is not
    achievable by any classifier (Davis & Goadrich, 2006) and is optimistic whenever
    precision falls as recall grows, which is the usual case.
    """
    _, tps, fps = _cumulative_checked(score, n_pos, n_neg)
    reason = _undefined_reason(tps)
    if reason:
        _warn_undefined(reason.format(what="the area under the PR curve"))
        return float("nan")
    return _mllib_pr_auc(tps, fps)


def _precision_at_recall(tps, fps, level):
    """Max precision over thresholds with recall >= level; requires tps[-1] > 0."""
    numerator, denominator = level
    reached = denominator * tps >= numerator * tps[-1]  # never empty: the last row has R=1
    return float(np.max(_precision(tps[reached], fps[reached])))


def _recall_at_precision(tps, fps, level):
    """Max recall over thresholds with precision >= level, 0.0 if none."""
    numerator, denominator = level
    reached = denominator * tps >= numerator * (tps + fps)
    return float(np.max(tps[reached]) / tps[-1]) if np.any(reached) else 0.0


def summarize_counts(score, n_pos, n_neg):
    """Headline numbers of the precision-recall curve, ready for a Parquet row.

    Parameters
    ----------
    score, n_pos, n_neg : array-like of shape (n_rows,)
        Score counts, see :func:`merge_counts`.

    Returns
    -------
    summary : dict
        Keys in the order of :data:`SUMMARY_KEYS`, values Python ``int``/``float`` (never
        numpy scalars) or ``None``:

        ``n_labeled``, ``n_positives`` : int
            Total labeled predictions and positive labels.
        ``base_rate`` : float or None
            ``n_positives / n_labeled`` (the precision of predicting everything positive);
            ``None`` only when nothing is labeled.
        ``average_precision`` : float
            :func:`average_precision_from_counts`.
        ``pr_auc`` : float
            :func:`pr_auc_trapezoid_from_counts` (MLlib's ``areaUnderPR``).
        ``best_f1``, ``best_f1_threshold`` : float
            Maximum F1 over the thresholds of :func:`curve_points` and its threshold; on
            ties the highest threshold (fewest predicted positives) wins.
        ``precision_at_recall_{50,80,90}`` : float
            Precision at recall ``r`` = the **maximum** precision over the thresholds
            whose recall is ``>= r``: the best operating point that still reaches the
            recall.  Always defined when there are positives, because the lowest
            threshold has recall 1.  (This is the interpolated precision of the PASCAL VOC
            / TREC tradition, restricted to real thresholds.)
        ``recall_at_precision_{50,80,90}`` : float
            Recall at precision ``p`` = the maximum recall over the thresholds whose
            precision is ``>= p``; ``0.0`` when no threshold reaches ``p`` (as if the
            artificial end point ``(recall=0, precision=1)`` of the curve were included).
        ``n_thresholds`` : int
            Number of distinct scores holding labeled predictions.

        The levels are compared exactly, on the integer counts (``recall >= 0.8`` is
        ``5 * tp >= 4 * n_positives``), so a threshold with recall exactly 0.8 reaches 0.8
        whatever the rounding of ``tp / n_positives``.

    Notes
    -----
    With no labeled predictions or no positive labels every metric (all keys except
    ``n_labeled``, ``n_positives``, ``base_rate`` and ``n_thresholds``) is ``None``, so
    that it becomes a null in Parquet rather than a NaN, and a single
    :class:`PRVizUndefinedMetricWarning` is emitted.
    """
    thresholds, tps, fps = _cumulative_checked(score, n_pos, n_neg)
    n_thresholds = int(thresholds.shape[0])
    n_positives = int(tps[-1]) if n_thresholds else 0
    n_labeled = n_positives + (int(fps[-1]) if n_thresholds else 0)
    summary = dict.fromkeys(SUMMARY_KEYS)
    summary.update(
        n_labeled=n_labeled,
        n_positives=n_positives,
        base_rate=n_positives / n_labeled if n_labeled else None,
        n_thresholds=n_thresholds,
    )
    reason = _undefined_reason(tps)
    if reason:
        _warn_undefined(reason.format(what="every precision-recall metric"))
        return summary

    f1 = 2 * tps / (2 * tps + fps + (tps[-1] - tps))
    best = int(np.argmax(f1))
    summary.update(
        average_precision=_average_precision(tps, fps),
        pr_auc=_mllib_pr_auc(tps, fps),
        best_f1=float(f1[best]),
        best_f1_threshold=float(thresholds[best]),
    )
    for suffix, level in _LEVELS.items():
        summary[f"precision_at_recall_{suffix}"] = _precision_at_recall(tps, fps, level)
        summary[f"recall_at_precision_{suffix}"] = _recall_at_precision(tps, fps, level)
    return summary


# --------------------------------------------------------------------------------------
# Quantization and the certified AP error bound
# --------------------------------------------------------------------------------------

_MAX_ABS_DECIMALS = 300
_FAST_MAX_ABS_DECIMALS = 15
_FAST_MAX_SCALED = 2.0**50
_DECIMAL_CONTEXT = decimal.Context(prec=1000, rounding=decimal.ROUND_HALF_UP)


def _round_half_up_decimal(value, decimals):
    """Spark's round for one double: BigDecimal(Double.toString(value)), HALF_UP."""
    exact = decimal.Decimal(repr(float(value)))
    rounded = exact.quantize(decimal.Decimal(1).scaleb(-decimals), context=_DECIMAL_CONTEXT)
    return float(rounded)


def _round_half_up(score, decimals):
    result = score.copy()
    finite = np.isfinite(score)
    slow = finite.copy()
    if abs(decimals) <= _FAST_MAX_ABS_DECIMALS:
        scale = 10.0 ** abs(decimals)  # exact for |decimals| <= 22
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = np.abs(score * scale if decimals >= 0 else score / scale)
            # |scaled - exact decimal value * 10**decimals| <= ~2 ulp(scaled): away from
            # a tie (fraction .5) the nearest-integer choice is unambiguous.
            distance_to_tie = np.abs(scaled - np.floor(scaled) - 0.5)
            fast = finite & (scaled < _FAST_MAX_SCALED)
            fast &= distance_to_tie > 8 * np.spacing(scaled)
        magnitude = np.floor(scaled[fast] + 0.5)
        # Correctly rounded division / product: the nearest double to k * 10**-decimals.
        magnitude = magnitude / scale if decimals >= 0 else magnitude * scale
        result[fast] = np.copysign(magnitude, score[fast])
        slow &= ~fast
    if np.any(slow):
        values, inverse = np.unique(score[slow], return_inverse=True)
        rounded = np.array([_round_half_up_decimal(v, decimals) for v in values])
        result[slow] = rounded[inverse]
    return result


def quantize_scores(score, decimals, *, rounding="half_up"):
    """Round scores to ``decimals`` decimal places, as the Spark job buckets them.

    Parameters
    ----------
    score : array-like
        Real scores (any shape).  NaN and infinities are returned unchanged, as Spark
        does.
    decimals : int
        Number of decimal places; negative values round to tens, hundreds, ...
        (``-300 <= decimals <= 300``).
    rounding : {"half_up", "numpy"}, default="half_up"
        ``"half_up"`` reproduces Spark SQL's ``round(col, decimals)`` on a double:
        ``BigDecimal(Double.toString(x)).setScale(decimals, HALF_UP).toDouble``.  The
        *decimal representation* of the double (Python's ``repr``, the shortest string
        that round-trips) is rounded half away from zero, so ``0.125 -> 0.13``,
        ``2.675 -> 2.68``, ``1.005 -> 1.01`` and ``-0.5 -> -1`` at ``decimals=0``, and the
        result is the double nearest to the rounded decimal.  ``"numpy"`` is
        :func:`numpy.round`: it rounds the *binary* value scaled by ``10**decimals``,
        half to even, so ``0.125 -> 0.12`` and ``1.005 -> 1.0``.  The two differ only on
        (near-)ties.

    Returns
    -------
    rounded : ndarray of float64, same shape as ``score``
        ``-0.0`` is returned as ``0.0`` (Spark's BigDecimal has no negative zero).

    Notes
    -----
    Java's ``Double.toString`` is the shortest round-tripping representation from JDK
    19 on; older JDKs occasionally print one more digit, which can only matter when that
    digit creates or breaks a tie at the rounding position.  Either way the rounding is
    monotone (``x <= y`` implies ``round(x) <= round(y)``), which is all
    :func:`average_precision_bounds` relies on: its bound holds whichever rounding
    produced the buckets.

    Near-ties and very large values go through :mod:`decimal`, one call per distinct
    value; everything else is vectorized.
    """
    score = np.asarray(score)
    if score.dtype.kind not in "iuf":
        raise ValueError(f"score must be real-valued, got dtype {score.dtype}")
    try:
        decimals = operator.index(decimals)
    except TypeError:
        raise TypeError(f"decimals must be an integer, got {decimals!r}") from None
    if abs(decimals) > _MAX_ABS_DECIMALS:
        raise ValueError(
            f"decimals must be between {-_MAX_ABS_DECIMALS} and {_MAX_ABS_DECIMALS}, got {decimals}"
        )
    score = score.astype(np.float64)
    if rounding == "half_up":
        result = _round_half_up(score, decimals)
    elif rounding == "numpy":
        result = np.round(score, decimals)
    else:
        raise ValueError(f"rounding must be 'half_up' or 'numpy', got {rounding!r}")
    return result + 0.0


# Exact harmonic numbers H_0 .. H_32; beyond, the asymptotic expansion is used.
_HARMONIC_CUTOFF = 32
_HARMONIC = np.array(
    [math.fsum(1.0 / j for j in range(1, i + 1)) for i in range(_HARMONIC_CUTOFF + 1)]
)


def _harmonic_difference(m, n):
    """``H_n - H_m = sum_{j=m+1}^{n} 1/j`` for integer arrays ``0 <= m <= n``.

    Exact table below the cutoff; above it the Euler-Maclaurin expansion
    ``H_x = ln x + gamma + 1/(2x) - 1/(12x^2) + 1/(120x^4) - 1/(252x^6) + O(x^-8)``,
    written without cancellation (``log1p``), whose truncation error is below 1e-14 for
    ``x >= 32``.  Relative accuracy ~1e-15 even when ``n - m`` is tiny against ``m``.
    """
    m = np.asarray(m, np.int64)
    n = np.asarray(n, np.int64)
    c = _HARMONIC_CUTOFF
    head = _HARMONIC[np.minimum(n, c)] - _HARMONIC[np.minimum(m, c)]
    p = np.maximum(m, c).astype(np.float64)
    q = np.maximum(n, c).astype(np.float64)
    d = q - p
    tail = (
        np.log1p(d / p)
        - d / (2.0 * p * q)
        + (1.0 / p**2 - 1.0 / q**2) / 12.0
        - (1.0 / p**4 - 1.0 / q**4) / 120.0
        + (1.0 / p**6 - 1.0 / q**6) / 252.0
    )
    return head + tail


def _ap_bucket_extremes(pos, neg):
    """Per-bucket min and max AP numerators (sum of precision over positives).

    ``pos``/``neg`` are bucket counts sorted by score descending; returns
    ``(low, high)`` arrays whose sums divided by the number of positives bound AP.
    """
    n = pos + neg
    t = np.cumsum(pos) - pos  # true positives above the bucket
    m = np.cumsum(n) - n  # predictions above the bucket
    a = pos.astype(np.float64)
    high = np.zeros(pos.shape, np.float64)
    has_pos = pos > 0
    high[has_pos] = a[has_pos] * (t[has_pos] + a[has_pos]) / (m[has_pos] + a[has_pos])
    # sum_{k=1..a} (t + k) / (m + b + k) = a - (m + b - t) * (H_{m+b+a} - H_{m+b})
    start = m + neg
    low = a - (start - t) * _harmonic_difference(start, start + pos)
    low = np.minimum(np.maximum(low, 0.0), high)  # clip rounding noise
    return low, high


def _ap_bounds(pos, neg):
    low, high = _ap_bucket_extremes(pos, neg)
    total = float(np.sum(pos))
    return float(math.fsum(low) / total), float(math.fsum(high) / total)


def average_precision_bounds(score, n_pos, n_neg):
    """Certified range of the AP of the scores that were rounded into these buckets.

    Each row of the counts is a *bucket* (e.g. scores rounded by
    :func:`quantize_scores`).  The original scores inside a bucket may have had any
    order, with any ties: any *refinement* of the bucket into an ordered sequence of tie
    groups.  This returns the minimum and maximum, over all refinements of all buckets,
    of :func:`average_precision_from_counts` on the refined counts.  Both extremes are
    attained, so the range is tight.

    Parameters
    ----------
    score, n_pos, n_neg : array-like of shape (n_rows,)
        Bucket counts, see :func:`merge_counts`.

    Returns
    -------
    ap_low, ap_high : float
        ``ap_low <= AP(unrounded scores) <= ap_high`` for every monotone rounding
        (``x <= y`` implies ``round(x) <= round(y)``): Spark's HALF_UP, numpy's, floor...
        Both are ``nan`` with a :class:`PRVizUndefinedMetricWarning` when there are no
        positives.

    Notes
    -----
    **Buckets are independent.**  Monotone rounding never reorders scores from different
    buckets: ``round(x) > round(y)`` implies ``x > y``.  Refined tie groups therefore
    never straddle buckets, and buckets are processed in descending order.  Write
    ``AP = (1 / P) * sum_g a_g * T_g / M_g`` over refined tie groups ``g``, where ``a_g``
    is the number of positives in the group, ``T_g`` and ``M_g`` the cumulative true
    positives and predictions after it, and ``P`` the total number of positives.  After
    a bucket the state ``(T, M)`` is the same whatever its internal order, so every
    bucket's contribution depends only on its own refinement and the entering state,
    and the extremes of the sum are the sums of the per-bucket extremes.

    **One bucket.**  Let the bucket hold ``a`` positives and ``b`` negatives and enter at
    ``(T, M)``, with ``M >= T``.  For ``x >= 0`` the function ``f_c(x) = (T + x) / (c +
    x)`` is non-decreasing whenever ``c >= T``.

    *Maximum* ``a * (T + a) / (M + a)``, attained by all positives first as ONE tie
    group.  A group ending after ``t`` positives and ``t + u`` predictions of the bucket
    (``t <= a``, ``u >= 0``) has precision ``(T + t) / (M + t + u) <= f_M(t) <= f_M(a)``;
    summing over the ``a`` positives gives the bound.

    *Minimum* ``sum_{k=1..a} (T + k) / (M + b + k)``, attained by all negatives first,
    then every positive as its own threshold.  The ``k``-th positive of the bucket lies
    in a group ending after ``t >= k`` positives and ``u <= b`` negatives of the bucket,
    so its precision is ``(T + t) / (M + t + u) >= f_{M+b}(t) >= f_{M+b}(k)``.

    The minimum is evaluated in closed form, ``a - (M + b - T) * (H_{M+b+a} -
    H_{M+b})`` with harmonic numbers ``H``, so a bucket with millions of positives costs
    O(1).

    The reported (tied) value of a bucket, ``a * (T + a) / (M + a + b)``, lies between
    the two, so AP on the buckets is always inside ``[ap_low, ap_high]``.
    """
    _, pos, neg = merge_counts(score, n_pos, n_neg)
    if pos.shape[0] == 0 or pos.sum() == 0:
        reason = _NO_LABELED_MSG if pos.shape[0] == 0 else _NO_POSITIVE_MSG
        _warn_undefined(reason.format(what="average precision"))
        return float("nan"), float("nan")
    return _ap_bounds(pos, neg)


def ap_error_bound(score_q, n_pos, n_neg, *, exact=False):
    """Worst-case error of the AP reported on quantized (bucketed) scores.

    Parameters
    ----------
    score_q, n_pos, n_neg : array-like of shape (n_rows,)
        Bucket counts, see :func:`merge_counts`.
    exact : bool, default=False
        ``True`` when the counts were made from unrounded scores (every bucket is one
        exact score, its ties are real ties): the reported AP is exact and the bound is
        ``0.0``.  The counts are still validated.

    Returns
    -------
    bound : float
        ``max(ap_high - ap_reported, ap_reported - ap_low)`` with ``(ap_low, ap_high)``
        from :func:`average_precision_bounds` and ``ap_reported`` from
        :func:`average_precision_from_counts` on the buckets, so that
        ``|ap_reported - AP(unrounded scores)| <= bound``.  ``nan`` with a
        :class:`PRVizUndefinedMetricWarning` when there are no positives.
    """
    _, tps, fps = _cumulative_checked(score_q, n_pos, n_neg)
    if exact:
        return 0.0
    reason = _undefined_reason(tps)
    if reason:
        _warn_undefined(reason.format(what="the average precision error bound"))
        return float("nan")
    pos = np.diff(tps, prepend=0)
    neg = np.diff(fps, prepend=0)
    ap_low, ap_high = _ap_bounds(pos, neg)
    ap_reported = _average_precision(tps, fps)
    return float(max(ap_high - ap_reported, ap_reported - ap_low, 0.0))


# --------------------------------------------------------------------------------------
# Thinning for display
# --------------------------------------------------------------------------------------


def _thin_indices(precision, recall, f1, max_points):
    """Sorted positions of at most ``max_points`` rows to keep (``len > max_points``)."""
    n = precision.shape[0]
    keep = {0, n - 1}
    if np.any(~np.isnan(f1)):
        keep.add(int(np.nanargmax(f1)))
    budget = max_points - len(keep)

    # Arc length along (recall, interpolated precision): the interpolated precision
    # max(precision[i:]) is monotone, so the total length is at most 2 and the noisy,
    # zig-zagging high-threshold end cannot swallow the budget.
    recall = np.nan_to_num(recall, nan=0.0)
    envelope = np.maximum.accumulate(np.nan_to_num(precision, nan=0.0)[::-1])[::-1]
    steps = np.hypot(np.diff(recall), np.diff(envelope))
    arc = np.concatenate(([0.0], np.cumsum(steps)))
    if arc[-1] > 0:
        targets = arc[-1] * np.arange(1, budget + 1) / (budget + 1)
        picks = np.minimum(np.searchsorted(arc, targets), n - 1)
    else:
        picks = np.empty(0, np.int64)
    chosen = np.unique(np.concatenate((sorted(keep), picks)).astype(np.int64))

    # Arc-length targets can coincide; top up with rows spread evenly by position.
    missing = max_points - chosen.shape[0]
    if missing > 0:
        rest = np.setdiff1d(np.arange(n), chosen)
        extra = rest[np.round(np.linspace(0, rest.shape[0] - 1, missing)).astype(np.int64)]
        chosen = np.union1d(chosen, extra)
    return chosen


def thin_curve(points, max_points=200):
    """Keep at most ``max_points`` real rows of a curve, for plotting and publishing.

    Parameters
    ----------
    points : pandas.DataFrame
        Rows as returned by :func:`curve_points` (at least the columns ``precision``,
        ``recall`` and ``f1``), ordered by threshold descending.
    max_points : int, default=200
        Maximum number of rows to keep, at least 3.

    Returns
    -------
    thinned : pandas.DataFrame
        ``min(len(points), max_points)`` rows of ``points``, unchanged (nothing is
        interpolated, no precision is invented), in their original order, with the same
        columns and a fresh ``RangeIndex``.  If ``len(points) <= max_points`` this is a
        plain copy of ``points`` (index included).

        Always kept: the first row (highest threshold), the last row (lowest threshold,
        recall 1) and the best-F1 row (first maximum of ``f1``).  The other rows are
        spread evenly in arc length along the polyline ``(recall, interpolated
        precision)``, where the interpolated precision of a row is the maximum precision
        at or after it: evenly in recall where the curve is flat, denser where precision
        falls steeply.  If targets coincide, the remaining budget is filled with rows
        spread evenly by position.

    Raises
    ------
    ValueError
        If ``max_points`` is not an integer ``>= 3`` or a required column is missing.
    """
    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)):
        raise ValueError(f"max_points must be an integer >= 3, got {max_points!r}")
    if max_points < 3:
        raise ValueError(f"max_points must be an integer >= 3, got {max_points!r}")
    missing = [c for c in ("precision", "recall", "f1") if c not in points.columns]
    if missing:
        raise ValueError(f"points is missing required column(s): {', '.join(missing)}")
    if len(points) <= max_points:
        return points.copy()
    chosen = _thin_indices(
        points["precision"].to_numpy(np.float64),
        points["recall"].to_numpy(np.float64),
        points["f1"].to_numpy(np.float64),
        int(max_points),
    )
    return points.iloc[chosen].reset_index(drop=True)
