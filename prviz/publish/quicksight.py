"""Publication of the curves and summaries to Amazon QuickSight, and its local stand-in.

A `Publisher` takes the days a run produced and makes them visible to the business team:

- `LocalPublisher` (PRVIZ_ENV=local) writes the CSV copies and the manifests into the lake and
  records what it would have published; it makes no AWS call.
- `QuickSightPublisher` (PRVIZ_ENV=aws) writes the same files to the S3 lake, then makes QuickSight
  match them: one S3 data source per manifest, one SPICE dataset per table (CSV columns arrive as
  STRING and are cast in the dataset's LogicalTableMap), ONE ingestion per dataset per run, the
  dashboard from a `Definition` (dashboard as code), its published version, and its permissions:
  owners get full control, the business group exactly `VIEWER_ACTIONS` and nothing on the data.

Why one ingestion per run: SPICE allows a limited number of refreshes per dataset per day (32 on
Enterprise, 8 on Standard), and each ingestion re-reads every file under the manifest's prefix
anyway. A backfill of 90 days therefore refreshes once, at the end. Ingestion ids are
deterministic (`prviz-{dataset}-{first day}-{last day}-{hash of the CSVs}`): re-running a run
whose files did not change finds the ingestion it already started and waits for it (or reuses
its result) instead of spending another refresh.

Every call goes through `_call`: throttling, internal failures, unavailability and concurrent
updates are retried with exponential backoff (`sleep` and `clock` are injectable, so tests run
without waiting); every other error is raised at once as a `QuickSightError` that names the call,
the resource, QuickSight's code and message, and what to do.
"""

import hashlib
import json
import logging
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from botocore.exceptions import BotoCoreError, ClientError

from prviz.lake.store import Lake
from prviz.publish.csv_export import (
    DAY_COLUMN,
    POINTS_TABLE,
    SUMMARY_TABLE,
    TABLES,
    CsvTable,
    export_quicksight_csv,
)

logger = logging.getLogger(__name__)

# What the business group may do on the dashboard: open it, list its versions, query its visuals.
# Nothing else, and nothing at all on the datasets or data sources.
VIEWER_ACTIONS = (
    "quicksight:DescribeDashboard",
    "quicksight:ListDashboardVersions",
    "quicksight:QueryDashboard",
)
OWNER_DASHBOARD_ACTIONS = (
    "quicksight:DescribeDashboard",
    "quicksight:ListDashboardVersions",
    "quicksight:QueryDashboard",
    "quicksight:UpdateDashboard",
    "quicksight:DeleteDashboard",
    "quicksight:UpdateDashboardPublishedVersion",
    "quicksight:DescribeDashboardPermissions",
    "quicksight:UpdateDashboardPermissions",
)
OWNER_DATA_SOURCE_ACTIONS = (
    "quicksight:DescribeDataSource",
    "quicksight:DescribeDataSourcePermissions",
    "quicksight:PassDataSource",
    "quicksight:UpdateDataSource",
    "quicksight:DeleteDataSource",
    "quicksight:UpdateDataSourcePermissions",
)
OWNER_DATASET_ACTIONS = (
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
)

RETRYABLE_ERRORS = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "InternalFailureException",
        "InternalServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ConcurrentUpdatingException",
    }
)
NOT_FOUND = "ResourceNotFoundException"
SUCCEEDED = frozenset({"CREATION_SUCCESSFUL", "UPDATE_SUCCESSFUL"})
IN_PROGRESS = frozenset({"CREATION_IN_PROGRESS", "UPDATE_IN_PROGRESS"})
FAILED = frozenset({"CREATION_FAILED", "UPDATE_FAILED", "DELETED"})
INGESTION_ID_MAX = 128
_INGESTION_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
_GROUP_ARN = re.compile(r"^arn:aws[a-z-]*:quicksight:[a-z0-9-]+:[0-9]{12}:group/.+")
_RESOURCE_ID = re.compile(r"^[\w-]{1,200}$")

# Column types in QuickSight, from the Arrow types of the published tables.
_CASTS = {
    pa.int64(): {"NewColumnType": "INTEGER"},
    pa.float64(): {"NewColumnType": "DECIMAL", "SubType": "FLOAT"},
}
DAY_CAST = {"NewColumnType": "DATETIME", "Format": "yyyy-MM-dd"}
PHYSICAL_TABLE_ID = "csv"
LOGICAL_TABLE_ID = "typed"
S3_UPLOAD_SETTINGS = {
    "Format": "CSV",
    "StartFromRow": 1,
    "ContainsHeader": True,
    "TextQualifier": "DOUBLE_QUOTE",
    "Delimiter": ",",
}


class QuickSightError(RuntimeError):
    """A QuickSight call failed; the message names the call, the resource and what to do."""

    def __init__(self, message: str, code: str = ""):
        super().__init__(message)
        self.code = code


class IngestionFailedError(QuickSightError):
    """A SPICE ingestion ended FAILED or CANCELLED; carries QuickSight's ErrorInfo."""

    def __init__(self, dataset_id: str, ingestion_id: str, status: str, error_type: str, text: str):
        super().__init__(
            f"SPICE ingestion {ingestion_id} of dataset {dataset_id} ended {status}: "
            f"{error_type or 'no error type'}: {text or 'no message'}",
            code=error_type,
        )
        self.dataset_id = dataset_id
        self.ingestion_id = ingestion_id
        self.status = status
        self.error_type = error_type
        self.error_message = text


