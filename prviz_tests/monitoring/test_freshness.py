"""Partition-aware freshness: yesterday's partition must exist by the deadline, whatever else ran."""

import dagster as dg
import pytest
from dagster._core.test_utils import freeze_time

from prviz.monitoring.freshness import freshness_day, freshness_evaluation
from prviz.monitoring.sensors import FRESHNESS_SENSOR
from prviz_tests.monitoring.fakes import PARTITIONS, check_state, run_checks, utc

FRESHNESS = ["pr_curves:freshness_check", "pr_dashboard:freshness_check"]


def materialize(instance, day: str, assets=("pr_curves", "pr_dashboard")) -> None:
    for asset in assets:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=day))


def evaluate(world, instance, now):
    with freeze_time(now):
        run_checks(world, instance, FRESHNESS)
    return {
        asset: check_state(instance, asset, "freshness_check")
        for asset in ("pr_curves", "pr_dashboard")
    }


def test_deadline_passes_and_fails_on_the_right_days(world, instance):
    for day in range(1, 7):
        materialize(instance, f"2025-01-0{day}")

    # before 06:00 on the 8th, the 6th is the day due: present
    state = evaluate(world, instance, utc(2025, 1, 8, 5, 59))
    assert all(passed for passed, _, _ in state.values())
    assert freshness_day(state["pr_curves"][2]) == "2025-01-06"

    # from 06:00 the 7th is due: missing, for both assets
    state = evaluate(world, instance, utc(2025, 1, 8, 6, 0))
    for passed, text, meta in state.values():
        assert not passed and "expected partition 2025-01-07" in text
        assert freshness_day(meta) == "2025-01-07"

    # a backfill of an older day does not turn yesterday green
    materialize(instance, "2025-01-03")
    state = evaluate(world, instance, utc(2025, 1, 8, 9, 0))
    assert not any(passed for passed, _, _ in state.values())

    # yesterday's publication alone is not enough for pr_curves' check, and vice versa
    materialize(instance, "2025-01-07", assets=("pr_dashboard",))
    state = evaluate(world, instance, utc(2025, 1, 8, 9, 5))
    assert state["pr_dashboard"][0] and not state["pr_curves"][0]
    materialize(instance, "2025-01-07", assets=("pr_curves",))
    state = evaluate(world, instance, utc(2025, 1, 8, 9, 10))
    assert state["pr_curves"][0]


@pytest.mark.parametrize(
    "now",
    [utc(2025, 1, 8, 5, 59), utc(2025, 1, 8, 6, 0), utc(2025, 1, 8, 23, 59), utc(2025, 1, 9, 7, 0)],
)
def test_the_demo_tick_applies_dagsters_rule(world, instance, now):
    """`freshness_evaluation` (used by the demo tick at a chosen time) agrees with Dagster."""
    for day in range(1, 8):
        materialize(instance, f"2025-01-0{day}", assets=("pr_curves",))
    passed, text, meta = evaluate(world, instance, now)["pr_curves"]
    mine = freshness_evaluation(
        instance, dg.AssetKey("pr_curves"), PARTITIONS, world.monitoring.config, now
    )
    assert mine.passed == passed and mine.description == text
    assert freshness_day(mine.metadata) == freshness_day(meta)
    assert set(mine.metadata) == set(meta)


def test_before_the_first_day_is_due_there_is_nothing_to_evaluate(world, instance):
    config = world.monitoring.config
    early = utc(2025, 1, 2, 5, 0)  # 2024-12-31 would be due: before the first partition
    assert (
        freshness_evaluation(instance, dg.AssetKey("pr_curves"), PARTITIONS, config, early) is None
    )


def test_the_freshness_sensor_runs_by_default_and_asks_when_a_check_can_be_overdue(world, instance):
    sensor = world.defs.resolve_sensor_def(FRESHNESS_SENSOR)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    materialize(instance, "2025-01-07")
    with freeze_time(utc(2025, 1, 8, 7, 0)):
        context = dg.build_sensor_context(instance=instance, definitions=world.defs)
        [request] = sensor.evaluate_tick(context).run_requests
        assert sorted(k.to_user_string() for k in request.asset_check_keys) == FRESHNESS
    evaluate(world, instance, utc(2025, 1, 8, 7, 0))  # passes, fresh until 2025-01-09 06:00
    with freeze_time(utc(2025, 1, 9, 5, 59)):
        context = dg.build_sensor_context(instance=instance, definitions=world.defs)
        assert sensor.evaluate_tick(context).run_requests == []
    with freeze_time(utc(2025, 1, 9, 6, 1)):
        context = dg.build_sensor_context(instance=instance, definitions=world.defs)
        [request] = sensor.evaluate_tick(context).run_requests
        assert len(request.asset_check_keys) == 2
