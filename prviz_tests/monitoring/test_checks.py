"""The per-day quality checks in Dagster: crafted figures in, one evaluation per day out."""

from pathlib import Path

import dagster as dg

from prviz.monitoring.config import MonitoringConfig
from prviz_tests.monitoring.fakes import (
    build_world,
    check_state,
    good_day,
    run_checks,
    run_day,
    seed_day,
    summary_row,
    utc,
)

RANGE = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def _lake(world):
    return world.figures.lake_uri


def test_the_checks_target_the_right_assets_with_the_right_severity(world):
    specs = {
        spec.key.to_user_string(): spec
        for checks in world.monitoring.quality_checks
        for spec in checks.check_specs
    }
    assert sorted(specs) == [
        "labeled_predictions:conflicting_labels",
        "labeled_predictions:label_coverage",
        "labeled_predictions:label_quarantine_rate",
        "pr_curves:average_precision_vs_baseline",
        "pr_curves:best_f1_vs_baseline",
        "pr_curves:capture_hours_complete",
        "pr_curves:capture_quarantine_rate",
        "pr_curves:has_positives",
        "predictions:capture_streams_have_records",
        "predictions:volume_near_median",
    ]
    blocking = sorted(k for k, spec in specs.items() if spec.blocking)
    assert blocking == ["pr_curves:capture_hours_complete", "pr_curves:capture_quarantine_rate"]
    assert all(spec.partitions_def is not None for spec in specs.values())


def test_exact_quarantine_threshold_per_day_in_a_range_run(world, instance):
    at_max, over = good_day(), good_day()
    at_max["predictions"].update(quarantined_records=100, quarantined_by_reason={"x": 100})
    over["predictions"].update(quarantined_records=101, quarantined_by_reason={"x": 101})
    seed_day(instance, _lake(world), "2025-01-02", at_max)
    seed_day(instance, _lake(world), "2025-01-03", over)

    result = run_checks(
        world,
        instance,
        ["pr_curves:capture_quarantine_rate"],
        **{RANGE[0]: "2025-01-02", RANGE[1]: "2025-01-03"},
    )
    assert not result.success  # a blocking ERROR check failed
    passed, _, meta = check_state(instance, "pr_curves", "capture_quarantine_rate", "2025-01-02")
    assert passed and meta["quarantine_rate"] == 0.01 and meta["day"] == "2025-01-02"
    passed, text, meta = check_state(instance, "pr_curves", "capture_quarantine_rate", "2025-01-03")
    assert not passed and meta["quarantine_rate"] == 0.0101
    assert text.startswith("1.01 % of the capture records of 2025-01-03 were quarantined")
    # the range run left no unpartitioned evaluation and no day "planned" forever
    key = dg.AssetCheckKey(dg.AssetKey("pr_curves"), "capture_quarantine_rate")
    records = instance.event_log_storage.get_asset_check_execution_history(key, limit=10)
    assert sorted((r.partition, r.status.value) for r in records) == [
        ("2025-01-02", "SUCCEEDED"),
        ("2025-01-03", "FAILED"),
    ]


def test_a_bad_day_fails_exactly_its_checks(tmp_path, instance):
    world = build_world(tmp_path, clock=lambda: utc(2025, 1, 20, 3, 0))
    for day in range(1, 8):
        seed_day(instance, _lake(world), f"2025-01-0{day}")
    bad = good_day()
    bad["predictions"].update(
        predictions=4_000,  # -60 % from the median of 10 000
        capture_hours_present={"fraud-scorer/champion": 22},  # challenger gone, 2 hours missing
        capture_hours_missing={"fraud-scorer/champion": [3, 4]},
    )
    bad["labeled_predictions"].update(n_labeled=4_000, label_coverage=0.4)
    bad["pr_summary"] = [
        summary_row("champion", average_precision=0.50, best_f1=0.549),
        summary_row("challenger", n_positives=0, average_precision=None, best_f1=None),
    ]
    seed_day(instance, _lake(world), "2025-01-08", bad)

    all_checks = [k.to_user_string() for c in world.monitoring.quality_checks for k in c.check_keys]
    run_checks(world, instance, all_checks, "2025-01-08")
    state = {key: check_state(instance, *key.split(":"), "2025-01-08")[:2] for key in all_checks}
    failed = sorted(k for k, (passed, _) in state.items() if not passed)
    assert failed == [
        "labeled_predictions:label_coverage",
        "pr_curves:average_precision_vs_baseline",
        "pr_curves:capture_hours_complete",
        "pr_curves:has_positives",
        "predictions:volume_near_median",
    ]
    # best F1 0.549 is within 0.05 of the median 0.55: not a drop
    assert state["pr_curves:best_f1_vs_baseline"][0]
    text = state["pr_curves:capture_hours_complete"][1]
    assert "fraud-scorer/champion: hours 03-04" in text
    assert "fraud-scorer/challenger: hours 00-23" in text
    assert "-60.0% from the median 10000" in state["predictions:volume_near_median"][1]
    assert (
        "fraud-scorer/champion 0.5000 vs median 0.6000"
        in (state["pr_curves:average_precision_vs_baseline"][1])
    )
    # the healthy day before is still green
    assert check_state(instance, "predictions", "volume_near_median", "2025-01-08")[0] is False
    run_checks(world, instance, ["predictions:volume_near_median"], "2025-01-07")
    assert check_state(instance, "predictions", "volume_near_median", "2025-01-07")[0]


