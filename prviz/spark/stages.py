"""Spark stages as plain DataFrame -> DataFrame functions (no Dagster, no I/O decisions).

The same functions run on local Spark and on EMR (Spark 3.5 on EMR 7.x, Spark 4.x on EMR Spark 8),
so they use only APIs both have. Spark 4 turns ANSI mode on by default, where a bad cast raises;
every cast of captured text therefore goes through `try_cast` / `try_to_binary` /
`try_to_timestamp`, and a record that cannot be read gets a quarantine `reason` instead of
failing the day.

Record-level contract: every non-blank captured line becomes exactly one parsed row, either good
(`reason` null, one or more scores) or quarantined (`reason` set, raw line kept). So
`records = good + quarantined` holds exactly, per day and per file. Ground-truth lines follow the
same contract, and a valid label line whose key matches no prediction it could label is quarantined
too (`unknown_key_labels`): per collection day, `lines = quarantined + matched`.
"""

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

_IO = T.StructType(
    [
        T.StructField("observedContentType", T.StringType()),
        T.StructField("mode", T.StringType()),
        T.StructField("data", T.StringType()),
        T.StructField("encoding", T.StringType()),
    ]
)
CAPTURE_SCHEMA = T.StructType(
    [
        T.StructField(
            "captureData",
            T.StructType(
                [T.StructField("endpointInput", _IO), T.StructField("endpointOutput", _IO)]
            ),
        ),
        T.StructField(
            "eventMetadata",
            T.StructType(
                [
                    T.StructField("eventId", T.StringType()),
                    T.StructField("inferenceId", T.StringType()),
                    T.StructField("inferenceTime", T.StringType()),
                ]
            ),
        ),
        T.StructField("eventVersion", T.StringType()),
        T.StructField("_corrupt_record", T.StringType()),
    ]
)
GROUND_TRUTH_SCHEMA = T.StructType(
    [
        T.StructField(
            "groundTruthData",
            T.StructType(
                [T.StructField("data", T.StringType()), T.StructField("encoding", T.StringType())]
            ),
        ),
        T.StructField("eventMetadata", T.StructType([T.StructField("eventId", T.StringType())])),
        T.StructField("eventVersion", T.StringType()),
        T.StructField("_corrupt_record", T.StringType()),
    ]
)
# Spark >= 3.4 returns *partial* results for a malformed line unless a corrupt-record column is
# asked for; with it, any line that is not valid JSON of the schema's shape is flagged whole.
_JSON_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"}


def _unreadable(line: Column) -> Column:
    """Why a flagged line could not be read: not JSON at all, or JSON of another shape."""
    return F.when(F.get_json_object(line, "$").isNull(), "malformed_json").otherwise(
        "schema_mismatch"
    )


# Layouts (segments counted from the end of a file path):
#   captures:     {capture_root}/{endpoint -7}/{variant -6}/yyyy -5/mm -4/dd -3/hh -2/{file -1}
#   ground truth: {gt_root}/yyyy -5/mm -4/dd -3/hh -2/{file -1}

PREDICTION_COLUMNS = (
    "dt", "endpoint", "variant", "join_key", "event_id", "inference_id", "inference_time",
    "batch_index", "batch_size", "score",
)  # fmt: skip
LABELED_COLUMNS = (
    "dt", "endpoint", "variant", "join_key", "batch_index", "score", "label", "label_status",
    "label_collected_at",
)  # fmt: skip
QUARANTINE_COLUMNS = ("dt", "source", "endpoint", "variant", "reason", "source_file", "line")
SCORE_COUNT_COLUMNS = ("dt", "endpoint", "variant", "score", "n_pos", "n_neg", "n_unlabeled")

MAX_QUARANTINED_LINE = 4000  # characters of a bad line kept for diagnosis


def read_lines(spark, paths: list[str]) -> DataFrame:
    """Raw JSON Lines with their source file: `line, source_file, file_size`."""
    return spark.read.text(paths).select(
        F.col("value").alias("line"),
        F.col("_metadata.file_path").alias("source_file"),
        F.col("_metadata.file_size").alias("file_size"),
    )


