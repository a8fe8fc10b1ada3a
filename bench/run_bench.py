"""Benchmark: prviz's exact AP + PR curve against Spark MLlib, Spark ML and scikit-learn.

Not part of the test suite (it takes minutes). `make bench` runs it with the defaults:

    .venv/bin/python bench/run_bench.py [--sizes 1e6,1e7] [--out bench/out] [--write-docs]

What it does, in ONE process and ONE local Spark session (`prviz.spark.session.local_session`):

1. Writes labeled predictions (endpoint, variant, score double, label int; two variants, base
   rate ~4 %, Beta-distributed scores as in the demo generator) to Parquet under `--out`, per
   size in two tie modes: "ties" = scores rounded to 4 decimals, "no ties" = full precision (the
   same draws, so "ties" is the rounded "no ties").
2. Warms every method up on a small input (untimed), then measures each method separately per
   size and tie mode: wall time, rows/s, peak RSS of the Python process and of the JVM (VmHWM
   from /proc, reset through /proc/<pid>/clear_refs before each measurement), load averages at
   the start and the end, and exactness against scikit-learn.
3. Times the whole day end to end from capture JSON (`prviz.spark.job.run_job` on demo data of
   `prviz.demo.generator.write_demo_data`) and extrapolates EMR core-hours for 150 TB/day.
4. Writes `results.json` and `performance.md` into `--out`, prints the tables, and with
   `--write-docs` also writes docs/performance.md (rendered by bench/bench_report.py).

Every method computes the same thing: one AP-like number and one curve *per variant* (prviz's
output). MLlib and Spark ML have no group-by, so they are called once per variant on a filtered
DataFrame, as a user would have to.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import json
import math
import os
import platform
import pstats
import re
import shutil
import subprocess
import sys
import time
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path

import bench_report
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
DAY = "2025-01-01"
ENDPOINT = "fraud-scorer"
VARIANTS = ("champion", "challenger")
BASE_RATE = 0.04
BETA_NEG = (1.3, 5.0)  # as prviz.demo.generator: negatives, then positives per variant role
BETA_POS = {"champion": (4.0, 2.5), "challenger": (3.5, 2.5)}
TIE_DECIMALS = 4
ROWS_PER_FILE = 1_000_000
MIN_FILES = 4  # so that Spark reads with both cores even at 1M rows
WARM_ROWS = 50_000
WARM_E2E_RECORDS = 10_000
TB_PER_DAY = 150
# one strict pattern for 'T10:42:07Z' and 'T10:42:07.123Z' (the fraction is optional)
ONE_TIMESTAMP_PATTERN = "yyyy-MM-dd'T'HH:mm:ss[.SSSSSS]X"
THREE_FORMATS = (  # a coalesce of three try_to_timestamp, as prviz's stages had it
    "yyyy-MM-dd'T'HH:mm:ss.SSSSSSX",
    "yyyy-MM-dd'T'HH:mm:ss.SSSX",
    "yyyy-MM-dd'T'HH:mm:ssX",
)
# {capture_root}/{endpoint}/{variant}/yyyy/mm/dd/hh/{file}: six regexp_extract per row
CAPTURE_PATH_REGEX = r"/([^/]+)/([^/]+)/(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+$"
ALL_METHODS = (
    "arrow_read",
    "sklearn",
    "prviz",
    "prviz_q4",
    "ml_evaluator",
    "mllib_exact",
    "mllib_py",
)


# -- measurement helpers ------------------------------------------------------------------------
def _status_kb(pid: int | None, key: str = "VmHWM") -> int | None:
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak(pid: int | None) -> bool:
    """Reset the peak RSS (VmHWM) of a process to its current RSS (Linux >= 4.0)."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class Meter:
    """Wall time, peak RSS (Python and JVM) and load averages around one measurement."""

    def __init__(self, spark=None):
        self.spark = spark
        self.jvm_pid = None
        if spark is not None:
            proc = getattr(spark.sparkContext._gateway, "proc", None)
            self.jvm_pid = getattr(proc, "pid", None)

    def _collect_garbage(self) -> None:
        gc.collect()
        if self.spark is not None:
            self.spark.sparkContext._jvm.System.gc()

    @contextmanager
    def measure(self, record: dict):
        self._collect_garbage()
        pids = {"python": os.getpid(), "jvm": self.jvm_pid}
        record["peak_reset"] = {name: _reset_peak(pid) for name, pid in pids.items()}
        record["rss_start_mb"] = {
            name: (kb / 1024 if (kb := _status_kb(pid, "VmRSS")) is not None else None)
            for name, pid in pids.items()
        }
        record["load_start"] = _load()
        started = time.perf_counter()
        try:
            yield record
        finally:
            record["wall_s"] = time.perf_counter() - started
            record["load_end"] = _load()
            record["peak_rss_mb"] = {
                name: (kb / 1024 if (kb := _status_kb(pid)) is not None else None)
                for name, pid in pids.items()
            }


