"""Stand-ins for the pipeline's assets: the same keys, deps and metadata, no Spark.

`stand_in_assets` builds a subsettable `spark_stages` multi-asset (predictions,
labeled_predictions, score_counts, pr_curves), `pr_curves_7d`, `quicksight_dataset` and
`pr_dashboard`, wired like the real ones. The Spark stand-in reports, per day, the figures found
in the `figures` resource (a `Figures` object the test edits), through the same
`prviz.metadata.report_metadata` the real asset uses, and writes that day's pr_summary rows to
the lake. Every asset appends (asset, days) to `figures.calls`, so tests see what ran.
"""

import datetime as dt
from dataclasses import dataclass, field

import dagster as dg

from prviz.curves.compute import SUMMARY_SCHEMA
from prviz.lake.store import Lake
from prviz.metadata import report_metadata
from prviz.monitoring.config import MonitoringConfig
from prviz.monitoring.definitions import build_monitoring
from prviz.partitions import partition_days
from prviz.resources import PipelineResource

START = "2025-01-01"
PARTITIONS = dg.DailyPartitionsDefinition(start_date=START, timezone="UTC")
JOB = "daily_pr_job"
STAGES = ("predictions", "labeled_predictions", "score_counts", "pr_curves")
STREAMS = ("fraud-scorer/champion", "fraud-scorer/challenger")


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def summary_row(variant: str, **values) -> dict:
    row = {name: None for name in SUMMARY_SCHEMA.names}
    row.update(
        endpoint="fraud-scorer", variant=variant, n_predictions=5000, n_labeled=4500,
        n_positives=180, label_coverage=0.9, base_rate=0.04, average_precision=0.60,
        pr_auc=0.59, best_f1=0.55, n_thresholds=100, ap_error_bound=0.0,
    )  # fmt: skip
    row.update(values)
    return row


def good_day() -> dict:
    """A healthy day's figures, in the shape of the Spark job's report."""
    return {
        "predictions": {
            "capture_records": 10_000,
            "quarantined_records": 20,
            "quarantined_by_reason": {"malformed_json": 12, "missing_score": 8},
            "predictions": 10_000,
            "capture_hours_present": {s: 24 for s in STREAMS},
            "capture_hours_missing": {},
            "capture_records_by_variant": {s: 5_000 for s in STREAMS},
            "empty_streams": [],
            "warnings": [],
        },
        "labeled_predictions": {
            "n_predictions": 10_000,
            "n_labeled": 9_000,
            "n_positives": 360,
            "label_coverage": 0.9,
            "label_delivered_keys": 9_000,
            "conflicting_keys": 45,
            "duplicate_keys": 90,
            "label_lines_collected_today": 9_500,
            "label_lines_valid": 9_480,
            "label_lines_matched": 9_480,
            "quarantined_labels": 20,
            "quarantined_labels_by_reason": {"invalid_label": 20},
            "unknown_key_labels": 0,
            "unknown_key_window": "2024-12-31..2025-01-07",
            "unknown_key_prediction_days": 8,
            "unknown_key_prediction_days_missing": [],
            "warnings": [],
        },
        "score_counts": {"distinct_scores": 5000, "warnings": []},
        "pr_curves": {"warnings": []},
        "pr_summary": [
            summary_row("champion"),
            summary_row("challenger", average_precision=0.55, best_f1=0.50),
        ],
    }


@dataclass
class Figures:
    """What the stand-in pipeline reports, per day; days not set get `good_day()`."""

    days: dict[str, dict] = field(default_factory=dict)
    calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    lake_uri: str = ""

    def day(self, day: str) -> dict:
        return self.days.setdefault(day, good_day())


def stand_in_assets(partitions_def: dg.PartitionsDefinition = PARTITIONS) -> list:
    specs = [
        dg.AssetSpec("predictions", partitions_def=partitions_def, skippable=True),
        dg.AssetSpec(
            "labeled_predictions", deps=["predictions"], partitions_def=partitions_def,
            skippable=True,
        ),
        dg.AssetSpec(
            "score_counts", deps=["labeled_predictions"], partitions_def=partitions_def,
            skippable=True,
        ),
        dg.AssetSpec(
            "pr_curves", deps=["score_counts"], partitions_def=partitions_def, skippable=True
        ),
    ]  # fmt: skip

    @dg.multi_asset(
        name="spark_stages",
        specs=specs,
        can_subset=True,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def spark_stages(context: dg.AssetExecutionContext, figures: dg.ResourceParam[Figures]):
        days = partition_days(context)
        selected = [s for s in STAGES if dg.AssetKey(s) in context.selected_asset_keys]
        figures.calls.append(("spark_stages:" + ",".join(selected), tuple(days)))
        for stage in selected:
            for day in days:
                report = figures.day(day)
                if stage == "pr_curves":
                    table = dg_table(report["pr_summary"])
                    Lake(figures.lake_uri).write_table("pr_summary", day, table)
                context.add_asset_metadata(
                    report_metadata(report[stage]), asset_key=stage, partition_key=day
                )
            yield dg.MaterializeResult(asset_key=stage)

    def simple(name: str, deps: list[str]):
        @dg.asset(
            name=name,
            deps=deps,
            partitions_def=partitions_def,
            backfill_policy=dg.BackfillPolicy.single_run(),
        )
        def _asset(context: dg.AssetExecutionContext, figures: dg.ResourceParam[Figures]) -> None:
            figures.calls.append((name, tuple(partition_days(context))))

        return _asset

    return [
        spark_stages,
        simple("pr_curves_7d", ["score_counts"]),
        simple("quicksight_dataset", ["pr_curves"]),
        simple("pr_dashboard", ["quicksight_dataset", "pr_curves_7d"]),
    ]


def dg_table(rows: list[dict]):
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=SUMMARY_SCHEMA)