def _decode(data: Column, encoding: Column) -> Column:
    """The payload as text: CSV and JSON as they are, BASE64 decoded; null if unknown/undecodable."""
    enc = F.upper(F.trim(encoding))
    return (
        F.when(enc.isin("CSV", "JSON"), data)
        .when(enc == "BASE64", F.expr("decode(try_to_binary(__data, 'base64'), 'UTF-8')"))
        .otherwise(F.lit(None))
    )


def _score_strings(payload: Column, content_type: Column, csv_column: int, json_path: str):
    """Score texts of a response: one per CSV line / JSON prediction; null array if none."""
    ctype = F.lower(F.trim(content_type))
    csv_lines = F.filter(
        F.split(F.regexp_replace(payload, "\r", ""), "\n"), lambda line: F.trim(line) != ""
    )
    csv_scores = F.transform(
        csv_lines, lambda line: F.trim(F.element_at(F.split(line, ","), csv_column + 1))
    )
    # The configured path first; a bare number or a bare list of numbers as a fallback. Spark
    # inlines a column into every expression that references it, so each expensive function
    # (get_json_object, from_json) is written to appear once per row: the value found is
    # normalised to the text of a JSON array and parsed once.
    found = F.get_json_object(payload, json_path)
    bare = F.when(~F.ltrim(payload).startswith("{"), payload)
    inner = F.regexp_replace(F.coalesce(found, bare), r"^\s*\[|\]\s*$", "")
    json_scores = F.from_json(F.concat(F.lit("["), inner, F.lit("]")), T.ArrayType(T.StringType()))
    return (
        F.when(ctype.startswith("text/csv"), csv_scores)
        .when(ctype.contains("json"), json_scores)
        .otherwise(F.lit(None))
    ), ctype


ISO_FORMATS = (
    "yyyy-MM-dd'T'HH:mm:ss.SSSSSSX",
    "yyyy-MM-dd'T'HH:mm:ss.SSSX",
    "yyyy-MM-dd'T'HH:mm:ssX",
)


def _path_parts(path: Column):
    """`part(-k)`: the k-th path segment from the end (-1 is the file name)."""
    segments = F.split(path, "/")
    return lambda k: F.element_at(segments, k)


def _timestamp(text: Column) -> Column:
    """ISO-8601 UTC with or without milliseconds (or microseconds); null if none matches."""
    return F.coalesce(*[F.try_to_timestamp(text, F.lit(fmt)) for fmt in ISO_FORMATS])


