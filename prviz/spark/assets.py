"""The Spark stages as one subsettable multi-asset: one Spark application per run.

predictions -> labeled_predictions -> score_counts -> pr_curves are computed by a single call of
the Spark runner (local Spark by default, EMR in production), so a day costs one application and
a late-label recompute (labeled_predictions and below) skips the expensive parse.

A range run (a backfill launched alone, `BackfillPolicy.single_run()`) computes all its days in
that one application, and each day still gets its own figures: `add_asset_metadata(...,
partition_key=day)` scopes metadata to one partition of the run's output materializations.
"""

import dagster as dg

from prviz.lake.store import CorruptFileError, MissingPartitionError
from prviz.metadata import curve_image_markdown, report_metadata, summary_metadata
from prviz.partitions import partition_days
from prviz.resources import PipelineResource
from prviz.spark.job import STAGES
from prviz.spark.resources import SparkRunner

CAPTURE_SOURCE = dg.AssetKey("sagemaker_data_capture")
GROUND_TRUTH_SOURCE = dg.AssetKey("model_monitor_ground_truth")

_DESCRIPTIONS = {
    "predictions": "Captured predictions parsed once into compact Parquet: one row per score "
    "(join key, endpoint, variant, inference time, batch position, score). Bad records go to "
    "quarantine_captures with their reason.",
    "labeled_predictions": "Each prediction of the day with its ground-truth label collected "
    "within the label window (latest delivery wins), or null while none has arrived.",
    "score_counts": "Per (day, endpoint, variant, score): positives, negatives and unlabeled "
    "predictions. Exact and mergeable: every window or rollup is a sum of these.",
    "pr_curves": "The day's precision-recall curve per endpoint and variant (pr_curve_points, "
    "thinned pr_curve_points_thin) and its summary metrics (pr_summary), scikit-learn's "
    "definitions.",
}
_DEPS = {
    "predictions": [CAPTURE_SOURCE],
    "labeled_predictions": ["predictions", GROUND_TRUTH_SOURCE],
    "score_counts": ["labeled_predictions"],
    "pr_curves": ["score_counts"],
}
_KINDS = {"predictions": {"spark", "parquet"}, "labeled_predictions": {"spark", "parquet"},
          "score_counts": {"spark", "parquet"}, "pr_curves": {"python", "parquet"}}  # fmt: skip


def build_spark_stages(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    specs = [
        dg.AssetSpec(
            stage,
            deps=_DEPS[stage],
            description=_DESCRIPTIONS[stage],
            group_name="curves" if stage in ("score_counts", "pr_curves") else "capture",
            partitions_def=partitions_def,
            kinds=_KINDS[stage],
            skippable=True,
        )
        for stage in STAGES
    ]

    @dg.multi_asset(
        name="spark_stages",
        specs=specs,
        can_subset=True,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=dg.RetryPolicy(max_retries=1, delay=30),
    )
    def spark_stages(
        context: dg.AssetExecutionContext, pipeline: PipelineResource, spark: SparkRunner
    ):
        days = partition_days(context)
        selected = [s for s in STAGES if dg.AssetKey(s) in context.selected_asset_keys]
        context.log.info(
            f"one Spark application for {len(days)} day(s) {days[0]}..{days[-1]}: "
            f"{', '.join(selected)}"
        )
        try:
            report = spark.run(pipeline.job_config(), days, selected, context=context)
        except (CorruptFileError, MissingPartitionError) as error:  # a retry would fail again
            raise dg.Failure(description=str(error), allow_retries=False) from error
        for stage in selected:
            for day in days:
                meta = report[stage][day]
                for warning in meta.get("warnings", []):
                    context.log.warning(f"{stage} {day}: {warning}")
                metadata = report_metadata(meta)
                if stage == "pr_curves":
                    metadata.update(summary_metadata(meta.get("summary", [])))
                    metadata["pr_curve"] = dg.MetadataValue.md(
                        _curve_image(pipeline, day) or "no curve"
                    )
                context.add_asset_metadata(metadata, asset_key=stage, partition_key=day)
            yield dg.MaterializeResult(asset_key=stage)

    return spark_stages


def _curve_image(pipeline: PipelineResource, day: str) -> str | None:
    lake = pipeline.lake()
    if not lake.has_partition("pr_curve_points_thin", day):
        return None
    points = lake.read_partition("pr_curve_points_thin", day).to_pandas()
    if points.empty:
        return None
    return curve_image_markdown(points, day)
