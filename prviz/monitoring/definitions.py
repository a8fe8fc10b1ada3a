"""Monitoring, wired: the one function `prviz/definitions.py` calls.

monitoring = build_monitoring(MonitoringConfig.from_settings(settings), partitions, daily_job)
dg.Definitions(..., asset_checks=monitoring.asset_checks, schedules=monitoring.schedules,
               sensors=monitoring.sensors, resources={**resources, **monitoring.resources})
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import dagster as dg

from prviz.monitoring.checks import (
    build_freshness_checks,
    build_quality_checks,
    check_keys,
    utc_now,
)
from prviz.monitoring.config import MonitoringConfig
from prviz.monitoring.resources import build_notifiers
from prviz.monitoring.schedules import build_daily_schedule
from prviz.monitoring.sensors import (
    build_alert_sensor,
    build_freshness_sensor,
    build_late_label_sensor,
)


@dataclass(frozen=True)
class MonitoringDefs:
    """Checks, sensors, schedules and notifier resources to add to the code location."""

    config: MonitoringConfig
    partitions_def: dg.PartitionsDefinition
    job_name: str
    asset_checks: list = field(default_factory=list)
    sensors: list = field(default_factory=list)
    schedules: list = field(default_factory=list)
    resources: dict = field(default_factory=dict)
    freshness_checks: list = field(default_factory=list)
    quality_checks: list = field(default_factory=list)

    @property
    def monitored_check_keys(self) -> list[dg.AssetCheckKey]:
        """Every check the alert sensor watches."""
        return check_keys([*self.freshness_checks, *self.quality_checks])


def build_monitoring(
    config: MonitoringConfig,
    partitions_def: dg.PartitionsDefinition,
    job,
    clock: Callable[[], dt.datetime] = utc_now,
) -> MonitoringDefs:
    """Monitoring for the daily job `job` (the `define_asset_job` of prviz/definitions.py).

    `partitions_def` is the assets' daily partitioning; `clock` is for tests and the demo tick
    (the label-coverage grace period and the late-label sensor read it).
    """
    freshness = build_freshness_checks(config)
    quality = build_quality_checks(config, partitions_def, clock)
    notifiers = build_notifiers(config.alert_channels, config.alert_log)
    keys = check_keys([*freshness, *quality])
    return MonitoringDefs(
        config=config,
        partitions_def=partitions_def,
        job_name=job.name,
        asset_checks=[*freshness, *quality],
        sensors=[
            build_freshness_sensor(freshness),
            build_alert_sensor(keys, list(notifiers), config.ui_base_url),
            build_late_label_sensor(job, partitions_def, clock),
        ],
        schedules=[build_daily_schedule(job, config)],
        resources=notifiers,
        freshness_checks=freshness,
        quality_checks=quality,
    )
