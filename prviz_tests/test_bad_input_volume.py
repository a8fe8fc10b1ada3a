"""Bad input at volume: a hostile day through one real Dagster run, every count exact.

The day is `prviz.demo.generator.write_hostile_day`'s: ~1 % malformed capture lines, ~1 %
unknown encodings, non-numeric scores, a missing hour, an empty variant and one 100 MB capture
file; labels for unknown keys (never captured, or captured but quarantined), duplicate and
conflicting labels, malformed, unknown-encoding and invalid label lines. The daily job runs it in
one run against a real DagsterInstance on the shared local Spark session. The day completes,
every bad line is in quarantine with its reason and raw line, `records = good + quarantined` for
captures and `lines = matched + quarantined` for labels hold exactly, and the checks say what
happened, with the severities the configuration gives them.

The blocking thresholds are set so this day passes them (2.5 % of its captures are bad on
purpose, one hour is missing): the run must succeed and publish; the warnings must still fire.
Cost: the 100 MB parse dominates (about 20 s on 2 cores); the rest of the day is small.
"""

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from prviz.config import Settings
from prviz.definitions import DAILY_JOB, build_definitions
from prviz.demo.generator import HostileSpec, write_hostile_day
from prviz.lake.store import Lake
from prviz.spark import stages as S

pytestmark = [pytest.mark.spark, pytest.mark.e2e]

DAY = "2025-06-01"
SPEC = HostileSpec()  # the real thing: big_file_bytes = 100 MB
WINDOW_BEFORE = [f"2025-05-{d}" for d in range(25, 32)]  # the 7 days before DAY: not in the lake


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="module")
def report(home):
    return write_hostile_day(home, dt.date.fromisoformat(DAY), seed=5, spec=SPEC)


@pytest.fixture(scope="module")
def settings(home, report):
    return Settings(
        start_date=dt.date.fromisoformat(DAY), max_quarantine_rate=0.03, max_missing_capture_hours=1
    ).with_home(home)


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture(scope="module")
def run(spark, settings, instance):
    defs = build_definitions(settings)
    return defs.resolve_job_def(DAILY_JOB).execute_in_process(
        instance=instance, partition_key=DAY, raise_on_error=False
    )


@pytest.fixture(scope="module")
def lake(settings, run):
    return Lake(settings.lake_uri)


def _metadata(instance, key: str) -> dict:
    [record] = instance.fetch_materializations(dg.AssetKey(key), limit=10).records
    assert record.asset_materialization.partition == DAY
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def _quarantined(lake, dataset: str, home: Path) -> list[tuple[str, str, str]]:
    """(reason, path relative to the data root, line) of every quarantined row of the day."""
    frame = lake.read_partition(dataset, DAY).to_pandas()
    prefix = f"file:{home}/"  # Hadoop's form of a local file URI
    assert all(f.startswith(prefix) for f in frame.source_file)
    return sorted(
        zip(frame.reason, (f[len(prefix) :] for f in frame.source_file), frame.line, strict=True)
    )


def test_the_hostile_day_is_what_it_claims(report):
    assert report.big_file_bytes >= 100_000_000
    assert report.big_file.startswith("capture/fraud-scorer/challenger/2025/06/01/15/")
    assert report.missing_hours == {"fraud-scorer/champion": [13]}
    assert report.empty_streams == ["fraud-scorer/shadow"]
    assert all(report.bad_records.values()) and all(report.label_quarantine.values())
    assert report.duplicate_keys and report.conflicting_keys


def test_spark_splits_the_big_file(spark, report, home):
    lines = S.read_lines(spark, [f"file://{home}/{report.big_file}"])
    assert lines.rdd.getNumPartitions() >= 2  # the planned splits; nothing is read


def test_the_run_succeeds_and_publishes(run):
    assert run.success
    succeeded = {s.step_key for s in run.get_step_success_events()}
    assert {"spark_stages", "pr_curves_7d", "quicksight_dataset", "pr_dashboard"} <= succeeded


def test_capture_records_add_up_exactly(run, instance, report):
    meta = _metadata(instance, "predictions")
    assert meta["capture_records"] == report.capture_records
    assert meta["good_records"] == report.good_records
    assert meta["quarantined_records"] == report.quarantined_records
    assert meta["capture_records"] == meta["good_records"] + meta["quarantined_records"]
    assert meta["quarantined_by_reason"] == report.bad_records
    assert meta["predictions"] == report.predictions
    assert meta["capture_records_by_variant"] == report.records_by_stream
    assert meta["predictions_by_variant"] == {
        k: v for k, v in report.predictions_by_stream.items() if v
    }


def test_every_bad_capture_line_is_quarantined_with_its_reason_and_line(lake, report, home):
    assert _quarantined(lake, "quarantine_captures", home) == sorted(report.bad_capture_lines)
    assert lake.read_partition("predictions", DAY, ["score"]).num_rows == report.predictions


