"""The on-demand tick (the demo's "advance the clock"): freshness at a chosen time -> alert log."""

import json
import time

import dagster as dg

from prviz.monitoring.tick import run_tick
from prviz_tests.monitoring.fakes import utc
from prviz_tests.monitoring.test_freshness import materialize


def alerts(world) -> list[tuple[str, str, str]]:
    with open(world.monitoring.config.alert_log, encoding="utf-8") as handle:
        return [(a["kind"], a["asset"], a["day"]) for a in map(json.loads, handle)]


def test_advancing_the_clock_past_a_missing_day_alerts_once_then_recovers(
    world, instance, tmp_path
):
    state = tmp_path / "tick_state.json"
    for day in range(1, 8):
        materialize(instance, f"2025-01-0{day}")

    result = run_tick(world.defs, world.monitoring, instance, utc(2025, 1, 8, 7, 0), state)
    assert result.freshness == [
        ("pr_curves", "2025-01-07", True),
        ("pr_dashboard", "2025-01-07", True),
    ]
    assert result.alerts.summary() == "no check changed state: nothing to send"

    # a day later, the 8th was never computed
    late = run_tick(world.defs, world.monitoring, instance, utc(2025, 1, 9, 7, 0), state)
    assert "freshness pr_curves 2025-01-08: LATE" in late.lines()
    assert alerts(world) == [
        ("failure", "pr_curves", "2025-01-08"),
        ("failure", "pr_dashboard", "2025-01-08"),
    ]
    run_tick(world.defs, world.monitoring, instance, utc(2025, 1, 9, 7, 5), state)
    assert len(alerts(world)) == 2  # told once

    materialize(instance, "2025-01-08")
    run_tick(world.defs, world.monitoring, instance, utc(2025, 1, 9, 7, 10), state)
    assert alerts(world)[2:] == [
        ("recovery", "pr_curves", "2025-01-08"),
        ("recovery", "pr_dashboard", "2025-01-08"),
    ]

    # `dagster asset wipe pr_curves pr_dashboard`: Dagster no longer knows any day was computed
    instance.wipe_assets([dg.AssetKey("pr_curves"), dg.AssetKey("pr_dashboard")])
    run_tick(world.defs, world.monitoring, instance, utc(2025, 1, 9, 7, 15), state)
    assert alerts(world)[4:] == [
        ("failure", "pr_curves", "2025-01-08"),
        ("failure", "pr_dashboard", "2025-01-08"),
    ]
    record = instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(dg.AssetKey("pr_curves"), "freshness_check")
    )
    assert record.status.value == "FAILED"


def test_the_tick_lists_or_runs_late_label_recomputes(tmp_path, instance):
    from prviz_tests.monitoring.fakes import build_world, seed_day
    from prviz_tests.monitoring.test_late_labels import write_labels

    world = build_world(tmp_path)
    state = tmp_path / "tick_state.json"
    seed_day(instance, world.figures.lake_uri, "2025-01-05")
    write_labels(tmp_path / "ground-truth", "2025-01-06", 3, "late", time.time() + 60)
    now = utc(2025, 1, 8, 1, 0)

    listed = run_tick(world.defs, world.monitoring, instance, now, state, launch=False)
    assert [(r.start, r.end) for r in listed.recomputes] == [("2025-01-05", "2025-01-05")]
    assert listed.runs == []
    again = run_tick(world.defs, world.monitoring, instance, now, state, launch=False)
    assert [(r.start, r.end) for r in again.recomputes] == [("2025-01-05", "2025-01-05")]

    world.figures.calls.clear()
    ran = run_tick(world.defs, world.monitoring, instance, now, state)
    assert [ok for _, ok in ran.runs] == [True]
    assert world.figures.calls[0] == (
        "spark_stages:labeled_predictions,score_counts,pr_curves",
        ("2025-01-05",),
    )
    assert run_tick(world.defs, world.monitoring, instance, now, state).recomputes == []