@dataclass
class World:
    """A code location of stand-ins plus the real monitoring, and its resources."""

    defs: dg.Definitions
    monitoring: object
    figures: Figures
    resources: dict
    job: object


def build_world(
    tmp_path, config: MonitoringConfig | None = None, clock=None, window_days: int = 7
) -> World:
    config = config or MonitoringConfig(alert_log=str(tmp_path / "alerts.log"))
    figures = Figures(lake_uri=str(tmp_path / "lake"))
    job = dg.define_asset_job(JOB, selection=dg.AssetSelection.all())
    kwargs = {"clock": clock} if clock else {}
    monitoring = build_monitoring(config, PARTITIONS, job, **kwargs)
    resources = {
        "figures": dg.ResourceDefinition.hardcoded_resource(figures),
        "pipeline": PipelineResource(
            capture_uri=str(tmp_path / "capture"),
            ground_truth_uri=str(tmp_path / "ground-truth"),
            lake_uri=str(tmp_path / "lake"),
            label_window_days=window_days,
        ),
        **monitoring.resources,
    }
    defs = dg.Definitions(
        assets=stand_in_assets(),
        asset_checks=monitoring.asset_checks,
        jobs=[job],
        sensors=monitoring.sensors,
        schedules=monitoring.schedules,
        resources=resources,
    )
    return World(defs, monitoring, figures, resources, job)


def run_day(world: World, instance, day: str, **kwargs):
    return world.defs.resolve_job_def(JOB).execute_in_process(
        instance=instance, partition_key=day, raise_on_error=False, **kwargs
    )


def run_range(world: World, instance, start: str, end: str, **kwargs):
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    return world.defs.resolve_job_def(JOB).execute_in_process(
        instance=instance, tags=tags, raise_on_error=False, **kwargs
    )


def check_state(instance, asset: str, check: str, day: str | None = None):
    """(passed, description, metadata) of the latest completed evaluation of a check for a day."""
    from dagster._core.storage.event_log.base import PartitionKeyFilter

    key = dg.AssetCheckKey(dg.AssetKey(asset), check)
    records = instance.event_log_storage.get_asset_check_execution_history(
        key, limit=50, partition_filter=PartitionKeyFilter(key=day) if day else None
    )
    for record in records:
        evaluation = record.event.asset_check_evaluation if record.event else None
        if evaluation is not None and record.status.value != "PLANNED":
            metadata = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
            return evaluation.passed, evaluation.description, metadata
    return None


def seed_day(instance, lake_uri: str, day: str, report: dict | None = None) -> dict:
    """Record a day as the pipeline would have (runless materializations carrying the same
    metadata, pr_summary in the lake), without running anything. Returns the report used."""
    report = report or good_day()
    for stage in STAGES:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                asset_key=stage, partition=day, metadata=report_metadata(report[stage])
            )
        )
    Lake(lake_uri).write_table("pr_summary", day, dg_table(report["pr_summary"]))
    return report


def run_checks(world: World, instance, checks: list[str], day: str | None = None, **tags):
    """Run only the named checks (`asset:check`), for one day or a range (`tags`)."""
    keys = [dg.AssetCheckKey.from_user_string(c) for c in checks]
    job = dg.define_asset_job("only_checks", selection=dg.AssetSelection.checks(*keys))
    defs = dg.Definitions(
        assets=stand_in_assets(),
        asset_checks=world.monitoring.asset_checks,
        jobs=[job],
        resources=world.resources,
    )
    if day is not None:
        tags = {**tags, "dagster/partition": day}
    return defs.resolve_job_def("only_checks").execute_in_process(
        instance=instance, tags=tags, raise_on_error=False
    )
