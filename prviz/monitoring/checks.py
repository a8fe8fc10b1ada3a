"""Asset checks: per-day data quality, model quality and freshness.

The quality checks are partitioned like their assets (`@asset_check(partitions_def=…)`, a
preview feature in dagster 1.13), so every evaluation is recorded for its day. They run inside
the runs that materialize their asset (the daily job selects the checks of its assets). In a
range run (a backfill in one run) Dagster would record a single, unpartitioned evaluation, so
there a check records one `AssetCheckEvaluation` per day itself.

Where the blocking checks live: Dagster gates only the steps that consume the checked asset,
and predictions -> labeled_predictions -> score_counts -> pr_curves are one step (one Spark
application). A blocking check on `predictions` would therefore gate nothing; the checks that
must stop publication (incomplete or badly parsed captures) target `pr_curves`, which
`pr_dashboard` (and later `quicksight_dataset`) consume, and read the predictions' figures.

Figures come from what the pipeline already reported: the latest materialization's metadata
for the day (predictions, labeled_predictions), and pr_summary in the lake (per variant AP, best
F1, positives). Nothing is rescanned.
"""

import datetime as dt
import warnings
from collections.abc import Callable, Iterator

import dagster as dg

from prviz.lake.paths import shift_day
from prviz.monitoring import rules
from prviz.monitoring.config import BASELINE_DAYS, MonitoringConfig
from prviz.resources import PipelineResource

PREDICTIONS = dg.AssetKey("predictions")
LABELED_PREDICTIONS = dg.AssetKey("labeled_predictions")
PR_CURVES = dg.AssetKey("pr_curves")
FRESHNESS_CHECK_NAME = "freshness_check"  # the name build_time_partition_freshness_checks uses

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- reading the day's figures ---------------------------------------------------------------
def _plain(value):
    return getattr(value, "value", value)