def _profile_top(profile: cProfile.Profile, limit: int = 12) -> list[dict]:
    stats = pstats.Stats(profile)
    rows = []
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():
        rows.append(
            {
                "function": f"{Path(filename).name}:{line}({name})",
                "calls": calls,
                "tottime_s": tottime,
                "cumtime_s": cumtime,
            }
        )
    rows.sort(key=lambda r: r["cumtime_s"], reverse=True)
    interesting = [r for r in rows if "prviz" in r["function"] or "pr_math" in r["function"]]
    return {
        "by_cumtime": rows[:limit],
        "prviz_functions": interesting[:limit],
        "by_tottime": sorted(rows, key=lambda r: r["tottime_s"], reverse=True)[:limit],
    }


# -- data --------------------------------------------------------------------------------------
def _draw(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, n])
    variant = rng.integers(0, len(VARIANTS), n).astype(np.int32)
    label = (rng.random(n) < BASE_RATE).astype(np.int32)
    score = rng.beta(*BETA_NEG, n)
    for index, name in enumerate(VARIANTS):
        positive = (label == 1) & (variant == index)
        score[positive] = rng.beta(*BETA_POS[name], int(positive.sum()))
    return variant, score, label


def write_dataset(path: Path, n: int, seed: int) -> dict[bool, dict]:
    """Write the no-ties and the ties (rounded) Parquet datasets of n rows; return their facts."""
    variant, score, label = _draw(n, seed)
    n_files = max(MIN_FILES, math.ceil(n / ROWS_PER_FILE))
    bounds = np.linspace(0, n, n_files + 1).astype(np.int64)
    facts = {}
    for ties in (False, True):
        folder = path / f"n{n}_{'ties' if ties else 'noties'}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        values = np.round(score, TIE_DECIMALS) if ties else score
        for i in range(n_files):
            a, b = int(bounds[i]), int(bounds[i + 1])
            variant_strings = pa.DictionaryArray.from_arrays(
                pa.array(variant[a:b]), pa.array(VARIANTS)
            ).dictionary_decode()
            endpoint = pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(b - a, np.int32)), pa.array([ENDPOINT])
            ).dictionary_decode()
            table = pa.table(
                {
                    "endpoint": endpoint,
                    "variant": variant_strings,
                    "score": pa.array(values[a:b]),
                    "label": pa.array(label[a:b]),
                }
            )
            pq.write_table(table, folder / f"part-{i:05d}.parquet", compression="zstd")
        distinct = {
            name: int(np.unique(values[variant == index]).shape[0])
            for index, name in enumerate(VARIANTS)
        }
        facts[ties] = {
            "path": str(folder),
            "rows": n,
            "files": n_files,
            "bytes": sum(f.stat().st_size for f in folder.glob("*.parquet")),
            "positives": int(label.sum()),
            "distinct_scores": distinct,
        }
    return facts


# -- methods -----------------------------------------------------------------------------------
def m_arrow_read(ctx, data):
    table = pq.read_table(data["path"], columns=["score", "label"])
    return {"rows_read": table.num_rows}


def m_sklearn(ctx, data):
    import pandas as pd
    from sklearn.metrics import average_precision_score, precision_recall_curve

    started = time.perf_counter()
    frame = pd.read_parquet(data["path"], columns=["variant", "score", "label"])
    read_s = time.perf_counter() - started
    variant = frame["variant"].to_numpy()
    score = frame["score"].to_numpy(np.float64)
    label = frame["label"].to_numpy(np.int32)
    ap, curves = {}, {}
    for name in VARIANTS:
        mask = variant == name
        y, s = label[mask], score[mask]
        ap[name] = float(average_precision_score(y, s))
        precision, recall, thresholds = precision_recall_curve(y, s)
        curves[name] = (thresholds, precision[:-1], recall[:-1])
    return {
        "parts": {"read_s": read_s, "compute_s": time.perf_counter() - started - read_s},
        "ap": ap,
        "_curves": curves,
    }


def _prviz_spark_df(ctx, data):
    from pyspark.sql import functions as F

    return ctx["spark"].read.parquet(data["path"]).withColumn("dt", F.lit(DAY))


def _prviz(ctx, data, score_decimals):
    from prviz.curves.compute import curves_from_counts
    from prviz.spark import stages as S

    started = time.perf_counter()
    counts = S.score_counts(_prviz_spark_df(ctx, data), score_decimals).toArrow()
    spark_s = time.perf_counter() - started
    frame = counts.to_pandas()
    to_pandas_s = time.perf_counter() - started - spark_s
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary, points, _thin, _messages = curves_from_counts(frame, score_decimals, 200)
    off_spark_s = time.perf_counter() - started - spark_s
    rows = summary.set_index("variant")
    result = {
        "parts": {
            "spark_s": spark_s,
            "off_spark_s": off_spark_s,
            "off_spark_to_pandas_s": to_pandas_s,
            "off_spark_curves_s": off_spark_s - to_pandas_s,
        },
        "counts_rows": counts.num_rows,
        "counts_arrow_mb": counts.nbytes / 1e6,
        "ap": {v: float(rows.loc[v, "average_precision"]) for v in VARIANTS},
        "pr_auc": {v: float(rows.loc[v, "pr_auc"]) for v in VARIANTS},
        "ap_error_bound": {v: float(rows.loc[v, "ap_error_bound"]) for v in VARIANTS},
        "_curves": {
            v: (
                points.loc[points["variant"] == v, "threshold"].to_numpy(),
                points.loc[points["variant"] == v, "precision"].to_numpy(),
                points.loc[points["variant"] == v, "recall"].to_numpy(),
            )
            for v in VARIANTS
        },
        "_counts": counts,
    }
    return result


