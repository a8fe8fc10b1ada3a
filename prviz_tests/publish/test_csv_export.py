"""Tests for the CSV copies and QuickSight manifests written into the lake."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from prviz.curves.compute import POINTS_SCHEMA, SUMMARY_SCHEMA
from prviz.lake.store import Lake, LakeError
from prviz.publish.csv_export import (
    POINTS_TABLE,
    SUMMARY_TABLE,
    export_quicksight_csv,
    format_cell,
)

DAY1, DAY2 = "2025-01-14", "2025-01-15"
THIRD = 1 / 3


def summary_table(n_predictions: int, ap: float | None) -> pa.Table:
    rows = [
        {
            "endpoint": "fraud-ep",
            "variant": "AllTraffic",
            "n_predictions": n_predictions,
            "n_labeled": 8,
            "n_positives": 3,
            "label_coverage": 0.8,
            "base_rate": 0.375,
            "average_precision": ap,
            "pr_auc": THIRD,
            "best_f1": 0.1 + 0.2,
            "best_f1_threshold": 1e-05,
            "precision_at_recall_50": 1.0,
            "precision_at_recall_80": None,
            "precision_at_recall_90": None,
            "recall_at_precision_50": 2.5e-10,
            "recall_at_precision_80": 0.0,
            "recall_at_precision_90": 0.0,
            "ap_error_bound": 0.0,
            "n_thresholds": 7,
        },
        {
            "endpoint": "fraud-ep",
            "variant": 'canary, "v2"',  # a delimiter and a quote: must be quoted
            "n_predictions": 2,
            "n_labeled": 0,
            "n_positives": 0,
            "label_coverage": 0.0,
            "base_rate": None,
            **{name: None for name in SUMMARY_SCHEMA.names[7:-1]},
            "n_thresholds": 0,
        },
    ]
    return pa.Table.from_pylist(rows, schema=SUMMARY_SCHEMA)


def points_table(n: int) -> pa.Table:
    rows = [
        {
            "endpoint": "fraud-ep",
            "variant": "AllTraffic",
            "threshold": 1.0 - i / 7,
            "tp": i,
            "fp": n - i,
            "fn": 3 - min(i, 3),
            "tn": 5,
            "precision": (i + 1) / (n + 1),
            "recall": i / max(n - 1, 1),
            "f1": None if i == 0 else 2 / 3,
        }
        for i in range(n)
    ]
    return pa.Table.from_pylist(rows, schema=POINTS_SCHEMA)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    lake.write_table("pr_summary", DAY1, summary_table(10, 0.5))
    lake.write_table("pr_summary", DAY2, summary_table(12, 0.75))
    lake.write_table("pr_curve_points_thin", DAY1, points_table(4))
    lake.write_table("pr_curve_points_thin", DAY2, points_table(0))  # a day with no curve
    return lake


def read_csv(lake: Lake, relative: str) -> list[list[str]]:
    text = lake.read_bytes(relative).decode("utf-8")
    return list(csv.reader(io.StringIO(text)))


def test_writes_one_csv_per_day_and_table_with_dt_first(lake: Lake) -> None:
    result = export_quicksight_csv(lake, [DAY2, DAY1, DAY1])
    assert result["days"] == [DAY1, DAY2]
    assert result["s3"] is False  # a local lake: file:// prefixes, documentation only
    summary = result["tables"]["pr_summary"]
    assert summary["source"] == "pr_summary"
    assert summary["rows"] == 4
    assert {day: entry["rows"] for day, entry in summary["days"].items()} == {DAY1: 2, DAY2: 2}
    points = result["tables"]["pr_curve_points"]
    assert points["source"] == "pr_curve_points_thin"
    assert {day: entry["rows"] for day, entry in points["days"].items()} == {DAY1: 4, DAY2: 0}
    assert summary["days"][DAY1]["uri"] == lake.uri(
        "quicksight", "pr_summary", f"dt={DAY1}", "part.csv"
    )

    rows = read_csv(lake, f"quicksight/pr_summary/dt={DAY1}/part.csv")
    assert rows[0] == ["dt", *SUMMARY_SCHEMA.names]
    assert all(row[0] == DAY1 for row in rows[1:])
    empty_day = read_csv(lake, f"quicksight/pr_curve_points/dt={DAY2}/part.csv")
    assert empty_day == [["dt", *POINTS_SCHEMA.names]]  # header only, still a valid file


def test_values_round_trip_nulls_are_empty_and_floats_keep_full_precision(lake: Lake) -> None:
    export_quicksight_csv(lake, [DAY1])
    header, first, second = read_csv(lake, f"quicksight/pr_summary/dt={DAY1}/part.csv")
    record = dict(zip(header, first, strict=True))
    assert record["n_predictions"] == "10" and record["n_thresholds"] == "7"
    assert record["average_precision"] == "0.5"
    assert record["precision_at_recall_50"] == "1"
    assert record["precision_at_recall_80"] == ""  # null
    # full double precision, positional notation (no exponent for QuickSight's DECIMAL cast)
    for column, value in [
        ("pr_auc", THIRD),
        ("best_f1", 0.1 + 0.2),
        ("best_f1_threshold", 1e-05),
        ("recall_at_precision_50", 2.5e-10),
    ]:
        assert "e" not in record[column].lower()
        assert float(record[column]) == value
    assert record["best_f1"] == "0.30000000000000004"
    assert record["best_f1_threshold"] == "0.00001"

    other = dict(zip(header, second, strict=True))
    assert other["variant"] == 'canary, "v2"'  # csv quoting survives the round trip
    assert other["base_rate"] == "" and other["average_precision"] == ""
    raw = lake.read_bytes(f"quicksight/pr_summary/dt={DAY1}/part.csv").decode("utf-8")
    assert '"canary, ""v2"""' in raw
    assert not raw.startswith("\ufeff") and "\r" not in raw

    table = lake.read_partition("pr_curve_points_thin", DAY1)
    header, *rows = read_csv(lake, f"quicksight/pr_curve_points/dt={DAY1}/part.csv")
    for row, expected in zip(rows, table.to_pylist(), strict=True):
        record = dict(zip(header, row, strict=True))
        assert float(record["threshold"]) == expected["threshold"]
        assert float(record["precision"]) == expected["precision"]
        assert int(record["tp"]) == expected["tp"]
        assert record["f1"] == ("" if expected["f1"] is None else repr(expected["f1"]))


