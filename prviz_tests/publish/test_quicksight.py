"""Tests for the QuickSight publisher, against a real boto3 client behind botocore's Stubber.

The Stubber checks every call's parameters (expected_params, exactly) and validates every request
and response against QuickSight's service model, so a wrong field name or type fails here, not in
production. Backoff and polling use an injected clock: nothing sleeps, nothing leaves the
machine. `strict_errors` adds what botocore's validator skips (enums, patterns, maximum lengths,
unknown keys) for the dashboard Definition.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from botocore.stub import Stubber

from prviz.curves.compute import POINTS_SCHEMA, SUMMARY_SCHEMA
from prviz.lake.store import Lake
from prviz.publish.csv_export import POINTS_TABLE, SUMMARY_TABLE, export_quicksight_csv
from prviz.publish.quicksight import (
    OWNER_DASHBOARD_ACTIONS,
    OWNER_DATA_SOURCE_ACTIONS,
    OWNER_DATASET_ACTIONS,
    PUBLISH_OPTIONS,
    VIEWER_ACTIONS,
    IngestionFailedError,
    LocalPublisher,
    Publisher,
    QuickSightConfig,
    QuickSightError,
    QuickSightPublisher,
    QuickSightTimeoutError,
    dashboard_definition,
    dataset_tables,
    definition_digest,
    ingestion_id_for,
)

ACCOUNT = "123456789012"
REGION = "us-east-1"
ARN = f"arn:aws:quicksight:{REGION}:{ACCOUNT}"
OWNER = f"{ARN}:user/default/ml-platform"
SECOND_OWNER = f"{ARN}:group/default/ml-admins"
GROUP = f"{ARN}:group/default/business-readers"
BUCKET = "prviz-bucket"
LAKE_URI = f"s3://{BUCKET}/lake"
MANIFESTS = {
    "pr_summary": f"{LAKE_URI}/quicksight/manifests/pr_summary.json",
    "pr_curve_points": f"{LAKE_URI}/quicksight/manifests/pr_curve_points.json",
}
DS_ARN = {
    "pr_summary": f"{ARN}:datasource/prviz-src-summary",
    "pr_curve_points": f"{ARN}:datasource/prviz-src-points",
}
SET_ID = {"pr_summary": "prviz-pr-summary", "pr_curve_points": "prviz-pr-points"}
SOURCE_ID = {"pr_summary": "prviz-src-summary", "pr_curve_points": "prviz-src-points"}
SET_ARN = {name: f"{ARN}:dataset/{dataset}" for name, dataset in SET_ID.items()}
TABLES = {"pr_summary": SUMMARY_TABLE, "pr_curve_points": POINTS_TABLE}
DASHBOARD = "prviz-pr"
DASHBOARD_ARN = f"{ARN}:dashboard/{DASHBOARD}"
CREATED = dt.datetime(2025, 1, 16, 6, 0, tzinfo=dt.UTC)
DAYS = ["2025-01-14", "2025-01-15"]
POLL = 15.0


def make_config(**changes: Any) -> QuickSightConfig:
    values: dict[str, Any] = {
        "aws_account_id": ACCOUNT,
        "region": REGION,
        "data_source_id": "prviz-src",
        "summary_dataset_id": SET_ID["pr_summary"],
        "points_dataset_id": SET_ID["pr_curve_points"],
        "dashboard_id": DASHBOARD,
        "owner_arns": (OWNER,),
        "viewer_group_arn": GROUP,
        "summary_manifest_uri": MANIFESTS["pr_summary"],
        "points_manifest_uri": MANIFESTS["pr_curve_points"],
        "poll_interval_seconds": POLL,
        "ingestion_timeout_seconds": 60.0,
        "resource_timeout_seconds": 60.0,
        "max_retries": 3,
        "backoff_base_seconds": 1.0,
        "backoff_max_seconds": 30.0,
    }
    values.update(changes)
    return QuickSightConfig(**values)


# -- a lake that looks like S3 (s3:// URIs) over a temporary folder ------------------------------
def summary_rows(day_index: int) -> pa.Table:
    rows = [
        {
            "endpoint": "fraud-ep",
            "variant": variant,
            "n_predictions": 1000 + day_index,
            "n_labeled": 800,
            "n_positives": 80,
            "label_coverage": 0.8,
            "base_rate": 0.1,
            **{name: 0.5 + day_index / 100 for name in SUMMARY_SCHEMA.names[7:-2]},
            "ap_error_bound": 0.0,
            "n_thresholds": 50,
        }
        for variant in ("AllTraffic", "Canary")
    ]
    return pa.Table.from_pylist(rows, schema=SUMMARY_SCHEMA)


def points_rows(day_index: int) -> pa.Table:
    rows = [
        {
            "endpoint": "fraud-ep",
            "variant": "AllTraffic",
            "threshold": 1 - i / 10,
            "tp": i,
            "fp": 2 * i,
            "fn": 10 - i,
            "tn": 100 - 2 * i,
            "precision": 1 / 3 if i else 1.0,
            "recall": i / 10 + day_index / 1000,
            "f1": 0.25,
        }
        for i in range(4)
    ]
    return pa.Table.from_pylist(rows, schema=POINTS_SCHEMA)


def make_lake(tmp_path: Path, days: list[str]) -> Lake:
    """The tables in a folder seen as `s3://prviz-bucket/lake`.

    The CSVs are exported once here so that tests can compute the expected ingestion ids from
    the files (the export is deterministic: the publisher rewrites the same bytes).
    """
    writer = Lake(str(tmp_path / BUCKET / "lake"))
    for index, day in enumerate(days):
        writer.write_table("pr_summary", day, summary_rows(index))
        writer.write_table("pr_curve_points_thin", day, points_rows(index))
    lake = Lake(LAKE_URI, filesystem=pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem()))
    export_quicksight_csv(lake, days)
    return lake


def csv_hashes(tmp_path: Path, table: str, days: list[str]) -> dict[str, str]:
    folder = tmp_path / BUCKET / "lake" / "quicksight" / table
    return {
        day: hashlib.sha256((folder / f"dt={day}" / "part.csv").read_bytes()).hexdigest()
        for day in days
    }


# -- the client, the stubber, a clock that never sleeps -----------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class QS:
    """A real QuickSight client with a Stubber, a call log and helpers for the responses."""

    def __init__(self) -> None:
        self.client = boto3.client(
            "quicksight",
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self.stub = Stubber(self.client)
        self.calls: list[tuple[str, dict]] = []
        self.client.meta.events.register(
            "before-parameter-build.quicksight",
            lambda params, model, **_: self.calls.append((model.name, copy.deepcopy(params))),
        )
        self.responses: list[tuple[str, dict]] = []  # (operation, parsed response), in order
        self.client.meta.events.register(
            "after-call.quicksight",
            lambda parsed, model, **_: self.responses.append((model.name, copy.deepcopy(parsed))),
        )

    def ok(self, method: str, params: dict, response: dict | None = None) -> None:
        body = {"Status": 200, "RequestId": "req-1", **(response or {})}
        self.stub.add_response(method, body, expected_params=params)

    def error(
        self, method: str, code: str, params: dict, status: int = 400, text: str = ""
    ) -> None:
        self.stub.add_client_error(
            method,
            service_error_code=code,
            service_message=text or f"{code} from QuickSight",
            http_status_code=status,
            expected_params=params,
        )

    def missing(self, method: str, params: dict, status: int = 404) -> None:
        self.error(method, "ResourceNotFoundException", params, status)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def qs() -> QS:
    qs = QS()
    qs.stub.activate()
    yield qs
    qs.stub.deactivate()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_publisher(qs: QS, clock: FakeClock, lake: Lake | None = None, **config: Any):
    return QuickSightPublisher(
        lake, qs.client, make_config(**config), sleep=clock.sleep, clock=clock
    )


# -- expected requests ---------------------------------------------------------------------------
def describe_source(name: str) -> dict:
    return {"AwsAccountId": ACCOUNT, "DataSourceId": SOURCE_ID[name]}


def source_params(name: str) -> dict:
    return {
        "S3Parameters": {
            "ManifestFileLocation": {
                "Bucket": BUCKET,
                "Key": MANIFESTS[name][len(f"s3://{BUCKET}/") :],
            }
        }
    }


def source_body(name: str, status: str = "CREATION_SUCCESSFUL", key: str | None = None) -> dict:
    parameters = source_params(name)
    if key is not None:
        parameters = {"S3Parameters": {"ManifestFileLocation": {"Bucket": BUCKET, "Key": key}}}
    return {
        "DataSource": {
            "Arn": DS_ARN[name],
            "DataSourceId": SOURCE_ID[name],
            "Name": f"prviz {name} (S3 manifest)",
            "Type": "S3",
            "Status": status,
            "DataSourceParameters": parameters,
        }
    }


def create_source(name: str) -> dict:
    return {
        "AwsAccountId": ACCOUNT,
        "DataSourceId": SOURCE_ID[name],
        "Name": f"prviz {name} (S3 manifest)",
        "Type": "S3",
        "DataSourceParameters": source_params(name),
        "Permissions": [{"Principal": OWNER, "Actions": list(OWNER_DATA_SOURCE_ACTIONS)}],
    }


def expected_tables(name: str) -> tuple[dict, dict]:
    """The dataset maps written out by hand for the summary; built from the schema for points."""
    columns = ["dt", *TABLES[name].schema.names]
    physical = {
        "csv": {
            "S3Source": {
                "DataSourceArn": DS_ARN[name],
                "UploadSettings": {
                    "Format": "CSV",
                    "StartFromRow": 1,
                    "ContainsHeader": True,
                    "TextQualifier": "DOUBLE_QUOTE",
                    "Delimiter": ",",
                },
                "InputColumns": [{"Name": column, "Type": "STRING"} for column in columns],
            }
        }
    }
    types = {
        pa.int64(): {"NewColumnType": "INTEGER"},
        pa.float64(): {"NewColumnType": "DECIMAL", "SubType": "FLOAT"},
    }
    casts = [
        {
            "CastColumnTypeOperation": {
                "ColumnName": "dt",
                "NewColumnType": "DATETIME",
                "Format": "yyyy-MM-dd",
            }
        }
    ]
    casts += [
        {"CastColumnTypeOperation": {"ColumnName": f.name, **types[f.type]}}
        for f in TABLES[name].schema
        if f.type != pa.string()
    ]
    logical = {
        "typed": {"Alias": name, "Source": {"PhysicalTableId": "csv"}, "DataTransforms": casts}
    }
    return physical, logical


def dataset_common(name: str) -> dict:
    physical, logical = expected_tables(name)
    return {
        "AwsAccountId": ACCOUNT,
        "DataSetId": SET_ID[name],
        "Name": f"prviz {name}",
        "PhysicalTableMap": physical,
        "LogicalTableMap": logical,
        "ImportMode": "SPICE",
    }


def dataset_body(name: str, physical: dict | None = None, logical: dict | None = None) -> dict:
    default_physical, default_logical = expected_tables(name)
    return {
        "DataSet": {
            "Arn": SET_ARN[name],
            "DataSetId": SET_ID[name],
            "Name": f"prviz {name}",
            "ImportMode": "SPICE",
            "PhysicalTableMap": physical or default_physical,
            "LogicalTableMap": logical or default_logical,
            "ConsumedSpiceCapacityInBytes": 2048,
        }
    }


def ingestion(name: str, ingestion_id: str, status: str, **extra: Any) -> dict:
    body = {
        "Arn": f"{SET_ARN[name]}/ingestion/{ingestion_id}",
        "IngestionId": ingestion_id,
        "IngestionStatus": status,
        "CreatedTime": CREATED,
        **extra,
    }
    return {"Ingestion": body}


def describe_set(name: str) -> dict:
    return {"AwsAccountId": ACCOUNT, "DataSetId": SET_ID[name]}


def started(ingestion_id: str, status: str = "INITIALIZED") -> dict:
    return {"IngestionId": ingestion_id, "IngestionStatus": status}


def ingestion_key(name: str, ingestion_id: str) -> dict:
    return {"AwsAccountId": ACCOUNT, "DataSetId": SET_ID[name], "IngestionId": ingestion_id}


def create_ingestion(name: str, ingestion_id: str) -> dict:
    return {**ingestion_key(name, ingestion_id), "IngestionType": "FULL_REFRESH"}


def completed(name: str, ingestion_id: str, rows: int, total: int) -> dict:
    return ingestion(
        name,
        ingestion_id,
        "COMPLETED",
        RowInfo={"RowsIngested": rows, "RowsDropped": 0, "TotalRowsInDataset": total},
        IngestionTimeInSeconds=12,
        IngestionSizeInBytes=4096,
        RequestType="FULL_REFRESH",
    )


DEFINITION = dashboard_definition(SET_ARN["pr_summary"], SET_ARN["pr_curve_points"])
DESCRIPTION = "prviz definition " + definition_digest(
    "Precision-recall by day", DEFINITION, PUBLISH_OPTIONS
)
DASHBOARD_BODY = {
    "AwsAccountId": ACCOUNT,
    "DashboardId": DASHBOARD,
    "Name": "Precision-recall by day",
    "Definition": DEFINITION,
    "VersionDescription": DESCRIPTION,
    "DashboardPublishOptions": PUBLISH_OPTIONS,
}
DASHBOARD_KEY = {"AwsAccountId": ACCOUNT, "DashboardId": DASHBOARD}


def dashboard_body(version: int, status: str, description: str = DESCRIPTION) -> dict:
    return {
        "Dashboard": {
            "DashboardId": DASHBOARD,
            "Arn": DASHBOARD_ARN,
            "Name": "Precision-recall by day",
            "Version": {
                "VersionNumber": version,
                "Status": status,
                "Arn": f"{DASHBOARD_ARN}/version/{version}",
                "Description": description,
            },
        }
    }


def version_created(version: int, status: str) -> dict:
    return {
        "Arn": DASHBOARD_ARN,
        "VersionArn": f"{DASHBOARD_ARN}/version/{version}",
        "DashboardId": DASHBOARD,
        "CreationStatus": status,
    }


def published(version: int) -> tuple[dict, dict]:
    return (
        {**DASHBOARD_KEY, "VersionNumber": version},
        {"DashboardId": DASHBOARD, "DashboardArn": DASHBOARD_ARN},
    )


def permissions(*entries: tuple[str, tuple[str, ...]]) -> dict:
    body: dict = {"DashboardId": DASHBOARD, "DashboardArn": DASHBOARD_ARN}
    if entries:
        body["Permissions"] = [{"Principal": p, "Actions": list(a)} for p, a in entries]
    return body


def assert_group_only_reads(qs: QS) -> None:
    """The business group appears only in dashboard grants, and only with VIEWER_ACTIONS."""
    for name, params in qs.calls:
        text = repr(params)
        if GROUP not in text:
            continue
        assert name == "UpdateDashboardPermissions", f"{name} mentions the viewer group"
        for grant in params.get("GrantPermissions", []):
            if grant["Principal"] == GROUP:
                assert set(grant["Actions"]) <= set(VIEWER_ACTIONS), grant


# -- the whole publication -----------------------------------------------------------------------
def test_first_publish_creates_everything(tmp_path: Path, qs: QS, clock: FakeClock) -> None:
    lake = make_lake(tmp_path, DAYS)
    # summary: the data source is created asynchronously and awaited
    qs.missing("describe_data_source", describe_source("pr_summary"))
    qs.ok(
        "create_data_source",
        create_source("pr_summary"),
        {
            "Arn": DS_ARN["pr_summary"],
            "DataSourceId": SOURCE_ID["pr_summary"],
            "CreationStatus": "CREATION_IN_PROGRESS",
        },
    )
    qs.ok(
        "describe_data_source",
        describe_source("pr_summary"),
        source_body("pr_summary", "CREATION_SUCCESSFUL"),
    )
    qs.missing("describe_data_set", describe_set("pr_summary"))
    qs.ok(
        "create_data_set",
        {
            **dataset_common("pr_summary"),
            "Permissions": [{"Principal": OWNER, "Actions": list(OWNER_DATASET_ACTIONS)}],
        },
        {
            "Arn": SET_ARN["pr_summary"],
            "DataSetId": SET_ID["pr_summary"],
            "IngestionArn": f"{SET_ARN['pr_summary']}/ingestion/first-s",
            "IngestionId": "first-s",
        },
    )
    # points: the data source is ready at once; the dataset's creation starts no ingestion
    qs.missing("describe_data_source", describe_source("pr_curve_points"))
    qs.ok(
        "create_data_source",
        create_source("pr_curve_points"),
        {"Arn": DS_ARN["pr_curve_points"], "CreationStatus": "CREATION_SUCCESSFUL"},
    )
    qs.missing("describe_data_set", describe_set("pr_curve_points"))
    qs.ok(
        "create_data_set",
        {
            **dataset_common("pr_curve_points"),
            "Permissions": [{"Principal": OWNER, "Actions": list(OWNER_DATASET_ACTIONS)}],
        },
        {"Arn": SET_ARN["pr_curve_points"], "DataSetId": SET_ID["pr_curve_points"]},
    )
    points_id = ingestion_id_for(
        SET_ID["pr_curve_points"], DAYS, csv_hashes(tmp_path, "pr_curve_points", DAYS)
    )
    qs.ok("create_ingestion", create_ingestion("pr_curve_points", points_id), started(points_id))
    # the summary's creation ingestion is awaited, not duplicated
    qs.ok(
        "describe_ingestion",
        ingestion_key("pr_summary", "first-s"),
        completed("pr_summary", "first-s", 4, 4),
    )
    qs.ok(
        "describe_ingestion",
        ingestion_key("pr_curve_points", points_id),
        ingestion("pr_curve_points", points_id, "RUNNING"),
    )
    qs.ok(
        "describe_ingestion",
        ingestion_key("pr_curve_points", points_id),
        completed("pr_curve_points", points_id, 8, 8),
    )
    # dashboard: created, awaited, published, shared
    qs.missing("describe_dashboard", DASHBOARD_KEY)
    qs.ok("create_dashboard", DASHBOARD_BODY, version_created(1, "CREATION_IN_PROGRESS"))
    qs.ok(
        "describe_dashboard",
        {**DASHBOARD_KEY, "VersionNumber": 1},
        dashboard_body(1, "CREATION_SUCCESSFUL"),
    )
    qs.ok("update_dashboard_published_version", *published(1))
    qs.ok("describe_dashboard_permissions", DASHBOARD_KEY, permissions())
    qs.ok(
        "update_dashboard_permissions",
        {
            **DASHBOARD_KEY,
            "GrantPermissions": [
                {"Principal": OWNER, "Actions": list(OWNER_DASHBOARD_ACTIONS)},
                {
                    "Principal": GROUP,
                    "Actions": [
                        "quicksight:DescribeDashboard",
                        "quicksight:ListDashboardVersions",
                        "quicksight:QueryDashboard",
                    ],
                },
            ],
        },
        permissions((OWNER, OWNER_DASHBOARD_ACTIONS), (GROUP, VIEWER_ACTIONS)),
    )

    summary = make_publisher(qs, clock, lake).publish(DAYS)

    qs.stub.assert_no_pending_responses()
    assert clock.sleeps == [POLL]  # waits are checked first: only the RUNNING ingestion slept
    assert summary["publisher"] == "quicksight" and summary["published"] is True
    assert summary["data_sources"] == {"pr_summary": "created", "pr_curve_points": "created"}
    assert summary["datasets"] == {"pr_summary": "created", "pr_curve_points": "created"}
    assert summary["ingestions"]["pr_summary"]["ingestion_id"] == "first-s"
    assert summary["ingestions"]["pr_curve_points"] == {
        "dataset_id": SET_ID["pr_curve_points"],
        "ingestion_id": points_id,
        "status": "COMPLETED",
        "rows_ingested": 8,
        "rows_dropped": 0,
        "total_rows": 8,
        "seconds": 12,
        "bytes": 4096,
    }
    assert summary["dashboard"]["action"] == "created" and summary["dashboard"]["version"] == 1
    assert summary["dashboard"]["url"] == (
        "https://us-east-1.quicksight.aws.amazon.com/sn/dashboards/prviz-pr"
    )
    assert summary["rows"] == {"pr_summary": 4, "pr_curve_points": 8}
    assert summary["rows_by_day"]["2025-01-15"] == {"pr_summary": 2, "pr_curve_points": 4}
    assert summary["warnings"] == []
    assert qs.names().count("CreateIngestion") == 1
    assert_group_only_reads(qs)
    grants = assert_every_grant_is_exact(qs, owners=(OWNER,))
    assert sorted({(g.resource, g.principal) for g in grants}) == [
        ("dashboard", GROUP),
        ("dashboard", OWNER),
        ("data source", OWNER),
        ("dataset", OWNER),
    ]
    assert len([g for g in grants if g.resource != "dashboard"]) == 4  # 2 sources + 2 datasets


def test_second_publish_updates_what_changed(tmp_path: Path, qs: QS, clock: FakeClock) -> None:
    lake = make_lake(tmp_path, DAYS)
    # data sources unchanged; the points dataset has an old column list → update
    qs.ok("describe_data_source", describe_source("pr_summary"), source_body("pr_summary"))
    qs.ok("describe_data_set", describe_set("pr_summary"), dataset_body("pr_summary"))
    qs.ok(
        "describe_data_source", describe_source("pr_curve_points"), source_body("pr_curve_points")
    )
    old_physical, old_logical = expected_tables("pr_curve_points")
    old_physical["csv"]["S3Source"]["InputColumns"] = old_physical["csv"]["S3Source"][
        "InputColumns"
    ][:-1]
    qs.ok(
        "describe_data_set",
        describe_set("pr_curve_points"),
        dataset_body("pr_curve_points", old_physical, old_logical),
    )
    qs.ok(
        "update_data_set",
        dataset_common("pr_curve_points"),
        {
            "Arn": SET_ARN["pr_curve_points"],
            "DataSetId": SET_ID["pr_curve_points"],
            "IngestionId": "edit-p",
        },
    )
    summary_id = ingestion_id_for(
        SET_ID["pr_summary"], DAYS, csv_hashes(tmp_path, "pr_summary", DAYS)
    )
    qs.ok("create_ingestion", create_ingestion("pr_summary", summary_id), started(summary_id))
    qs.ok(
        "describe_ingestion",
        ingestion_key("pr_summary", summary_id),
        completed("pr_summary", summary_id, 4, 40),
    )
    qs.ok(
        "describe_ingestion",
        ingestion_key("pr_curve_points", "edit-p"),
        completed("pr_curve_points", "edit-p", 8, 80),
    )
    # the published version has an older definition → update, await, publish version 2
    qs.ok(
        "describe_dashboard",
        DASHBOARD_KEY,
        dashboard_body(1, "CREATION_SUCCESSFUL", "prviz definition 0123456789abcdef"),
    )
    qs.ok("update_dashboard", DASHBOARD_BODY, version_created(2, "UPDATE_IN_PROGRESS"))
    qs.ok(
        "describe_dashboard",
        {**DASHBOARD_KEY, "VersionNumber": 2},
        dashboard_body(2, "UPDATE_IN_PROGRESS"),
    )
    qs.ok(
        "describe_dashboard",
        {**DASHBOARD_KEY, "VersionNumber": 2},
        dashboard_body(2, "UPDATE_SUCCESSFUL"),
    )
    qs.ok("update_dashboard_published_version", *published(2))
    # someone gave the business group edit rights by hand; a second owner was added to config
    qs.ok(
        "describe_dashboard_permissions",
        DASHBOARD_KEY,
        permissions(
            (OWNER, OWNER_DASHBOARD_ACTIONS),
            (GROUP, (*VIEWER_ACTIONS, "quicksight:UpdateDashboard", "quicksight:DeleteDashboard")),
        ),
    )
    qs.ok(
        "update_dashboard_permissions",
        {
            **DASHBOARD_KEY,
            "GrantPermissions": [
                {"Principal": SECOND_OWNER, "Actions": list(OWNER_DASHBOARD_ACTIONS)}
            ],
            "RevokePermissions": [
                {
                    "Principal": GROUP,
                    "Actions": ["quicksight:DeleteDashboard", "quicksight:UpdateDashboard"],
                }
            ],
        },
        permissions((OWNER, OWNER_DASHBOARD_ACTIONS), (GROUP, VIEWER_ACTIONS)),
    )

    publisher = make_publisher(qs, clock, lake, owner_arns=(OWNER, SECOND_OWNER))
    summary = publisher.publish(DAYS)

    qs.stub.assert_no_pending_responses()
    assert summary["data_sources"] == {"pr_summary": "unchanged", "pr_curve_points": "unchanged"}
    assert summary["datasets"] == {"pr_summary": "unchanged", "pr_curve_points": "updated"}
    assert summary["dashboard"]["action"] == "updated" and summary["dashboard"]["version"] == 2
    assert summary["dashboard"]["permissions"]["revoked"] == [
        "quicksight:DeleteDashboard",
        "quicksight:UpdateDashboard",
    ]
    assert clock.sleeps == [POLL]
    assert qs.names().count("CreateIngestion") == 1  # the update's own ingestion is reused
    assert_group_only_reads(qs)
    grants = assert_every_grant_is_exact(qs, owners=(OWNER, SECOND_OWNER))
    assert [(g.member, g.principal) for g in grants] == [
        ("GrantPermissions", SECOND_OWNER),
        ("RevokePermissions", GROUP),
    ]


def steady_state(qs: QS, tmp_path: Path, days: list[str], perms: dict | None = None) -> dict:
    """Queue a run where every resource exists unchanged: only the two ingestions happen."""
    ids = {}
    for name in ("pr_summary", "pr_curve_points"):
        qs.ok("describe_data_source", describe_source(name), source_body(name))
        qs.ok("describe_data_set", describe_set(name), dataset_body(name))
    for name in ("pr_summary", "pr_curve_points"):
        ids[name] = ingestion_id_for(SET_ID[name], days, csv_hashes(tmp_path, name, days))
        qs.ok("create_ingestion", create_ingestion(name, ids[name]), started(ids[name], "QUEUED"))
    for name in ("pr_summary", "pr_curve_points"):
        qs.ok(
            "describe_ingestion", ingestion_key(name, ids[name]), completed(name, ids[name], 10, 10)
        )
    qs.ok("describe_dashboard", DASHBOARD_KEY, dashboard_body(3, "UPDATE_SUCCESSFUL"))
    qs.ok(
        "describe_dashboard_permissions",
        DASHBOARD_KEY,
        perms or permissions((OWNER, OWNER_DASHBOARD_ACTIONS), (GROUP, VIEWER_ACTIONS)),
    )
    return ids


def test_backfill_of_many_days_refreshes_each_dataset_once(
    tmp_path: Path, qs: QS, clock: FakeClock
) -> None:
    days = [f"2025-01-{day:02d}" for day in range(1, 11)]
    lake = make_lake(tmp_path, days)
    ids = steady_state(qs, tmp_path, days)

    summary = make_publisher(qs, clock, lake).publish(days)

    qs.stub.assert_no_pending_responses()
    assert assert_every_grant_is_exact(qs, owners=(OWNER,)) == []  # nothing granted, all held
    created = [params for name, params in qs.calls if name == "CreateIngestion"]
    assert [params["DataSetId"] for params in created] == [
        SET_ID["pr_summary"],
        SET_ID["pr_curve_points"],
    ]
    assert re.fullmatch(
        r"prviz-prviz-pr-summary-2025-01-01-2025-01-10-[0-9a-f]{8}", ids["pr_summary"]
    )
    assert summary["days"] == 10 and summary["first_day"] == "2025-01-01"
    assert summary["dashboard"]["action"] == "unchanged"  # no new dashboard version
    assert summary["dashboard"]["permissions"]["action"] == "unchanged"
    assert "UpdateDashboard" not in qs.names() and "UpdateDashboardPermissions" not in qs.names()
    assert clock.sleeps == []


def test_rerun_with_the_same_files_reuses_the_ingestion(
    tmp_path: Path, qs: QS, clock: FakeClock
) -> None:
    lake = make_lake(tmp_path, DAYS)
    publisher = make_publisher(qs, clock, lake)
    ids = steady_state(qs, tmp_path, DAYS)
    publisher.publish(DAYS)
    # same files again: QuickSight says the id exists; its result is reused, nothing new starts
    for name in ("pr_summary", "pr_curve_points"):
        qs.ok("describe_data_source", describe_source(name), source_body(name))
        qs.ok("describe_data_set", describe_set(name), dataset_body(name))
    for name in ("pr_summary", "pr_curve_points"):
        qs.error(
            "create_ingestion", "ResourceExistsException", create_ingestion(name, ids[name]), 409
        )
        qs.ok(
            "describe_ingestion", ingestion_key(name, ids[name]), completed(name, ids[name], 10, 10)
        )
    for name in ("pr_summary", "pr_curve_points"):
        qs.ok(
            "describe_ingestion", ingestion_key(name, ids[name]), completed(name, ids[name], 10, 10)
        )
    qs.ok("describe_dashboard", DASHBOARD_KEY, dashboard_body(3, "UPDATE_SUCCESSFUL"))
    qs.ok(
        "describe_dashboard_permissions",
        DASHBOARD_KEY,
        permissions((OWNER, OWNER_DASHBOARD_ACTIONS), (GROUP, VIEWER_ACTIONS)),
    )

    again = publisher.publish(DAYS)

    qs.stub.assert_no_pending_responses()
    assert again["ingestions"]["pr_summary"]["ingestion_id"] == ids["pr_summary"]


def test_group_with_only_viewer_actions_is_left_alone_and_others_untouched(
    tmp_path: Path, qs: QS, clock: FakeClock
) -> None:
    lake = make_lake(tmp_path, DAYS)
    someone = f"{ARN}:user/default/analyst"
    steady_state(
        qs,
        tmp_path,
        DAYS,
        permissions(
            (OWNER, OWNER_DASHBOARD_ACTIONS),
            (GROUP, VIEWER_ACTIONS),
            (someone, ("quicksight:DescribeDashboard",)),
        ),
    )
    summary = make_publisher(qs, clock, lake).publish(DAYS)
    qs.stub.assert_no_pending_responses()
    assert summary["dashboard"]["permissions"] == {
        "action": "unchanged",
        "viewer_actions": list(VIEWER_ACTIONS),
        "revoked": [],
    }


def test_the_permission_guard_fails_on_any_wider_grant(
    qs: QS, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the module ever granted the group more than the read-only set, the checks would fail."""
    from prviz.publish import quicksight

    monkeypatch.setattr(
        quicksight, "VIEWER_ACTIONS", (*VIEWER_ACTIONS, "quicksight:UpdateDashboard")
    )
    qs.ok("describe_dashboard_permissions", DASHBOARD_KEY, permissions())
    qs.ok("update_dashboard_permissions", None, permissions())
    make_publisher(qs, clock).grant_dashboard_permissions()
    qs.stub.assert_no_pending_responses()
    with pytest.raises(AssertionError):
        assert_group_only_reads(qs)