def parse_captures(
    lines: DataFrame, csv_score_column: int = 0, json_score_path: str = "$.predictions[*].score"
) -> DataFrame:
    """One row per non-blank captured line, good or quarantined.

    Columns: dt, hour, endpoint, variant, source_file, file_size, reason (null when good),
    join_key, event_id, inference_id, inference_time, scores (array<double>), line (kept only
    for quarantined rows). `dt`/`hour`/`endpoint`/`variant` come from the file's folder.
    """
    path = F.col("source_file")
    rec = F.from_json(F.col("line"), CAPTURE_SCHEMA, _JSON_OPTIONS)
    # The folders come from prviz's own glob of the layout ({endpoint}/{variant}/yyyy/mm/dd/hh),
    # so the path is split once (six regexp_extract calls per row cost ~30% of the parse).
    part = _path_parts(path)
    df = lines.where(F.trim(F.col("line")) != "").select(
        "line",
        "source_file",
        "file_size",
        part(-7).alias("endpoint"),
        part(-6).alias("variant"),
        F.concat_ws("-", part(-5), part(-4), part(-3)).alias("dt"),
        F.expr("try_cast(element_at(split(source_file, '/'), -2) as int)").alias("hour"),
        rec.alias("rec"),
    )
    out = F.col("rec.captureData.endpointOutput")
    meta = F.col("rec.eventMetadata")
    df = df.withColumn("__data", out["data"])
    df = df.withColumn("payload", _decode(F.col("__data"), out["encoding"]))
    score_texts, ctype = _score_strings(
        F.col("payload"), out["observedContentType"], csv_score_column, json_score_path
    )
    df = df.withColumn("score_texts", score_texts)
    # SQL lambda: `try_cast` has no Column method on Spark 3.5.
    df = df.withColumn("scores", F.expr("transform(score_texts, x -> try_cast(x as double))"))
    df = df.withColumn("inference_time", _timestamp(meta["inferenceTime"]))
    enc = F.upper(F.trim(out["encoding"]))
    reason = (
        F.when(F.col("rec._corrupt_record").isNotNull(), _unreadable(F.col("line")))
        .when(F.col("rec.captureData.endpointOutput").isNull(), "missing_fields")
        .when(F.coalesce(meta["inferenceId"], meta["eventId"]).isNull(), "missing_event_id")
        .when(out["data"].isNull(), "missing_score")
        .when(~enc.isin("CSV", "JSON", "BASE64") | enc.isNull(), "unknown_encoding")
        .when(F.col("payload").isNull(), "undecodable_payload")
        .when(~(ctype.startswith("text/csv") | ctype.contains("json")), "unsupported_content_type")
        .when(F.coalesce(F.size("score_texts"), F.lit(0)) <= 0, "missing_score")
        .when(F.exists("scores", lambda s: s.isNull()), "unparseable_score")
        .when(F.exists("scores", lambda s: F.isnan(s) | (F.abs(s) == float("inf"))),
              "non_finite_score")
        .when(F.col("inference_time").isNull(), "bad_inference_time")
    )  # fmt: skip
    df = df.withColumn("reason", reason)
    return df.select(
        "dt",
        "hour",
        "endpoint",
        "variant",
        "source_file",
        "file_size",
        "reason",
        F.coalesce(meta["inferenceId"], meta["eventId"]).alias("join_key"),
        meta["eventId"].alias("event_id"),
        meta["inferenceId"].alias("inference_id"),
        "inference_time",
        F.when(F.col("reason").isNull(), F.col("scores")).alias("scores"),
        F.when(F.col("reason").isNotNull(), F.substring("line", 1, MAX_QUARANTINED_LINE)).alias(
            "line"
        ),
    )


def capture_predictions(parsed: DataFrame) -> DataFrame:
    """Good parsed records exploded to one prediction per score (mini-batches keep position)."""
    good = parsed.where(F.col("reason").isNull())
    return good.select(
        "dt",
        "endpoint",
        "variant",
        "join_key",
        "event_id",
        "inference_id",
        "inference_time",
        F.size("scores").alias("batch_size"),
        F.posexplode("scores").alias("batch_index", "score"),
    ).select(*PREDICTION_COLUMNS)


def quarantine_rows(parsed: DataFrame, source: str) -> DataFrame:
    """Quarantined records with their reason, file and raw line."""
    endpoint = F.col("endpoint") if "endpoint" in parsed.columns else F.lit(None).cast("string")
    variant = F.col("variant") if "variant" in parsed.columns else F.lit(None).cast("string")
    return parsed.where(F.col("reason").isNotNull()).select(
        "dt",
        F.lit(source).alias("source"),
        endpoint.alias("endpoint"),
        variant.alias("variant"),
        "reason",
        "source_file",
        "line",
    )


