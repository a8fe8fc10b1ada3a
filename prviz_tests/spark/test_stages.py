"""The Spark stages on hand-written records in the real formats: every encoding, every bad case."""

import json

import pandas as pd
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from prviz.config import JobConfig
from prviz.lake.store import Lake
from prviz.spark import stages as S
from prviz.spark.job import run_job
from prviz_tests.spark.records import b64, capture, capture_file, label, label_file

pytestmark = pytest.mark.spark

DAY = "2025-01-15"
JSON = "application/json"

GOOD = [
    capture("0.9", inference_id="txn-1", event_id="e-1"),
    capture('{"predictions":[{"score":0.25}]}', encoding="JSON", content_type=JSON, event_id="e-2"),
    capture(b64("0.7"), encoding="BASE64", content_type="text/csv", event_id="e-3"),
    capture(b64('{"predictions":[{"score":0.1}]}'), encoding="BASE64", content_type=JSON,
            event_id="e-4"),
    capture("0.2\n0.8\n0.6", input_data="1,2\n3,4\n5,6", inference_id="txn-5", event_id="e-5"),
    capture("0.33", encoding="JSON", content_type=JSON, event_id="e-6"),
    capture("[0.4, 0.5]", encoding="JSON", content_type=JSON, event_id="e-7"),
    capture("0.55", event_id="e-8", time="2025-01-15T10:42:07.123Z"),
]  # fmt: skip
BAD = {
    "malformed_json": '{"captureData": {"endpointInput": {"observedContent',
    "unknown_encoding": capture("0.5", encoding="UTF16", event_id="e-bad1"),
    "unparseable_score": capture("NaN?", event_id="e-bad2"),
    "missing_score": capture('{"predictions":[]}', encoding="JSON", content_type=JSON,
                             event_id="e-bad3"),
    "non_finite_score": capture("NaN", event_id="e-bad4"),
    "undecodable_payload": capture("!!!not base64!!!", encoding="BASE64", event_id="e-bad5"),
    "unsupported_content_type": capture("AAEC", content_type="application/x-npy",
                                        event_id="e-bad6"),
    "bad_inference_time": capture("0.5", event_id="e-bad7", time="yesterday"),
    "missing_fields": '{"foo": 1}',
    "schema_mismatch": '{"captureData": "not an object", "eventMetadata": {"eventId": "e-bad8"}}',
    "missing_event_id": capture("0.5", event_id=None),
}  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("stages")
    cap, gt = root / "capture", root / "ground-truth"
    capture_file(cap, "ep", "A", DAY, 10, "42-07-000-a.jsonl", GOOD + list(BAD.values()) + [""])
    capture_file(cap, "ep", "B", DAY, 11, "00-00-000-b.jsonl", [capture("0.5", event_id="e-b1")])
    label_file(gt, DAY, 12, "a.jsonl", [label("txn-1", "1")])
    label_file(gt, DAY, 20, "b.jsonl", [label("e-8", "2"), '{"groundTruthData": {"da'])
    label_file(gt, "2025-01-16", 0, "a.jsonl", [label("e-2", "0"), label("zzz", "1")])
    label_file(
        gt, "2025-01-16", 1, "b.jsonl", [label("e-3", "0"), label("e-4", b64("1"), "BASE64")]
    )
    label_file(gt, "2025-01-17", 5, "a.jsonl", [label("e-2", "0"), label("txn-5", "0\n1\n1")])
    label_file(gt, "2025-01-18", 3, "a.jsonl", [label("e-3", "1"), label("e-7", "1")])
    label_file(gt, "2025-01-23", 0, "late.jsonl", [label("e-6", "1")])  # D+8: outside the window
    return root


@pytest.fixture(scope="module")
def parsed(spark, data):
    lines = S.read_lines(spark, [f"file://{data}/capture/*/*/2025/01/15/*/*"])
    return S.parse_captures(lines).toPandas()


