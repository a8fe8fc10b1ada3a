"""The prviz code location: every asset, resource and schedule, wired for one environment.

`PRVIZ_ENV` (local by default) is read here and only here, when Dagster loads the code location
(`@dg.definitions` defers it: importing this module reads nothing and starts nothing).
"""

import dagster as dg

from prviz.capture.assets import build_source_assets
from prviz.config import Settings
from prviz.curves.assets import build_curve_assets
from prviz.monitoring.config import MonitoringConfig
from prviz.monitoring.definitions import build_monitoring
from prviz.partitions import daily_partitions
from prviz.publish.assets import build_publish_assets
from prviz.publish.resources import PublisherResource, aws_publisher
from prviz.resources import PipelineResource
from prviz.spark.assets import build_spark_stages

DAILY_JOB = "daily_pr_job"


def build_assets(settings: Settings) -> list:
    partitions = daily_partitions(settings.start_date)
    return [
        *build_source_assets(partitions),
        build_spark_stages(partitions),
        *build_curve_assets(partitions),
        *build_publish_assets(partitions),
    ]


def build_resources(settings: Settings) -> dict:
    """Local Spark + local publication by default; EMR (Pipes) + QuickSight in aws mode."""
    from prviz.spark.emr import spark_runner_from_options

    return {
        "pipeline": PipelineResource.from_settings(settings),
        "spark": spark_runner_from_options(settings.env, dict(settings.spark_options)),
        "publisher": aws_publisher() if settings.env == "aws" else PublisherResource(),
    }


def build_definitions(settings: Settings) -> dg.Definitions:
    assets = build_assets(settings)
    daily_job = dg.define_asset_job(
        DAILY_JOB,
        selection=dg.AssetSelection.all()
        - dg.AssetSelection.assets("sagemaker_data_capture", "model_monitor_ground_truth"),
        description="Captures -> curves -> dashboard for one day (or a range, in one run).",
    )
    # cross-cutting policy in one visible place: schedule, freshness, quality checks, alerts
    monitoring = build_monitoring(
        MonitoringConfig.from_settings(settings), daily_partitions(settings.start_date), daily_job
    )
    return dg.Definitions(
        assets=assets,
        jobs=[daily_job],
        asset_checks=monitoring.asset_checks,
        schedules=monitoring.schedules,
        sensors=monitoring.sensors,
        resources={**build_resources(settings), **monitoring.resources},
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.from_env())