def m_prviz(ctx, data):
    return _prviz(ctx, data, None)


def m_prviz_q4(ctx, data):
    return _prviz(ctx, data, TIE_DECIMALS)


def _variant_df(ctx, data, name):
    from pyspark.sql import functions as F

    df = ctx["spark"].read.parquet(data["path"])
    return df.where(F.col("variant") == name).select(
        F.col("score"), F.col("label").cast("double").alias("label")
    )


def _jvm_curve(ctx, java_metrics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(threshold, precision, recall) of an MLlib BinaryClassificationMetrics, via Arrow."""
    from pyspark.sql import DataFrame

    spark = ctx["spark"]
    encoders = spark.sparkContext._jvm.org.apache.spark.sql.Encoders
    encoder = encoders.tuple(encoders.scalaDouble(), encoders.scalaDouble())

    def fetch(rdd, names):
        jdf = spark._jsparkSession.createDataset(rdd, encoder).toDF()
        return DataFrame(jdf, spark).toDF(*names).toArrow()

    by_precision = fetch(java_metrics.precisionByThreshold(), ("threshold", "precision"))
    by_recall = fetch(java_metrics.recallByThreshold(), ("threshold", "recall"))
    thresholds = by_precision["threshold"].to_numpy()
    if not np.array_equal(thresholds, by_recall["threshold"].to_numpy()):
        raise RuntimeError("MLlib precision/recall thresholds are not aligned")
    return thresholds, by_precision["precision"].to_numpy(), by_recall["recall"].to_numpy()


def m_mllib_py(ctx, data):
    """pyspark.mllib's BinaryClassificationMetrics on an RDD of (score, label) (numBins=1000)."""
    from pyspark.mllib.evaluation import BinaryClassificationMetrics

    auc, curves = {}, {}
    for name in VARIANTS:
        rdd = _variant_df(ctx, data, name).rdd.map(lambda row: (row[0], row[1]))
        metrics = BinaryClassificationMetrics(rdd)
        auc[name] = float(metrics.areaUnderPR)
        ctx["untimed"].append(
            lambda name=name, java=metrics._java_model: curves.__setitem__(
                name, _jvm_curve(ctx, java)
            )
        )
        ctx["cleanup"].append(metrics.unpersist)
    return {"pr_auc": auc, "_curves": curves, "num_bins": 1000}


def m_mllib_exact(ctx, data):
    """The same Scala BinaryClassificationMetrics with numBins=0, fed from the JVM (no Python)."""
    jvm = ctx["spark"].sparkContext._jvm
    encoders = jvm.org.apache.spark.sql.Encoders
    encoder = encoders.tuple(encoders.scalaDouble(), encoders.scalaDouble())
    auc, curves = {}, {}
    for name in VARIANTS:
        dataset = getattr(_variant_df(ctx, data, name)._jdf, "as")(encoder)
        metrics = jvm.org.apache.spark.mllib.evaluation.BinaryClassificationMetrics(
            dataset.rdd(), 0
        )
        auc[name] = float(metrics.areaUnderPR())
        ctx["untimed"].append(
            lambda name=name, java=metrics: curves.__setitem__(name, _jvm_curve(ctx, java))
        )
        ctx["cleanup"].append(metrics.unpersist)
    return {"pr_auc": auc, "_curves": curves, "num_bins": 0}


def m_ml_evaluator(ctx, data):
    """Spark ML's BinaryClassificationEvaluator(metricName="areaUnderPR"), default numBins."""
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.sql import functions as F

    evaluator = BinaryClassificationEvaluator(
        rawPredictionCol="score", labelCol="label", metricName="areaUnderPR"
    )
    df = ctx["spark"].read.parquet(data["path"])
    auc = {name: float(evaluator.evaluate(df.where(F.col("variant") == name))) for name in VARIANTS}
    return {"pr_auc": auc, "num_bins": evaluator.getNumBins()}


METHODS = {
    "arrow_read": m_arrow_read,
    "sklearn": m_sklearn,
    "prviz": m_prviz,
    "prviz_q4": m_prviz_q4,
    "ml_evaluator": m_ml_evaluator,
    "mllib_exact": m_mllib_exact,
    "mllib_py": m_mllib_py,
}
METHOD_INFO = {
    "arrow_read": "floor: pyarrow.parquet.read_table(columns=[score, label])",
    "sklearn": "scikit-learn average_precision_score + precision_recall_curve, data in pandas",
    "prviz": "prviz: stages.score_counts (Spark) -> toArrow -> curves_from_counts (exact)",
    "prviz_q4": "prviz with score_decimals=4 (quantized counts, certified AP error bound)",
    "ml_evaluator": 'Spark ML BinaryClassificationEvaluator(metricName="areaUnderPR")',
    "mllib_exact": "Spark MLlib BinaryClassificationMetrics(numBins=0) via the JVM (exact)",
    "mllib_py": "pyspark.mllib BinaryClassificationMetrics(RDD[(score, label)])",
}
DEFINITION = {
    "prviz": "AP (step-wise, sklearn)",
    "prviz_q4": "AP (step-wise) on 4-decimal buckets",
    "sklearn": "AP (step-wise)",
    "ml_evaluator": "PR-AUC trapezoid, 1000 bins",
    "mllib_exact": "PR-AUC trapezoid, every threshold",
    "mllib_py": "PR-AUC trapezoid, 1000 bins",
}


# -- exactness ---------------------------------------------------------------------------------
def _reference_pr_auc(thresholds, precision, recall) -> float:
    """MLlib's trapezoid PR-AUC computed from scikit-learn's curve (the (0, p_1) start point)."""
    order = np.argsort(thresholds)[::-1]  # descending thresholds
    p, r = precision[order], recall[order]
    x = np.concatenate(([0.0], r))
    y = np.concatenate(([p[0]], p))
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def _curve_diff(reference, curve) -> dict:
    """Max |precision|, |recall| difference at the curve's thresholds vs scikit-learn's."""
    ref_t, ref_p, ref_r = reference
    thresholds, precision, recall = curve
    index = np.searchsorted(ref_t, thresholds)
    index = np.minimum(index, ref_t.shape[0] - 1)
    found = ref_t[index] == thresholds
    if not np.all(found):
        return {"comparable": False, "missing_thresholds": int((~found).sum())}
    return {
        "comparable": True,
        "points": int(thresholds.shape[0]),
        "reference_points": int(ref_t.shape[0]),
        "max_abs_precision_diff": float(np.max(np.abs(precision - ref_p[index]), initial=0.0)),
        "max_abs_recall_diff": float(np.max(np.abs(recall - ref_r[index]), initial=0.0)),
        "same_thresholds": bool(thresholds.shape[0] == ref_t.shape[0]),
    }


def exactness(record: dict, reference: dict | None) -> dict:
    """Differences against scikit-learn: AP, the exact trapezoid PR-AUC and the curve."""
    out = {}
    if not reference:
        return out
    ref_ap, ref_auc = reference["ap"], reference["pr_auc"]
    if "ap" in record:
        out["ap_vs_sklearn_ap"] = max(abs(record["ap"][v] - ref_ap[v]) for v in VARIANTS)
    if "pr_auc" in record:
        out["pr_auc_vs_sklearn_ap"] = max(abs(record["pr_auc"][v] - ref_ap[v]) for v in VARIANTS)
        out["pr_auc_vs_exact_trapezoid"] = max(
            abs(record["pr_auc"][v] - ref_auc[v]) for v in VARIANTS
        )
    if "ap_error_bound" in record and "ap" in record:
        out["ap_within_bound"] = all(
            abs(record["ap"][v] - ref_ap[v]) <= record["ap_error_bound"][v] + 1e-12
            for v in VARIANTS
        )
        out["ap_error_bound"] = max(record["ap_error_bound"].values())
    curves = record.get("_curves")
    if curves and len(curves) == len(VARIANTS):
        diffs = {v: _curve_diff(reference["curves"][v], curves[v]) for v in VARIANTS}
        if all(d["comparable"] for d in diffs.values()):
            out["curve_max_abs_diff"] = max(
                max(d["max_abs_precision_diff"], d["max_abs_recall_diff"]) for d in diffs.values()
            )
            out["curve_points"] = sum(d["points"] for d in diffs.values())
            out["curve_reference_points"] = sum(d["reference_points"] for d in diffs.values())
        else:
            out["curve_note"] = "thresholds are not scores of the data (buckets): not compared"
    return out


# -- runner ------------------------------------------------------------------------------------
def _error_summary(error: Exception) -> str:
    """The informative line of an error (a Py4JJavaError's first line says nothing)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for key in ("maxResultSize", "OutOfMemoryError", "SparkException:", "Exception:", "Error:"):
        for line in lines:
            if key in line:
                return f"{type(error).__name__}: {line[:300]}"
    return f"{type(error).__name__}: {lines[0][:300] if lines else ''}"


def _median(values):
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def run_method(ctx, meter, method: str, data: dict, reference, repeats: int = 1, budget=0.0):
    """Measure a method; repeat it (up to `repeats` times) while the repeats fit in `budget` s.

    The reported wall time is the median of the repeats (all are kept in `walls`); the peak RSS
    is the first run's (later runs would count the first run's result, still held, as theirs).
    Curves for the exactness check are fetched after the first run, outside the timing.
    """
    record = {"method": method, "rows": data["rows"], "ties": data["ties"]}
    runs, result = [], {}
    try:
        for attempt in range(max(1, repeats)):
            ctx["untimed"], ctx["cleanup"] = [], []
            one = {}
            try:
                with meter.measure(one):
                    outcome = METHODS[method](ctx, data)
                if attempt == 0:
                    for fetch in ctx["untimed"]:
                        fetch()
                    result = outcome
            finally:
                for cleanup in ctx["cleanup"]:
                    try:
                        cleanup()
                    except Exception:  # noqa: BLE001 - best effort
                        pass
            one["parts"] = outcome.get("parts", {})
            del outcome
            runs.append(one)
            spent = sum(r["wall_s"] for r in runs)
            if spent + runs[-1]["wall_s"] > budget:
                break
    except Exception as error:  # a method that fails (e.g. out of memory) must not end the run
        record["error"] = _error_summary(error)
        record["traceback"] = traceback.format_exc()[-4000:]
        print(f"  !! {method} failed: {record['error']}", flush=True)
    record.update({k: v for k, v in result.items() if not k.startswith("_")})
    if runs and "error" not in record:
        walls = [r["wall_s"] for r in runs]
        record["walls"] = walls
        record["wall_s"] = _median(walls)
        record["wall_min_s"] = min(walls)
        record["load_start"] = runs[0]["load_start"]
        record["load_end"] = runs[-1]["load_end"]
        record["loads"] = [[r["load_start"], r["load_end"]] for r in runs]
        record["peak_rss_mb"] = runs[0]["peak_rss_mb"]
        record["rss_start_mb"] = runs[0].get("rss_start_mb")
        record["peak_reset"] = runs[0]["peak_reset"]
        keys = set().union(*(r["parts"] for r in runs))
        record["parts"] = {
            k: _median([r["parts"][k] for r in runs if k in r["parts"]]) for k in sorted(keys)
        }
        record["rows_per_s"] = data["rows"] / record["wall_s"] if record["wall_s"] else None
        record["exactness"] = exactness(result, reference) if method != "sklearn" else {}
    return record, result


def profile_off_spark(counts: pa.Table, score_decimals) -> dict:
    """cProfile of the off-Spark part (to_pandas + curves_from_counts), untimed."""
    from prviz.curves.compute import curves_from_counts

    profile = cProfile.Profile()
    profile.enable()
    frame = counts.to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        curves_from_counts(frame, score_decimals, 200)
    profile.disable()
    return _profile_top(profile)


def _timed_steps(meter, steps: dict, repeats: int, budget: float) -> dict:
    """Median wall time of each step (repeated while the repeats fit in `budget` s)."""
    out = {}
    for name, step in steps.items():
        walls, loads = [], []
        try:
            for _ in range(max(1, repeats)):
                record = {}
                with meter.measure(record):
                    step()
                walls.append(record["wall_s"])
                loads.append([record["load_start"], record["load_end"]])
                if sum(walls) + walls[-1] > budget:
                    break
            out[name] = _median(walls)
            out[name[: -len("_s")] + "_walls"] = walls
            out[name[: -len("_s")] + "_load"] = [loads[0][0], loads[-1][1]]
        except Exception as error:  # noqa: BLE001 - a failing step is reported, not fatal
            out[name] = None
            out[name[: -len("_s")] + "_error"] = str(error).splitlines()[0][:300]
    return out


def spark_breakdown(ctx, meter, data: dict, method: str, repeats=3, budget=20.0) -> dict:
    """Where prviz's Spark time goes, each step a Spark job to a noop sink (no collect).

    Besides prviz's own `score_counts`, alternatives are timed to size the fixes described in
    docs/performance.md: the same counts with plain count/sum aggregates and no `dt` key
    ("lean"), and with the variant as an integer key instead of the endpoint/variant strings
    ("int key"); for the quantized path, an integer bucket `floor(score * 10^d + 0.5)` with
    the int key, against Spark's `round`.
    """
    from pyspark.sql import functions as F

    from prviz.spark import stages as S

    def noop(df):
        df.write.format("noop").mode("overwrite").save()

    def counts(df, *keys):
        return df.groupBy(*keys).agg(
            F.count(F.lit(1)).alias("n"),
            F.count("label").alias("n_labeled"),
            F.sum("label").alias("n_pos"),
        )

    def variant_id():
        expr = F.lit(len(VARIANTS) - 1)
        for index, name in reversed(list(enumerate(VARIANTS[:-1]))):
            expr = F.when(F.col("variant") == name, index).otherwise(expr)
        return expr.alias("variant_id")

    scale = 10**TIE_DECIMALS
    if method == "prviz":
        steps = {
            "scan_s": lambda: (
                _prviz_spark_df(ctx, data)
                .agg(F.count(F.lit(1)), F.sum("label"), F.sum("score"))
                .collect()
            ),
            "score_counts_noop_s": lambda: noop(S.score_counts(_prviz_spark_df(ctx, data))),
            "lean_group_by_noop_s": lambda: noop(
                counts(_prviz_spark_df(ctx, data), "endpoint", "variant", "score")
            ),
            "int_key_group_by_noop_s": lambda: noop(
                counts(_prviz_spark_df(ctx, data), variant_id(), "score")
            ),
        }
    else:
        steps = {
            "score_counts_round4_noop_s": lambda: noop(
                S.score_counts(_prviz_spark_df(ctx, data), TIE_DECIMALS)
            ),
            "int_key_floor_bucket_noop_s": lambda: noop(
                counts(
                    _prviz_spark_df(ctx, data),
                    variant_id(),
                    F.floor(F.col("score") * scale + 0.5).alias("bucket"),
                )
            ),
        }
    return _timed_steps(meter, steps, repeats, budget)


def parse_breakdown(spark, meter, config, every=4, repeats=3, budget=20.0) -> dict:
    """Where the parse goes: each step alone on every `every`-th hour folder, to a noop sink.

    Reported as seconds and MB/s of capture (or ground truth) read, so the steps compare with
    each other and, as rates, with the stages of the whole-day run.
    """
    from pyspark.sql import functions as F

    from prviz.lake.paths import shift_day
    from prviz.spark import stages as S
    from prviz.spark.job import capture_hour_folders, ground_truth_hour_folders

    folders = capture_hour_folders(spark, config, DAY)
    folders = [f for f in folders if int(f.rstrip("/").split("/")[-1]) % every == 0]
    globs = [f"{folder}/*" for folder in folders]
    label_folders = [
        folder
        for k in range(config.label_window_days + 1)
        for folder in ground_truth_hour_folders(spark, config, shift_day(DAY, k))
    ]
    label_folders = [f for f in label_folders if int(f.rstrip("/").split("/")[-1]) % every == 0]
    label_globs = [f"{folder}/*" for folder in label_folders]

    def size(paths):
        return sum(
            p.stat().st_size for g in paths for p in Path(g[len("file:") :]).parent.glob("*")
        )

    def lines(paths=globs):
        return S.read_lines(spark, paths)

    def rec():
        return lines().select(F.from_json("line", S.CAPTURE_SCHEMA).alias("rec"))

    def parse():
        return S.parse_captures(lines(), config.csv_score_column, config.json_score_path)

    # The alternatives are written out here (not taken from prviz), so the comparison does not
    # depend on prviz's private helpers; what prviz itself does is recorded below.
    def three_formats():
        return F.coalesce(*[F.expr(f'try_to_timestamp(__t, "{f}")') for f in THREE_FORMATS])

    steps = {
        "read_text": lines,
        "from_json": rec,
        "from_json_and_timestamp": lambda: (
            rec()
            .withColumn("__t", F.col("rec.eventMetadata.inferenceTime"))
            .select("rec", three_formats().alias("t"))
        ),
        "from_json_and_one_timestamp": lambda: (
            rec()
            .withColumn("__t", F.col("rec.eventMetadata.inferenceTime"))
            .select("rec", F.expr(f'try_to_timestamp(__t, "{ONE_TIMESTAMP_PATTERN}")').alias("t"))
        ),
        "path_regexp_extract_x6": lambda: lines().select(
            *[
                F.regexp_extract("source_file", CAPTURE_PATH_REGEX, i).alias(f"g{i}")
                for i in range(1, 7)
            ]
        ),
        "path_split_once": lambda: (
            lines()
            .select(F.split("source_file", "/").alias("p"))
            .select(*[F.element_at("p", -i).alias(f"g{i}") for i in range(2, 8)])
        ),
        "parse_captures": parse,
        "parse_ground_truth": lambda: S.parse_ground_truth(lines(label_globs)),
    }
    capture_bytes, label_bytes = size(globs), size(label_globs)
    source = Path(S.__file__).read_text()
    out = {
        "prviz_path_parse": "regexp_extract" if "regexp_extract(path" in source else "split",
        "prviz_timestamp_formats": len(getattr(S, "ISO_FORMATS", ())) or None,
        "every_nth_hour": every,
        "capture_bytes": capture_bytes,
        "label_bytes": label_bytes,
        # The filter `reason IS NULL` of capture_predictions is pushed below the projection and
        # inlines the whole parse expression into it; counted here on the optimized plans.
        "from_json_in_plan_parse_captures": parse()
        ._jdf.queryExecution()
        .optimizedPlan()
        .toString()
        .count("from_json"),
        "from_json_in_plan_capture_predictions": S.capture_predictions(parse())
        ._jdf.queryExecution()
        .optimizedPlan()
        .toString()
        .count("from_json"),
    }
    timed = _timed_steps(
        meter,
        {
            f"{name}_s": (lambda build=build: build().write.format("noop").mode("overwrite").save())
            for name, build in steps.items()
        },
        repeats,
        budget,
    )
    for name in steps:
        wall = timed.get(f"{name}_s")
        total = label_bytes if name == "parse_ground_truth" else capture_bytes
        out[name] = {
            "wall_s": wall,
            "walls": timed.get(f"{name}_walls"),
            "mb_per_s": total / wall / 1e6 if wall else None,
            "load": timed.get(f"{name}_load"),
            "error": timed.get(f"{name}_error"),
        }
    return out


def run_e2e(
    spark, meter, out: Path, records: int, seed: int, breakdown=False, repeats=3, budget=20.0
) -> dict:
    from prviz.config import JobConfig
    from prviz.demo.generator import DemoSpec, write_demo_data
    from prviz.spark.job import run_job

    folder = out / "e2e" / f"records{records}"
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    demo = write_demo_data(
        folder / "data", dt.date.fromisoformat(DAY), 1, seed, DemoSpec(records_per_day=records)
    )
    generate_s = time.perf_counter() - started
    config = JobConfig(
        capture_uri=demo.capture_root,
        ground_truth_uri=demo.ground_truth_root,
        lake_uri=str((folder / "lake").resolve()),
    )
    record = {"records_requested": records, "generate_s": generate_s}
    with meter.measure(record):
        report = run_job(spark, config, [DAY])
    if breakdown:
        record["parse_breakdown"] = parse_breakdown(
            spark, meter, config, repeats=repeats, budget=budget
        )
    stages = {}
    for stage, days in report.items():
        meta = days[DAY]
        stages[stage] = meta.get("spark_seconds", meta.get("seconds"))
    pred = report["predictions"][DAY]
    wall = record["wall_s"]
    cores = os.cpu_count() or 1
    capture_bytes = pred["input_bytes"]
    label_bytes = sum(f.stat().st_size for f in Path(demo.ground_truth_root).rglob("*.jsonl"))
    record.update(
        {
            "stage_seconds": stages,
            "capture_records": pred["capture_records"],
            "predictions": pred["predictions"],
            "quarantined_records": pred["quarantined_records"],
            "input_files": pred["input_files"],
            "capture_bytes": capture_bytes,
            "label_bytes_all_folders": label_bytes,
            "distinct_scores": report["score_counts"][DAY]["distinct_scores"],
            "n_labeled": report["labeled_predictions"][DAY]["n_labeled"],
            "cores": cores,
            "records_per_s": pred["capture_records"] / wall,
            "capture_mb_per_s": capture_bytes / wall / 1e6,
            "capture_mb_per_s_per_core": capture_bytes / wall / 1e6 / cores,
            "parse_stage_mb_per_s_per_core": capture_bytes / stages["predictions"] / 1e6 / cores,
        }
    )
    bytes_per_core_s = capture_bytes / wall / cores
    record["core_hours_150tb"] = TB_PER_DAY * 1e12 / bytes_per_core_s / 3600
    record["core_hours_150tb_parse_only"] = (
        TB_PER_DAY * 1e12 / (capture_bytes / stages["predictions"] / cores) / 3600
    )
    return record


def _version(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
        return (done.stderr + done.stdout).strip().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "unknown"


def code_fingerprint() -> dict:
    """sha256 (first 12 hex) of the prviz files measured: the code changes while people work."""
    import hashlib

    files = [
        "prviz/spark/stages.py",
        "prviz/spark/job.py",
        "prviz/curves/compute.py",
        "prviz/curves/pr_math.py",
        "prviz/spark/session.py",
        "prviz/demo/generator.py",
    ]
    out = {}
    for name in files:
        path = REPO / name
        if path.exists():
            out[name] = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return out


def machine_facts(spark) -> dict:
    import pandas
    import pyspark
    import sklearn

    meminfo = Path("/proc/meminfo").read_text()
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1))
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else "java"
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "java": _version([java, "-version"]),
        "spark": spark.version,
        "pyspark": pyspark.__version__,
        "spark_master": spark.sparkContext.master,
        "spark_driver_memory": spark.conf.get("spark.driver.memory", "?"),
        "spark_shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
        "numpy": np.__version__,
        "pandas": pandas.__version__,
        "pyarrow": pa.__version__,
        "scikit_learn": sklearn.__version__,
    }


def _print_line(record: dict) -> None:
    if "error" in record or "wall_s" not in record:
        return
    parts = ", ".join(
        f"{k}={v:.2f}" for k, v in record.get("parts", {}).items() if isinstance(v, float)
    )
    peak = record.get("peak_rss_mb", {})
    print(
        f"  {record['method']:<13} {record['wall_s']:8.2f} s (x{len(record['walls'])})  "
        f"{record.get('rows_per_s', 0) / 1e6:7.2f} M rows/s  "
        f"py {peak.get('python') or 0:6.0f} MB  jvm {peak.get('jvm') or 0:6.0f} MB  "
        f"load {record['load_start'][0]:.2f}->{record['load_end'][0]:.2f}  {parts}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e6,1e7", help="row counts, comma-separated")
    parser.add_argument("--out", default=str(REPO / "bench" / "out"))
    parser.add_argument(
        "--methods", default=",".join(ALL_METHODS), help=f"subset of {','.join(ALL_METHODS)}"
    )
    parser.add_argument(
        "--skip",
        default="",
        help="what not to run: size[:ties|:noties]:method, comma-separated (e.g. 3e7:noties:mllib_py)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="at most this many runs a method")
    parser.add_argument(
        "--repeat-budget", type=float, default=20.0, help="repeat only while the runs fit in s"
    )
    parser.add_argument("--e2e-records", type=int, default=1_000_000, help="0 = no end-to-end")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-profile", action="store_true", help="skip the prviz breakdowns")
    parser.add_argument("--write-docs", action="store_true", help="also write docs/performance.md")
    parser.add_argument("--tag", default="", help="suffix of the results file name")
    args = parser.parse_args(argv)

    sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    methods = [m for m in args.methods.split(",") if m]
    unknown = set(methods) - set(ALL_METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}")
    skip = set()
    for item in filter(None, args.skip.split(",")):
        fields = item.split(":")
        modes = (True, False) if len(fields) == 2 else (fields[1] == "ties",)
        for ties in modes:
            skip.add((int(float(fields[0])), ties, fields[-1]))
    out = Path(args.out).resolve()
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)

    results: dict = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "argv": sys.argv[1:] if argv is None else argv,
        "load_at_start": _load(),
        "method_info": METHOD_INFO,
        "definitions": DEFINITION,
        "data_spec": {
            "variants": VARIANTS,
            "base_rate": BASE_RATE,
            "beta_negatives": BETA_NEG,
            "beta_positives": BETA_POS,
            "tie_decimals": TIE_DECIMALS,
            "rows_per_file": ROWS_PER_FILE,
            "min_files": MIN_FILES,
            "seed": args.seed,
        },
        "repeats": {"max": args.repeats, "budget_s": args.repeat_budget},
        "runs": [],
        "prviz_profile": {},
        "e2e": None,
    }
    run_started = time.perf_counter()

    # data first (no Spark running yet)
    datasets: dict[int, dict[bool, dict]] = {}
    for n in [WARM_ROWS, *sizes]:
        started = time.perf_counter()
        facts = write_dataset(data_dir, n, args.seed)
        for ties, fact in facts.items():
            fact["ties"] = ties
        datasets[n] = facts
        print(
            f"data: {n:,} rows x 2 tie modes in {time.perf_counter() - started:.1f} s", flush=True
        )
    results["datasets"] = {
        f"{n}_{'ties' if t else 'noties'}": f for n, fs in datasets.items() for t, f in fs.items()
    }

    from prviz.spark.session import local_session

    load_before = _load()
    started = time.perf_counter()
    spark = local_session("prviz-bench")
    results["session_start"] = {
        "wall_s": time.perf_counter() - started,
        "load_start": load_before,
        "load_end": _load(),
    }
    print(f"Spark session started in {results['session_start']['wall_s']:.1f} s", flush=True)
    results["machine"] = machine_facts(spark)
    results["code"] = code_fingerprint()
    meter = Meter(spark)
    ctx = {"spark": spark, "repeats": args.repeats, "repeat_budget": args.repeat_budget}

    # warm-up: every method once on the small input, untimed
    started = time.perf_counter()
    reference = None
    for method in methods:
        record, result = run_method(ctx, meter, method, datasets[WARM_ROWS][False], reference)
        if method == "sklearn" and "error" not in record:
            reference = _reference(result)
    if args.e2e_records:
        run_e2e(spark, meter, out, WARM_E2E_RECORDS, args.seed)
    results["warmup_s"] = time.perf_counter() - started
    print(f"warm-up done in {results['warmup_s']:.1f} s", flush=True)

    for n in sizes:
        for ties in (True, False):
            data = datasets[n][ties]
            print(f"{n:,} rows, {'ties' if ties else 'no ties'}:", flush=True)
            reference = None
            for method in methods:
                if (n, ties, method) in skip:
                    results["runs"].append(
                        {"method": method, "rows": n, "ties": ties, "skipped": True}
                    )
                    continue
                if method == "prviz_q4" and ties:
                    continue  # the data is already on 4 decimals: identical to prviz
                record, result = run_method(
                    ctx, meter, method, data, reference, args.repeats, args.repeat_budget
                )
                _print_line(record)
                results["runs"].append(record)
                if method == "sklearn" and "error" not in record:
                    reference = _reference(result)
                    record["pr_auc_reference"] = reference["pr_auc"]
                if method in ("prviz", "prviz_q4") and "error" not in record:
                    key = f"{n}_{'ties' if ties else 'noties'}_{method}"
                    results["prviz_profile"][key] = _prviz_profile(
                        ctx, meter, data, result, method, args.no_profile
                    )
                del result
                gc.collect()
            _save(results, out, args.tag)

    if args.e2e_records:
        print(f"end to end: {args.e2e_records:,} capture records ...", flush=True)
        results["e2e"] = run_e2e(
            spark,
            meter,
            out,
            args.e2e_records,
            args.seed,
            breakdown=not args.no_profile,
            repeats=args.repeats,
            budget=args.repeat_budget,
        )
        e2e = results["e2e"]
        print(
            f"  {e2e['wall_s']:.1f} s, {e2e['capture_bytes'] / 1e6:.0f} MB capture, "
            f"{e2e['capture_mb_per_s_per_core']:.2f} MB/s/core, "
            f"{e2e['core_hours_150tb']:,.0f} core-hours per 150 TB/day",
            flush=True,
        )

    results["load_at_end"] = _load()
    results["total_s"] = time.perf_counter() - run_started
    path = _save(results, out, args.tag)
    spark.stop()
    markdown = bench_report.render(results)
    (out / "performance.md").write_text(markdown)
    print()
    print(bench_report.render_tables(results))
    print(f"results: {path}\nreport: {out / 'performance.md'}")
    if args.write_docs:
        from doc_sections import write_keeping

        write_keeping(REPO / "docs" / "performance.md", markdown)
        print(f"wrote {REPO / 'docs' / 'performance.md'}")
    return 0


def _reference(result: dict) -> dict:
    curves = result["_curves"]
    return {
        "ap": result["ap"],
        "curves": curves,
        "pr_auc": {v: _reference_pr_auc(*curves[v]) for v in VARIANTS},
    }


def _prviz_profile(ctx, meter, data, result, method, no_profile) -> dict:
    if no_profile:
        return {}
    counts = result["_counts"]
    decimals = TIE_DECIMALS if method == "prviz_q4" else None
    profile = {"counts_rows": counts.num_rows}
    # the off-Spark part alone, on the counts already in the driver (a floor of its own)
    record = {}
    with meter.measure(record):
        frame = counts.to_pandas()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from prviz.curves.compute import curves_from_counts

            curves_from_counts(frame, decimals, 200)
    profile["off_spark_alone"] = {
        k: record[k] for k in ("wall_s", "load_start", "load_end", "peak_rss_mb")
    }
    profile["off_spark_cprofile"] = profile_off_spark(counts, decimals)
    profile["spark_breakdown"] = spark_breakdown(
        ctx, meter, data, method, ctx["repeats"], ctx["repeat_budget"]
    )
    return profile


def _save(results: dict, out: Path, tag: str) -> Path:
    name = f"results{'-' + tag if tag else ''}.json"
    path = out / name
    path.write_text(json.dumps(results, indent=1, default=_json_default))
    return path


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