class QuickSightTimeoutError(QuickSightError):
    """A QuickSight resource or ingestion did not finish within the configured time."""


def _hint(code: str, api: str) -> str:
    if code == "AccessDeniedException":
        return (
            f" The role running prviz needs quicksight:{api} on this resource "
            "(docs/quicksight.md lists the policy)."
        )
    if code == "LimitExceededException" and api == "CreateIngestion":
        return (
            " The dataset reached its SPICE refresh limit for the day (32 on Enterprise, 8 on "
            "Standard); the CSVs are in S3, so publish again once the limit resets."
        )
    if code == "UnsupportedUserEditionException":
        return " This call needs QuickSight Enterprise edition."
    return ""


@dataclass(frozen=True)
class QuickSightConfig:
    """Where and what to publish in QuickSight. Ids are QuickSight resource ids (`[\\w-]+`).

    Two S3 data sources are created, one per manifest: `{data_source_id}-summary` and
    `{data_source_id}-points` (an S3 data source reads exactly one manifest). The manifest URIs
    default to the ones the CSV export writes in the lake; when given, they must be the same.
    """

    aws_account_id: str
    region: str
    data_source_id: str
    summary_dataset_id: str
    points_dataset_id: str
    dashboard_id: str
    owner_arns: tuple[str, ...]
    viewer_group_arn: str
    summary_manifest_uri: str = ""
    points_manifest_uri: str = ""
    name_prefix: str = "prviz"
    dashboard_name: str = "Precision-recall by day"
    poll_interval_seconds: float = 15.0
    ingestion_timeout_seconds: float = 3600.0
    resource_timeout_seconds: float = 600.0
    max_retries: int = 5
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 60.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "owner_arns", tuple(self.owner_arns))
        problems = []
        if not _ACCOUNT_ID.match(self.aws_account_id):
            problems.append(f"aws_account_id={self.aws_account_id!r} is not 12 digits")
        if not self.region:
            problems.append("region is empty")
        for name in ("data_source_id", "summary_dataset_id", "points_dataset_id", "dashboard_id"):
            if not _RESOURCE_ID.match(getattr(self, name)):
                problems.append(f"{name}={getattr(self, name)!r} is not an id ([A-Za-z0-9_-]+)")
        if self.summary_dataset_id == self.points_dataset_id:
            problems.append("summary_dataset_id and points_dataset_id must differ")
        if not self.owner_arns:
            problems.append("owner_arns is empty: nobody could manage the dashboard")
        if not _GROUP_ARN.match(self.viewer_group_arn):
            problems.append(
                f"viewer_group_arn={self.viewer_group_arn!r} is not a QuickSight group ARN "
                "(arn:aws:quicksight:<region>:<account>:group/<namespace>/<name>)"
            )
        if self.viewer_group_arn in self.owner_arns:
            problems.append("the viewer group is also an owner: it would get more than read access")
        for name in ("summary_manifest_uri", "points_manifest_uri"):
            value = getattr(self, name)
            if value and not value.startswith("s3://"):
                problems.append(f"{name}={value!r} is not an s3:// URI")
        if self.max_retries < 0 or self.poll_interval_seconds <= 0:
            problems.append("max_retries must be >= 0 and poll_interval_seconds > 0")
        if problems:
            raise ValueError("invalid QuickSight configuration: " + "; ".join(problems))

    def dataset_id(self, table: CsvTable) -> str:
        return self.summary_dataset_id if table is SUMMARY_TABLE else self.points_dataset_id

    def data_source_id_for(self, table: CsvTable) -> str:
        return f"{self.data_source_id}-{'summary' if table is SUMMARY_TABLE else 'points'}"

    def manifest_uri(self, table: CsvTable) -> str:
        return self.summary_manifest_uri if table is SUMMARY_TABLE else self.points_manifest_uri

    def dashboard_url(self) -> str:
        return f"https://{self.region}.quicksight.aws.amazon.com/sn/dashboards/{self.dashboard_id}"


class Publisher(ABC):
    """Makes a run's days visible to the business team; returns a summary for the metadata."""

    @abstractmethod
    def publish(self, days: Sequence[str]) -> dict:
        """Publish `days` (a run's partition range, one day or a backfill); JSON-serialisable."""


def _export_summary(export: Mapping) -> dict:
    return {
        "days": len(export["days"]),
        "first_day": export["days"][0],
        "last_day": export["days"][-1],
        "manifests": {name: t["manifest_uri"] for name, t in export["tables"].items()},
        "rows": {name: t["rows"] for name, t in export["tables"].items()},
        "rows_by_day": {
            day: {name: t["days"][day]["rows"] for name, t in export["tables"].items()}
            for day in export["days"]
        },
    }


class LocalPublisher(Publisher):
    """The local default: writes the CSVs and manifests QuickSight would read; calls no AWS API.

    `published` records every call's summary (what an aws run would have published).
    """

    def __init__(self, lake: Lake):
        self.lake = lake
        self.published: list[dict] = []

    def publish(self, days: Sequence[str]) -> dict:
        export = export_quicksight_csv(self.lake, days)
        summary = {
            "publisher": "local",
            "published": False,
            **_export_summary(export),
            "note": "QuickSight is not called when PRVIZ_ENV=local; the manifests document "
            "what it would read.",
        }
        self.published.append(summary)
        return summary