def test_format_cell() -> None:
    assert format_cell(None) == ""
    assert format_cell(float("nan")) == ""
    assert format_cell(float("inf")) == ""
    assert format_cell(3) == "3"
    assert format_cell(1e20) == "100000000000000000000"
    assert format_cell(0.1) == "0.1"
    assert format_cell("AllTraffic") == "AllTraffic"


def test_manifests_are_exactly_the_quicksight_format(lake: Lake) -> None:
    result = export_quicksight_csv(lake, [DAY1])
    for table in (SUMMARY_TABLE, POINTS_TABLE):
        manifest = json.loads(lake.read_bytes(f"quicksight/manifests/{table.name}.json"))
        prefix = lake.uri("quicksight", table.name) + "/"
        assert manifest == {
            "fileLocations": [{"URIPrefixes": [prefix]}],
            "globalUploadSettings": {
                "format": "CSV",
                "delimiter": ",",
                "textqualifier": '"',
                "containsHeader": "true",
            },
        }
        entry = result["tables"][table.name]
        assert entry["prefix_uri"] == prefix
        assert entry["manifest_uri"] == lake.uri("quicksight", "manifests", f"{table.name}.json")


def test_adding_a_day_leaves_the_manifest_unchanged(lake: Lake) -> None:
    export_quicksight_csv(lake, [DAY1])
    before = lake.read_bytes("quicksight/manifests/pr_summary.json")
    export_quicksight_csv(lake, [DAY2])
    assert lake.read_bytes("quicksight/manifests/pr_summary.json") == before
    assert lake.exists(lake.path("quicksight", "pr_summary", f"dt={DAY1}", "part.csv"))


def test_s3_lake_writes_s3_uris(tmp_path: Path) -> None:
    """A lake on S3 gives s3:// manifests (here S3 is a local folder seen as a bucket)."""
    writer = Lake(str(tmp_path / "prviz-bucket" / "lake"))
    writer.write_table("pr_summary", DAY1, summary_table(10, 0.5))
    writer.write_table("pr_curve_points_thin", DAY1, points_table(3))
    bucket = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    lake = Lake("s3://prviz-bucket/lake", filesystem=bucket)
    result = export_quicksight_csv(lake, [DAY1])
    assert result["s3"] is True
    assert result["tables"]["pr_summary"]["manifest_uri"] == (
        "s3://prviz-bucket/lake/quicksight/manifests/pr_summary.json"
    )
    manifest = json.loads(lake.read_bytes("quicksight/manifests/pr_curve_points.json"))
    assert manifest["fileLocations"] == [
        {"URIPrefixes": ["s3://prviz-bucket/lake/quicksight/pr_curve_points/"]}
    ]
    written = tmp_path / "prviz-bucket/lake/quicksight/pr_summary" / f"dt={DAY1}" / "part.csv"
    digest = hashlib.sha256(written.read_bytes()).hexdigest()
    assert result["tables"]["pr_summary"]["days"][DAY1]["sha256"] == digest


def test_rewriting_a_day_is_deterministic(lake: Lake) -> None:
    first = export_quicksight_csv(lake, [DAY1])
    second = export_quicksight_csv(lake, [DAY1])
    assert first == second


def test_a_missing_day_is_an_error_that_says_what_to_do(lake: Lake) -> None:
    with pytest.raises(LakeError, match=r"pr_summary has no data for dt=2025-01-16.*pr_curves"):
        export_quicksight_csv(lake, [DAY1, "2025-01-16"])


def test_bad_days_are_refused(lake: Lake) -> None:
    with pytest.raises(ValueError, match="at least one day"):
        export_quicksight_csv(lake, [])
    with pytest.raises(ValueError, match="not a day"):
        export_quicksight_csv(lake, ["2025-1-5"])
