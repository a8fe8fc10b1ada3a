"""CSV copies of the published tables, and the S3 manifests QuickSight reads them through.

QuickSight's S3 data source cannot read Parquet, so each day of `pr_summary` and
`pr_curve_points_thin` is also written as one CSV file:

    quicksight/pr_summary/dt=YYYY-MM-DD/part.csv
    quicksight/pr_curve_points/dt=YYYY-MM-DD/part.csv

with a header row and `dt` as the first column (QuickSight does not read partition folders as
columns). Each table has one manifest, `quicksight/manifests/{table}.json`, whose `URIPrefixes`
entry is the table's folder: a new day is a new file under the prefix, never a manifest change.

Cell formats are chosen for QuickSight's casts from STRING: a null is an empty field; an integer
is written in decimal; a float is written positionally (never `1e-05`) with the shortest digits
that round-trip to the same double, i.e. repr's precision without the exponent notation that a
cast to DECIMAL might not parse. NaN and infinities (which the tables should not hold) are
written as empty fields, i.e. nulls.
"""

import csv
import hashlib
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from prviz.curves.compute import POINTS_SCHEMA, SUMMARY_SCHEMA
from prviz.lake.paths import validate_day
from prviz.lake.store import Lake, LakeError

ROOT = "quicksight"
MANIFEST_FOLDER = "manifests"
CSV_FILE = "part.csv"
DAY_COLUMN = "dt"
UPLOAD_SETTINGS = {
    "format": "CSV",
    "delimiter": ",",
    "textqualifier": '"',
    "containsHeader": "true",
}


@dataclass(frozen=True)
class CsvTable:
    """One table published to QuickSight: its name there and the lake dataset it copies."""

    name: str  # folder and manifest name under quicksight/
    source: str  # the lake dataset it is a copy of
    schema: pa.Schema  # the columns after `dt`, with their Arrow types

    @property
    def columns(self) -> list[str]:
        return [DAY_COLUMN, *self.schema.names]

    @property
    def folder(self) -> str:
        return f"{ROOT}/{self.name}"

    @property
    def manifest_path(self) -> str:
        return f"{ROOT}/{MANIFEST_FOLDER}/{self.name}.json"

    def day_path(self, day: str) -> str:
        return f"{self.folder}/dt={validate_day(day)}/{CSV_FILE}"


SUMMARY_TABLE = CsvTable("pr_summary", "pr_summary", SUMMARY_SCHEMA)
POINTS_TABLE = CsvTable("pr_curve_points", "pr_curve_points_thin", POINTS_SCHEMA)
TABLES = (SUMMARY_TABLE, POINTS_TABLE)


def format_cell(value: object) -> str:
    """One CSV field: '' for null/NaN/inf, positional round-trip digits for floats."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return np.format_float_positional(value, unique=True, trim="-")
    return str(value)


def table_csv_bytes(table: pa.Table, columns: Sequence[str]) -> bytes:
    """The table's `columns`, in that order, as UTF-8 CSV (no BOM) with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=",", quotechar='"', lineterminator="\n")
    writer.writerow(columns)
    for row in table.select(list(columns)).to_pylist():
        writer.writerow([format_cell(row[name]) for name in columns])
    return buffer.getvalue().encode("utf-8")


def manifest_bytes(prefix_uri: str) -> bytes:
    """A QuickSight S3 manifest reading every file under `prefix_uri`."""
    manifest = {
        "fileLocations": [{"URIPrefixes": [prefix_uri]}],
        "globalUploadSettings": dict(UPLOAD_SETTINGS),
    }
    return (json.dumps(manifest, indent=2) + "\n").encode("utf-8")


def _day_table(lake: Lake, table: CsvTable, day: str) -> pa.Table:
    if not lake.has_partition(table.source, day):
        raise LakeError(
            f"cannot publish {day}: {table.source} has no data for dt={day} "
            f"({lake.partition_uri(table.source, day)}); materialize pr_curves for it first"
        )
    data = lake.read_partition(table.source, day)
    missing = [name for name in table.columns if name not in data.column_names]
    if missing:
        raise LakeError(
            f"{table.source} dt={day} lacks the column(s) {', '.join(missing)}; "
            "recompute the day with the current pr_curves"
        )
    schema = pa.schema([(DAY_COLUMN, pa.string()), *table.schema])
    return data.select(table.columns).cast(schema)


def export_quicksight_csv(lake: Lake, days: Sequence[str]) -> dict:
    """Write the CSV copy of every table for `days`, and both manifests; return what was written.

    The result (JSON-serialisable):
      days: the days, sorted;
      s3: whether the manifests point at `s3://` (only then can QuickSight read them; a local
          lake writes `file://` prefixes, which document what QuickSight would read);
      tables: {name: {source, manifest_uri, prefix_uri, rows, days: {day: {rows, uri, sha256}}}}.
    """
    ordered = sorted({validate_day(day) for day in days})
    if not ordered:
        raise ValueError("export_quicksight_csv needs at least one day")
    tables = {}
    for table in TABLES:
        per_day = {}
        for day in ordered:
            rows = _day_table(lake, table, day)
            data = table_csv_bytes(rows, table.columns)
            uri = lake.write_bytes(table.day_path(day), data)
            per_day[day] = {
                "rows": rows.num_rows,
                "uri": uri,
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        prefix_uri = lake.uri(table.folder) + "/"
        manifest_uri = lake.write_bytes(table.manifest_path, manifest_bytes(prefix_uri))
        tables[table.name] = {
            "source": table.source,
            "manifest_uri": manifest_uri,
            "prefix_uri": prefix_uri,
            "rows": sum(entry["rows"] for entry in per_day.values()),
            "days": per_day,
        }
    return {
        "days": ordered,
        "s3": all(entry["manifest_uri"].startswith("s3://") for entry in tables.values()),
        "tables": tables,
    }