def test_viewer_actions_are_exactly_the_read_only_set() -> None:
    assert VIEWER_ACTIONS == (
        "quicksight:DescribeDashboard",
        "quicksight:ListDashboardVersions",
        "quicksight:QueryDashboard",
    )
    assert set(VIEWER_ACTIONS) < set(OWNER_DASHBOARD_ACTIONS)


# -- every permission structure of every request ---------------------------------------------
# The read-only set, written out here (not imported), and the owner sets per resource type: the
# actions QuickSight's console gives an "owner" of a dashboard, a data source, a dataset.
READ_ONLY_DASHBOARD = {
    "quicksight:DescribeDashboard",
    "quicksight:ListDashboardVersions",
    "quicksight:QueryDashboard",
}
OWNER_NEEDS = {
    "dashboard": READ_ONLY_DASHBOARD
    | {
        "quicksight:UpdateDashboard",
        "quicksight:DeleteDashboard",
        "quicksight:UpdateDashboardPublishedVersion",
        "quicksight:DescribeDashboardPermissions",
        "quicksight:UpdateDashboardPermissions",
    },
    "data source": {
        "quicksight:DescribeDataSource",
        "quicksight:DescribeDataSourcePermissions",
        "quicksight:PassDataSource",
        "quicksight:UpdateDataSource",
        "quicksight:DeleteDataSource",
        "quicksight:UpdateDataSourcePermissions",
    },
    "dataset": {
        "quicksight:DescribeDataSet",
        "quicksight:DescribeDataSetPermissions",
        "quicksight:PassDataSet",
        "quicksight:DescribeIngestion",
        "quicksight:ListIngestions",
        "quicksight:UpdateDataSet",
        "quicksight:DeleteDataSet",
        "quicksight:CreateIngestion",
        "quicksight:CancelIngestion",
        "quicksight:UpdateDataSetPermissions",
    },
}
# The requests that carry a permission list, by the resource they are about. An operation that
# carries one and is not here fails the check: classify it (and decide what the group may get).
PERMISSION_OPERATIONS = {
    "CreateDataSource": "data source",
    "UpdateDataSourcePermissions": "data source",
    "CreateDataSet": "dataset",
    "UpdateDataSetPermissions": "dataset",
    "CreateDashboard": "dashboard",
    "UpdateDashboardPermissions": "dashboard",
}
# Every operation prviz may call. A new one fails the check until it is looked at here.
KNOWN_OPERATIONS = {
    *PERMISSION_OPERATIONS,
    "DescribeDataSource",
    "UpdateDataSource",
    "DescribeDataSet",
    "UpdateDataSet",
    "CreateIngestion",
    "DescribeIngestion",
    "DescribeDashboard",
    "UpdateDashboard",
    "UpdateDashboardPublishedVersion",
    "DescribeDashboardPermissions",
}


