"""The one partitioning of prviz: daily, UTC, midnight-aligned, from a configurable start date."""

import datetime as dt

import dagster as dg


def daily_partitions(start_date: dt.date) -> dg.DailyPartitionsDefinition:
    """Daily UTC partitions from `start_date` (PRVIZ_START_DATE) up to yesterday, key YYYY-MM-DD."""
    return dg.DailyPartitionsDefinition(start_date=start_date.isoformat(), timezone="UTC")


def partition_days(context: dg.AssetExecutionContext) -> list[str]:
    """The days of this run: one for a single-partition run, all of them for a range run."""
    window = context.partition_key_range
    return context.assets_def.partitions_def.get_partition_keys_in_range(window)
