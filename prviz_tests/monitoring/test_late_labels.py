"""Late labels: new ground truth recomputes exactly the computed days whose window holds it."""

import json
import os
import time

import dagster as dg

from prviz.monitoring.sensors import LATE_LABELS_SENSOR
from prviz_tests.monitoring.fakes import build_world, check_state, seed_day, utc

RECOMPUTED = [
    "labeled_predictions",
    "pr_curves",
    "pr_curves_7d",
    "pr_dashboard",
    "quicksight_dataset",
    "score_counts",
]


def computed(instance, *days):
    """Days whose labeled_predictions were materialized (now)."""
    for day in days:
        instance.report_runless_asset_event(
            dg.AssetMaterialization("labeled_predictions", partition=day)
        )


def write_labels(root, day: str, hour: int, name: str, mtime: float) -> None:
    folder = root / day.replace("-", "/") / f"{hour:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jsonl"
    label = {"groundTruthData": {"data": "1", "encoding": "CSV"},
             "eventMetadata": {"eventId": name}, "eventVersion": "0"}  # fmt: skip
    path.write_text(json.dumps(label) + "\n")
    os.utime(path, (mtime, mtime))


class LateLabelSensor:
    def __init__(self, world, instance):
        self.world, self.instance, self.cursor = world, instance, None
        self.sensor = world.defs.resolve_sensor_def(LATE_LABELS_SENSOR)

    def tick(self):
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            definitions=self.world.defs,
            resources={"pipeline": self.world.resources["pipeline"]},
        )
        result = self.sensor.evaluate_tick(context)
        self.cursor = result.cursor
        return result.run_requests


def _span(request):
    if request.partition_key:
        return request.partition_key, request.partition_key
    key_range = request.partition_key_range
    return key_range.start, key_range.end


def test_labels_of_a_closed_day_recompute_the_days_of_its_window_computed_before(
    tmp_path, instance
):
    world = build_world(tmp_path, clock=lambda: utc(2025, 1, 14, 3, 0))
    gt = tmp_path / "ground-truth"
    computed(instance, *[f"2025-01-{d:02d}" for d in range(2, 14)])  # 01-02 .. 01-13, not 01-01
    after = time.time() + 60  # files that landed after those days were computed
    before = time.time() - 3600
    write_labels(gt, "2025-01-09", 5, "late", after)
    write_labels(gt, "2025-01-11", 7, "old", before)  # already joined by every computed day
    write_labels(gt, "2025-01-14", 1, "today", after)  # today's folder is still growing

    sensor = LateLabelSensor(world, instance)
    assert sensor.sensor.default_status == dg.DefaultSensorStatus.RUNNING
    [request] = sensor.tick()
    assert _span(request) == ("2025-01-02", "2025-01-09")  # 01-09 minus 7 days .. 01-09
    assert sorted(k.to_user_string() for k in request.asset_selection) == RECOMPUTED
    assert request.job_name in (None, "daily_pr_job")
    assert request.tags["prviz/label_days"] == "2025-01-09"
    assert json.loads(sensor.cursor)["label_days"].keys() == {"2025-01-09", "2025-01-11"}

    assert sensor.tick() == []  # nothing new: nothing requested again

    write_labels(gt, "2025-01-12", 2, "later", after)
    [request] = sensor.tick()
    assert _span(request) == ("2025-01-05", "2025-01-12")


def test_days_never_computed_or_computed_after_the_labels_are_left_alone(tmp_path, instance):
    world = build_world(tmp_path, clock=lambda: utc(2025, 1, 14, 3, 0))
    computed(instance, "2025-01-04", "2025-01-06", "2025-01-07", "2025-01-09")
    write_labels(tmp_path / "ground-truth", "2025-01-10", 5, "late", time.time() + 0.001)
    time.sleep(0.01)
    computed(instance, "2025-01-03")  # 01-03's window ends on 01-10: computed after the labels
    requests = LateLabelSensor(world, instance).tick()
    # 01-03 was computed after the file's mtime; the others form two blocks (01-05, 01-08 missing)
    assert [_span(r) for r in requests] == [
        ("2025-01-04", "2025-01-04"),
        ("2025-01-06", "2025-01-07"),
        ("2025-01-09", "2025-01-09"),
    ]
    single = requests[0]
    assert single.partition_key == "2025-01-04" and "dagster/asset_partition_range_start" not in (
        single.tags
    )


def test_the_recompute_run_skips_the_parse(tmp_path, instance):
    world = build_world(tmp_path, clock=lambda: utc(2025, 1, 14, 3, 0))
    job = world.defs.resolve_job_def("daily_pr_job")
    for day in ("2025-01-08", "2025-01-09"):
        seed_day(instance, world.figures.lake_uri, day)  # computed, as the daily runs would
    write_labels(tmp_path / "ground-truth", "2025-01-09", 5, "late", time.time() + 60)
    [request] = LateLabelSensor(world, instance).tick()
    assert _span(request) == ("2025-01-08", "2025-01-09")
    world.figures.calls.clear()
    result = job.execute_in_process(
        instance=instance,
        asset_selection=request.asset_selection,
        tags=request.tags,
        raise_on_error=False,
    )
    assert result.success
    assert world.figures.calls[0] == (
        "spark_stages:labeled_predictions,score_counts,pr_curves",
        ("2025-01-08", "2025-01-09"),
    )
    assert {name for name, _ in world.figures.calls[1:]} == {
        "pr_curves_7d", "quicksight_dataset", "pr_dashboard",
    }  # fmt: skip
    checks_run = {e.check_name for e in result.get_asset_check_evaluations()}
    assert "label_coverage" in checks_run and "volume_near_median" not in checks_run
    assert check_state(instance, "pr_curves", "has_positives", "2025-01-09")[0]