@dataclass(frozen=True)
class Grant:
    operation: str
    resource: str  # "dashboard", "data source", "dataset" or "?"
    resource_id: str
    member: str  # the request member that holds it: Permissions, GrantPermissions, …
    principal: str
    actions: frozenset[str]


def permission_entries(operation: str, params: dict) -> list[Grant]:
    """Every `ResourcePermission` anywhere in one request, found through the service model.

    The request is walked along its input shape, so a permission list in any member (top level,
    `LinkSharingConfiguration`, `GrantLinkPermissions`, …) is found whatever its name.
    """
    model = boto3.client(
        "quicksight", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    ).meta.service_model
    resource_id = next(
        (str(params[k]) for k in ("DashboardId", "DataSetId", "DataSourceId") if k in params), ""
    )
    found: list[Grant] = []

    def walk(shape: Any, value: Any, member: str) -> None:
        if shape.name == "ResourcePermission":
            found.append(
                Grant(
                    operation,
                    PERMISSION_OPERATIONS.get(operation, "?"),
                    resource_id,
                    member,
                    value["Principal"],
                    frozenset(value["Actions"]),
                )
            )
        elif shape.type_name == "structure":
            for key, item in value.items():
                walk(shape.members[key], item, key if member == "" else f"{member}.{key}")
        elif shape.type_name == "list":
            for item in value:
                walk(shape.member, item, member)
        elif shape.type_name == "map":
            for item in value.values():
                walk(shape.value, item, member)

    walk(model.operation_model(operation).input_shape, params, "")
    return found


