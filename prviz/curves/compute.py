"""From merged score counts to the published datasets: curve points, thinned curves, summaries.

No Spark and no Dagster: the inputs are Arrow tables of score counts (a day's, or several days'
merged), the outputs are Arrow tables in the contract's columns (docs/data-contracts.md). The
Spark job calls this in its driver; `pr_curves_7d` calls it on seven days of counts.
"""

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa

from prviz.config import JobConfig
from prviz.curves import pr_math
from prviz.lake.store import Lake

ALL_VARIANTS = "__all__"

POINT_COLUMNS = ("threshold", "tp", "fp", "fn", "tn", "precision", "recall", "f1")
SUMMARY_METRICS = (
    "average_precision", "pr_auc", "best_f1", "best_f1_threshold",
    "precision_at_recall_50", "precision_at_recall_80", "precision_at_recall_90",
    "recall_at_precision_50", "recall_at_precision_80", "recall_at_precision_90",
)  # fmt: skip
SUMMARY_SCHEMA = pa.schema(
    [
        ("endpoint", pa.string()),
        ("variant", pa.string()),
        ("n_predictions", pa.int64()),
        ("n_labeled", pa.int64()),
        ("n_positives", pa.int64()),
        ("label_coverage", pa.float64()),
        ("base_rate", pa.float64()),
        *[(name, pa.float64()) for name in SUMMARY_METRICS],
        ("ap_error_bound", pa.float64()),
        ("n_thresholds", pa.int64()),
    ]
)
POINTS_SCHEMA = pa.schema(
    [
        ("endpoint", pa.string()),
        ("variant", pa.string()),
        ("threshold", pa.float64()),
        ("tp", pa.int64()),
        ("fp", pa.int64()),
        ("fn", pa.int64()),
        ("tn", pa.int64()),
        ("precision", pa.float64()),
        ("recall", pa.float64()),
        ("f1", pa.float64()),
    ]
)


def curves_from_counts(
    counts: pd.DataFrame, score_decimals: int | None, thin_points: int, with_all: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """Summaries, full points and thinned points per (endpoint, variant).

    `counts` has columns endpoint, variant, score, n_pos, n_neg, n_unlabeled (rows for the same
    score are merged, so several days' counts can be passed at once). With `with_all`, an
    extra `variant = "__all__"` group merges every variant of an endpoint.
    Returns (summary, points, thin_points, warnings).
    """
    groups = []
    for (endpoint, variant), group in counts.groupby(["endpoint", "variant"], sort=True):
        groups.append((endpoint, variant, group))
    if with_all:
        for endpoint, group in counts.groupby("endpoint", sort=True):
            groups.append((endpoint, ALL_VARIANTS, group))
    summaries, points, thins, messages = [], [], [], []
    for endpoint, variant, group in groups:
        # merge (sum equal scores, sort descending) once: every call below then finds its
        # input already merged and skips the sort
        score, n_pos, n_neg = pr_math.merge_counts(
            group["score"].to_numpy(dtype=np.float64),
            group["n_pos"].to_numpy(dtype=np.int64),
            group["n_neg"].to_numpy(dtype=np.int64),
        )
        n_unlabeled = int(group["n_unlabeled"].sum())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summary = pr_math.summarize_counts(score, n_pos, n_neg)
            curve = pr_math.curve_points(score, n_pos, n_neg)
            if score_decimals is None or summary["average_precision"] is None:
                bound = 0.0 if summary["average_precision"] is not None else None
            else:
                bound = float(pr_math.ap_error_bound(score, n_pos, n_neg))
        for warning in caught:
            messages.append(f"{endpoint}/{variant}: {warning.message}")
        n_predictions = summary["n_labeled"] + n_unlabeled
        row = {
            "endpoint": endpoint,
            "variant": variant,
            "n_predictions": n_predictions,
            "n_labeled": summary["n_labeled"],
            "n_positives": summary["n_positives"],
            "label_coverage": summary["n_labeled"] / n_predictions if n_predictions else None,
            "base_rate": summary["base_rate"],
            **{name: summary[name] for name in SUMMARY_METRICS},
            "ap_error_bound": bound,
            "n_thresholds": summary["n_thresholds"],
        }
        summaries.append(row)
        curve = curve.assign(endpoint=endpoint, variant=variant)
        points.append(curve)
        if len(curve):
            thins.append(pr_math.thin_curve(curve, thin_points))
    summary_df = pd.DataFrame(summaries, columns=SUMMARY_SCHEMA.names)
    points_df = pd.concat(points, ignore_index=True) if points else pd.DataFrame()
    thin_df = pd.concat(thins, ignore_index=True) if thins else pd.DataFrame()
    return summary_df, points_df, thin_df, messages


def to_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    if frame.empty:
        return schema.empty_table()
    frame = frame[list(schema.names)]
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def compute_curves_for_day(lake: Lake, day: str, counts: pa.Table, config: JobConfig) -> dict:
    """Write pr_curve_points, pr_curve_points_thin and pr_summary for one day; return metadata."""
    frame = counts.to_pandas()
    summary, points, thin, messages = curves_from_counts(
        frame, config.score_decimals, config.thin_points
    )
    uris = {
        "pr_summary": lake.write_table("pr_summary", day, to_table(summary, SUMMARY_SCHEMA)),
        "pr_curve_points": lake.write_table(
            "pr_curve_points", day, to_table(points, POINTS_SCHEMA)
        ),
        "pr_curve_points_thin": lake.write_table(
            "pr_curve_points_thin", day, to_table(thin, POINTS_SCHEMA)
        ),
    }
    if summary.empty:
        messages.append(f"no labeled predictions for {day}: pr_summary is empty")
    return {
        "warnings": messages,
        "summary": summary.to_dict(orient="records"),
        "curve_points": int(len(points)),
        "uri": uris["pr_summary"],
        "uris": uris,
    }