def test_label_coverage_waits_for_late_labels_but_not_for_no_labels(tmp_path, instance):
    low = good_day()
    low["labeled_predictions"].update(n_labeled=100, label_coverage=0.01)
    none = good_day()
    none["labeled_predictions"].update(n_labeled=0, label_coverage=0.0)
    world = build_world(tmp_path, clock=lambda: utc(2025, 1, 9, 2, 0))  # 2025-01-08 is 1 day old
    seed_day(instance, _lake(world), "2025-01-08", low)
    seed_day(instance, _lake(world), "2025-01-07", none)
    run_checks(world, instance, ["labeled_predictions:label_coverage"], "2025-01-08")
    passed, text, meta = check_state(
        instance, "labeled_predictions", "label_coverage", "2025-01-08"
    )
    assert passed and "applies from 3 days after the day" in text and meta["age_days"] == 1
    run_checks(world, instance, ["labeled_predictions:label_coverage"], "2025-01-07")
    passed, text, _ = check_state(instance, "labeled_predictions", "label_coverage", "2025-01-07")
    assert not passed and text.startswith("no ground-truth label has arrived")


def test_a_day_without_figures_fails_rather_than_passes(world, instance):
    run_checks(world, instance, ["pr_curves:has_positives", "predictions:volume_near_median"],
               "2025-01-04")  # fmt: skip
    passed, text, _ = check_state(instance, "pr_curves", "has_positives", "2025-01-04")
    assert not passed and text.startswith("pr_summary has no data for 2025-01-04 in the lake")
    passed, text, _ = check_state(instance, "predictions", "volume_near_median", "2025-01-04")
    assert not passed and text.startswith("predictions has no reported figures for 2025-01-04")


def test_challenger_check_exists_only_with_a_champion(tmp_path, instance):
    world = build_world(
        tmp_path,
        MonitoringConfig(alert_log=str(tmp_path / "a.log"), champion_variants=("champion",)),
    )
    worse = good_day()
    worse["pr_summary"][1]["average_precision"] = 0.54
    seed_day(instance, _lake(world), "2025-01-05", worse)
    run_checks(world, instance, ["pr_curves:challenger_vs_champion"], "2025-01-05")
    passed, text, meta = check_state(instance, "pr_curves", "challenger_vs_champion", "2025-01-05")
    assert not passed and "fraud-scorer/challenger 0.5400 vs champion champion 0.6000" in text
    assert abs(meta["ap_minus_champion/fraud-scorer/challenger"] - (-0.06)) < 1e-12
    assert "challenger_vs_champion" not in {
        k.name for c in build_world(tmp_path / "x").monitoring.quality_checks for k in c.check_keys
    }


def test_blocking_checks_stop_publication_and_warnings_do_not(world, instance):
    incomplete = good_day()
    incomplete["predictions"]["capture_hours_missing"] = {"fraud-scorer/champion": [23]}
    world.figures.days["2025-01-06"] = incomplete
    result = run_day(world, instance, "2025-01-06")
    assert not result.success
    ran = [name for name, _ in world.figures.calls]
    assert "pr_curves_7d" in ran  # not downstream of pr_curves
    assert "quicksight_dataset" not in ran and "pr_dashboard" not in ran

    world.figures.calls.clear()
    no_positives = good_day()
    no_positives["pr_summary"][1].update(n_positives=0, average_precision=None)
    world.figures.days["2025-01-07"] = no_positives
    result = run_day(world, instance, "2025-01-07")
    assert not check_state(instance, "pr_curves", "has_positives", "2025-01-07")[0]
    assert [name for name, _ in world.figures.calls][-1] == "pr_dashboard"


def test_a_check_that_cannot_read_its_figures_fails_and_says_why(world, instance):
    seed_day(instance, _lake(world), "2025-01-04")
    [part] = (Path(_lake(world)) / "pr_summary" / "dt=2025-01-04").glob("part-*.parquet")
    part.write_bytes(b"not parquet")
    run_checks(world, instance, ["pr_curves:has_positives"], "2025-01-04")
    passed, text, meta = check_state(instance, "pr_curves", "has_positives", "2025-01-04")
    assert not passed
    # the lake's own error (its class and words belong to prviz/lake/store.py) follows
    assert text.startswith("has_positives could not be evaluated for 2025-01-04: ")
    assert "Error: pr_summary dt=2025-01-04: " in text
    assert "Error: pr_summary dt=2025-01-04: " in meta["error"]