def effective_dashboard_permissions(qs: QS) -> dict[str, set[str]]:
    """What each principal holds on the dashboard after the run: described, plus grants, minus
    revokes, in the order the calls were made."""
    held: dict[str, set[str]] = {}
    for (operation, params), (answered, response) in zip(qs.calls, qs.responses, strict=False):
        assert operation == answered
        if operation == "DescribeDashboardPermissions":
            held = {p["Principal"]: set(p["Actions"]) for p in response.get("Permissions") or []}
        elif operation == "UpdateDashboardPermissions":
            for grant in params.get("GrantPermissions", []):
                held.setdefault(grant["Principal"], set()).update(grant["Actions"])
            for revoke in params.get("RevokePermissions", []):
                held.get(revoke["Principal"], set()).difference_update(revoke["Actions"])
    return held


def assert_every_grant_is_exact(qs: QS, owners: tuple[str, ...]) -> list[Grant]:
    """Every permission structure prviz sent, checked per resource type; returns them.

    - the business group: on the dashboard only, always exactly the read-only set; never on a
      data source or dataset, never through link sharing; revoked only what lies outside that set;
    - each owner: exactly its resource type's owner set on everything prviz creates or grants;
    - nobody else is ever named; the group's ARN appears nowhere else in any request;
    - after the run the group holds exactly the read-only set on the dashboard and every owner at
      least the owner set (when the run looked at the dashboard's permissions).
    """
    assert set(VIEWER_ACTIONS) == READ_ONLY_DASHBOARD and len(VIEWER_ACTIONS) == 3
    unknown = sorted({name for name, _ in qs.calls} - KNOWN_OPERATIONS)
    assert not unknown, f"prviz calls {unknown}: classify them in KNOWN_OPERATIONS"
    grants: list[Grant] = []
    for operation, params in qs.calls:
        entries = permission_entries(operation, params)
        grants += entries
        for entry in entries:
            where = f"{operation}.{entry.member} on {entry.resource} {entry.resource_id}"
            assert entry.resource != "?", f"{where}: an unclassified permission request"
            assert entry.member in ("Permissions", "GrantPermissions", "RevokePermissions"), where
            assert entry.principal in (*owners, GROUP), f"{where} names {entry.principal}"
            if entry.member == "RevokePermissions":
                assert entry.principal == GROUP, f"{where} revokes from an owner"
                assert not entry.actions & READ_ONLY_DASHBOARD, f"{where} revokes read access"
            elif entry.principal == GROUP:
                assert entry.resource == "dashboard", f"{where} gives the group the data"
                assert entry.actions == READ_ONLY_DASHBOARD, f"{where}: {sorted(entry.actions)}"
            else:
                assert entry.actions == OWNER_NEEDS[entry.resource], (
                    f"{where}: the owner gets {sorted(entry.actions)}"
                )
        # outside the permission lists the group is never named (filters, definitions, tags…)
        without = {k: v for k, v in params.items() if "Permissions" not in k}
        assert GROUP not in repr(without), f"{operation} names the viewer group"
    for operation in ("CreateDataSource", "CreateDataSet"):
        for params in [p for name, p in qs.calls if name == operation]:
            granted = {e.principal for e in permission_entries(operation, params)}
            assert granted == set(owners), f"{operation} grants {sorted(granted)}, not the owners"
    if "DescribeDashboardPermissions" in qs.names():
        held = effective_dashboard_permissions(qs)
        assert held.get(GROUP) == READ_ONLY_DASHBOARD, sorted(held.get(GROUP, ()))
        for owner in owners:
            assert held.get(owner, set()) >= OWNER_NEEDS["dashboard"], owner
    return grants