def parse_ground_truth(lines: DataFrame) -> DataFrame:
    """One row per non-blank ground-truth line, good or quarantined.

    Columns: dt (the day the label was collected, from the folder), collected_at (the folder's
    hour), source_file, reason, join_key, labels (array<int>, one per mini-batch line), label_text
    (the normalised label values, for duplicate/conflict detection), line (the raw line, first
    MAX_QUARANTINED_LINE characters, for every row: a valid line can still be quarantined later,
    as `unknown_key`; callers drop it where they cannot need it).
    """
    path = F.col("source_file")
    rec = F.from_json(F.col("line"), GROUND_TRUTH_SCHEMA, _JSON_OPTIONS)
    part = _path_parts(path)
    df = lines.where(F.trim(F.col("line")) != "").select(
        "line",
        "source_file",
        F.concat_ws("-", part(-5), part(-4), part(-3)).alias("dt"),
        part(-2).alias("__hour"),
        rec.alias("rec"),
    )
    gt = F.col("rec.groundTruthData")
    df = df.withColumn("__data", gt["data"])
    df = df.withColumn("payload", _decode(F.col("__data"), gt["encoding"]))
    # "1", "1\n0\n1" (CSV mini-batch), "[1,0]" (JSON list), all normalised to a list of texts.
    df = df.withColumn(
        "values",
        F.filter(
            F.split(F.regexp_replace(F.col("payload"), r"[\[\]\s\"]+", " "), "[ ,]+"),
            lambda v: v != "",
        ),
    )
    enc = F.upper(F.trim(gt["encoding"]))
    reason = (
        F.when(F.col("rec._corrupt_record").isNotNull(), _unreadable(F.col("line")))
        .when(gt.isNull(), "missing_fields")
        .when(F.col("rec.eventMetadata.eventId").isNull(), "missing_event_id")
        .when(gt["data"].isNull(), "missing_label")
        .when(~enc.isin("CSV", "JSON", "BASE64") | enc.isNull(), "unknown_encoding")
        .when(F.col("payload").isNull(), "undecodable_payload")
        .when(F.size("values") <= 0, "missing_label")
        .when(F.exists("values", lambda v: ~v.isin("0", "1")), "invalid_label")
    )
    df = df.withColumn("reason", reason)
    collected_at = F.to_timestamp(
        F.concat(F.col("dt"), F.lit(" "), F.col("__hour"), F.lit(":00:00")), "yyyy-MM-dd HH:mm:ss"
    )
    good = F.col("reason").isNull()
    return df.select(
        "dt",
        collected_at.alias("collected_at"),
        "source_file",
        "reason",
        F.col("rec.eventMetadata.eventId").alias("join_key"),
        F.when(good, F.transform("values", lambda v: v.cast("int"))).alias("labels"),
        F.when(good, F.concat_ws(",", "values")).alias("label_text"),
        F.substring("line", 1, MAX_QUARANTINED_LINE).alias("line"),
    )


def unknown_key_labels(
    parsed_labels: DataFrame, prediction_keys: DataFrame, window_days: int, label_days
) -> DataFrame:
    """Valid label lines collected on `label_days` whose key matches no prediction they could label.

    A label collected on day L can label a prediction of day L - window_days .. L (the window of
    `resolve_labels`, seen from the label's side). `prediction_keys` (dt, join_key) holds the keys
    of those prediction days that exist; a valid line of day L whose key is not among the keys of
    L - window_days .. L is returned with `reason = 'unknown_key'` (resolve_labels never uses it).
    Every other valid line of day L is *matched*, so per label day:
    lines = quarantined (every reason, unknown_key included) + matched.

    One left-anti join on the key, the window being a condition of the join: the predictions side
    needs only its key column (and `dt`, the folder). Columns: parse_ground_truth's.
    """
    good = parsed_labels.where(F.col("reason").isNull() & F.col("dt").isin(list(label_days)))
    keys = prediction_keys.select(
        F.col("dt").alias("__prediction_dt"), F.col("join_key").alias("__prediction_key")
    )
    label_day = F.to_date(F.col("dt"))
    prediction_day = F.to_date(F.col("__prediction_dt"))
    matches = (
        (F.col("join_key") == F.col("__prediction_key"))
        & (prediction_day >= F.date_sub(label_day, window_days))
        & (prediction_day <= label_day)
    )
    return good.join(keys, matches, "left_anti").withColumn("reason", F.lit("unknown_key"))


