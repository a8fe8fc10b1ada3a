"""The Spark application that computes a range of days: parse -> join labels -> counts -> curves.

One call of `run_job` is one Spark application's work for one run, whatever the number of days
or selected stages (DESIGN.md §2). Each stage reads its input from the lake and writes its output
back, replacing each day whole (staging + commit), so a subset run (for example a late-label
recompute of labeled_predictions -> pr_curves) never repeats the JSON parse, and a range run gives
exactly the rows single-day runs give.

The result is a plain, JSON-serialisable report: per stage, per day, the figures the Dagster layer
turns into metadata. Nothing here imports Dagster: the same module runs on EMR.
"""

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

import pyarrow as pa

from prviz.config import JobConfig
from prviz.curves.compute import compute_curves_for_day
from prviz.lake.paths import shift_day, validate_day
from prviz.lake.store import Lake, LakeError, MissingPartitionError
from prviz.spark import stages as S

log = logging.getLogger("prviz.spark.job")

STAGES = ("predictions", "labeled_predictions", "score_counts", "pr_curves")

_TS = pa.timestamp("us", tz="UTC")
PREDICTIONS_SCHEMA = pa.schema(
    [
        ("endpoint", pa.string()),
        ("variant", pa.string()),
        ("join_key", pa.string()),
        ("event_id", pa.string()),
        ("inference_id", pa.string()),
        ("inference_time", _TS),
        ("batch_index", pa.int32()),
        ("batch_size", pa.int32()),
        ("score", pa.float64()),
    ]
)
QUARANTINE_SCHEMA = pa.schema(
    [(name, pa.string()) for name in S.QUARANTINE_COLUMNS if name != "dt"]
)
LABELED_SCHEMA = pa.schema(
    [
        ("endpoint", pa.string()),
        ("variant", pa.string()),
        ("join_key", pa.string()),
        ("batch_index", pa.int32()),
        ("score", pa.float64()),
        ("label", pa.int32()),
        ("label_status", pa.string()),
        ("label_collected_at", _TS),
        ("n_deliveries", pa.int64()),
        ("n_distinct", pa.int64()),
    ]
)
SCORE_COUNTS_SCHEMA = pa.schema(
    [
        ("endpoint", pa.string()),
        ("variant", pa.string()),
        ("score", pa.float64()),
        ("n_pos", pa.int64()),
        ("n_neg", pa.int64()),
        ("n_unlabeled", pa.int64()),
    ]
)

Report = dict[str, dict[str, dict]]


def spark_uri(uri: str) -> str:
    return uri if "://" in uri else f"file://{uri}"