def test_owner_sets_are_the_consoles_owner_sets() -> None:
    assert set(OWNER_DASHBOARD_ACTIONS) == OWNER_NEEDS["dashboard"]
    assert set(OWNER_DATA_SOURCE_ACTIONS) == OWNER_NEEDS["data source"]
    assert set(OWNER_DATASET_ACTIONS) == OWNER_NEEDS["dataset"]


def test_permission_walker_finds_every_permission_member_of_the_model() -> None:
    """Link sharing and nested permission lists are found too, whatever the member is called."""
    params = {
        "AwsAccountId": ACCOUNT,
        "DashboardId": DASHBOARD,
        "GrantPermissions": [{"Principal": GROUP, "Actions": ["quicksight:QueryDashboard"]}],
        "RevokePermissions": [{"Principal": OWNER, "Actions": ["quicksight:DeleteDashboard"]}],
        "GrantLinkPermissions": [{"Principal": "*", "Actions": ["quicksight:QueryDashboard"]}],
    }
    found = permission_entries("UpdateDashboardPermissions", params)
    assert [(g.member, g.principal) for g in found] == [
        ("GrantPermissions", GROUP),
        ("RevokePermissions", OWNER),
        ("GrantLinkPermissions", "*"),
    ]
    create = {
        **DASHBOARD_BODY,
        "LinkSharingConfiguration": {
            "Permissions": [{"Principal": GROUP, "Actions": ["quicksight:QueryDashboard"]}]
        },
    }
    [link] = permission_entries("CreateDashboard", create)
    assert link.member == "LinkSharingConfiguration.Permissions" and link.resource == "dashboard"


def _dashboard_grant(*actions: str) -> dict:
    return {**DASHBOARD_KEY, "GrantPermissions": [{"Principal": GROUP, "Actions": list(actions)}]}


