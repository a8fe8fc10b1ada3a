"""The two external inputs, observed: SageMaker Data Capture and Model Monitor ground truth.

prviz does not write these; it observes, per day, which hours exist and how many files and bytes
they hold. Each observed day gets a data version (so a change, such as late labels, is visible)
and an observation with its figures.
"""

import datetime as dt

import dagster as dg

from prviz.capture.layout import DayListing, list_capture_day, list_ground_truth_day
from prviz.lake.paths import shift_day
from prviz.resources import PipelineResource


def _days_to_observe(pipeline: PipelineResource, partitions_def) -> list[str]:
    """The label window's worth of days up to today (those whose inputs can still change)."""
    today = dt.datetime.now(dt.UTC).date().isoformat()
    days = [shift_day(today, -k) for k in range(pipeline.label_window_days + 2)]
    valid = set(partitions_def.get_partition_keys()) | {today}
    return sorted(d for d in days if d in valid)


def _s3_options(pipeline: PipelineResource) -> dict:
    """The lake's S3 endpoint and region, for `s3://` capture and ground-truth roots too."""
    return {"endpoint_url": pipeline.s3_endpoint_url, "region": pipeline.s3_region}


def _observe(context, key: dg.AssetKey, listings: list[DayListing]) -> dg.DataVersionsByPartition:
    versions = {}
    for listing in listings:
        context.log_event(
            dg.AssetObservation(
                asset_key=key,
                partition=listing.day,
                metadata={
                    "hours_present": sum(len(h) for h in listing.hours.values()),
                    "files": listing.files,
                    "bytes": listing.bytes,
                    "hours_by_stream": dg.MetadataValue.json(listing.hours),
                    "missing_hours": dg.MetadataValue.json(listing.missing_hours),
                    "unsafe_names_skipped": dg.MetadataValue.json(listing.unsafe_names),
                },
            )
        )
        if listing.unsafe_names:
            context.log.warning(
                f"{key.to_user_string()}: skipped unsafe names {listing.unsafe_names}"
            )
        versions[listing.day] = listing.data_version()
    return dg.DataVersionsByPartition(versions)


def build_source_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.SourceAsset]:
    @dg.observable_source_asset(
        name="sagemaker_data_capture",
        group_name="capture",
        partitions_def=partitions_def,
        description="SageMaker Data Capture JSON Lines ({capture_uri}/{endpoint}/{variant}/"
        "yyyy/mm/dd/hh/*.jsonl), written by the endpoint; observed per day.",
    )
    def sagemaker_data_capture(context, pipeline: PipelineResource):
        days = _days_to_observe(pipeline, partitions_def)
        listings = [
            list_capture_day(
                pipeline.capture_uri,
                d,
                tuple(pipeline.endpoints),
                tuple(pipeline.variants),
                _s3_options(pipeline),
            )
            for d in days
        ]
        return _observe(context, dg.AssetKey("sagemaker_data_capture"), listings)

    @dg.observable_source_asset(
        name="model_monitor_ground_truth",
        group_name="capture",
        partitions_def=partitions_def,
        description="Model Monitor ground-truth JSON Lines ({gt_uri}/yyyy/mm/dd/hh/*.jsonl), "
        "foldered by the day the label was collected; observed per day.",
    )
    def model_monitor_ground_truth(context, pipeline: PipelineResource):
        days = _days_to_observe(pipeline, partitions_def)
        listings = [
            list_ground_truth_day(pipeline.ground_truth_uri, d, _s3_options(pipeline)) for d in days
        ]
        return _observe(context, dg.AssetKey("model_monitor_ground_truth"), listings)

    return [sagemaker_data_capture, model_monitor_ground_truth]