def hadoop_glob(spark, pattern: str) -> list[str]:
    """Paths matching a Hadoop glob (`*`, `{a,b}`), listed by the cluster's own filesystem."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(pattern)
    statuses = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).globStatus(path)
    return [] if statuses is None else sorted(s.getPath().toString() for s in statuses)


# hour folders 00..23 only: a stray "24".."29" is reported by the capture listing, never read
HOUR_GLOB = "{[01][0-9],2[0-3]}"


def _alternatives(names: Sequence[str]) -> str:
    if not names:
        return "*"
    return names[0] if len(names) == 1 else "{" + ",".join(names) + "}"


def _day_folder(day: str) -> str:
    return day.replace("-", "/")


def capture_hour_folders(spark, config: JobConfig, day: str) -> list[str]:
    """The capture hour folders of a day: `{root}/{endpoint}/{variant}/yyyy/mm/dd/hh`."""
    pattern = "/".join(
        [
            spark_uri(config.capture_uri),
            _alternatives(config.endpoints),
            _alternatives(config.variants),
            _day_folder(day),
            HOUR_GLOB,
        ]
    )
    return hadoop_glob(spark, pattern)


def ground_truth_hour_folders(spark, config: JobConfig, day: str) -> list[str]:
    pattern = f"{spark_uri(config.ground_truth_uri)}/{_day_folder(day)}/{HOUR_GLOB}"
    return hadoop_glob(spark, pattern)


def _write_days(
    spark_df, lake: Lake, dataset: str, days: Sequence[str], token: str, empty_schema: pa.Schema
) -> dict[str, str]:
    """Write a DataFrame partitioned by dt into staging, then commit each day (empty if none)."""
    spark_df.write.mode("overwrite").partitionBy("dt").parquet(lake.staging_uri(token, dataset))
    uris = {}
    for day in days:
        staged = lake.staged_partition_path(token, dataset, day)
        if lake.exists(staged):
            uris[day] = lake.commit(dataset, day, staged)
        else:
            uris[day] = lake.write_table(dataset, day, empty_schema.empty_table())
    return uris


def _read_lake(spark, lake: Lake, dataset: str, days: Sequence[str]):
    missing = [day for day in days if not lake.has_partition(dataset, day)]
    if missing:
        raise MissingPartitionError(
            f"{dataset} is missing for {', '.join(missing)}: materialize {dataset} for "
            "those days first"
        )
    # exactly the committed version's files (on S3 a day's folder may briefly hold two versions),
    # each checked against its recorded size; a corrupt file fails the read, whatever the
    # cluster's spark.sql.files.ignoreCorruptFiles / ignoreMissingFiles say
    paths = [uri for day in days for uri in lake.partition_file_uris(dataset, day)]
    reader = spark.read.option("ignoreCorruptFiles", "false").option("ignoreMissingFiles", "false")
    return reader.option("basePath", lake.uri(dataset)).parquet(*paths)


def _rows(df) -> list[dict]:
    return [row.asDict() for row in df.collect()]


# -- stages ------------------------------------------------------------------------------------
def run_predictions(spark, config: JobConfig, lake: Lake, days: Sequence[str], token: str) -> dict:
    started = time.monotonic()
    report = {day: {"warnings": []} for day in days}
    folders = {day: capture_hour_folders(spark, config, day) for day in days}
    globs = [f"{folder}/*" for day in days for folder in folders[day]]
    if globs:
        parsed = S.parse_captures(
            S.read_lines(spark, globs), config.csv_score_column, config.json_score_path
        ).persist()
    else:
        parsed = None
    if parsed is not None:
        uris = _write_days(
            S.capture_predictions(parsed), lake, "predictions", days, token, PREDICTIONS_SCHEMA
        )
        quarantine_uris = _write_days(
            S.quarantine_rows(parsed, "capture"),
            lake,
            "quarantine_captures",
            days,
            token,
            QUARANTINE_SCHEMA,
        )
        from pyspark.sql import functions as F

        by_variant = _rows(
            parsed.groupBy("dt", "endpoint", "variant").agg(
                F.count(F.lit(1)).alias("records"),
                F.sum(F.when(F.col("reason").isNull(), 1).otherwise(0)).alias("good"),
                F.sum(F.coalesce(F.size("scores"), F.lit(0))).alias("predictions"),
                F.countDistinct("hour").alias("hours"),
            )
        )
        reasons = _rows(parsed.where(F.col("reason").isNotNull()).groupBy("dt", "reason").count())
        files = _rows(
            parsed.select("dt", "source_file", "file_size")
            .distinct()
            .groupBy("dt")
            .agg(F.count(F.lit(1)).alias("files"), F.sum("file_size").alias("bytes"))
        )
        parsed.unpersist()
    else:
        uris = {
            d: lake.write_table("predictions", d, PREDICTIONS_SCHEMA.empty_table()) for d in days
        }
        quarantine_uris = {
            d: lake.write_table("quarantine_captures", d, QUARANTINE_SCHEMA.empty_table())
            for d in days
        }
        by_variant, reasons, files = [], [], []
    seconds = time.monotonic() - started
    for day in days:
        meta = report[day]
        rows = [r for r in by_variant if r["dt"] == day]
        meta["capture_records"] = sum(r["records"] for r in rows)
        meta["good_records"] = sum(r["good"] for r in rows)
        meta["quarantined_records"] = meta["capture_records"] - meta["good_records"]
        meta["predictions"] = sum(r["predictions"] for r in rows)
        meta["predictions_by_variant"] = {
            f"{r['endpoint']}/{r['variant']}": r["predictions"] for r in rows
        }
        meta["quarantined_by_reason"] = {r["reason"]: r["count"] for r in reasons if r["dt"] == day}
        file_row = next((r for r in files if r["dt"] == day), {"files": 0, "bytes": 0})
        meta["input_files"] = file_row["files"]
        meta["input_bytes"] = int(file_row["bytes"] or 0)
        hours = defaultdict(set)
        for folder in folders[day]:
            parts = folder.rstrip("/").split("/")
            hours[f"{parts[-6]}/{parts[-5]}"].add(int(parts[-1]))
        meta["capture_hours_present"] = {key: len(value) for key, value in sorted(hours.items())}
        meta["capture_hours_missing"] = {
            key: sorted(set(range(24)) - value)
            for key, value in sorted(hours.items())
            if len(value) < 24
        }
        # a stream with hour folders but not one record (empty files, blank lines) is empty
        records = {f"{r['endpoint']}/{r['variant']}": r["records"] for r in rows}
        meta["capture_records_by_variant"] = {
            key: records.get(key, 0) for key in sorted(set(records) | set(hours))
        }
        meta["empty_streams"] = sorted(key for key in hours if not records.get(key))
        for key in meta["empty_streams"]:
            meta["warnings"].append(
                f"{key}: capture files in {len(hours[key])} hour folder(s) of {day} but not one "
                "record"
            )
        meta["spark_seconds"] = seconds
        meta["range_days"] = len(days)
        meta["uri"] = uris[day]
        meta["quarantine_uri"] = quarantine_uris[day]
        if meta["capture_records"] == 0:
            meta["warnings"].append(f"no capture data for {day}: wrote an empty partition")
        elif meta["quarantined_records"]:
            meta["warnings"].append(
                f"{meta['quarantined_records']} capture records quarantined: "
                f"{meta['quarantined_by_reason']}"
            )
    return report


def run_labeled_predictions(
    spark, config: JobConfig, lake: Lake, days: Sequence[str], token: str
) -> dict:
    from pyspark.sql import functions as F

    started = time.monotonic()
    report = {day: {"warnings": []} for day in days}
    predictions = _read_lake(spark, lake, "predictions", days)
    window = config.label_window_days
    label_days = sorted({shift_day(d, k) for d in days for k in range(window + 1)})
    folders = {day: ground_truth_hour_folders(spark, config, day) for day in label_days}
    globs = [f"{folder}/*" for day in label_days for folder in folders[day]]
    # The prediction days a label collected on a run day can label (L - window .. L), and those
    # of them in the lake: a label is unknown_key against the days that exist (a day not yet
    # processed counts as having no key until it is, and the label day is re-run).
    key_days = sorted({shift_day(d, -k) for d in days for k in range(window + 1)})
    available = {d for d in key_days if d in days or lake.has_partition("predictions", d)}
    if globs:
        parsed = S.parse_ground_truth(S.read_lines(spark, globs))
        # the raw line is kept only where it can be quarantined: bad lines, and every line
        # collected on the run's days (a valid one may match no prediction: unknown_key)
        keep_line = F.col("reason").isNotNull() | F.col("dt").isin(list(days))
        parsed = parsed.withColumn("line", F.when(keep_line, F.col("line"))).persist()
        keys = predictions.select("dt", "join_key").distinct()
        labels = S.resolve_labels(parsed, keys, window)
    else:
        parsed = None
        labels = None
    labeled = S.join_labels(predictions, labels)
    uris = _write_days(labeled, lake, "labeled_predictions", days, token, LABELED_SCHEMA)
    written = _read_lake(spark, lake, "labeled_predictions", days)
    stats = _rows(
        written.groupBy("dt", "endpoint", "variant").agg(
            F.count(F.lit(1)).alias("n_predictions"),
            F.sum(F.when(F.col("label").isNotNull(), 1).otherwise(0)).alias("n_labeled"),
            F.sum(F.when(F.col("label") == 1, 1).otherwise(0)).alias("n_positives"),
            F.sum(F.when(F.col("label_status") == "batch_mismatch", 1).otherwise(0)).alias(
                "n_batch_mismatch"
            ),
            F.countDistinct(F.when(F.col("n_distinct") > 1, F.col("join_key"))).alias(
                "conflicting_keys"
            ),
            F.countDistinct(
                F.when((F.col("n_deliveries") > 1) & (F.col("n_distinct") == 1), F.col("join_key"))
            ).alias("duplicate_keys"),
            F.countDistinct(F.when(F.col("n_deliveries") >= 1, F.col("join_key"))).alias(
                "label_delivered_keys"
            ),
        )
    )
    if parsed is not None:
        # the window's prediction keys, pruned to the key column (dt is the folder)
        window_keys = _read_lake(spark, lake, "predictions", sorted(available))
        unknown = S.unknown_key_labels(parsed, window_keys.select("dt", "join_key"), window, days)
        collected = parsed.where(F.col("dt").isin(list(days)))
        quarantine_uris = _write_days(
            S.quarantine_rows(collected.unionByName(unknown), "ground_truth"),
            lake,
            "quarantine_labels",
            days,
            token,
            QUARANTINE_SCHEMA,
        )
        lines = _rows(
            collected.groupBy("dt").agg(
                F.count(F.lit(1)).alias("count"),
                F.sum(F.when(F.col("reason").isNull(), 1).otherwise(0)).alias("valid"),
            )
        )
        parsed.unpersist()
    else:
        quarantine_uris = {
            d: lake.write_table("quarantine_labels", d, QUARANTINE_SCHEMA.empty_table())
            for d in days
        }
        lines = []
    # counted from what was committed (small), so the anti-join is not run a second time
    bad = _rows(_read_lake(spark, lake, "quarantine_labels", days).groupBy("dt", "reason").count())
    seconds = time.monotonic() - started
    for day in days:
        meta = report[day]
        rows = [r for r in stats if r["dt"] == day]
        for key in (
            "n_predictions",
            "n_labeled",
            "n_positives",
            "n_batch_mismatch",
            "conflicting_keys",
            "duplicate_keys",
            "label_delivered_keys",
        ):
            meta[key] = sum(r[key] for r in rows)
        meta["label_coverage"] = (
            meta["n_labeled"] / meta["n_predictions"] if meta["n_predictions"] else 0.0
        )
        meta["label_coverage_by_variant"] = {
            f"{r['endpoint']}/{r['variant']}": (
                r["n_labeled"] / r["n_predictions"] if r["n_predictions"] else 0.0
            )
            for r in rows
        }
        window_days = [shift_day(day, k) for k in range(window + 1)]
        meta["label_window"] = f"{window_days[0]}..{window_days[-1]}"
        meta["label_days_present"] = sum(1 for d in window_days if folders[d])
        # label lines collected today: lines = quarantined (every reason) + matched
        line_row = next((r for r in lines if r["dt"] == day), {"count": 0, "valid": 0})
        meta["label_lines_collected_today"] = int(line_row["count"])
        meta["label_lines_valid"] = int(line_row["valid"] or 0)
        meta["quarantined_labels_by_reason"] = {
            r["reason"]: r["count"] for r in bad if r["dt"] == day
        }
        meta["quarantined_labels"] = sum(meta["quarantined_labels_by_reason"].values())
        meta["unknown_key_labels"] = meta["quarantined_labels_by_reason"].get("unknown_key", 0)
        meta["label_lines_matched"] = meta["label_lines_valid"] - meta["unknown_key_labels"]
        key_window = [shift_day(day, -k) for k in range(window, -1, -1)]
        missing = [d for d in key_window if d not in available]
        meta["unknown_key_window"] = f"{key_window[0]}..{key_window[-1]}"
        meta["unknown_key_prediction_days"] = len(key_window) - len(missing)
        meta["unknown_key_prediction_days_missing"] = missing
        meta["spark_seconds"] = seconds
        meta["range_days"] = len(days)
        meta["uri"] = uris[day]
        meta["quarantine_uri"] = quarantine_uris[day]
        if meta["n_predictions"] and not meta["n_labeled"]:
            meta["warnings"].append(f"no labels have arrived yet for {day}")
        if meta["conflicting_keys"]:
            meta["warnings"].append(
                f"{meta['conflicting_keys']} keys received conflicting labels (latest kept)"
            )
        if meta["unknown_key_labels"]:
            text = (
                f"{meta['unknown_key_labels']} label lines collected on {day} match no "
                f"prediction of {meta['unknown_key_window']}: quarantined as unknown_key"
            )
            if missing:
                text += (
                    f" ({len(missing)} of those {len(key_window)} prediction days are not in the "
                    f"lake: {', '.join(missing)}; labels of those days count as unknown until "
                    f"they are processed and {day} is re-run)"
                )
            meta["warnings"].append(text)
    return report


def run_score_counts(spark, config: JobConfig, lake: Lake, days: Sequence[str], token: str) -> dict:
    from pyspark.sql import functions as F

    started = time.monotonic()
    labeled = _read_lake(spark, lake, "labeled_predictions", days)
    counts = S.score_counts(labeled, config.score_decimals)
    uris = _write_days(counts, lake, "score_counts", days, token, SCORE_COUNTS_SCHEMA)
    stats = _rows(
        _read_lake(spark, lake, "score_counts", days)
        .groupBy("dt")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.sum("n_pos").alias("n_pos"),
            F.sum("n_neg").alias("n_neg"),
            F.sum("n_unlabeled").alias("n_unlabeled"),
        )
    )
    seconds = time.monotonic() - started
    report = {}
    for day in days:
        row = next((r for r in stats if r["dt"] == day), {})
        report[day] = {
            "warnings": [],
            "distinct_scores": int(row.get("rows") or 0),
            "n_pos": int(row.get("n_pos") or 0),
            "n_neg": int(row.get("n_neg") or 0),
            "n_unlabeled": int(row.get("n_unlabeled") or 0),
            "score_decimals": config.score_decimals,
            "spark_seconds": seconds,
            "range_days": len(days),
            "uri": uris[day],
        }
    return report


def run_pr_curves(spark, config: JobConfig, lake: Lake, days: Sequence[str], token: str) -> dict:
    """Curves are computed off-Spark, in the driver, from the (small) merged score counts."""
    started = time.monotonic()
    report = {}
    for day in days:
        counts = lake.read_partition("score_counts", day)
        report[day] = compute_curves_for_day(lake, day, counts, config)
    seconds = time.monotonic() - started
    for day in days:
        report[day]["seconds"] = seconds
        report[day]["range_days"] = len(days)
    return report


RUNNERS: dict[str, Callable] = {
    "predictions": run_predictions,
    "labeled_predictions": run_labeled_predictions,
    "score_counts": run_score_counts,
    "pr_curves": run_pr_curves,
}


def run_job(
    spark, config: JobConfig, days: Sequence[str], stages: Sequence[str] = STAGES
) -> Report:
    """Run the selected stages, in pipeline order, for `days`; return report[stage][day]."""
    days = sorted({validate_day(day) for day in days})
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stages {sorted(unknown)}: choose from {', '.join(STAGES)}")
    lake = config.lake()
    try:  # what killed runs left behind (Lake.sweep_stale); never a reason to fail this run
        lake.sweep_stale()
    except LakeError as error:
        log.warning("could not sweep stale staging in %s: %s", lake.root, error)
    token = lake.new_staging_token()
    report: Report = {}
    try:
        for stage in STAGES:
            if stage in stages:
                log.info("stage %s for %d day(s): %s..%s", stage, len(days), days[0], days[-1])
                report[stage] = RUNNERS[stage](spark, config, lake, days, token)
    finally:
        lake.discard_staging(token)
    return report