@pytest.mark.parametrize(
    ("operation", "params", "message"),
    [
        ("UpdateDashboardPermissions",
         _dashboard_grant(*READ_ONLY_DASHBOARD, "quicksight:UpdateDashboard"), "UpdateDashboard"),
        ("UpdateDashboardPermissions",
         _dashboard_grant("quicksight:DescribeDashboard", "quicksight:QueryDashboard"),
         "DescribeDashboard"),  # narrower is not the viewer set either
        ("CreateDataSet",
         {**dataset_common("pr_summary"),
          "Permissions": [{"Principal": OWNER, "Actions": list(OWNER_DATASET_ACTIONS)},
                          {"Principal": GROUP, "Actions": ["quicksight:DescribeDataSet"]}]},
         "gives the group the data"),
        ("UpdateDataSourcePermissions",
         {"AwsAccountId": ACCOUNT, "DataSourceId": SOURCE_ID["pr_summary"],
          "GrantPermissions": [{"Principal": GROUP, "Actions": ["quicksight:PassDataSource"]}]},
         "gives the group the data"),
        ("UpdateDashboardPermissions",
         {**DASHBOARD_KEY,
          "GrantLinkPermissions": [{"Principal": "*", "Actions": list(READ_ONLY_DASHBOARD)}]},
         "GrantLinkPermissions"),
        ("UpdateDashboardPermissions",
         {**DASHBOARD_KEY, "RevokePermissions": [
             {"Principal": GROUP, "Actions": ["quicksight:QueryDashboard"]}]},
         "revokes read access"),
        ("UpdateDashboardPermissions",
         {**DASHBOARD_KEY, "RevokePermissions": [
             {"Principal": OWNER, "Actions": ["quicksight:DeleteDashboard"]}]},
         "revokes from an owner"),
        ("CreateDataSource",
         {**create_source("pr_summary"),
          "Permissions": [{"Principal": OWNER, "Actions": ["quicksight:DescribeDataSource"]}]},
         "the owner gets"),
        ("UpdateDashboardPermissions",
         {**DASHBOARD_KEY, "GrantPermissions": [
             {"Principal": f"{ARN}:group/default/everyone", "Actions": list(READ_ONLY_DASHBOARD)}]},
         "names arn"),
        ("UpdateAnalysisPermissions",
         {"AwsAccountId": ACCOUNT, "AnalysisId": "prviz",
          "GrantPermissions": [{"Principal": OWNER, "Actions": ["quicksight:DescribeAnalysis"]}]},
         "UpdateAnalysisPermissions"),
        ("UpdateDataSet",
         {**dataset_common("pr_summary"),
          "RowLevelPermissionDataSet": {"Arn": GROUP, "PermissionPolicy": "GRANT_ACCESS"}},
         "names the viewer group"),
    ],
)  # fmt: skip
def test_the_exact_grant_check_fails_on_every_other_grant(
    operation: str, params: dict, message: str
) -> None:
    """Each request is valid for QuickSight's model (so it could really be sent), and each one
    would give someone more (or other) than prviz means to: the check must fail on it."""
    from botocore.validate import validate_parameters

    model = boto3.client(
        "quicksight", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    ).meta.service_model
    validate_parameters(params, model.operation_model(operation).input_shape)
    qs = QS()
    qs.calls.append((operation, params))
    with pytest.raises(AssertionError, match=re.escape(message)):
        assert_every_grant_is_exact(qs, owners=(OWNER,))