def test_every_good_encoding_parses_to_its_scores(parsed):
    good = parsed[parsed.reason.isna()].set_index("event_id")
    assert good.loc["e-1", "scores"].tolist() == [0.9]
    assert good.loc["e-2", "scores"].tolist() == [0.25]  # JSON
    assert good.loc["e-3", "scores"].tolist() == [0.7]  # BASE64 of CSV
    assert good.loc["e-4", "scores"].tolist() == [0.1]  # BASE64 of JSON
    assert good.loc["e-5", "scores"].tolist() == [0.2, 0.8, 0.6]  # CSV mini-batch
    assert good.loc["e-6", "scores"].tolist() == [0.33]  # bare JSON number
    assert good.loc["e-7", "scores"].tolist() == [0.4, 0.5]  # bare JSON list
    assert good.loc["e-8", "scores"].tolist() == [0.55]
    assert good.loc["e-b1", "variant"] == "B"


def test_join_key_is_inference_id_else_event_id(parsed):
    good = parsed[parsed.reason.isna()].set_index("event_id")
    assert good.loc["e-1", "join_key"] == "txn-1"
    assert good.loc["e-5", "join_key"] == "txn-5"
    assert good.loc["e-2", "join_key"] == "e-2"


def test_time_with_and_without_milliseconds(parsed):
    good = parsed[parsed.reason.isna()].set_index("event_id")
    assert str(good.loc["e-1", "inference_time"]) == "2025-01-15 10:42:07"
    assert str(good.loc["e-8", "inference_time"]) == "2025-01-15 10:42:07.123000"


def test_each_bad_record_is_quarantined_with_its_reason_and_line(parsed):
    bad = parsed[parsed.reason.notna()]
    assert sorted(bad.reason) == sorted(BAD)
    assert all(isinstance(line, str) and line for line in bad.line)
    malformed = bad[bad.reason == "malformed_json"].iloc[0]
    assert malformed.line == BAD["malformed_json"]
    assert malformed.source_file.endswith("/ep/A/2025/01/15/10/42-07-000-a.jsonl")


def test_records_add_up_blank_lines_are_not_records(parsed):
    # 8 good + 10 bad in A, 1 good in B; the blank line is not a record
    assert len(parsed) == len(GOOD) + len(BAD) + 1
    assert parsed.reason.isna().sum() == len(GOOD) + 1


def test_layout_gives_day_hour_endpoint_variant(parsed):
    assert set(parsed.dt) == {DAY}
    assert set(zip(parsed.endpoint, parsed.variant, parsed.hour, strict=True)) == {
        ("ep", "A", 10),
        ("ep", "B", 11),
    }


def test_predictions_explode_mini_batches_keeping_position(spark, data):
    lines = S.read_lines(spark, [f"file://{data}/capture/*/*/2025/01/15/*/*"])
    preds = S.capture_predictions(S.parse_captures(lines)).toPandas()
    assert list(preds.columns) == list(S.PREDICTION_COLUMNS)
    batch = preds[preds.join_key == "txn-5"].sort_values("batch_index")
    assert batch.batch_index.tolist() == [0, 1, 2]
    assert batch.score.tolist() == [0.2, 0.8, 0.6]
    assert set(batch.batch_size) == {3}
    assert len(preds) == 12  # 1+1+1+1+3+1+2+1 in A, 1 in B


@pytest.fixture(scope="module")
def job(spark, data, tmp_path_factory):
    lake = tmp_path_factory.mktemp("lake")
    config = JobConfig(
        capture_uri=str(data / "capture"),
        ground_truth_uri=str(data / "ground-truth"),
        lake_uri=str(lake),
    )
    report = run_job(spark, config, [DAY])
    return config, report, Lake(str(lake))


def _labeled(job):
    _, _, lake = job
    frame = lake.read_partition("labeled_predictions", DAY).to_pandas()
    return frame.set_index(["join_key", "batch_index"])


def test_labels_join_on_inference_id_and_event_id(job):
    labeled = _labeled(job)
    assert labeled.loc[("txn-1", 0), "label"] == 1  # inferenceId
    assert labeled.loc[("e-2", 0), "label"] == 0  # eventId
    assert labeled.loc[("e-4", 0), "label"] == 1  # BASE64 label


def test_latest_conflicting_label_wins_and_duplicates_do_not_duplicate(job):
    labeled = _labeled(job)
    assert labeled.loc[("e-3", 0), "label"] == 1  # "0" on the 16th, "1" on the 18th
    assert labeled.index.is_unique  # e-2 was delivered twice: still one prediction
    assert labeled.loc[("e-2", 0), "n_deliveries"] == 2