def ingestion_id_for(dataset_id: str, days: Sequence[str], content: Mapping[str, str]) -> str:
    """`prviz-{dataset}-{first}-{last}-{hash[:8]}`: the same files give the same id.

    `content` maps each day to the sha256 of its CSV. The id keeps to QuickSight's alphabet
    (`[A-Za-z0-9_-]`) and to at most 128 characters, leaving room for a retry suffix.
    """
    ordered = sorted(days)
    digest = hashlib.sha256(json.dumps(dict(sorted(content.items()))).encode()).hexdigest()
    tail = f"-{ordered[0]}-{ordered[-1]}-{digest[:8]}"
    head = _INGESTION_ID_UNSAFE.sub("-", dataset_id)[: INGESTION_ID_MAX - len(tail) - 12]
    return f"prviz-{head}{tail}"


def _arn_version(version_arn: str) -> int:
    try:
        return int(version_arn.rsplit("/", 1)[1])
    except (IndexError, ValueError):
        raise QuickSightError(f"cannot read a version number from {version_arn!r}") from None


def _manifest_location(uri: str) -> dict:
    if not uri.startswith("s3://"):
        raise QuickSightError(
            f"the manifest {uri} is not in S3: QuickSight reads manifests from S3 only; set "
            "PRVIZ_LAKE_URI to an s3:// lake for PRVIZ_ENV=aws"
        )
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return {"Bucket": bucket, "Key": key}


# -- the dataset: CSV columns as STRING, typed in the logical table ---------------------------
def dataset_tables(table: CsvTable, data_source_arn: str) -> tuple[dict, dict]:
    """(PhysicalTableMap, LogicalTableMap) for one published table.

    S3 sources take only STRING input columns; the logical table casts each column to the type
    its Arrow type calls for: int64 → INTEGER, float64 → DECIMAL (FLOAT, not the 4-decimal
    FIXED), `dt` → DATETIME (yyyy-MM-dd); strings stay STRING.
    """
    physical = {
        PHYSICAL_TABLE_ID: {
            "S3Source": {
                "DataSourceArn": data_source_arn,
                "UploadSettings": dict(S3_UPLOAD_SETTINGS),
                "InputColumns": [{"Name": name, "Type": "STRING"} for name in table.columns],
            }
        }
    }
    casts = [{"CastColumnTypeOperation": {"ColumnName": DAY_COLUMN, **DAY_CAST}}]
    for column in table.schema:
        if column.type in _CASTS:
            casts.append(
                {"CastColumnTypeOperation": {"ColumnName": column.name, **_CASTS[column.type]}}
            )
    logical = {
        LOGICAL_TABLE_ID: {
            "Alias": table.name,
            "Source": {"PhysicalTableId": PHYSICAL_TABLE_ID},
            "DataTransforms": casts,
        }
    }
    return physical, logical


def _dataset_signature(physical: Mapping | None, logical: Mapping | None, mode: str | None) -> str:
    """The parts of a dataset prviz sets, ignoring what QuickSight adds when it describes one."""
    phys = {}
    for table_id, table in (physical or {}).items():
        source = table.get("S3Source") or {}
        phys[table_id] = {
            "arn": source.get("DataSourceArn"),
            "columns": [[c.get("Name"), c.get("Type")] for c in source.get("InputColumns", [])],
            "upload": source.get("UploadSettings"),
        }
    logi = {
        table_id: {
            "alias": table.get("Alias"),
            "source": table.get("Source"),
            "transforms": table.get("DataTransforms", []),
        }
        for table_id, table in (logical or {}).items()
    }
    return json.dumps([phys, logi, mode], sort_keys=True, default=str)


# -- the dashboard, as code -------------------------------------------------------------------
SUMMARY_ID = "summary"
POINTS_ID = "points"
SHEET_ID = "precision-recall"
DAY_PARAMETER = "SelectedDay"
DAY_CONTROL_ID = "selected-day-control"
PR_CURVE_VISUAL = "pr-curve"
YESTERDAY = "addDateTime(-1, 'DD', truncDate('DD', now()))"
PUBLISH_OPTIONS = {
    "AdHocFilteringOption": {"AvailabilityStatus": "DISABLED"},
    "ExportToCSVOption": {"AvailabilityStatus": "ENABLED"},
    "SheetControlsOption": {"VisibilityState": "EXPANDED"},
}


def _column(dataset: str, name: str) -> dict:
    return {"DataSetIdentifier": dataset, "ColumnName": name}


def _labels(title: str, subtitle: str) -> dict:
    return {
        "Title": {"Visibility": "VISIBLE", "FormatText": {"PlainText": title}},
        "Subtitle": {"Visibility": "VISIBLE", "FormatText": {"PlainText": subtitle}},
    }


def _text_dimension(visual: str, dataset: str, name: str) -> dict:
    return {
        "CategoricalDimensionField": {
            "FieldId": f"{visual}.{name}",
            "Column": _column(dataset, name),
        }
    }


def _day_dimension(visual: str, dataset: str) -> dict:
    return {
        "DateDimensionField": {
            "FieldId": f"{visual}.{DAY_COLUMN}",
            "Column": _column(dataset, DAY_COLUMN),
            "DateGranularity": "DAY",
        }
    }


def _measure(visual: str, dataset: str, name: str, aggregation: str) -> dict:
    return {
        "NumericalMeasureField": {
            "FieldId": f"{visual}.{name}",
            "Column": _column(dataset, name),
            "AggregationFunction": {"SimpleNumericalAggregation": aggregation},
        }
    }