def latest_metadata(instance: dg.DagsterInstance, asset_key: dg.AssetKey, day: str) -> dict | None:
    """The metadata of the latest materialization of `asset_key` for `day`, as plain values."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[day]), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        return None
    return {k: _plain(v) for k, v in records[0].asset_materialization.metadata.items()}


def latest_materialization_timestamp(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, day: str
) -> float | None:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[day]), limit=1
    ).records
    return records[0].timestamp if records else None


def _summary_rows(pipeline: PipelineResource, days: list[str]) -> list[dict]:
    table, _missing = pipeline.lake().read_days("pr_summary", days)
    return table.to_pylist() if table is not None else []


def _no_summary(day: str) -> rules.Verdict:
    return rules.Verdict(
        False,
        f"pr_summary has no data for {day} in the lake: materialize pr_curves for that day first",
        {"day": day},
    )


def _to_metadata(figures: dict) -> dict[str, dg.MetadataValue]:
    out = {}
    for key, value in figures.items():
        if isinstance(value, bool):
            out[key] = dg.MetadataValue.bool(value)
        elif isinstance(value, int):
            out[key] = dg.MetadataValue.int(value)
        elif isinstance(value, float):
            out[key] = dg.MetadataValue.float(value)
        elif isinstance(value, str):
            out[key] = dg.MetadataValue.text(value)
        elif value is None:
            out[key] = dg.MetadataValue.null()
        else:
            out[key] = dg.MetadataValue.json(value)
    return out


# -- one evaluation per day, in single-day and range runs ------------------------------------
def _evaluate_days(
    context: dg.AssetCheckExecutionContext,
    partitions_def: dg.PartitionsDefinition,
    asset_key: dg.AssetKey,
    check_name: str,
    severity: dg.AssetCheckSeverity,
    blocking: bool,
    judge: Callable[[str], rules.Verdict],
) -> Iterator:
    if not (context.has_partition_key or context.has_partition_key_range):
        raise dg.Failure(f"{check_name} judges one day: run it for a partition (a day)")
    days = partitions_def.get_partition_keys_in_range(context.partition_key_range)

    def safe(day: str) -> rules.Verdict:
        try:
            return judge(day)
        except Exception as error:  # a check that cannot read its figures must not pass
            context.log.exception(f"{check_name} could not be evaluated for {day}")
            return rules.Verdict(
                False,
                f"{check_name} could not be evaluated for {day}: {type(error).__name__}: {error}",
                {"day": day, "error": f"{type(error).__name__}: {error}"},
            )

    if context.has_partition_key:
        verdict = safe(days[0])
        yield dg.AssetCheckResult(
            passed=verdict.passed,
            severity=severity,
            description=verdict.description,
            metadata=_to_metadata(verdict.metadata),
        )
        return
    for day in days:
        verdict = safe(day)
        yield dg.AssetCheckEvaluation(
            asset_key=asset_key,
            check_name=check_name,
            passed=verdict.passed,
            severity=severity,
            description=verdict.description,
            metadata=_to_metadata(verdict.metadata),
            blocking=blocking,
            partition=day,
        )
    yield dg.Output(None)


def _missing_figures(asset: str, day: str) -> rules.Verdict:
    return rules.Verdict(
        False,
        f"{asset} has no reported figures for {day}: materialize {asset} for that day first",
        {"day": day},
    )


# -- the checks ----------------------------------------------------------------------------
_BASELINE_DESCRIPTIONS = {
    "average_precision_vs_baseline": "Per variant, the day's average precision is at least the "
    "median of the 7 previous days minus max_ap_drop (WARN, never blocking).",
    "best_f1_vs_baseline": "Per variant, the day's best F1 is at least the median of the 7 "
    "previous days minus max_f1_drop (WARN, never blocking).",
}


def build_quality_checks(
    config: MonitoringConfig,
    partitions_def: dg.PartitionsDefinition,
    clock: Clock = utc_now,
) -> list[dg.AssetChecksDefinition]:
    """Data-quality (blocking where publishing would mislead) and model-quality (WARN) checks."""
    ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN

    def previous_days(day: str) -> list[str]:
        start = partitions_def.get_first_partition_key()
        days = [shift_day(day, -k) for k in range(BASELINE_DAYS, 0, -1)]
        return [d for d in days if start is None or d >= start]

    @dg.asset_check(asset=PREDICTIONS, partitions_def=partitions_def)
    def volume_near_median(context: dg.AssetCheckExecutionContext):
        """The day's prediction count is within ±max_volume_change of the median of the 7
        previous days (WARN): a jump or a dip means traffic changed or captures are missing."""

        def judge(day: str) -> rules.Verdict:
            today = latest_metadata(context.instance, PREDICTIONS, day)
            if today is None or "predictions" not in today:
                return _missing_figures("predictions", day)
            history = {}
            for previous in previous_days(day):
                meta = latest_metadata(context.instance, PREDICTIONS, previous)
                if meta is not None and meta.get("predictions") is not None:
                    history[previous] = int(meta["predictions"])
            return rules.volume_near_median(
                day, int(today["predictions"]), history, config.max_volume_change
            )

        yield from _evaluate_days(
            context, partitions_def, PREDICTIONS, "volume_near_median", WARN, False, judge
        )

    @dg.asset_check(asset=LABELED_PREDICTIONS, partitions_def=partitions_def)
    def label_coverage(context: dg.AssetCheckExecutionContext):
        """Share of the day's predictions with a label (WARN): none at all fails at once; the
        minimum applies from label_coverage_grace_days after the day (labels arrive late)."""

        def judge(day: str) -> rules.Verdict:
            meta = latest_metadata(context.instance, LABELED_PREDICTIONS, day)
            if meta is None or "n_predictions" not in meta:
                return _missing_figures("labeled_predictions", day)
            age = (clock().date() - dt.date.fromisoformat(day)).days
            return rules.label_coverage(
                day,
                int(meta["n_predictions"]),
                int(meta.get("n_labeled") or 0),
                config.min_label_coverage,
                age,
                config.label_coverage_grace_days,
            )

        yield from _evaluate_days(
            context, partitions_def, LABELED_PREDICTIONS, "label_coverage", WARN, False, judge
        )

    @dg.asset_check(asset=PR_CURVES, partitions_def=partitions_def, blocking=True)
    def capture_hours_complete(context: dg.AssetCheckExecutionContext):
        """Every capture stream (endpoint/variant) has data for every hour of the day, and every
        stream seen the day before is there (ERROR, blocking: a partial day's curves mislead)."""

        def judge(day: str) -> rules.Verdict:
            meta = latest_metadata(context.instance, PREDICTIONS, day)
            if meta is None or "capture_records" not in meta:
                return _missing_figures("predictions", day)
            before = latest_metadata(context.instance, PREDICTIONS, shift_day(day, -1)) or {}
            return rules.capture_hours_complete(
                day,
                meta.get("capture_hours_present") or {},
                meta.get("capture_hours_missing") or {},
                (before.get("capture_hours_present") or {}).keys(),
                config.max_missing_capture_hours,
                meta.get("empty_streams") or (),
            )

        yield from _evaluate_days(
            context, partitions_def, PR_CURVES, "capture_hours_complete", ERROR, True, judge
        )

    @dg.asset_check(asset=PR_CURVES, partitions_def=partitions_def, blocking=True)
    def capture_quarantine_rate(context: dg.AssetCheckExecutionContext):
        """Share of the day's capture records quarantined as unparseable is at most
        max_quarantine_rate (ERROR, blocking: curves from a biased subset mislead). The
        description and metadata give the count and share of every reason."""

        def judge(day: str) -> rules.Verdict:
            meta = latest_metadata(context.instance, PREDICTIONS, day)
            if meta is None or "capture_records" not in meta:
                return _missing_figures("predictions", day)
            return rules.quarantine_rate(
                day,
                int(meta["capture_records"]),
                int(meta.get("quarantined_records") or 0),
                meta.get("quarantined_by_reason") or {},
                config.max_quarantine_rate,
            )

        yield from _evaluate_days(
            context, partitions_def, PR_CURVES, "capture_quarantine_rate", ERROR, True, judge
        )

    @dg.asset_check(asset=PREDICTIONS, partitions_def=partitions_def)
    def capture_streams_have_records(context: dg.AssetCheckExecutionContext):
        """Every capture stream (endpoint/variant) with hour folders on the day holds at least
        one record (WARN): files that are all empty or blank leave that variant without a curve;
        the other variants' curves are unaffected."""

        def judge(day: str) -> rules.Verdict:
            meta = latest_metadata(context.instance, PREDICTIONS, day)
            if meta is None or "capture_records_by_variant" not in meta:
                return _missing_figures("predictions", day)
            return rules.capture_streams_have_records(
                day, meta["capture_records_by_variant"], meta.get("capture_hours_present") or {}
            )

        yield from _evaluate_days(
            context, partitions_def, PREDICTIONS, "capture_streams_have_records", WARN, False, judge
        )

    @dg.asset_check(asset=LABELED_PREDICTIONS, partitions_def=partitions_def)
    def label_quarantine_rate(context: dg.AssetCheckExecutionContext):
        """Share of the ground-truth lines collected on the day that were quarantined, every
        reason including unknown_key (a key matching no prediction it could label), is at most
        max_quarantine_rate (WARN: bad labels lower coverage, they do not corrupt the curves)."""

        def judge(day: str) -> rules.Verdict:
            meta = latest_metadata(context.instance, LABELED_PREDICTIONS, day)
            if meta is None or "label_lines_collected_today" not in meta:
                return _missing_figures("labeled_predictions", day)
            return rules.label_quarantine_rate(
                day,
                int(meta["label_lines_collected_today"]),
                int(meta.get("quarantined_labels") or 0),
                meta.get("quarantined_labels_by_reason") or {},
                config.max_quarantine_rate,
                str(meta.get("unknown_key_window") or ""),
                meta.get("unknown_key_prediction_days"),
                meta.get("unknown_key_prediction_days_missing") or (),
            )

        yield from _evaluate_days(
            context,
            partitions_def,
            LABELED_PREDICTIONS,
            "label_quarantine_rate",
            WARN,
            False,
            judge,
        )

    @dg.asset_check(asset=LABELED_PREDICTIONS, partitions_def=partitions_def)
    def conflicting_labels(context: dg.AssetCheckExecutionContext):
        """Share of the day's labeled keys that received conflicting labels is at most
        max_quarantine_rate (WARN; the latest delivery is kept). Duplicate deliveries of the same
        value are counted and reported, never failed."""

        def judge(day: str) -> rules.Verdict:
            meta = latest_metadata(context.instance, LABELED_PREDICTIONS, day)
            if meta is None or "label_delivered_keys" not in meta:
                return _missing_figures("labeled_predictions", day)
            return rules.conflicting_labels(
                day,
                int(meta["label_delivered_keys"]),
                int(meta.get("conflicting_keys") or 0),
                int(meta.get("duplicate_keys") or 0),
                config.max_quarantine_rate,
            )

        yield from _evaluate_days(
            context, partitions_def, LABELED_PREDICTIONS, "conflicting_labels", WARN, False, judge
        )

    @dg.asset_check(asset=PR_CURVES, partitions_def=partitions_def)
    def has_positives(context: dg.AssetCheckExecutionContext, pipeline: PipelineResource):
        """Every variant with labels has at least one positive (WARN): otherwise its AP and
        curve are undefined for the day."""

        def judge(day: str) -> rules.Verdict:
            if not pipeline.lake().has_partition("pr_summary", day):
                return _no_summary(day)
            return rules.has_positives(day, _summary_rows(pipeline, [day]))

        yield from _evaluate_days(
            context, partitions_def, PR_CURVES, "has_positives", WARN, False, judge
        )

    def baseline_check(metric: str, max_drop: float, name: str):
        @dg.asset_check(
            asset=PR_CURVES,
            name=name,
            partitions_def=partitions_def,
            description=_BASELINE_DESCRIPTIONS[name],
        )
        def metric_vs_baseline(context: dg.AssetCheckExecutionContext, pipeline: PipelineResource):
            def judge(day: str) -> rules.Verdict:
                if not pipeline.lake().has_partition("pr_summary", day):
                    return _no_summary(day)
                today = _summary_rows(pipeline, [day])
                history = _summary_rows(pipeline, previous_days(day))
                return rules.metric_vs_baseline(day, metric, today, history, max_drop)

            yield from _evaluate_days(context, partitions_def, PR_CURVES, name, WARN, False, judge)

        return metric_vs_baseline

    checks = [
        volume_near_median,
        capture_streams_have_records,
        label_coverage,
        label_quarantine_rate,
        conflicting_labels,
        capture_hours_complete,
        capture_quarantine_rate,
        has_positives,
        baseline_check("average_precision", config.max_ap_drop, "average_precision_vs_baseline"),
        baseline_check("best_f1", config.max_f1_drop, "best_f1_vs_baseline"),
    ]

    if config.champion_variants:

        @dg.asset_check(asset=PR_CURVES, partitions_def=partitions_def)
        def challenger_vs_champion(
            context: dg.AssetCheckExecutionContext, pipeline: PipelineResource
        ):
            """Each challenger's AP is within max_ap_drop of its endpoint's champion (WARN);
            a challenger ahead by more is named as a promotion candidate."""

            def judge(day: str) -> rules.Verdict:
                if not pipeline.lake().has_partition("pr_summary", day):
                    return _no_summary(day)
                return rules.challenger_vs_champion(
                    day,
                    _summary_rows(pipeline, [day]),
                    config.champion_variants,
                    config.max_ap_drop,
                )

            yield from _evaluate_days(
                context, partitions_def, PR_CURVES, "challenger_vs_champion", WARN, False, judge
            )

        checks.append(challenger_vs_champion)
    return checks


def build_freshness_checks(config: MonitoringConfig) -> list[dg.AssetChecksDefinition]:
    """Yesterday's partition of each freshness asset must exist by the daily deadline (ERROR).

    `build_time_partition_freshness_checks` is partition-aware (it asks for the day's partition;
    a backfill of an older day does not satisfy it), unlike the newer FreshnessPolicy.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        return list(
            dg.build_time_partition_freshness_checks(
                assets=[dg.AssetKey.from_user_string(a) for a in config.freshness_assets],
                deadline_cron=config.deadline_cron,
                timezone="UTC",
                severity=dg.AssetCheckSeverity.ERROR,
            )
        )


def check_keys(checks: list[dg.AssetChecksDefinition]) -> list[dg.AssetCheckKey]:
    return sorted((key for c in checks for key in c.check_keys), key=lambda k: k.to_user_string())
