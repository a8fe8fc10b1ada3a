"""The daily automation: yesterday's partition of the daily job, every day at a set time (UTC).

`build_schedule_from_partitioned_job` on a daily job asks, at each tick, for the last complete
day: the tick of 2025-01-08 02:00 UTC requests partition 2025-01-07. 02:00 leaves two hours for
the capture files of hour 23 (they land minutes late) and for early labels.
"""

import dagster as dg

from prviz.monitoring.config import MonitoringConfig

DAILY_SCHEDULE = "prviz_daily_schedule"


def build_daily_schedule(job, config: MonitoringConfig):
    hour, minute = config.run_hour_minute
    return dg.build_schedule_from_partitioned_job(
        job,
        name=DAILY_SCHEDULE,
        hour_of_day=hour,
        minute_of_hour=minute,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Computes yesterday (UTC) at {hour:02d}:{minute:02d} UTC every day.",
        tags={"prviz/trigger": "daily-schedule"},
    )