def _unit_axis() -> dict:
    unit = {"MinMax": {"Minimum": 0.0, "Maximum": 1.0}}
    return {"DataOptions": {"NumericAxisOptions": {"Range": unit}}}


def _ascending(field_id: str) -> dict:
    return {"CategorySort": [{"FieldSort": {"FieldId": field_id, "Direction": "ASC"}}]}


def _by_variant(visual: str, dataset: str) -> dict:
    """Colour by variant; one small panel per endpoint (variant names repeat across endpoints)."""
    return {
        "Colors": [_text_dimension(visual, dataset, "variant")],
        "SmallMultiples": [_text_dimension(visual, dataset, "endpoint")],
    }


def _pr_curve_visual() -> dict:
    visual = PR_CURVE_VISUAL
    return {
        "LineChartVisual": {
            "VisualId": visual,
            **_labels(
                "Precision-recall curve (selected day)",
                "Recall on x, precision on y, one line per production variant; thinned curve "
                "points of the day chosen in the Day control.",
            ),
            "ChartConfiguration": {
                "FieldWells": {
                    "LineChartAggregatedFieldWells": {
                        "Category": [
                            {
                                "NumericalDimensionField": {
                                    "FieldId": f"{visual}.recall",
                                    "Column": _column(POINTS_ID, "recall"),
                                }
                            }
                        ],
                        # several thresholds can share a recall: draw the best precision there
                        "Values": [_measure(visual, POINTS_ID, "precision", "MAX")],
                        **_by_variant(visual, POINTS_ID),
                    }
                },
                "SortConfiguration": _ascending(f"{visual}.recall"),
                "Type": "LINE",
                "XAxisDisplayOptions": _unit_axis(),
                "PrimaryYAxisDisplayOptions": {"AxisOptions": _unit_axis()},
                "Legend": {"Visibility": "VISIBLE"},
            },
        }
    }


def _daily_line(visual: str, column: str, title: str, subtitle: str, unit: bool = True) -> dict:
    configuration: dict[str, Any] = {
        "FieldWells": {
            "LineChartAggregatedFieldWells": {
                "Category": [_day_dimension(visual, SUMMARY_ID)],
                "Values": [_measure(visual, SUMMARY_ID, column, "AVERAGE")],
                **_by_variant(visual, SUMMARY_ID),
            }
        },
        "SortConfiguration": _ascending(f"{visual}.{DAY_COLUMN}"),
        "Type": "LINE",
        "Legend": {"Visibility": "VISIBLE"},
    }
    if unit:
        configuration["PrimaryYAxisDisplayOptions"] = {"AxisOptions": _unit_axis()}
    return {
        "LineChartVisual": {
            "VisualId": visual,
            **_labels(title, subtitle),
            "ChartConfiguration": configuration,
        }
    }


def _volume_bars() -> dict:
    visual = "volume-by-day"
    return {
        "BarChartVisual": {
            "VisualId": visual,
            **_labels(
                "Predictions per day",
                "n_predictions: every scored request of the day, labeled or not, per variant.",
            ),
            "ChartConfiguration": {
                "FieldWells": {
                    "BarChartAggregatedFieldWells": {
                        "Category": [_day_dimension(visual, SUMMARY_ID)],
                        "Values": [_measure(visual, SUMMARY_ID, "n_predictions", "SUM")],
                        **_by_variant(visual, SUMMARY_ID),
                    }
                },
                "SortConfiguration": _ascending(f"{visual}.{DAY_COLUMN}"),
                "Orientation": "VERTICAL",
                "BarsArrangement": "STACKED",
                "Legend": {"Visibility": "VISIBLE"},
            },
        }
    }


def _grid(element_id: str, kind: str, column: int, row: int, width: int, height: int) -> dict:
    return {
        "ElementId": element_id,
        "ElementType": kind,
        "ColumnIndex": column,
        "ColumnSpan": width,
        "RowIndex": row,
        "RowSpan": height,
    }