def resolve_labels(parsed_labels: DataFrame, prediction_keys: DataFrame, window_days: int):
    """One label per (prediction day, key), from labels collected within that day's window.

    A prediction of day D takes labels collected on D .. D+window_days; among those deliveries
    the latest wins (collection hour, then file name, then value, so the choice is
    deterministic). `prediction_keys` has columns dt, join_key.

    Columns: dt, join_key, labels, label_collected_at, n_deliveries, n_distinct (> 1 = conflict).
    """
    good = parsed_labels.where(F.col("reason").isNull()).select(
        "join_key",
        F.col("dt").alias("label_dt"),
        "collected_at",
        "source_file",
        "labels",
        "label_text",
    )
    day = F.to_date("dt")
    in_window = (F.to_date("label_dt") >= day) & (
        F.to_date("label_dt") <= F.date_add(day, window_days)
    )
    order = F.struct("collected_at", "source_file", "label_text")
    return (
        prediction_keys.join(good, on="join_key", how="inner")
        .where(in_window)
        .groupBy("dt", "join_key")
        .agg(
            F.max_by(F.struct("labels", "collected_at"), order).alias("latest"),
            F.count(F.lit(1)).alias("n_deliveries"),
            F.countDistinct("label_text").alias("n_distinct"),
        )
        .select(
            "dt",
            "join_key",
            F.col("latest.labels").alias("labels"),
            F.col("latest.collected_at").alias("label_collected_at"),
            "n_deliveries",
            "n_distinct",
        )
    )


def join_labels(predictions: DataFrame, labels: DataFrame | None) -> DataFrame:
    """Predictions with their label, one row per prediction (never duplicated by a label).

    `labels` is resolve_labels' output (None when no label folder exists yet). A mini-batch's
    label applies only when it holds one value per batch line; otherwise the prediction is
    unlabeled with `label_status = 'batch_mismatch'`.
    """
    if labels is None:
        joined = predictions.select(
            "*",
            F.lit(None).cast("array<int>").alias("labels"),
            F.lit(None).cast("timestamp").alias("label_collected_at"),
            F.lit(None).cast("long").alias("n_deliveries"),
            F.lit(None).cast("long").alias("n_distinct"),
        )
    else:
        joined = predictions.join(labels, on=["dt", "join_key"], how="left")
    matches = F.col("labels").isNotNull() & (F.size("labels") == F.col("batch_size"))
    status = (
        F.when(F.col("labels").isNull(), "unlabeled")
        .when(matches, "labeled")
        .otherwise("batch_mismatch")
    )
    return joined.select(
        "dt",
        "endpoint",
        "variant",
        "join_key",
        "batch_index",
        "score",
        F.when(matches, F.element_at("labels", F.col("batch_index") + 1)).alias("label"),
        status.alias("label_status"),
        F.when(matches, F.col("label_collected_at")).alias("label_collected_at"),
        "n_deliveries",
        "n_distinct",
    )


def score_counts(labeled: DataFrame, score_decimals: int | None = None) -> DataFrame:
    """Per (dt, endpoint, variant, score): positives, negatives and unlabeled predictions.

    Exact (grouped by the exact double) unless `score_decimals` is set, in which case scores are
    rounded (Spark `round`, HALF_UP) into buckets and the curves carry an AP error bound.
    """
    score = F.col("score") if score_decimals is None else F.round("score", score_decimals)
    return (
        labeled.withColumn("score", score)
        .groupBy("dt", "endpoint", "variant", "score")
        .agg(
            F.sum(F.when(F.col("label") == 1, 1).otherwise(0)).cast("long").alias("n_pos"),
            F.sum(F.when(F.col("label") == 0, 1).otherwise(0)).cast("long").alias("n_neg"),
            F.sum(F.when(F.col("label").isNull(), 1).otherwise(0))
            .cast("long")
            .alias("n_unlabeled"),
        )
        .select(*SCORE_COUNT_COLUMNS)
    )
