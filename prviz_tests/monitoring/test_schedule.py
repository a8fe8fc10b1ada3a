"""The daily schedule asks for yesterday's partition at the configured time (UTC)."""

import dagster as dg
import pytest

from prviz.monitoring.config import MonitoringConfig
from prviz.monitoring.schedules import DAILY_SCHEDULE
from prviz_tests.monitoring.fakes import JOB, build_world, utc


def _requests(world, when):
    schedule = world.defs.resolve_schedule_def(DAILY_SCHEDULE)
    context = dg.build_schedule_context(scheduled_execution_time=when)
    return schedule, schedule.evaluate_tick(context).run_requests


def test_yesterday_at_two_in_the_morning(world):
    schedule, [request] = _requests(world, utc(2025, 1, 8, 2, 0))
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.job_name == JOB
    assert request.partition_key == "2025-01-07"
    assert request.tags["prviz/trigger"] == "daily-schedule"


@pytest.mark.parametrize(
    ("when", "day"),
    [(utc(2025, 3, 1, 3, 30), "2025-02-28"), (utc(2025, 1, 1, 3, 30), None)],
)
def test_a_configured_time_and_the_first_day(tmp_path, when, day):
    config = MonitoringConfig(alert_log=str(tmp_path / "a.log"), daily_run_time="03:30")
    world = build_world(tmp_path, config)
    schedule, requests = _requests(world, when)
    assert schedule.cron_schedule == "30 3 * * *"
    assert [r.partition_key for r in requests] == ([day] if day else [])