def dashboard_definition(summary_arn: str, points_arn: str) -> dict:
    """The dashboard as code: one sheet, a day picker, the PR curve and the daily trends.

    - PR curve of the day chosen in the Day control (a DateTime parameter, default yesterday),
      from `pr_curve_points`: recall on x, precision on y, one line per variant;
    - average precision, best F1 and label coverage by day, one line per variant (`pr_summary`);
    - predictions per day (n_predictions), stacked by variant.
    Every chart has one small panel per endpoint, since variant names repeat across endpoints.
    """
    visuals = [
        _pr_curve_visual(),
        _daily_line(
            "ap-by-day",
            "average_precision",
            "Average precision by day",
            "Step-wise average precision (scikit-learn's average_precision_score), per variant.",
        ),
        _daily_line(
            "best-f1-by-day",
            "best_f1",
            "Best F1 by day",
            "The highest F1 over all thresholds of the day, per variant.",
        ),
        _daily_line(
            "label-coverage-by-day",
            "label_coverage",
            "Label coverage by day",
            "Share of the day's predictions with a ground-truth label so far; late labels "
            "raise it and the day is recomputed.",
        ),
        _volume_bars(),
    ]
    layout = [
        _grid(PR_CURVE_VISUAL, "VISUAL", 0, 0, 18, 12),
        _grid("ap-by-day", "VISUAL", 18, 0, 18, 12),
        _grid("best-f1-by-day", "VISUAL", 0, 12, 18, 10),
        _grid("label-coverage-by-day", "VISUAL", 18, 12, 18, 10),
        _grid("volume-by-day", "VISUAL", 0, 22, 36, 10),
    ]
    sheet = {
        "SheetId": SHEET_ID,
        "Name": "Precision-recall",
        "Title": "Daily precision-recall by endpoint and variant",
        "ContentType": "INTERACTIVE",
        "ParameterControls": [
            {
                "DateTimePicker": {
                    "ParameterControlId": DAY_CONTROL_ID,
                    "Title": "Day",
                    "SourceParameterName": DAY_PARAMETER,
                    "DisplayOptions": {"DateTimeFormat": "YYYY-MM-DD"},
                }
            }
        ],
        "Visuals": visuals,
        "Layouts": [{"Configuration": {"GridLayout": {"Elements": layout}}}],
        "SheetControlLayouts": [
            {
                "Configuration": {
                    "GridLayout": {
                        "Elements": [_grid(DAY_CONTROL_ID, "PARAMETER_CONTROL", 0, 0, 2, 1)]
                    }
                }
            }
        ],
    }
    return {
        "DataSetIdentifierDeclarations": [
            {"Identifier": SUMMARY_ID, "DataSetArn": summary_arn},
            {"Identifier": POINTS_ID, "DataSetArn": points_arn},
        ],
        "Sheets": [sheet],
        "ParameterDeclarations": [
            {
                "DateTimeParameterDeclaration": {
                    "Name": DAY_PARAMETER,
                    "TimeGranularity": "DAY",
                    "DefaultValues": {"RollingDate": {"Expression": YESTERDAY}},
                    "ValueWhenUnset": {"ValueWhenUnsetOption": "RECOMMENDED_VALUE"},
                }
            }
        ],
        "FilterGroups": [
            {
                "FilterGroupId": "selected-day",
                "Filters": [
                    {
                        "TimeEqualityFilter": {
                            "FilterId": "selected-day-points",
                            "Column": _column(POINTS_ID, DAY_COLUMN),
                            "ParameterName": DAY_PARAMETER,
                            "TimeGranularity": "DAY",
                        }
                    }
                ],
                "ScopeConfiguration": {
                    "SelectedSheets": {
                        "SheetVisualScopingConfigurations": [
                            {
                                "SheetId": SHEET_ID,
                                "Scope": "SELECTED_VISUALS",
                                "VisualIds": [PR_CURVE_VISUAL],
                            }
                        ]
                    }
                },
                "Status": "ENABLED",
                "CrossDataset": "SINGLE_DATASET",
            }
        ],
    }