def test_mini_batch_label_applies_per_line_or_not_at_all(job):
    labeled = _labeled(job)
    assert [labeled.loc[("txn-5", i), "label"] for i in range(3)] == [0, 1, 1]
    assert labeled.loc[("e-7", 0), "label_status"] == "batch_mismatch"
    assert labeled.loc[("e-7", 1), "label_status"] == "batch_mismatch"
    assert pd.isna(labeled.loc[("e-7", 0), "label"])


def test_label_outside_the_window_and_invalid_label_leave_it_unlabeled(job):
    labeled = _labeled(job)
    assert labeled.loc[("e-6", 0), "label_status"] == "unlabeled"  # collected on D+8
    assert labeled.loc[("e-8", 0), "label_status"] == "unlabeled"  # "2" is not a label


def test_job_report_counts_everything(job):
    _, report, _ = job
    pred = report["predictions"][DAY]
    assert pred["capture_records"] == len(GOOD) + len(BAD) + 1
    assert pred["quarantined_records"] == len(BAD)
    assert pred["quarantined_by_reason"] == {reason: 1 for reason in BAD}
    assert pred["predictions"] == 12
    assert pred["predictions_by_variant"] == {"ep/A": 11, "ep/B": 1}
    assert pred["input_files"] == 2
    assert pred["capture_hours_present"] == {"ep/A": 1, "ep/B": 1}
    lab = report["labeled_predictions"][DAY]
    assert lab["n_predictions"] == 12
    assert lab["n_labeled"] == 7  # txn-1, e-2, e-3, e-4, txn-5 x3
    assert lab["n_positives"] == 5  # txn-1, e-3, e-4, txn-5[1], txn-5[2]
    assert lab["n_batch_mismatch"] == 2
    assert lab["conflicting_keys"] == 1
    assert lab["duplicate_keys"] == 1
    assert lab["quarantined_labels_by_reason"] == {"invalid_label": 1, "malformed_json": 1}
    assert lab["label_coverage"] == pytest.approx(7 / 12, abs=1e-15)
    assert pred["capture_records_by_variant"] == {"ep/A": len(GOOD) + len(BAD), "ep/B": 1}
    assert pred["empty_streams"] == []
    # lines collected on DAY: txn-1 "1" (matched), e-8 "2" (invalid), a truncated line
    assert lab["label_lines_collected_today"] == 3
    assert lab["label_lines_valid"] == lab["label_lines_matched"] == 1
    assert lab["unknown_key_labels"] == 0
    assert lab["unknown_key_window"] == "2025-01-08..2025-01-15"
    assert lab["unknown_key_prediction_days"] == 1  # only DAY is in this lake
    assert lab["unknown_key_prediction_days_missing"] == [f"2025-01-{d:02d}" for d in range(8, 15)]
    assert lab["label_delivered_keys"] == 6  # txn-1, e-2, e-3, e-4, txn-5, e-7


def test_quarantine_datasets_hold_every_bad_line(job):
    _, _, lake = job
    captures = lake.read_partition("quarantine_captures", DAY).to_pandas()
    labels = lake.read_partition("quarantine_labels", DAY).to_pandas()
    assert sorted(captures.reason) == sorted(BAD)
    assert set(captures.source) == {"capture"}
    assert sorted(labels.reason) == ["invalid_label", "malformed_json"]
    assert json.loads(labels[labels.reason == "invalid_label"].line.iloc[0])["eventMetadata"] == {
        "eventId": "e-8"
    }


def test_score_counts_exact_and_quantized(spark, job):
    _, _, lake = job
    counts = lake.read_partition("score_counts", DAY).to_pandas()
    a = counts[counts.variant == "A"].set_index("score")
    assert a.loc[0.9, ["n_pos", "n_neg", "n_unlabeled"]].tolist() == [1, 0, 0]
    assert a.loc[0.25, ["n_pos", "n_neg", "n_unlabeled"]].tolist() == [0, 1, 0]
    assert int(counts[["n_pos", "n_neg", "n_unlabeled"]].to_numpy().sum()) == 12
    labeled = spark.createDataFrame(
        [("d", "e", "v", 0.123, 1), ("d", "e", "v", 0.1249, 0), ("d", "e", "v", 0.126, None)],
        "dt string, endpoint string, variant string, score double, label int",
    )
    rounded = S.score_counts(labeled, score_decimals=2).toPandas().set_index("score")
    assert rounded.loc[0.12, ["n_pos", "n_neg", "n_unlabeled"]].tolist() == [1, 1, 0]
    assert rounded.loc[0.13, ["n_pos", "n_neg", "n_unlabeled"]].tolist() == [0, 0, 1]