def test_label_lines_add_up_exactly(run, instance, report):
    meta = _metadata(instance, "labeled_predictions")
    assert meta["label_lines_collected_today"] == report.label_lines
    assert meta["quarantined_labels_by_reason"] == report.label_quarantine
    assert meta["quarantined_labels"] == report.quarantined_label_lines
    assert meta["unknown_key_labels"] == report.label_quarantine["unknown_key"]
    assert meta["label_lines_matched"] == report.label_lines_matched
    assert meta["label_lines_collected_today"] == (
        meta["quarantined_labels"] + meta["label_lines_matched"]
    )
    assert meta["unknown_key_window"] == "2025-05-25..2025-06-01"
    assert meta["unknown_key_prediction_days"] == 1
    assert meta["unknown_key_prediction_days_missing"] == WINDOW_BEFORE
    assert (meta["duplicate_keys"], meta["conflicting_keys"]) == (
        report.duplicate_keys,
        report.conflicting_keys,
    )
    assert meta["label_delivered_keys"] == report.keys_delivered
    assert meta["n_predictions"] == report.predictions
    assert meta["n_labeled"] == report.labeled_predictions
    assert meta["n_positives"] == report.labeled_positives


def test_every_bad_label_line_is_quarantined_with_its_reason_and_line(lake, report, home):
    assert _quarantined(lake, "quarantine_labels", home) == sorted(report.bad_label_lines)


def test_each_variant_with_traffic_has_its_exact_curve_figures(lake, report):
    summary = lake.read_partition("pr_summary", DAY).to_pandas().set_index("variant")
    assert sorted(summary.index) == ["challenger", "champion"]  # the empty variant has no row
    for variant in ("champion", "challenger"):
        stream = f"fraud-scorer/{variant}"
        assert summary.loc[variant, "n_predictions"] == report.predictions_by_stream[stream]
        assert summary.loc[variant, "n_labeled"] == report.labeled_by_stream[stream]
        assert summary.loc[variant, "n_positives"] == report.labeled_positives_by_stream[stream]


def test_missing_hour_and_empty_variant_are_in_the_metadata(run, instance, report):
    meta = _metadata(instance, "predictions")
    assert meta["capture_hours_missing"] == report.missing_hours
    assert meta["capture_hours_present"] == {k: len(v) for k, v in report.hours_by_stream.items()}
    assert meta["empty_streams"] == ["fraud-scorer/shadow"]
    assert "fraud-scorer/shadow: capture files in 24 hour folder(s)" in meta["warnings"]


def _evaluations(run) -> dict[str, dg.AssetCheckEvaluation]:
    """The day's check evaluations (the freshness checks judge today's clock, not the day)."""
    out = {}
    for event in run.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if evaluation.check_name == "freshness_check":
                assert evaluation.partition is None
                continue
            assert evaluation.partition == DAY
            out[f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"] = evaluation
    return out


def test_the_checks_say_what_happened_with_the_configured_severities(run, report):
    evaluations = _evaluations(run)
    outcome = {k: (e.passed, e.severity.value) for k, e in evaluations.items()}
    assert outcome == {
        "predictions:volume_near_median": (True, "WARN"),  # no baseline yet
        "predictions:capture_streams_have_records": (False, "WARN"),  # the empty variant
        "labeled_predictions:label_coverage": (True, "WARN"),
        "labeled_predictions:label_quarantine_rate": (False, "WARN"),  # ~5.9 % > 3 %
        "labeled_predictions:conflicting_labels": (True, "WARN"),  # ~1.05 % <= 3 %
        "pr_curves:capture_hours_complete": (True, "ERROR"),  # 1 missing hour tolerated
        "pr_curves:capture_quarantine_rate": (True, "ERROR"),  # ~2.5 % <= 3 %
        "pr_curves:has_positives": (True, "WARN"),
        "pr_curves:average_precision_vs_baseline": (True, "WARN"),
        "pr_curves:best_f1_vs_baseline": (True, "WARN"),
    }
    text = {k: e.description for k, e in evaluations.items()}
    assert (
        "fraud-scorer/shadow (24 hour folder(s))"
        in text["predictions:capture_streams_have_records"]
    )
    hours = text["pr_curves:capture_hours_complete"]
    assert "missing within the tolerance: fraud-scorer/champion: hours 13" in hours
    assert "fraud-scorer/shadow has hour folders but no record" in hours
    captures = text["pr_curves:capture_quarantine_rate"]
    for reason, count in report.bad_records.items():
        assert f"{reason} {count} (" in captures
    labels = text["labeled_predictions:label_quarantine_rate"]
    unknown = report.label_quarantine["unknown_key"]
    assert f"{unknown} valid line(s) match no prediction of 2025-05-25..2025-06-01" in labels
    assert "7 of those 8 prediction days are not in the lake" in labels
    conflicts = text["labeled_predictions:conflicting_labels"]
    assert f"{report.conflicting_keys} of {report.keys_delivered} labeled keys" in conflicts
    assert f"{report.duplicate_keys} key(s) received the same label more than once" in conflicts
    rates = evaluations["labeled_predictions:label_quarantine_rate"].metadata
    assert rates["label_quarantine_rate"].value == (
        report.quarantined_label_lines / report.label_lines
    )
