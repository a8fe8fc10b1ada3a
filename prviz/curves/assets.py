"""Rolling-window curves computed from daily score counts, never from raw captures."""

import dagster as dg
import pandas as pd

from prviz.curves.compute import POINTS_SCHEMA, SUMMARY_SCHEMA, curves_from_counts, to_table
from prviz.lake.paths import shift_day
from prviz.metadata import summary_metadata
from prviz.partitions import partition_days
from prviz.resources import PipelineResource

WINDOW_DAYS = 7


def compute_window(pipeline: PipelineResource, day: str, window_days: int = WINDOW_DAYS) -> dict:
    """Merge `window_days` of score counts ending on `day`; write summary and thinned points."""
    lake = pipeline.lake()
    days = [shift_day(day, -k) for k in range(window_days - 1, -1, -1)]
    counts, missing = lake.read_days("score_counts", days)
    frame = (
        counts.to_pandas()
        if counts is not None
        else pd.DataFrame(columns=["endpoint", "variant", "score", "n_pos", "n_neg", "n_unlabeled"])
    )
    summary, _points, thin, messages = curves_from_counts(
        frame, pipeline.score_decimals, pipeline.thin_points, with_all=True
    )
    summary_uri = lake.write_table("pr_curves_7d_summary", day, to_table(summary, SUMMARY_SCHEMA))
    lake.write_table("pr_curves_7d_points_thin", day, to_table(thin, POINTS_SCHEMA))
    if missing:
        messages.append(f"score_counts missing for {len(missing)} of {window_days} days: {missing}")
    return {
        "summary": summary.to_dict(orient="records"),
        "days_present": window_days - len(missing),
        "days_missing": missing,
        "warnings": messages,
        "uri": summary_uri,
    }


def build_curve_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        name="pr_curves_7d",
        group_name="curves",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        ins={
            "score_counts": dg.AssetIn(
                partition_mapping=dg.TimeWindowPartitionMapping(
                    start_offset=-(WINDOW_DAYS - 1), allow_nonexistent_upstream_partitions=True
                ),
                dagster_type=dg.Nothing,
            )
        },
        kinds={"python", "parquet"},
        description="The trailing 7-day precision-recall curve and summary per variant, plus an "
        "all-variants row (variant '__all__'), merged from daily score_counts.",
    )
    def pr_curves_7d(context: dg.AssetExecutionContext, pipeline: PipelineResource) -> None:
        for day in partition_days(context):
            result = compute_window(pipeline, day)
            for warning in result["warnings"]:
                context.log.warning(f"pr_curves_7d {day}: {warning}")
            metadata = summary_metadata(result["summary"])
            metadata.update(
                {
                    "days_present": dg.MetadataValue.int(result["days_present"]),
                    "days_missing": dg.MetadataValue.json(result["days_missing"]),
                    "uri": dg.MetadataValue.path(result["uri"].removeprefix("file://")),
                    "warning_count": dg.MetadataValue.int(len(result["warnings"])),
                }
            )
            context.add_asset_metadata(metadata, partition_key=day)

    return [pr_curves_7d]