def _severity(instance, asset: str, check: str, day: str) -> str:
    from dagster._core.storage.event_log.base import PartitionKeyFilter

    key = dg.AssetCheckKey(dg.AssetKey(asset), check)
    [record] = instance.event_log_storage.get_asset_check_execution_history(
        key, limit=1, partition_filter=PartitionKeyFilter(key=day)
    )
    return record.event.asset_check_evaluation.severity.value


def test_bad_input_says_what_happened_with_the_right_severities(tmp_path, instance):
    """A day with a tolerated missing hour, an empty variant, unknown-key labels and conflicts."""
    config = MonitoringConfig(alert_log=str(tmp_path / "a.log"), max_missing_capture_hours=1)
    world = build_world(tmp_path, config)
    day = good_day()
    day["predictions"].update(
        capture_hours_present={
            "fraud-scorer/champion": 23, "fraud-scorer/challenger": 24, "fraud-scorer/shadow": 24
        },
        capture_hours_missing={"fraud-scorer/champion": [13]},
        capture_records_by_variant={
            "fraud-scorer/champion": 5_000, "fraud-scorer/challenger": 5_000,
            "fraud-scorer/shadow": 0,
        },
        empty_streams=["fraud-scorer/shadow"],
        quarantined_records=100,
        quarantined_by_reason={"malformed_json": 60, "unknown_encoding": 40},
    )  # fmt: skip
    day["labeled_predictions"].update(
        label_lines_collected_today=10_000,
        quarantined_labels=101,
        quarantined_labels_by_reason={"malformed_json": 41, "unknown_key": 60},
        unknown_key_labels=60,
        unknown_key_window="2025-01-01..2025-01-08",
        unknown_key_prediction_days=7,
        unknown_key_prediction_days_missing=["2025-01-01"],
        label_delivered_keys=9_000,
        conflicting_keys=91,
        duplicate_keys=300,
    )
    seed_day(instance, _lake(world), "2025-01-08", day)
    names = [
        "predictions:capture_streams_have_records",
        "labeled_predictions:label_quarantine_rate",
        "labeled_predictions:conflicting_labels",
        "pr_curves:capture_hours_complete",
        "pr_curves:capture_quarantine_rate",
    ]
    result = run_checks(world, instance, names, "2025-01-08")
    assert result.success  # only WARN checks fail: nothing blocks
    outcome = {
        name: (check_state(instance, *name.split(":"), "2025-01-08")[0],
               _severity(instance, *name.split(":"), "2025-01-08"))
        for name in names
    }  # fmt: skip
    assert outcome == {
        "predictions:capture_streams_have_records": (False, "WARN"),
        "labeled_predictions:label_quarantine_rate": (False, "WARN"),
        "labeled_predictions:conflicting_labels": (False, "WARN"),
        "pr_curves:capture_hours_complete": (True, "ERROR"),
        "pr_curves:capture_quarantine_rate": (True, "ERROR"),
    }
    _, text, meta = check_state(
        instance, "predictions", "capture_streams_have_records", "2025-01-08"
    )
    assert "fraud-scorer/shadow (24 hour folder(s))" in text
    assert meta["empty_streams"] == ["fraud-scorer/shadow"]
    _, text, meta = check_state(
        instance, "labeled_predictions", "label_quarantine_rate", "2025-01-08"
    )
    assert text.startswith("1.01 % of the ground-truth lines collected on 2025-01-08 were quar")
    assert "malformed_json 41 (0.41 %), unknown_key 60 (0.60 %)" in text
    assert "60 valid line(s) match no prediction of 2025-01-01..2025-01-08" in text
    assert "1 of those 8 prediction days are not in the lake" in text
    assert meta["label_quarantine_rate/unknown_key"] == 0.006
    _, text, meta = check_state(instance, "labeled_predictions", "conflicting_labels", "2025-01-08")
    assert "(91 of 9000; max 1.00 %)" in text and "300 key(s) received the same label" in text
    assert meta["conflicting_keys"] == 91 and meta["duplicate_keys"] == 300
    _, text, meta = check_state(instance, "pr_curves", "capture_hours_complete", "2025-01-08")
    assert "missing within the tolerance: fraud-scorer/champion: hours 13" in text
    assert "fraud-scorer/shadow has hour folders but no record" in text
    _, text, meta = check_state(instance, "pr_curves", "capture_quarantine_rate", "2025-01-08")
    assert text == (
        "1.00 % of 10000 capture records quarantined on 2025-01-08 (max 1.00 %): "
        "malformed_json 60 (0.60 %), unknown_encoding 40 (0.40 %)"
    )
    assert meta["quarantine_rate/malformed_json"] == 0.006
