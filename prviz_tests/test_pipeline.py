"""The whole pipeline through real Dagster runs on demo data, checked against exact expectations.

One range run (three days in one run and one Spark application) and one single-day run, both
against a real DagsterInstance. Every figure is compared with the demo generator's exact report,
and every curve and AP with scikit-learn on the labeled predictions the run wrote.
"""

import datetime as dt

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve

from prviz.config import Settings
from prviz.definitions import DAILY_JOB, build_assets, build_definitions, build_resources
from prviz.demo.generator import DemoSpec, write_demo_data
from prviz.lake.store import Lake

pytestmark = pytest.mark.spark

START = dt.date(2025, 3, 1)
DAYS = ["2025-03-01", "2025-03-02", "2025-03-03"]
RANGE_TAGS = {
    "dagster/asset_partition_range_start": DAYS[0],
    "dagster/asset_partition_range_end": DAYS[-1],
}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def demo(home):
    spec = DemoSpec(records_per_day=1500, bad_fraction=0.01)
    return write_demo_data(home, START, len(DAYS), seed=11, spec=spec)


@pytest.fixture(scope="module")
def settings(home, demo):
    # the demo data here is 1% bad on purpose: allow that through the blocking quarantine check
    return Settings(start_date=dt.date(2025, 1, 1), max_quarantine_rate=0.02).with_home(home)


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture(scope="module")
def range_run(spark, settings, instance):
    defs = build_definitions(settings)
    result = defs.resolve_job_def(DAILY_JOB).execute_in_process(instance=instance, tags=RANGE_TAGS)
    assert result.success
    return result


@pytest.fixture(scope="module")
def lake(settings, range_run):
    return Lake(settings.lake_uri)


def _materializations(instance, key: str) -> dict[str, dict]:
    records = instance.fetch_materializations(dg.AssetKey(key), limit=100).records
    latest = {}
    for record in sorted(records, key=lambda r: r.storage_id):
        event = record.asset_materialization
        latest[event.partition] = {k: v.value for k, v in event.metadata.items()}
    return latest


def test_one_run_one_spark_application_for_the_range(range_run, instance):
    runs = instance.get_runs()
    assert len(runs) == 1
    succeeded = {s.step_key for s in range_run.get_step_success_events()}
    assert {"spark_stages", "pr_curves_7d", "quicksight_dataset", "pr_dashboard"} <= succeeded


