"""The freshness rule in plain terms, for reading its evaluations and for a tick at a given time.

`build_time_partition_freshness_checks(deadline_cron="M H * * *")` asks, at any time `now`, for
the daily partition that ended before the latest deadline: before today's H:M that is the day
before yesterday, from H:M on it is yesterday. Its evaluations carry the deadline
(`dagster/latest_cron_tick_timestamp`), not the day; `freshness_day` recovers the day from it.

`freshness_evaluation` applies the same rule at an explicit `now` and returns an evaluation with
the same check key and metadata keys. `prviz.monitoring.tick` records it as a runless evaluation
so that a demo can "advance the clock"; the tests assert it agrees with Dagster's own check.
"""

import datetime as dt

import dagster as dg

from prviz.monitoring.checks import FRESHNESS_CHECK_NAME
from prviz.monitoring.config import MonitoringConfig

DEADLINE_KEY = "dagster/latest_cron_tick_timestamp"
FRESH_UNTIL_KEY = "dagster/fresh_until_timestamp"
LAST_UPDATED_KEY = "dagster/last_updated_timestamp"
PARAMS_KEY = "dagster/freshness_params"


def latest_deadline(now: dt.datetime, hour: int, minute: int) -> dt.datetime:
    """The latest daily H:M UTC at or before `now`."""
    now = now.astimezone(dt.UTC)
    deadline = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return deadline if deadline <= now else deadline - dt.timedelta(days=1)


def day_due_by(deadline: dt.datetime) -> str:
    """The daily (UTC, midnight-aligned) partition that must exist by `deadline`."""
    return (deadline.astimezone(dt.UTC).date() - dt.timedelta(days=1)).isoformat()


def freshness_day(metadata: dict) -> str | None:
    """The day a freshness evaluation was about, from its deadline metadata."""
    value = metadata.get(DEADLINE_KEY)
    timestamp = getattr(value, "value", value)
    if timestamp is None:
        return None
    return day_due_by(dt.datetime.fromtimestamp(float(timestamp), dt.UTC))


def _latest_record(instance: dg.DagsterInstance, asset_key: dg.AssetKey, day: str | None):
    partitions = [day] if day else None
    records = [
        *instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=partitions), limit=1
        ).records,
        *instance.fetch_observations(
            dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=partitions), limit=1
        ).records,
    ]
    return max(records, key=lambda r: r.timestamp) if records else None


def freshness_evaluation(
    instance: dg.DagsterInstance,
    asset_key: dg.AssetKey,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    config: MonitoringConfig,
    now: dt.datetime,
) -> dg.AssetCheckEvaluation | None:
    """The freshness check of `asset_key` evaluated at `now` (None before the first day is due)."""
    hour, minute = config.deadline_hour_minute
    deadline = latest_deadline(now, hour, minute)
    day = day_due_by(deadline)
    first = partitions_def.get_first_partition_key()
    if first is None or day < first:
        return None
    record = _latest_record(instance, asset_key, day)
    metadata = {
        PARAMS_KEY: dg.MetadataValue.json(
            {"timezone": "UTC", "deadline_cron": config.deadline_cron}
        ),
        DEADLINE_KEY: dg.MetadataValue.timestamp(deadline.timestamp()),
    }
    if record is not None:
        metadata[FRESH_UNTIL_KEY] = dg.MetadataValue.timestamp(
            (deadline + dt.timedelta(days=1)).timestamp()
        )
        description = (
            f"Asset is currently fresh, since partition {day} has been observed/materialized."
        )
    else:
        any_record = _latest_record(instance, asset_key, None)
        if any_record is not None:
            metadata[LAST_UPDATED_KEY] = dg.MetadataValue.timestamp(any_record.timestamp)
            description = (
                f"Asset is overdue. We expected partition {day} to have arrived, and it has not."
            )
        else:
            description = (
                "The asset has never been observed/materialized. We currently expect partition "
                f"{day} to have arrived."
            )
    return dg.AssetCheckEvaluation(
        asset_key=asset_key,
        check_name=FRESHNESS_CHECK_NAME,
        passed=record is not None,
        metadata=metadata,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
    )