def test_rerun_of_a_day_gives_identical_rows(spark, job):
    config, _, lake = job
    datasets = ["predictions", "labeled_predictions", "score_counts", "pr_summary"]
    before = {d: _sorted_rows(lake, d) for d in datasets}
    run_job(spark, config, [DAY])
    after = {d: _sorted_rows(lake, d) for d in datasets}
    assert before == after
    files = lake.partition_files("predictions", DAY)
    assert files and not any("_staging" in f.path for f in files)
    leftovers = lake.fs.get_file_info(
        pafs.FileSelector(lake.path("_staging"), recursive=True, allow_not_found=True)
    )
    assert leftovers == []


def _sorted_rows(lake, dataset):
    files = lake.partition_files(dataset, DAY)
    rows = []
    for info in files:
        rows.extend(pq.read_table(info.path).to_pylist())
    return sorted(rows, key=lambda r: json.dumps(r, default=str, sort_keys=True))


def test_a_day_with_no_data_gives_empty_partitions_and_a_warning(spark, job):
    config, _, lake = job
    report = run_job(spark, config, ["2025-02-01"])
    assert report["predictions"]["2025-02-01"]["capture_records"] == 0
    assert any("no capture data" in w for w in report["predictions"]["2025-02-01"]["warnings"])
    assert lake.read_partition("predictions", "2025-02-01").num_rows == 0
    assert lake.read_partition("pr_summary", "2025-02-01").num_rows == 0


def test_labels_for_unknown_keys_are_quarantined_on_the_day_they_were_collected(
    spark, data, tmp_path
):
    """Collected on 2025-01-16: e-2, e-3, e-4 (predictions of the 15th, in the window) and zzz
    (no prediction anywhere). Until the 15th is in the lake, its labels count as unknown too."""
    config = JobConfig(
        capture_uri=str(data / "capture"),
        ground_truth_uri=str(data / "ground-truth"),
        lake_uri=str(tmp_path / "lake"),
    )
    lake = Lake(config.lake_uri)
    two = ["predictions", "labeled_predictions"]
    early = run_job(spark, config, ["2025-01-16"], two)["labeled_predictions"]["2025-01-16"]
    assert early["label_lines_collected_today"] == 4
    assert early["quarantined_labels_by_reason"] == {"unknown_key": 4}
    assert early["label_lines_matched"] == 0
    assert early["unknown_key_prediction_days"] == 1
    assert "2025-01-15" in early["unknown_key_prediction_days_missing"]
    assert any("are processed and 2025-01-16 is re-run" in w for w in early["warnings"])

    run_job(spark, config, [DAY], two)
    late = run_job(spark, config, ["2025-01-16"], ["labeled_predictions"])
    late = late["labeled_predictions"]["2025-01-16"]
    assert late["quarantined_labels_by_reason"] == {"unknown_key": 1}
    assert late["quarantined_labels"] == 1 and late["unknown_key_labels"] == 1
    assert late["label_lines_matched"] == 3
    assert late["label_lines_collected_today"] == late["quarantined_labels"] + 3
    assert late["unknown_key_prediction_days"] == 2
    assert late["unknown_key_prediction_days_missing"] == [f"2025-01-{d:02d}" for d in range(9, 15)]
    quarantined = lake.read_partition("quarantine_labels", "2025-01-16").to_pandas()
    assert quarantined.reason.tolist() == ["unknown_key"]
    assert quarantined.source.tolist() == ["ground_truth"]
    assert json.loads(quarantined.line[0]) == label("zzz", "1")
    assert quarantined.source_file[0].endswith("/ground-truth/2025/01/16/00/a.jsonl")
    # the prediction day's labels are untouched by the label day's accounting
    labeled = lake.read_partition("labeled_predictions", DAY).to_pandas()
    assert labeled.set_index("join_key").loc["e-3", "label"] == 1