def test_quality_checks_ran_for_every_day_and_passed(range_run):
    evaluations = [
        e.event_specific_data
        for e in range_run.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    by_check = {}
    for evaluation in evaluations:
        name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        by_check.setdefault(name, []).append(evaluation)
    for name in ("pr_curves:capture_quarantine_rate", "pr_curves:capture_hours_complete",
                 "labeled_predictions:label_coverage", "pr_curves:has_positives",
                 "predictions:capture_streams_have_records",
                 "labeled_predictions:label_quarantine_rate",
                 "labeled_predictions:conflicting_labels"):  # fmt: skip
        assert len(by_check[name]) == len(DAYS), name
        assert all(e.passed for e in by_check[name]), name


def test_each_day_has_its_own_materialization_and_figures(range_run, instance, demo):
    for key in ("predictions", "labeled_predictions", "score_counts", "pr_curves", "pr_curves_7d",
                "quicksight_dataset", "pr_dashboard"):  # fmt: skip
        assert set(_materializations(instance, key)) == set(DAYS), key
    predictions = _materializations(instance, "predictions")
    for day in DAYS:
        truth = demo.day(day)
        meta = predictions[day]
        assert meta["capture_records"] == truth.capture_records
        assert meta["predictions"] == truth.predictions
        assert meta["quarantined_records"] == truth.bad_total
        expected_reasons = {r: n for r, n in truth.bad_records.items() if n}
        assert meta["quarantined_by_reason"] == expected_reasons
        assert meta["input_files"] == truth.capture_files
        assert meta["input_bytes"] == truth.capture_bytes
    # the figures really are per day, not the range's copied to every day
    assert len({predictions[d]["input_bytes"] for d in DAYS}) == len(DAYS)


def test_labels_match_the_generators_window_truth_exactly(range_run, instance, demo):
    labeled = _materializations(instance, "labeled_predictions")
    for day in DAYS:
        truth = demo.day(day)
        assert labeled[day]["n_predictions"] == truth.predictions
        assert labeled[day]["n_labeled"] == truth.labeled_predictions_in_window
        assert labeled[day]["n_positives"] == truth.labeled_positives_in_window
        assert labeled[day]["label_coverage"] == pytest.approx(
            truth.labeled_predictions_in_window / truth.predictions, abs=1e-15
        )
        # label lines collected that day: every one is quarantined or matched; the demo's
        # labels all belong to predictions of the run's days, so no key is unknown
        meta = labeled[day]
        assert meta["label_lines_collected_today"] == demo.label_lines_by_collection_day[day]
        assert meta["unknown_key_labels"] == 0
        assert meta["label_lines_collected_today"] == (
            meta["quarantined_labels"] + meta["label_lines_matched"]
        )


def test_ap_is_plotted_as_a_float_per_variant_per_day(range_run, instance):
    curves = _materializations(instance, "pr_curves")
    for day in DAYS:
        values = [v for k, v in curves[day].items() if k.startswith("average_precision/")]
        assert len(values) == 2 and all(isinstance(v, float) for v in values)
        assert curves[day]["pr_curve"].startswith("![PR curve")


def _labeled_frame(lake, day):
    frame = lake.read_partition("labeled_predictions", day).to_pandas()
    return frame[frame.label.notna()]


def test_summary_and_curve_points_equal_sklearn(lake):
    for day in DAYS:
        labeled = _labeled_frame(lake, day)
        summary = lake.read_partition("pr_summary", day).to_pandas().set_index("variant")
        points = lake.read_partition("pr_curve_points", day).to_pandas()
        for variant, group in labeled.groupby("variant"):
            y, s = group.label.to_numpy(int), group.score.to_numpy(float)
            expected_ap = average_precision_score(y, s)
            assert abs(summary.loc[variant, "average_precision"] - expected_ap) <= 1e-12
            precision, recall, thresholds = precision_recall_curve(y, s)
            mine = points[points.variant == variant].sort_values("threshold")
            np.testing.assert_allclose(mine.threshold, thresholds, rtol=0, atol=0)
            np.testing.assert_allclose(mine.precision, precision[:-1], rtol=0, atol=1e-12)
            np.testing.assert_allclose(mine.recall, recall[:-1], rtol=0, atol=1e-12)
            assert summary.loc[variant, "n_labeled"] == len(group)
            assert summary.loc[variant, "n_positives"] == int(y.sum())


def test_spark_score_counts_equal_a_plain_groupby_of_the_labeled_predictions(lake):
    for day in DAYS:
        labeled = lake.read_partition("labeled_predictions", day).to_pandas()
        expected = (
            labeled.assign(
                n_pos=(labeled.label == 1).astype(int),
                n_neg=(labeled.label == 0).astype(int),
                n_unlabeled=labeled.label.isna().astype(int),
            )
            .groupby(["endpoint", "variant", "score"])[["n_pos", "n_neg", "n_unlabeled"]]
            .sum()
            .sort_index()
        )
        counts = (
            lake.read_partition("score_counts", day)
            .to_pandas()
            .set_index(["endpoint", "variant", "score"])[["n_pos", "n_neg", "n_unlabeled"]]
            .sort_index()
        )
        pd.testing.assert_frame_equal(counts, expected, check_dtype=False)


def test_seven_day_curve_merges_daily_counts(lake):
    frames = [_labeled_frame(lake, day) for day in DAYS]
    union = pd.concat(frames)
    summary = lake.read_partition("pr_curves_7d_summary", DAYS[-1]).to_pandas()
    summary = summary.set_index("variant")
    for variant, group in union.groupby("variant"):
        expected = average_precision_score(group.label.astype(int), group.score)
        assert abs(summary.loc[variant, "average_precision"] - expected) <= 1e-12
    expected_all = average_precision_score(union.label.astype(int), union.score)
    assert abs(summary.loc["__all__", "average_precision"] - expected_all) <= 1e-12


def test_quicksight_csv_and_manifests_are_written_for_every_day(lake):
    import json

    manifest = json.loads(lake.read_bytes("quicksight/manifests/pr_summary.json"))
    assert manifest["globalUploadSettings"]["format"] == "CSV"
    for day in DAYS:
        csv_text = lake.read_bytes(f"quicksight/pr_summary/dt={day}/part.csv").decode()
        rows = csv_text.strip().splitlines()
        assert rows[0].startswith("dt,endpoint,variant")
        assert len(rows) - 1 == lake.read_partition("pr_summary", day).num_rows


def _dashboard_days(lake) -> dict[str, list[str]]:
    import json
    import re

    html = lake.read_bytes("dashboard/index.html").decode()
    match = re.search(r'<script type="application/json" id="prviz-data">(.*?)</script>', html, re.S)
    assert match, "no prviz-data in the dashboard"
    payload = json.loads(match.group(1))
    days = {}
    for key in ("summary", "summary_7d", "points", "quarantine"):
        table = payload[key]
        column = table["columns"].index("dt")
        days[key] = sorted({row[column] for row in table["data"]})
    return days


def test_dashboard_page_is_written_with_every_day(lake):
    shown = _dashboard_days(lake)
    assert shown["summary"] == shown["summary_7d"] == shown["points"] == DAYS


def test_the_dashboard_shows_a_window_of_the_latest_days(lake):
    from prviz.publish.assets import DASHBOARD_DAYS, build_dashboard

    assert DASHBOARD_DAYS == 90
    try:
        _, figures = build_dashboard(lake, max_days=3)
        shown = _dashboard_days(lake)
        assert shown["summary"] == shown["summary_7d"] == shown["points"] == DAYS[-3:]
        assert set(shown["quarantine"]) <= set(DAYS[-3:]) and shown["quarantine"]
        assert figures == {"days": 3, "bytes": figures["bytes"], "first_day": DAYS[-3],
                           "last_day": DAYS[-1]}  # fmt: skip
    finally:
        build_dashboard(lake)  # the page as the run left it, for the other tests
    assert _dashboard_days(lake)["summary"] == DAYS


def test_single_day_materialize_gives_the_same_rows_as_the_range_run(
    spark, settings, lake, range_run
):
    day = DAYS[1]
    before = {ds: _rows(lake, ds, day) for ds in ("predictions", "labeled_predictions",
                                                   "score_counts", "pr_summary")}  # fmt: skip
    assets = _unbound(settings, "spark_stages", "pr_curves_7d")
    with dg.instance_for_test() as other:
        result = dg.materialize(
            assets,
            partition_key=day,
            instance=other,
            resources=build_resources(settings),
            selection=["predictions", "labeled_predictions", "score_counts", "pr_curves"],
        )
        assert result.success
        meta = _materializations(other, "predictions")[day]
        assert meta["range_days"] == 1
    after = {ds: _rows(lake, ds, day) for ds in before}
    assert before == after


def test_late_label_subset_skips_the_parse(spark, settings, lake, range_run):
    """A recompute of labeled_predictions and below runs without re-parsing captures."""
    day = DAYS[0]
    predictions_files = [f.path for f in lake.partition_files("predictions", day)]
    with dg.instance_for_test() as other:
        result = dg.materialize(
            _unbound(settings, "spark_stages"),
            partition_key=day,
            instance=other,
            resources=build_resources(settings),
            selection=["labeled_predictions", "score_counts", "pr_curves"],
        )
        assert result.success
        assert _materializations(other, "predictions") == {}
        assert set(_materializations(other, "pr_curves")) == {day}
    assert [f.path for f in lake.partition_files("predictions", day)] == predictions_files


def _unbound(settings, *names):
    """The asset definitions, before definitions.py binds resources to them."""
    return [
        a
        for a in build_assets(settings)
        if getattr(a, "node_def", None) and a.node_def.name in names
    ]


def _rows(lake, dataset, day):
    table = lake.read_partition(dataset, day).to_pandas()
    return sorted(map(repr, table.to_dict(orient="records")))