def definition_digest(name: str, definition: Mapping, options: Mapping) -> str:
    """A short hash of everything a dashboard version is made from (kept in its description)."""
    payload = json.dumps([name, definition, options], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# -- the AWS publisher ------------------------------------------------------------------------
class QuickSightPublisher(Publisher):
    """Publishes to QuickSight with a boto3 `quicksight` client passed in (see module docstring).

    `sleep` and `clock` drive backoff and polling (tests pass fakes); `log` gets one line per
    step (an asset passes `context.log`).
    """

    def __init__(
        self,
        lake: Lake,
        client: Any,
        config: QuickSightConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        log: Any = None,
    ):
        self.lake = lake
        self.client = client
        self.config = config
        self.sleep = sleep
        self.clock = clock
        self.log = log or logger

    # -- the whole run --------------------------------------------------------------------------
    def publish(self, days: Sequence[str]) -> dict:
        export = export_quicksight_csv(self.lake, days)
        manifests = {table.name: self._check_manifest(table, export) for table in TABLES}
        data_sources, datasets, started = {}, {}, {}
        for table in TABLES:
            data_sources[table.name] = self.ensure_data_source(table, manifests[table.name])
            datasets[table.name] = self.ensure_dataset(table, data_sources[table.name]["arn"])
        # One ingestion per dataset for the whole run: started together, then awaited.
        for table in TABLES:
            dataset_id = self.config.dataset_id(table)
            triggered = datasets[table.name].get("ingestion_id")
            if triggered:
                self.log.info(f"{dataset_id}: waiting for the ingestion its create/update started")
                started[table.name] = triggered
            else:
                per_day = export["tables"][table.name]["days"]
                content = {day: entry["sha256"] for day, entry in per_day.items()}
                wanted = ingestion_id_for(dataset_id, export["days"], content)
                started[table.name] = self.start_ingestion(dataset_id, wanted)
        ingestions = {
            table.name: self.wait_for_ingestion(self.config.dataset_id(table), started[table.name])
            for table in TABLES
        }
        dashboard = self.publish_dashboard(
            datasets[SUMMARY_TABLE.name]["arn"], datasets[POINTS_TABLE.name]["arn"]
        )
        permissions = self.grant_dashboard_permissions()
        warnings = [
            f"{name}: QuickSight dropped {result['rows_dropped']} row(s) it could not read "
            "(a value that does not cast to its column type)"
            for name, result in ingestions.items()
            if result.get("rows_dropped")
        ]
        return {
            "publisher": "quicksight",
            "published": True,
            **_export_summary(export),
            "data_sources": {name: ds["action"] for name, ds in data_sources.items()},
            "datasets": {name: ds["action"] for name, ds in datasets.items()},
            "ingestions": ingestions,
            "dashboard": {**dashboard, "permissions": permissions},
            "warnings": warnings,
        }

    def _check_manifest(self, table: CsvTable, export: Mapping) -> str:
        written = export["tables"][table.name]["manifest_uri"]
        _manifest_location(written)
        configured = self.config.manifest_uri(table)
        if configured and configured != written:
            raise QuickSightError(
                f"the {table.name} manifest was written to {written} but the configuration "
                f"points QuickSight at {configured}; make them the same (or leave the "
                "configured URI empty)"
            )
        return written

    # -- data sources ---------------------------------------------------------------------------
    def ensure_data_source(self, table: CsvTable, manifest_uri: str) -> dict:
        """Create the table's S3 data source, or point it at `manifest_uri` if it changed."""
        config = self.config
        source_id = config.data_source_id_for(table)
        location = _manifest_location(manifest_uri)
        parameters = {"S3Parameters": {"ManifestFileLocation": location}}
        name = f"{config.name_prefix} {table.name} (S3 manifest)"
        subject = f"data source {source_id}"
        current = self._describe(
            "describe_data_source",
            subject,
            AwsAccountId=config.aws_account_id,
            DataSourceId=source_id,
        )
        if current is None:
            response = self._call(
                "create_data_source",
                subject,
                AwsAccountId=config.aws_account_id,
                DataSourceId=source_id,
                Name=name,
                Type="S3",
                DataSourceParameters=parameters,
                Permissions=[
                    {"Principal": owner, "Actions": list(OWNER_DATA_SOURCE_ACTIONS)}
                    for owner in config.owner_arns
                ],
            )
            action, status = "created", response.get("CreationStatus")
        else:
            source = current["DataSource"]
            existing = (source.get("DataSourceParameters") or {}).get("S3Parameters") or {}
            if (
                existing.get("ManifestFileLocation") == location
                and source.get("Status") not in FAILED
            ):
                return {"id": source_id, "arn": source["Arn"], "action": "unchanged"}
            response = self._call(
                "update_data_source",
                subject,
                AwsAccountId=config.aws_account_id,
                DataSourceId=source_id,
                Name=name,
                DataSourceParameters=parameters,
            )
            action, status = "updated", response.get("UpdateStatus")
        self.log.info(f"{subject} {action}, reading {manifest_uri}")
        if status in IN_PROGRESS:
            self._wait_data_source(source_id)
        elif status in FAILED:
            raise QuickSightError(f"{subject}: {action.removesuffix('d')} ended {status}")
        return {"id": source_id, "arn": response["Arn"], "action": action}

    def _wait_data_source(self, source_id: str) -> None:
        subject = f"data source {source_id}"

        def check() -> bool:
            source = self._call(
                "describe_data_source",
                subject,
                AwsAccountId=self.config.aws_account_id,
                DataSourceId=source_id,
            )["DataSource"]
            status = source.get("Status")
            if status in FAILED:
                error = source.get("ErrorInfo") or {}
                raise QuickSightError(
                    f"{subject} ended {status}: {error.get('Type', 'UNKNOWN')}: "
                    f"{error.get('Message', 'no message')} (can QuickSight read the bucket? "
                    "see docs/quicksight.md)",
                    code=error.get("Type", ""),
                )
            return status in SUCCEEDED

        self._poll(subject, check, self.config.resource_timeout_seconds)

    # -- datasets -------------------------------------------------------------------------------
    def ensure_dataset(self, table: CsvTable, data_source_arn: str) -> dict:
        """Create the table's SPICE dataset, or update it if its definition changed.

        Creating (or updating) a SPICE dataset starts an ingestion; its id is returned as
        `ingestion_id` so that the run waits for it instead of starting a second one.
        """
        config = self.config
        dataset_id = config.dataset_id(table)
        physical, logical = dataset_tables(table, data_source_arn)
        name = f"{config.name_prefix} {table.name}"
        subject = f"dataset {dataset_id}"
        common = {
            "AwsAccountId": config.aws_account_id,
            "DataSetId": dataset_id,
            "Name": name,
            "PhysicalTableMap": physical,
            "LogicalTableMap": logical,
            "ImportMode": "SPICE",
        }
        current = self._describe(
            "describe_data_set", subject, AwsAccountId=config.aws_account_id, DataSetId=dataset_id
        )
        if current is None:
            response = self._call(
                "create_data_set",
                subject,
                **common,
                Permissions=[
                    {"Principal": owner, "Actions": list(OWNER_DATASET_ACTIONS)}
                    for owner in config.owner_arns
                ],
            )
            action = "created"
        else:
            existing = current["DataSet"]
            have = _dataset_signature(
                existing.get("PhysicalTableMap"),
                existing.get("LogicalTableMap"),
                existing.get("ImportMode"),
            )
            if have == _dataset_signature(physical, logical, "SPICE"):
                return {"id": dataset_id, "arn": existing["Arn"], "action": "unchanged"}
            response = self._call("update_data_set", subject, **common)
            action = "updated"
        self.log.info(f"{subject} {action} (SPICE, {len(table.columns)} columns)")
        return {
            "id": dataset_id,
            "arn": response["Arn"],
            "action": action,
            "ingestion_id": response.get("IngestionId"),
        }

    # -- ingestion ------------------------------------------------------------------------------
    def refresh(self, dataset_id: str, ingestion_id: str) -> dict:
        """Start the ingestion `ingestion_id` of `dataset_id` (a full refresh) and wait for it."""
        return self.wait_for_ingestion(dataset_id, self.start_ingestion(dataset_id, ingestion_id))

    def start_ingestion(self, dataset_id: str, ingestion_id: str) -> str:
        """create_ingestion with `ingestion_id`; returns the id to wait for.

        If that id exists already (a re-run with the same files), the existing ingestion is
        awaited or reused; only if it FAILED or was CANCELLED is a suffixed id started.
        """
        for attempt in range(1, self.config.max_retries + 2):
            candidate = ingestion_id if attempt == 1 else f"{ingestion_id}-r{attempt}"
            subject = f"ingestion {candidate} of dataset {dataset_id}"
            try:
                self._call(
                    "create_ingestion",
                    subject,
                    AwsAccountId=self.config.aws_account_id,
                    DataSetId=dataset_id,
                    IngestionId=candidate,
                    IngestionType="FULL_REFRESH",
                )
            except QuickSightError as error:
                if error.code != "ResourceExistsException":
                    raise
                existing = self._describe_ingestion(dataset_id, candidate)
                if existing.get("IngestionStatus") in ("FAILED", "CANCELLED"):
                    continue
                self.log.info(f"{subject} exists already (same files): reusing it")
                return candidate
            self.log.info(f"{subject} started")
            return candidate
        raise QuickSightError(
            f"every ingestion id tried for dataset {dataset_id} ({ingestion_id} and its retries) "
            "exists and failed; see the dataset's refresh history in QuickSight"
        )

    def _describe_ingestion(self, dataset_id: str, ingestion_id: str) -> dict:
        return self._call(
            "describe_ingestion",
            f"ingestion {ingestion_id} of dataset {dataset_id}",
            AwsAccountId=self.config.aws_account_id,
            DataSetId=dataset_id,
            IngestionId=ingestion_id,
        )["Ingestion"]

    def wait_for_ingestion(self, dataset_id: str, ingestion_id: str) -> dict:
        """Poll describe_ingestion until COMPLETED (returns row counts) or FAILED/CANCELLED."""
        result: dict = {}

        def check() -> bool:
            ingestion = self._describe_ingestion(dataset_id, ingestion_id)
            status = ingestion["IngestionStatus"]
            result["status"] = status
            if status in ("FAILED", "CANCELLED"):
                error = ingestion.get("ErrorInfo") or {}
                raise IngestionFailedError(
                    dataset_id,
                    ingestion_id,
                    status,
                    error.get("Type", ""),
                    error.get("Message", ""),
                )
            if status != "COMPLETED":
                return False
            rows = ingestion.get("RowInfo") or {}
            result.update(
                rows_ingested=rows.get("RowsIngested", 0),
                rows_dropped=rows.get("RowsDropped", 0),
                total_rows=rows.get("TotalRowsInDataset", 0),
                seconds=ingestion.get("IngestionTimeInSeconds", 0),
                bytes=ingestion.get("IngestionSizeInBytes", 0),
            )
            return True

        self._poll(
            f"SPICE ingestion {ingestion_id} of dataset {dataset_id}",
            check,
            self.config.ingestion_timeout_seconds,
            state=result,
            after_timeout=(
                "; it keeps running in QuickSight, and re-running this publication with the same "
                "files waits for it instead of starting another"
            ),
        )
        self.log.info(
            f"dataset {dataset_id}: ingestion {ingestion_id} COMPLETED, "
            f"{result['rows_ingested']} rows ingested, {result['rows_dropped']} dropped"
        )
        return {"dataset_id": dataset_id, "ingestion_id": ingestion_id, **result}

    # -- dashboard ------------------------------------------------------------------------------
    def publish_dashboard(self, summary_arn: str, points_arn: str) -> dict:
        """Create or update the dashboard from its Definition and publish the new version.

        The version description holds a digest of the definition: when the published version
        already has it, nothing is created (a daily run adds no dashboard version).
        """
        config = self.config
        definition = dashboard_definition(summary_arn, points_arn)
        digest = definition_digest(config.dashboard_name, definition, PUBLISH_OPTIONS)
        description = f"prviz definition {digest}"
        subject = f"dashboard {config.dashboard_id}"
        body = {
            "AwsAccountId": config.aws_account_id,
            "DashboardId": config.dashboard_id,
            "Name": config.dashboard_name,
            "Definition": definition,
            "VersionDescription": description,
            "DashboardPublishOptions": PUBLISH_OPTIONS,
        }
        current = self._describe(
            "describe_dashboard",
            subject,
            AwsAccountId=config.aws_account_id,
            DashboardId=config.dashboard_id,
        )
        if current is not None:
            version = current["Dashboard"].get("Version") or {}
            if version.get("Description") == description and version.get("Status") in SUCCEEDED:
                return {
                    "id": config.dashboard_id,
                    "action": "unchanged",
                    "version": version.get("VersionNumber"),
                    "url": config.dashboard_url(),
                }
            response = self._call("update_dashboard", subject, **body)
            action = "updated"
        else:
            response = self._call("create_dashboard", subject, **body)
            action = "created"
        number = _arn_version(response["VersionArn"])
        if response.get("CreationStatus") not in SUCCEEDED:
            self._wait_dashboard_version(number)
        self._call(
            "update_dashboard_published_version",
            subject,
            AwsAccountId=config.aws_account_id,
            DashboardId=config.dashboard_id,
            VersionNumber=number,
        )
        self.log.info(f"{subject} {action}: version {number} published")
        return {
            "id": config.dashboard_id,
            "action": action,
            "version": number,
            "url": config.dashboard_url(),
        }

    def _wait_dashboard_version(self, number: int) -> None:
        subject = f"dashboard {self.config.dashboard_id} version {number}"

        def check() -> bool:
            version = (
                self._call(
                    "describe_dashboard",
                    subject,
                    AwsAccountId=self.config.aws_account_id,
                    DashboardId=self.config.dashboard_id,
                    VersionNumber=number,
                )["Dashboard"].get("Version")
                or {}
            )
            status = version.get("Status")
            if status in FAILED:
                errors = "; ".join(
                    f"{e.get('Type', 'UNKNOWN')}: {e.get('Message', '')}"
                    for e in version.get("Errors") or []
                )
                raise QuickSightError(f"{subject} ended {status}: {errors or 'no error given'}")
            return status in SUCCEEDED

        self._poll(subject, check, self.config.resource_timeout_seconds)

    def grant_dashboard_permissions(self) -> dict:
        """Owners: full control. Viewer group: exactly VIEWER_ACTIONS (anything else revoked).

        Other principals are left as they are (an admin may have shared the dashboard by hand).
        """
        config = self.config
        subject = f"permissions of dashboard {config.dashboard_id}"
        current = self._call(
            "describe_dashboard_permissions",
            subject,
            AwsAccountId=config.aws_account_id,
            DashboardId=config.dashboard_id,
        )
        held = {p["Principal"]: set(p["Actions"]) for p in current.get("Permissions") or []}
        wanted = {owner: OWNER_DASHBOARD_ACTIONS for owner in config.owner_arns}
        wanted[config.viewer_group_arn] = VIEWER_ACTIONS
        grant = [
            {"Principal": principal, "Actions": list(actions)}
            for principal, actions in wanted.items()
            if not set(actions) <= held.get(principal, set())
        ]
        extra = sorted(held.get(config.viewer_group_arn, set()) - set(VIEWER_ACTIONS))
        revoke = [{"Principal": config.viewer_group_arn, "Actions": extra}] if extra else []
        if not grant and not revoke:
            return {"action": "unchanged", "viewer_actions": list(VIEWER_ACTIONS), "revoked": []}
        changes: dict[str, Any] = {}
        if grant:
            changes["GrantPermissions"] = grant
        if revoke:
            changes["RevokePermissions"] = revoke
        self._call(
            "update_dashboard_permissions",
            subject,
            AwsAccountId=config.aws_account_id,
            DashboardId=config.dashboard_id,
            **changes,
        )
        self.log.info(
            f"{subject}: viewers get {', '.join(VIEWER_ACTIONS)}"
            + (f"; revoked {', '.join(extra)}" if extra else "")
        )
        return {"action": "updated", "viewer_actions": list(VIEWER_ACTIONS), "revoked": extra}

    # -- calls, retries, polling ----------------------------------------------------------------
    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt + 1`: base · 2^attempt, capped."""
        config = self.config
        return min(config.backoff_base_seconds * 2**attempt, config.backoff_max_seconds)

    def _call(self, method: str, subject: str, **params) -> dict:
        api = self.client.meta.method_to_api_mapping.get(method, method)
        attempt = 0
        while True:
            try:
                return getattr(self.client, method)(**params)
            except ClientError as error:
                details = error.response.get("Error", {})
                code = details.get("Code", "")
                status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                retryable = code in RETRYABLE_ERRORS or status >= 500
                if retryable and attempt < self.config.max_retries:
                    delay = self.backoff(attempt)
                    self.log.warning(
                        f"QuickSight {api} ({subject}): {code}; retry {attempt + 1} of "
                        f"{self.config.max_retries} in {delay:g}s"
                    )
                    self.sleep(delay)
                    attempt += 1
                    continue
                tries = f" after {attempt + 1} attempts" if attempt else ""
                raise QuickSightError(
                    f"QuickSight {api} failed for {subject}{tries}: {code}: "
                    f"{details.get('Message', '')}.{_hint(code, api)}",
                    code=code,
                ) from error
            except BotoCoreError as error:
                raise QuickSightError(
                    f"QuickSight {api} for {subject} could not be sent to region "
                    f"{self.config.region}: {error}"
                ) from error

    def _describe(self, method: str, subject: str, **params) -> dict | None:
        """A describe call; None when the resource does not exist."""
        try:
            return self._call(method, subject, **params)
        except QuickSightError as error:
            if error.code == NOT_FOUND:
                return None
            raise

    def _poll(
        self,
        subject: str,
        check: Callable[[], bool],
        timeout: float,
        state: Mapping | None = None,
        after_timeout: str = "",
    ) -> None:
        deadline = self.clock() + timeout
        while not check():
            if self.clock() >= deadline:
                last = (state or {}).get("status")
                raise QuickSightTimeoutError(
                    f"{subject} did not finish within {timeout:g}s"
                    + (f" (last status {last})" if last else "")
                    + after_timeout,
                    code="Timeout",
                )
            self.sleep(self.config.poll_interval_seconds)


def quicksight_client(region: str, max_attempts: int = 2):
    """A boto3 QuickSight client for `region`; few botocore retries, since prviz retries itself."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "quicksight",
        region_name=region,
        config=Config(retries={"mode": "standard", "max_attempts": max_attempts}),
    )