def test_the_exact_grant_check_catches_a_module_that_grants_the_group_more(
    qs: QS, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prviz.publish import quicksight

    monkeypatch.setattr(
        quicksight, "VIEWER_ACTIONS", (*VIEWER_ACTIONS, "quicksight:DeleteDashboard")
    )
    qs.ok("describe_dashboard_permissions", DASHBOARD_KEY, permissions())
    qs.ok("update_dashboard_permissions", None, permissions())
    make_publisher(qs, clock).grant_dashboard_permissions()
    monkeypatch.undo()  # the check compares with the real constant and its own literal set
    with pytest.raises(AssertionError, match="DeleteDashboard"):
        assert_every_grant_is_exact(qs, owners=(OWNER,))


def test_a_group_left_with_extra_rights_fails_the_effective_check(
    qs: QS, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the revoke were lost, the group would keep edit rights: the after-run state says so."""
    from prviz.publish import quicksight

    monkeypatch.setattr(
        quicksight, "VIEWER_ACTIONS", (*VIEWER_ACTIONS, "quicksight:UpdateDashboard")
    )
    qs.ok(
        "describe_dashboard_permissions",
        DASHBOARD_KEY,
        permissions((OWNER, OWNER_DASHBOARD_ACTIONS), (GROUP, quicksight.VIEWER_ACTIONS)),
    )
    make_publisher(qs, clock).grant_dashboard_permissions()  # finds nothing to change
    monkeypatch.undo()
    assert "UpdateDashboardPermissions" not in qs.names()
    with pytest.raises(AssertionError, match="UpdateDashboard"):
        assert_every_grant_is_exact(qs, owners=(OWNER,))


# -- data source details ---------------------------------------------------------------------
def test_data_source_is_repointed_when_the_manifest_moves(qs: QS, clock: FakeClock) -> None:
    qs.ok(
        "describe_data_source",
        describe_source("pr_summary"),
        source_body("pr_summary", key="old/manifest.json"),
    )
    qs.ok(
        "update_data_source",
        {
            "AwsAccountId": ACCOUNT,
            "DataSourceId": SOURCE_ID["pr_summary"],
            "Name": "prviz pr_summary (S3 manifest)",
            "DataSourceParameters": source_params("pr_summary"),
        },
        {"Arn": DS_ARN["pr_summary"], "UpdateStatus": "UPDATE_IN_PROGRESS"},
    )
    qs.ok(
        "describe_data_source",
        describe_source("pr_summary"),
        source_body("pr_summary", "UPDATE_SUCCESSFUL"),
    )
    result = make_publisher(qs, clock).ensure_data_source(SUMMARY_TABLE, MANIFESTS["pr_summary"])
    qs.stub.assert_no_pending_responses()
    assert result == {
        "id": SOURCE_ID["pr_summary"],
        "arn": DS_ARN["pr_summary"],
        "action": "updated",
    }


def test_data_source_failure_carries_quicksight_error(qs: QS, clock: FakeClock) -> None:
    qs.missing("describe_data_source", describe_source("pr_summary"))
    qs.ok(
        "create_data_source",
        create_source("pr_summary"),
        {"Arn": DS_ARN["pr_summary"], "CreationStatus": "CREATION_IN_PROGRESS"},
    )
    failed = source_body("pr_summary", "CREATION_FAILED")
    failed["DataSource"]["ErrorInfo"] = {
        "Type": "ACCESS_DENIED",
        "Message": "cannot read s3://prviz-bucket",
    }
    qs.ok("describe_data_source", describe_source("pr_summary"), failed)
    with pytest.raises(
        QuickSightError, match=r"CREATION_FAILED: ACCESS_DENIED: cannot read s3://prviz-bucket"
    ):
        make_publisher(qs, clock).ensure_data_source(SUMMARY_TABLE, MANIFESTS["pr_summary"])
    qs.stub.assert_no_pending_responses()


def test_local_manifest_is_refused_before_any_call(
    tmp_path: Path, qs: QS, clock: FakeClock
) -> None:
    lake = Lake(str(tmp_path / "lake"))
    lake.write_table("pr_summary", DAYS[0], summary_rows(0))
    lake.write_table("pr_curve_points_thin", DAYS[0], points_rows(0))
    publisher = make_publisher(qs, clock, lake, summary_manifest_uri="", points_manifest_uri="")
    with pytest.raises(QuickSightError, match="not in S3.*PRVIZ_LAKE_URI"):
        publisher.publish(DAYS[:1])
    assert qs.calls == []
    qs.stub.assert_no_pending_responses()


def test_manifest_configured_elsewhere_is_refused(tmp_path: Path, qs: QS, clock: FakeClock) -> None:
    lake = make_lake(tmp_path, DAYS[:1])
    publisher = make_publisher(qs, clock, lake, summary_manifest_uri="s3://other/m.json")
    with pytest.raises(QuickSightError, match="points QuickSight at s3://other/m.json"):
        publisher.publish(DAYS[:1])
    assert qs.calls == []


# -- ingestion -------------------------------------------------------------------------------
def test_refresh_waits_from_queued_through_running_to_completed(qs: QS, clock: FakeClock) -> None:
    qs.ok("create_ingestion", create_ingestion("pr_summary", "run-1"), started("run-1"))
    for status in ("QUEUED", "RUNNING"):
        qs.ok(
            "describe_ingestion",
            ingestion_key("pr_summary", "run-1"),
            ingestion("pr_summary", "run-1", status),
        )
    qs.ok(
        "describe_ingestion",
        ingestion_key("pr_summary", "run-1"),
        completed("pr_summary", "run-1", 120, 3600),
    )
    result = make_publisher(qs, clock).refresh(SET_ID["pr_summary"], "run-1")
    qs.stub.assert_no_pending_responses()
    assert result["status"] == "COMPLETED"
    assert (result["rows_ingested"], result["total_rows"]) == (120, 3600)
    assert clock.sleeps == [POLL, POLL]


def test_failed_ingestion_raises_quicksight_error_info(qs: QS, clock: FakeClock) -> None:
    qs.ok("create_ingestion", create_ingestion("pr_summary", "run-1"), started("run-1"))
    qs.ok(
        "describe_ingestion",
        ingestion_key("pr_summary", "run-1"),
        ingestion("pr_summary", "run-1", "RUNNING"),
    )
    qs.ok(
        "describe_ingestion",
        ingestion_key("pr_summary", "run-1"),
        ingestion(
            "pr_summary",
            "run-1",
            "FAILED",
            ErrorInfo={"Type": "S3_MANIFEST_ERROR", "Message": "Unable to read the manifest"},
        ),
    )
    with pytest.raises(IngestionFailedError) as caught:
        make_publisher(qs, clock).refresh(SET_ID["pr_summary"], "run-1")
    qs.stub.assert_no_pending_responses()
    error = caught.value
    assert (error.error_type, error.error_message) == (
        "S3_MANIFEST_ERROR",
        "Unable to read the manifest",
    )
    assert str(error) == (
        "SPICE ingestion run-1 of dataset prviz-pr-summary ended FAILED: "
        "S3_MANIFEST_ERROR: Unable to read the manifest"
    )


def test_ingestion_timeout(qs: QS, clock: FakeClock) -> None:
    qs.ok("create_ingestion", create_ingestion("pr_summary", "run-1"), started("run-1"))
    for _ in range(5):  # at t = 0, 15, 30, 45, 60 (the deadline)
        qs.ok(
            "describe_ingestion",
            ingestion_key("pr_summary", "run-1"),
            ingestion("pr_summary", "run-1", "RUNNING"),
        )
    with pytest.raises(
        QuickSightTimeoutError,
        match=r"did not finish within 60s \(last status RUNNING\).*waits for it",
    ):
        make_publisher(qs, clock).refresh(SET_ID["pr_summary"], "run-1")
    qs.stub.assert_no_pending_responses()
    assert clock.sleeps == [POLL] * 4


def test_existing_failed_ingestion_id_moves_to_a_suffixed_id(qs: QS, clock: FakeClock) -> None:
    qs.error(
        "create_ingestion", "ResourceExistsException", create_ingestion("pr_summary", "run-1"), 409
    )
    qs.ok(
        "describe_ingestion",
        ingestion_key("pr_summary", "run-1"),
        ingestion("pr_summary", "run-1", "FAILED"),
    )
    qs.ok("create_ingestion", create_ingestion("pr_summary", "run-1-r2"), started("run-1-r2"))
    chosen = make_publisher(qs, clock).start_ingestion(SET_ID["pr_summary"], "run-1")
    qs.stub.assert_no_pending_responses()
    assert chosen == "run-1-r2"


def test_ingestion_limit_error_explains_the_daily_quota(qs: QS, clock: FakeClock) -> None:
    qs.error(
        "create_ingestion", "LimitExceededException", create_ingestion("pr_summary", "run-1"), 409
    )
    with pytest.raises(
        QuickSightError, match=r"LimitExceededException.*32 on Enterprise, 8 on Standard"
    ):
        make_publisher(qs, clock).refresh(SET_ID["pr_summary"], "run-1")
    qs.stub.assert_no_pending_responses()
    assert clock.sleeps == []


def test_ingestion_ids_are_deterministic_and_valid() -> None:
    content = {"2025-01-01": "a" * 64, "2025-01-02": "b" * 64}
    first = ingestion_id_for("prviz-pr-summary", ["2025-01-02", "2025-01-01"], content)
    assert first == ingestion_id_for("prviz-pr-summary", ["2025-01-01", "2025-01-02"], content)
    assert re.fullmatch(r"prviz-prviz-pr-summary-2025-01-01-2025-01-02-[0-9a-f]{8}", first)
    changed = ingestion_id_for(
        "prviz-pr-summary", list(content), {**content, "2025-01-02": "c" * 64}
    )
    assert changed != first
    odd = ingestion_id_for("ds.with/odd chars" + "x" * 300, list(content), content)
    assert len(odd) <= 128 - 4 and re.fullmatch(r"[A-Za-z0-9_-]+", odd)


# -- retries ---------------------------------------------------------------------------------
def test_throttling_is_retried_with_exponential_backoff(qs: QS, clock: FakeClock) -> None:
    params = create_ingestion("pr_summary", "run-1")
    qs.error("create_ingestion", "ThrottlingException", params, 429, "Rate exceeded")
    qs.error("create_ingestion", "InternalFailureException", params, 500)
    qs.error("create_ingestion", "ConcurrentUpdatingException", params, 500)
    qs.ok("create_ingestion", params, started("run-1"))
    qs.error("describe_ingestion", "ServiceUnavailable", ingestion_key("pr_summary", "run-1"), 503)
    qs.ok(
        "describe_ingestion",
        ingestion_key("pr_summary", "run-1"),
        completed("pr_summary", "run-1", 1, 1),
    )
    result = make_publisher(qs, clock).refresh(SET_ID["pr_summary"], "run-1")
    qs.stub.assert_no_pending_responses()
    assert result["status"] == "COMPLETED"
    assert clock.sleeps == [1.0, 2.0, 4.0, 1.0]  # backoff restarts for each call


def test_retries_give_up_after_max_retries(qs: QS, clock: FakeClock) -> None:
    for _ in range(4):  # the first try and max_retries=3 retries
        qs.error("describe_dashboard", "ThrottlingException", DASHBOARD_KEY, 429, "Rate exceeded")
    publisher = make_publisher(qs, clock)
    with pytest.raises(
        QuickSightError,
        match=r"DescribeDashboard failed for dashboard prviz-pr after 4 attempts: "
        r"ThrottlingException: Rate exceeded",
    ):
        publisher.publish_dashboard(SET_ARN["pr_summary"], SET_ARN["pr_curve_points"])
    qs.stub.assert_no_pending_responses()
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_backoff_is_capped() -> None:
    publisher = QuickSightPublisher(None, None, make_config(backoff_max_seconds=5.0))
    assert [publisher.backoff(n) for n in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_access_denied_is_raised_at_once(qs: QS, clock: FakeClock) -> None:
    qs.error(
        "describe_data_source",
        "AccessDeniedException",
        describe_source("pr_summary"),
        401,
        "User is not authorized to perform quicksight:DescribeDataSource",
    )
    with pytest.raises(QuickSightError) as caught:
        make_publisher(qs, clock).ensure_data_source(SUMMARY_TABLE, MANIFESTS["pr_summary"])
    qs.stub.assert_no_pending_responses()
    assert caught.value.code == "AccessDeniedException"
    assert str(caught.value).startswith(
        "QuickSight DescribeDataSource failed for data source prviz-src-summary: "
        "AccessDeniedException: User is not authorized"
    )
    assert "needs quicksight:DescribeDataSource" in str(caught.value)
    assert clock.sleeps == []
    assert len(qs.calls) == 1


def test_failed_dashboard_version_reports_its_errors(qs: QS, clock: FakeClock) -> None:
    qs.missing("describe_dashboard", DASHBOARD_KEY)
    qs.ok("create_dashboard", DASHBOARD_BODY, version_created(1, "CREATION_IN_PROGRESS"))
    failed = dashboard_body(1, "CREATION_FAILED")
    failed["Dashboard"]["Version"]["Errors"] = [
        {"Type": "COLUMN_TYPE_MISMATCH", "Message": "dt is not a date"}
    ]
    qs.ok("describe_dashboard", {**DASHBOARD_KEY, "VersionNumber": 1}, failed)
    with pytest.raises(
        QuickSightError,
        match="version 1 ended CREATION_FAILED: COLUMN_TYPE_MISMATCH: dt is not a date",
    ):
        make_publisher(qs, clock).publish_dashboard(
            SET_ARN["pr_summary"], SET_ARN["pr_curve_points"]
        )
    qs.stub.assert_no_pending_responses()


# -- the dashboard definition and the dataset types ------------------------------------------
def strict_errors(model: Any, shape: Any, value: Any, path: str = "") -> list[str]:
    """What botocore's validator skips: enums, patterns, max lengths, list sizes, unknown keys."""
    errors: list[str] = []
    kind = shape.type_name
    if kind == "structure":
        for name in shape.required_members:
            if name not in value:
                errors.append(f"{path}: missing {name}")
        for key, item in value.items():
            if key not in shape.members:
                errors.append(f"{path}: unknown key {key}")
                continue
            errors += strict_errors(model, shape.members[key], item, f"{path}.{key}")
    elif kind == "list":
        meta = shape.metadata
        if not meta.get("min", 0) <= len(value) <= meta.get("max", 10**9):
            errors.append(f"{path}: {len(value)} items outside {meta}")
        for index, item in enumerate(value):
            errors += strict_errors(model, shape.member, item, f"{path}[{index}]")
    elif kind == "map":
        for key, item in value.items():
            errors += strict_errors(model, shape.key, key, f"{path}<key>")
            errors += strict_errors(model, shape.value, item, f"{path}[{key}]")
    elif kind == "string":
        meta = shape.metadata
        if shape.enum and value not in shape.enum:
            errors.append(f"{path}: {value!r} not in {shape.enum}")
        if not meta.get("min", 0) <= len(value) <= meta.get("max", 10**9):
            errors.append(f"{path}: length {len(value)} outside {meta}")
        if "pattern" in meta and not re.search(meta["pattern"], value):
            errors.append(f"{path}: {value!r} does not match {meta['pattern']}")
    elif kind in ("integer", "long", "double"):
        meta = shape.metadata
        if not meta.get("min", -(10**18)) <= value <= meta.get("max", 10**18):
            errors.append(f"{path}: {value} outside {meta}")
    return errors


def test_definition_and_datasets_pass_the_strict_model_checks() -> None:
    model = boto3.client(
        "quicksight",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).meta.service_model
    create_dashboard = model.operation_model("CreateDashboard").input_shape
    assert strict_errors(model, create_dashboard, DASHBOARD_BODY) == []
    create_data_set = model.operation_model("CreateDataSet").input_shape
    for name, table in TABLES.items():
        physical, logical = dataset_tables(table, DS_ARN[name])
        body = {**dataset_common(name), "PhysicalTableMap": physical, "LogicalTableMap": logical}
        assert strict_errors(model, create_data_set, body) == []


def test_definition_uses_only_columns_the_datasets_have_with_the_right_types() -> None:
    """Every column of the Definition exists in its dataset: dates DATETIME, measures numeric."""
    types = {}
    for identifier, table in (("summary", SUMMARY_TABLE), ("points", POINTS_TABLE)):
        _, logical = dataset_tables(table, "arn")
        cast = {
            op["CastColumnTypeOperation"]["ColumnName"]: op["CastColumnTypeOperation"][
                "NewColumnType"
            ]
            for op in logical["typed"]["DataTransforms"]
        }
        types[identifier] = {column: cast.get(column, "STRING") for column in table.columns}
    assert types["summary"]["dt"] == "DATETIME" and types["points"]["recall"] == "DECIMAL"
    assert (
        types["summary"]["n_predictions"] == "INTEGER" and types["summary"]["variant"] == "STRING"
    )

    def walk(node: Any, parent: str = "") -> list[tuple[str, dict]]:
        found = []
        if isinstance(node, dict):
            if "ColumnName" in node and "DataSetIdentifier" in node:
                found.append((parent, node))
            for key, item in node.items():
                found += walk(item, key)
        elif isinstance(node, list):
            for item in node:
                found += walk(item, parent)
        return found

    definition = dashboard_definition("arn:summary", "arn:points")
    declared = {d["Identifier"] for d in definition["DataSetIdentifierDeclarations"]}
    fields = walk(definition)
    assert fields
    for _, column in fields:
        assert column["DataSetIdentifier"] in declared
        assert column["ColumnName"] in types[column["DataSetIdentifier"]], column

    def fields_of(kind: str) -> list[dict]:
        found = []

        def visit(node: Any) -> None:
            if isinstance(node, dict):
                for key, item in node.items():
                    if key == kind:
                        found.append(item)
                    visit(item)
            elif isinstance(node, list):
                for item in node:
                    visit(item)

        visit(definition)
        return found

    for field in fields_of("DateDimensionField"):
        assert (
            types[field["Column"]["DataSetIdentifier"]][field["Column"]["ColumnName"]] == "DATETIME"
        )
    for kind in ("NumericalMeasureField", "NumericalDimensionField"):
        for field in fields_of(kind):
            column = field["Column"]
            assert types[column["DataSetIdentifier"]][column["ColumnName"]] in (
                "DECIMAL",
                "INTEGER",
            )
    field_ids = [
        f["FieldId"]
        for kind in (
            "DateDimensionField",
            "NumericalMeasureField",
            "NumericalDimensionField",
            "CategoricalDimensionField",
        )
        for f in fields_of(kind)
    ]
    assert len(field_ids) == len(set(field_ids))


def test_definition_contents() -> None:
    definition = dashboard_definition("arn:summary", "arn:points")
    (sheet,) = definition["Sheets"]
    visuals = {next(iter(v.values()))["VisualId"]: v for v in sheet["Visuals"]}
    assert set(visuals) == {
        "pr-curve",
        "ap-by-day",
        "best-f1-by-day",
        "label-coverage-by-day",
        "volume-by-day",
    }
    curve = visuals["pr-curve"]["LineChartVisual"]["ChartConfiguration"]["FieldWells"][
        "LineChartAggregatedFieldWells"
    ]
    assert curve["Category"][0]["NumericalDimensionField"]["Column"] == {
        "DataSetIdentifier": "points",
        "ColumnName": "recall",
    }
    assert curve["Values"][0]["NumericalMeasureField"]["Column"]["ColumnName"] == "precision"
    assert curve["Colors"][0]["CategoricalDimensionField"]["Column"]["ColumnName"] == "variant"
    (group,) = definition["FilterGroups"]
    (day_filter,) = group["Filters"]
    assert day_filter["TimeEqualityFilter"]["ParameterName"] == "SelectedDay"
    scope = group["ScopeConfiguration"]["SelectedSheets"]["SheetVisualScopingConfigurations"]
    assert scope == [
        {"SheetId": sheet["SheetId"], "Scope": "SELECTED_VISUALS", "VisualIds": ["pr-curve"]}
    ]
    assert "BarChartVisual" in visuals["volume-by-day"]
    layout_ids = {
        e["ElementId"] for e in sheet["Layouts"][0]["Configuration"]["GridLayout"]["Elements"]
    }
    assert layout_ids == set(visuals)
    assert definition_digest("n", definition, PUBLISH_OPTIONS) == definition_digest(
        "n", dashboard_definition("arn:summary", "arn:points"), PUBLISH_OPTIONS
    )


# -- configuration and the local publisher ---------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"viewer_group_arn": OWNER}, "not a QuickSight group ARN"),
        ({"owner_arns": (OWNER, GROUP)}, "also an owner"),
        ({"owner_arns": ()}, "owner_arns is empty"),
        ({"aws_account_id": "1234"}, "not 12 digits"),
        ({"summary_manifest_uri": "file:///tmp/m.json"}, "not an s3:// URI"),
        ({"points_dataset_id": SET_ID["pr_summary"]}, "must differ"),
        ({"dashboard_id": "has space"}, "dashboard_id"),
    ],
)
def test_config_is_validated(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_config(**changes)


def test_local_publisher_writes_manifests_and_calls_nothing(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    for index, day in enumerate(DAYS):
        lake.write_table("pr_summary", day, summary_rows(index))
        lake.write_table("pr_curve_points_thin", day, points_rows(index))
    publisher = LocalPublisher(lake)
    assert isinstance(publisher, Publisher)
    summary = publisher.publish(DAYS)
    assert summary["publisher"] == "local" and summary["published"] is False
    assert summary["manifests"]["pr_summary"] == lake.uri(
        "quicksight", "manifests", "pr_summary.json"
    )
    assert summary["rows"] == {"pr_summary": 4, "pr_curve_points": 8}
    assert summary["rows_by_day"][DAYS[0]] == {"pr_summary": 2, "pr_curve_points": 4}
    assert publisher.published == [summary]
    assert lake.exists(lake.path("quicksight", "manifests", "pr_curve_points.json"))
