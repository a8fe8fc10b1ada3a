"""Faults survived, nothing lost: real faults injected into real pipeline runs (issue #7).

Every run here is a real Dagster run on a real DagsterInstance, with the real local Spark session
(shared), the real lake (a local folder, or a real S3 server: SeaweedFS on loopback) and a real
boto3 QuickSight client behind botocore's Stubber (validated against the service model).

- a. The Spark job SIGKILLed while it writes a day (a second JVM, killed with its process group):
     the day's committed version stays whole and readable, its staging is never read, and the
     re-run writes the new rows; the leftover staging is swept once it is stale.
- b. A re-run of a day through Dagster gives the same rows in every dataset.
- c. A corrupt committed Parquet file (garbage, truncated) fails the runs that read it, naming
     the file; nothing downstream is overwritten. Spark fails on it, even told to skip corrupt
     files.
- d. The S3 server stopped mid-run: the run fails in seconds with the endpoint in the message;
     with the server back, the same partition runs again and gives what an unbroken run gives.
     A frozen (not stopped) server is bounded by the S3 timeouts.
- e. QuickSight failing (throttled beyond its retries, a failed SPICE ingestion) inside a run of
     quicksight_dataset: nothing in QuickSight is changed by the failed attempt, the CSVs in the
     lake are the new version whole, and the asset's RetryPolicy runs it again.
"""

# ruff: noqa: F811
from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import dagster as dg
import pyarrow as pa
import pytest
from botocore.stub import Stubber

from prviz.config import Settings
from prviz.curves.assets import build_curve_assets
from prviz.definitions import build_assets, build_resources
from prviz.demo.generator import DemoSpec, write_demo_data
from prviz.lake.s3 import S3_CONNECT_TIMEOUT, S3_MAX_ATTEMPTS, S3_READ_TIMEOUT, S3Options, s3_client
from prviz.lake.store import (
    STAGING,
    STALE_AFTER_SECONDS,
    TRASH,
    CorruptFileError,
    Lake,
    LakeError,
    open_lake,
)
from prviz.partitions import daily_partitions
from prviz.publish.assets import build_publish_assets
from prviz.publish.csv_export import POINTS_TABLE, SUMMARY_TABLE, TABLES, table_csv_bytes
from prviz.publish.quicksight import (
    OWNER_DASHBOARD_ACTIONS,
    PUBLISH_OPTIONS,
    VIEWER_ACTIONS,
    dashboard_definition,
    dataset_tables,
    definition_digest,
    ingestion_id_for,
)
from prviz.publish.resources import PublisherResource
from prviz.spark.resources import LocalSparkRunner

# The session fixture `s3_server` (tests take it as an argument: F811).
from prviz_tests.s3_server import S3Server, s3_server  # noqa: F401

pytestmark = pytest.mark.spark

DAY = "2025-03-01"
START = dt.date(2025, 3, 1)
STAGES = ["predictions", "labeled_predictions", "score_counts", "pr_curves"]
LATE_LABEL_STAGES = STAGES[1:]
SPARK_DATASETS = (
    "predictions",
    "quarantine_captures",
    "labeled_predictions",
    "quarantine_labels",
    "score_counts",
    "pr_curve_points",
    "pr_curve_points_thin",
    "pr_summary",
)
PUBLISH_ASSETS = ["pr_curves_7d", "quicksight_dataset", "pr_dashboard"]
SEVEN_DAY_DATASETS = ("pr_curves_7d_summary", "pr_curves_7d_points_thin")
# what the non-Spark assets read from the lake
SEEDED = ("score_counts", "pr_summary", "pr_curve_points_thin", "quarantine_captures",
          "quarantine_labels")  # fmt: skip
# the production policy (prviz/publish/assets.py) retries after 30 s; here at once
RETRY_AT_ONCE = dg.RetryPolicy(max_retries=1)
KILL_TIMEOUT = 300.0  # a second JVM on a loaded 2-core machine can take a minute to get going


# -- helpers -----------------------------------------------------------------------------------
def write_input(home: Path, seed: int, records: int):
    """A fresh day of captures + labels in the real formats (replacing any there were)."""
    for folder in ("capture", "ground-truth"):
        shutil.rmtree(home / folder, ignore_errors=True)
    spec = DemoSpec(records_per_day=records, bad_fraction=0.02)
    return write_demo_data(home, START, 1, seed=seed, spec=spec).day(DAY)


def sorted_table(lake: Lake, dataset: str) -> pa.Table:
    table = lake.read_partition(dataset, DAY)
    return table.sort_by([(name, "ascending") for name in table.column_names])


def snapshot(lake: Lake, datasets=SPARK_DATASETS) -> dict[str, pa.Table]:
    return {dataset: sorted_table(lake, dataset) for dataset in datasets}


def versions(lake: Lake, datasets=SPARK_DATASETS) -> dict[str, str]:
    """Each day's committed version, from its `_manifest.json` (the commit point)."""
    return {
        dataset: json.loads(lake.read_bytes(f"{dataset}/dt={DAY}/_manifest.json"))["version"]
        for dataset in datasets
    }


def assert_same_tables(left: dict[str, pa.Table], right: dict[str, pa.Table]) -> None:
    assert left.keys() == right.keys()
    for dataset in left:
        assert left[dataset].schema == right[dataset].schema, dataset
        assert left[dataset].equals(right[dataset]), dataset


def spark_assets(settings: Settings) -> list:
    return [a for a in build_assets(settings) if a.node_def.name == "spark_stages"]


def publish_assets(settings: Settings, retry_policy=RETRY_AT_ONCE) -> list:
    partitions = daily_partitions(settings.start_date)
    return [*build_curve_assets(partitions), *build_publish_assets(partitions, retry_policy)]


def step_events(result, step: str, kind: str) -> list:
    return [e for e in result.all_events if e.step_key == step and e.event_type_value == kind]


def error_text(result, step: str, kind: str = "STEP_FAILURE") -> str:
    """The step's error and its causes' messages, as the run's page shows them."""
    (event,) = step_events(result, step, kind)
    error, parts = event.event_specific_data.error, []
    while error is not None:
        parts.append(error.message)
        error = error.cause
    return "\n".join(parts)


def staging_files(lake_root: Path) -> list[str]:
    root = lake_root / STAGING
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def dashboard_data(lake: Lake) -> dict:
    """The data embedded in the dashboard page, without the time it was rendered."""
    html = lake.read_bytes("dashboard/index.html").decode()
    start = html.index('id="prviz-data">') + len('id="prviz-data">')
    data = json.loads(html[start : html.index("</script>", start)])
    data["meta"].pop("refreshed_at")
    return data


def shown_predictions(lake: Lake) -> int:
    """The day's predictions as the dashboard page shows them (its embedded summary)."""
    summary = dashboard_data(lake)["summary"]
    column = summary["columns"].index("n_predictions")
    return sum(row[column] for row in summary["data"])


def publication(lake: Lake) -> dict[str, bytes]:
    """What the publish assets wrote: the CSVs, QuickSight manifests and the dashboard page."""
    names = [table.day_path(DAY) for table in TABLES]
    names += [table.manifest_path for table in TABLES] + ["dashboard/index.html"]
    return {name: lake.read_bytes(name) for name in names}


# -- the day, computed once, then rewritten by a run that is killed --------------------------
@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def settings(home: Path) -> Settings:
    return Settings(start_date=dt.date(2025, 1, 1)).with_home(home)


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture(scope="module")
def lake(settings: Settings) -> Lake:
    return Lake(settings.lake_uri)


def materialize_stages(settings, instance, selection=STAGES, **kwargs):
    return dg.materialize(
        spark_assets(settings),
        partition_key=DAY,
        instance=instance,
        resources=build_resources(settings),
        selection=selection,
        **kwargs,
    )


# The Spark application that will be killed: `run_job` in its own process (and process group,
# with its JVM). It starts its session at once, so that the JVM boots while the first run
# computes, then waits for the job to run.
CHILD = """
import json, sys
from prviz.config import JobConfig
from prviz.spark.job import run_job
from prviz.spark.session import local_session
spark = local_session(app_name="prviz-killed", master="local[1]")
spark.range(1).count()
config, day = json.loads(sys.stdin.readline())
run_job(spark, JobConfig.from_dict(config), [day])
"""


def _group_alive(pgid: int) -> list[int]:
    """PIDs (not zombies) in the process group `pgid`, from /proc."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(int(entry.name))
    return alive


def _part_file_staged(lake_root: Path) -> Path | None:
    """A Parquet part file being written under `_staging/*/predictions/` (Spark's task output)."""
    for folder, _dirs, files in os.walk(lake_root / STAGING):
        for name in files:
            if name.startswith("part-") and name.endswith(".parquet") and "predictions" in folder:
                return Path(folder) / name
    return None


@pytest.fixture(scope="module")
def child(home):
    log_path = home / "killed-job.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            cwd=home,
            stdin=subprocess.PIPE,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the JVM goes with it
        )
    try:
        yield process, log_path
    finally:  # only our own group, whatever happened
        if process.poll() is None or _group_alive(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        process.stdin.close()


@pytest.fixture(scope="module")
def first_run(spark, child, home, settings, instance, lake):
    truth = write_input(home, seed=1, records=240)
    assert materialize_stages(settings, instance).success
    return {"truth": truth, "tables": snapshot(lake), "versions": versions(lake)}


@pytest.fixture(scope="module")
def killed(first_run, child, home, settings, lake):
    """New input, then the Spark job for the day in its own process, SIGKILLed mid-write."""
    process, log_path = child
    truth = write_input(home, seed=2, records=300)
    lake_root = Path(settings.lake_uri)
    started = time.monotonic()
    process.stdin.write(json.dumps([settings.job_config().to_dict(), DAY]).encode() + b"\n")
    process.stdin.flush()
    writing = None
    while writing is None and process.poll() is None:
        if time.monotonic() - started > KILL_TIMEOUT:
            break
        writing = _part_file_staged(lake_root)
        time.sleep(0.005)
    assert writing is not None, (
        f"the job never wrote to staging (exit {process.poll()}): "
        + log_path.read_text(errors="replace")[-3000:]
    )
    os.killpg(process.pid, signal.SIGKILL)
    killed_after = time.monotonic() - started
    assert process.wait(timeout=30) == -signal.SIGKILL
    deadline = time.monotonic() + 30
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return {
        "truth": truth,
        "writing": writing,
        "seconds": killed_after,
        "survivors": _group_alive(process.pid),
        "tables": snapshot(lake),
        "versions": versions(lake),
        "uris": {ds: lake.partition_file_uris(ds, DAY) for ds in SPARK_DATASETS},
        "staging": staging_files(lake_root),
    }


@pytest.fixture(scope="module")
def rerun(killed, settings, instance, lake):
    """The day re-run through Dagster, in process, after the killed attempt."""
    assert materialize_stages(settings, instance).success
    return {
        "tables": snapshot(lake),
        "versions": versions(lake),
        "staging": staging_files(Path(settings.lake_uri)),
    }


@pytest.fixture(scope="module")
def rerun_again(rerun, settings, instance, lake):
    """The same day once more, after the killed run's staging has aged past the sweep's limit.

    A run killed three days ago left the same folder under a token that says so.
    """
    staging = Path(settings.lake_uri) / STAGING
    (left,) = [p for p in staging.iterdir() if p.is_dir()]
    then = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=STALE_AFTER_SECONDS + 3600)
    aged = staging / f"{then:%Y%m%dT%H%M%S}Z-{left.name.rsplit('-', 1)[1]}"
    left.rename(aged)
    assert materialize_stages(settings, instance).success
    return {
        "aged": aged,
        "tables": snapshot(lake),
        "versions": versions(lake),
        "staging": staging_files(Path(settings.lake_uri)),
    }


# -- a. the Spark job killed mid-write ---------------------------------------------------------
def test_a_killed_spark_job_leaves_the_committed_day_whole_and_readable(
    first_run, killed, settings, spark
):
    # the kill came while a task was writing the day's predictions into staging
    assert "_temporary" in str(killed["writing"]) and killed["writing"].name.startswith("part-")
    assert killed["survivors"] == []  # the driver and its JVM are gone
    assert any(name.split("/", 1)[1].startswith("predictions/") for name in killed["staging"])
    # every dataset reads exactly the version committed before, under the same commit
    assert_same_tables(killed["tables"], first_run["tables"])
    assert killed["versions"] == first_run["versions"]
    assert killed["tables"]["predictions"].num_rows == first_run["truth"].predictions
    # the leftover staging is not data: readers get only the committed files, and a reader that
    # lists the dataset's folder (as Spark, Athena do) sees the same rows
    for dataset, uris in killed["uris"].items():
        assert uris and all(f"/{dataset}/dt={DAY}/" in u and STAGING not in u for u in uris)
    folder = Lake(settings.lake_uri).uri("predictions")
    listed = spark.read.parquet(folder).where(f"dt = '{DAY}'").count()
    assert listed == first_run["truth"].predictions


def test_the_rerun_writes_the_new_input_and_leaves_the_young_staging_alone(
    first_run, killed, rerun
):
    truth = killed["truth"]
    assert truth.predictions != first_run["truth"].predictions  # the input really changed
    tables = rerun["tables"]
    assert tables["predictions"].num_rows == truth.predictions
    assert tables["quarantine_captures"].num_rows == truth.bad_total
    summary = tables["pr_summary"].to_pydict()
    assert sum(summary["n_predictions"]) == truth.predictions
    assert sum(summary["n_labeled"]) == truth.labeled_predictions_in_window
    assert sum(summary["n_positives"]) == truth.labeled_positives_in_window
    # every dataset was committed anew
    assert all(rerun["versions"][ds] != first_run["versions"][ds] for ds in SPARK_DATASETS)
    # the killed run's staging is harmless and still there: it is younger than the sweep's
    # limit, and could belong to a run still going; the re-run removed its own staging
    assert rerun["staging"] == killed["staging"]


def test_stale_staging_of_a_killed_run_is_swept_by_the_next_run(rerun_again, settings):
    assert not rerun_again["aged"].exists()
    assert rerun_again["staging"] == []
    trash = Path(settings.lake_uri) / TRASH  # commits empty their trash as they go
    assert not trash.exists() or list(trash.iterdir()) == []


# -- b. a re-run gives the same rows ------------------------------------------------------------
def test_a_rerun_through_dagster_gives_identical_rows_in_every_dataset(rerun, rerun_again):
    assert_same_tables(rerun_again["tables"], rerun["tables"])
    assert all(rerun_again["versions"][ds] != rerun["versions"][ds] for ds in SPARK_DATASETS)


# -- the sweep itself (no Spark): what a commit killed between its two renames leaves ----------
def test_the_sweep_puts_back_a_day_a_killed_local_commit_left_in_the_trash(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    table = pa.table({"score": [0.25, 0.75]})
    lake.write_table("pr_summary", DAY, table)
    lake.write_table("pr_summary", "2025-03-02", table)
    # killed after its first rename (the old day moved aside), before its second
    final = Path(lake.partition_path("pr_summary", DAY))
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    trashed = tmp_path / "lake" / TRASH / f"{old:%Y%m%dT%H%M%S}Z-0a1b2c" / "pr_summary"
    trashed.mkdir(parents=True)
    final.rename(trashed / f"dt={DAY}")
    # killed after both renames, before deleting the old version
    done_late = tmp_path / "lake" / TRASH / f"{old:%Y%m%dT%H%M%S}Z-3d4e5f" / "pr_summary"
    shutil.copytree(lake.partition_path("pr_summary", "2025-03-02"), done_late / "dt=2025-03-02")
    young = tmp_path / "lake" / TRASH / lake.new_staging_token()
    (young / "pr_summary").mkdir(parents=True)
    assert not lake.has_partition("pr_summary", DAY)

    done = lake.sweep_stale()

    assert done["restored"] == [f"pr_summary dt={DAY}"]
    assert len(done["trash"]) == 2 and young.exists()
    assert lake.read_partition("pr_summary", DAY).drop(["dt"]).equals(table)
    assert lake.read_partition("pr_summary", "2025-03-02").num_rows == 2
    assert sorted(p.name for p in (tmp_path / "lake" / TRASH).iterdir()) == [young.name]


# -- c. corrupt Parquet files in the lake -------------------------------------------------------
@pytest.fixture(scope="module")
def corrupt_lake(rerun_again, settings, home):
    """A copy of the computed lake, to corrupt (the other tests keep the original)."""
    copy_root = home / "corrupt-lake"
    shutil.copytree(settings.lake_uri, copy_root, ignore=shutil.ignore_patterns(STAGING))
    return dataclasses.replace(settings, lake_uri=str(copy_root))


def test_spark_fails_on_a_corrupt_file_even_told_to_skip_them(corrupt_lake, spark):
    """Garbage in a committed predictions file fails the late-label recompute that reads it.

    The Spark application of a spark_stages run, called as that asset calls it (Spark's own read
    error may be a passing storage fault, so through Dagster the step keeps its retry); the
    truncated file is caught before Spark, and through Dagster that step fails without a retry.
    """
    lake = Lake(corrupt_lake.lake_uri)
    downstream = ["labeled_predictions", "score_counts", "pr_curve_points", "pr_summary"]
    before, committed = snapshot(lake, downstream), versions(lake, downstream)
    target = Path(lake.partition_files("predictions", DAY)[0].path)
    size = target.stat().st_size
    original = target.read_bytes()
    target.write_bytes((b"not parquet " * size)[:size])  # same size: only Parquet can tell
    target.with_name(f".{target.name}.crc").unlink(missing_ok=True)  # as on S3: no checksums
    assert spark.conf.get("spark.sql.files.ignoreCorruptFiles") == "false"
    spark.conf.set("spark.sql.files.ignoreCorruptFiles", "true")  # a cluster set to skip them
    try:
        with pytest.raises(Exception, match="Encountered error while reading file") as garbage:
            LocalSparkRunner().run(corrupt_lake.job_config(), [DAY], LATE_LABEL_STAGES)
    finally:
        spark.conf.set("spark.sql.files.ignoreCorruptFiles", "false")
    assert f"predictions/dt={DAY}/{target.name}" in str(garbage.value)
    # truncated: caught before Spark, against the size its commit recorded
    target.write_bytes(original[: size // 3])
    with pytest.raises(CorruptFileError) as truncated:
        LocalSparkRunner().run(corrupt_lake.job_config(), [DAY], LATE_LABEL_STAGES)
    assert str(truncated.value) == (
        f"predictions dt={DAY}: corrupt Parquet file {target}: it is {size // 3} bytes, but its "
        f"commit recorded {size} (truncated or replaced after the commit); re-run predictions "
        f"for {DAY} to rewrite it (the lake never reads it as data)"
    )
    # through Dagster: the step fails at once, without its retry (RetryPolicy delay 30 s)
    with dg.instance_for_test() as instance:
        result = materialize_stages(
            corrupt_lake, instance, selection=LATE_LABEL_STAGES, raise_on_error=False
        )
    assert not result.success
    assert not step_events(result, "spark_stages", "STEP_UP_FOR_RETRY")
    assert str(truncated.value) in error_text(result, "spark_stages")
    assert_same_tables(snapshot(lake, downstream), before)
    assert versions(lake, downstream) == committed


def test_corrupt_and_truncated_files_fail_the_publish_runs_naming_them(corrupt_lake):
    lake = Lake(corrupt_lake.lake_uri)
    resources = build_resources(corrupt_lake)
    with dg.instance_for_test() as other:
        first = dg.materialize(
            publish_assets(corrupt_lake), partition_key=DAY, instance=other, resources=resources
        )
        assert first.success
        before = snapshot(lake, SEVEN_DAY_DATASETS)
        committed = versions(lake, SEVEN_DAY_DATASETS)
        published = publication(lake)
        counts = Path(lake.partition_files("score_counts", DAY)[0].path)
        counts_size = counts.stat().st_size
        counts.write_bytes(counts.read_bytes()[: counts_size // 2])  # truncated
        summary = Path(lake.partition_files("pr_summary", DAY)[0].path)
        summary_size = summary.stat().st_size
        summary.write_bytes(b"\0" * summary_size)  # garbage of the same size

        result = dg.materialize(
            publish_assets(corrupt_lake),
            partition_key=DAY,
            instance=other,
            resources=resources,
            raise_on_error=False,
        )

    assert not result.success
    seven_day = error_text(result, "pr_curves_7d")
    assert (
        f"score_counts dt={DAY}: corrupt Parquet file {counts}: it is {counts_size // 2} bytes, "
        f"but its commit recorded {counts_size} (truncated or replaced after the commit); "
        f"re-run score_counts for {DAY}"
    ) in seven_day
    quicksight = error_text(result, "quicksight_dataset")
    assert f"pr_summary dt={DAY}: corrupt Parquet file {summary}: " in quicksight
    assert "magic bytes" in quicksight or "Parquet" in quicksight.split(str(summary), 1)[1]
    # a corrupt file is not retried (the same bytes would be read again)
    assert step_events(result, "quicksight_dataset", "STEP_UP_FOR_RETRY") == []
    assert step_events(result, "pr_dashboard", "STEP_START") == []
    # nothing downstream was replaced
    assert_same_tables(snapshot(lake, SEVEN_DAY_DATASETS), before)
    assert versions(lake, SEVEN_DAY_DATASETS) == committed
    assert publication(lake) == published


# -- d. the S3 server goes away mid-run ---------------------------------------------------------
@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    return s3_server.make_bucket()


@pytest.fixture(scope="module")
def aws_env(s3_server: S3Server, tmp_path_factory):
    """The test server's keys through the standard AWS chain (prviz never takes them itself)."""
    empty = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
        patch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
        patch.setenv("AWS_CONFIG_FILE", str(empty / "config"))
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield


def s3_settings(home: Path, server: S3Server, bucket: str, prefix: str) -> Settings:
    return Settings.from_env(
        {
            "PRVIZ_HOME": str(home),
            "PRVIZ_START_DATE": "2025-01-01",
            "PRVIZ_LAKE_URI": f"s3://{bucket}/{prefix}",
            "PRVIZ_S3_ENDPOINT_URL": server.endpoint_url,
            "PRVIZ_S3_REGION": server.region,
        }
    )


def seed(settings: Settings, tables: dict[str, pa.Table]) -> Lake:
    lake = settings.job_config().lake()
    for dataset, table in tables.items():
        lake.write_table(dataset, DAY, table)
    return lake


@pytest.fixture(scope="module")
def computed(rerun_again, lake) -> dict[str, pa.Table]:
    """The day's real tables the non-Spark assets read (from the Spark runs above)."""
    return {dataset: lake.read_partition(dataset, DAY) for dataset in SEEDED}


@pytest.fixture(scope="module")
def unbroken(aws_env, home, s3_server, bucket, computed):
    """The publish assets on an S3 lake, in a run that nothing interrupts: the reference."""
    settings = s3_settings(home, s3_server, bucket, "unbroken")
    lake = seed(settings, computed)
    with dg.instance_for_test() as other:
        result = dg.materialize(
            publish_assets(settings),
            partition_key=DAY,
            instance=other,
            resources=build_resources(settings),
        )
    assert result.success
    return lake


def test_the_s3_server_stopped_mid_run_fails_it_clearly_and_the_rerun_completes_it(
    aws_env, home, s3_server, bucket, computed, unbroken
):
    settings = s3_settings(home, s3_server, bucket, "broken")
    lake = seed(settings, computed)

    @dg.success_hook(name="stop_s3_after_pr_curves_7d")
    def stop_s3(context):
        if context.op.name == "pr_curves_7d":
            s3_server.stop()

    job = dg.define_asset_job(
        "publish_while_s3_goes_away",
        selection=PUBLISH_ASSETS,
        hooks={stop_s3},
    )
    defs = dg.Definitions(
        assets=publish_assets(settings), jobs=[job], resources=build_resources(settings)
    )
    with dg.instance_for_test() as other:
        try:
            started = time.monotonic()
            result = defs.resolve_job_def(job.name).execute_in_process(
                partition_key=DAY, instance=other, raise_on_error=False
            )
            failed_after = time.monotonic() - started
        finally:
            s3_server.start()
        assert not result.success
        assert step_events(result, "pr_curves_7d", "STEP_SUCCESS")
        # the failure names the endpoint and what was being done, and comes in seconds
        message = error_text(result, "quicksight_dataset")
        assert "LakeError: could not check s3://" in message
        assert f'Could not connect to the endpoint URL: "{s3_server.endpoint_url}/' in message
        assert len(step_events(result, "quicksight_dataset", "STEP_UP_FOR_RETRY")) == 1
        assert step_events(result, "pr_dashboard", "STEP_START") == []
        assert failed_after < 120, failed_after  # generous: the 2-core test machine is shared

        # the server is back: the same partition runs again, whole
        again = dg.materialize(
            publish_assets(settings),
            partition_key=DAY,
            instance=other,
            resources=build_resources(settings),
        )
    assert again.success
    for dataset in SEVEN_DAY_DATASETS:
        assert sorted_table(lake, dataset).equals(sorted_table(unbroken, dataset)), dataset
    mine, reference = publication(lake), publication(unbroken)
    for name in mine:
        if name.endswith(".csv"):
            assert mine[name] == reference[name], name
        elif name.endswith(".json"):  # manifests name their own prefix
            assert mine[name] == reference[name].replace(b"/unbroken/", b"/broken/"), name
    assert dashboard_data(lake) == dashboard_data(unbroken)
    assert lake.list_days("pr_curves_7d_summary") == [DAY]


def test_stale_staging_is_swept_on_s3_too(aws_env, s3_server, bucket, computed):
    """What a killed writer left in an S3 lake's `_staging/` goes once stale, nothing else."""
    lake = open_lake(
        f"s3://{bucket}/sweep", {"endpoint_url": s3_server.endpoint_url, "region": "us-east-1"}
    )
    lake.write_table("pr_summary", DAY, computed["pr_summary"])
    then = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=STALE_AFTER_SECONDS + 3600)
    old, young = f"{then:%Y%m%dT%H%M%S}Z-0a1b2c3d", lake.new_staging_token()
    legacy = "0123456789abcdef0123456789abcdef"  # a token from before tokens carried their time
    client = s3_server.client()
    for token in (old, young, legacy):
        key = f"sweep/{STAGING}/{token}/predictions/_temporary/0/part-00000.parquet"
        client.put_object(Bucket=bucket, Key=key, Body=b"half a part file")

    assert lake.sweep_stale() == {"staging": [old], "trash": [], "restored": []}
    listed = client.list_objects_v2(Bucket=bucket, Prefix=f"sweep/{STAGING}/")["Contents"]
    assert sorted({item["Key"].split("/")[2] for item in listed}) == sorted([young, legacy])
    later = time.time() + STALE_AFTER_SECONDS + 60  # the legacy one goes by its objects' age
    assert sorted(lake.sweep_stale(now=later)["staging"]) == sorted([young, legacy])
    assert client.list_objects_v2(Bucket=bucket, Prefix=f"sweep/{STAGING}/")["KeyCount"] == 0
    assert lake.read_partition("pr_summary", DAY).num_rows == computed["pr_summary"].num_rows


def test_a_frozen_s3_server_fails_a_read_within_the_timeouts(aws_env, s3_server, bucket, computed):
    """A server that accepts connections but never answers (SIGSTOP): bounded, and named."""
    uri = f"s3://{bucket}/frozen"
    options = {"endpoint_url": s3_server.endpoint_url, "region": s3_server.region}
    open_lake(uri, options).write_table("pr_summary", DAY, computed["pr_summary"])
    quick = open_lake(uri, {**options, "connect_timeout": 1, "read_timeout": 1, "max_attempts": 2})
    os.kill(s3_server.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(LakeError) as raised:
            quick.read_partition("pr_summary", DAY)
        seconds = time.monotonic() - started
    finally:
        os.kill(s3_server.pid, signal.SIGCONT)
    assert f'Read timeout on endpoint URL: "{s3_server.endpoint_url}/{bucket}/frozen/' in str(
        raised.value
    )
    assert seconds < 15, seconds  # 2 attempts of 1 s, not botocore's 4 of 60 s
    assert open_lake(uri, options).read_partition("pr_summary", DAY).num_rows > 0
    # the defaults every lake's boto3 client gets: a frozen store fails a call in ~1.5 min
    config = s3_client(S3Options(endpoint_url=s3_server.endpoint_url)).meta.config
    assert (config.connect_timeout, config.read_timeout) == (S3_CONNECT_TIMEOUT, S3_READ_TIMEOUT)
    assert config.retries["total_max_attempts"] == S3_MAX_ATTEMPTS == 3
    assert S3_READ_TIMEOUT * S3_MAX_ATTEMPTS <= 90


# -- e. QuickSight fails inside a run of quicksight_dataset -------------------------------------
ACCOUNT = "123456789012"
REGION = "us-east-1"
ARN = f"arn:aws:quicksight:{REGION}:{ACCOUNT}"
OWNER = f"{ARN}:user/default/ml-platform"
GROUP = f"{ARN}:group/default/business-readers"
MUTATIONS = {
    "CreateDataSource",
    "UpdateDataSource",
    "CreateDataSet",
    "UpdateDataSet",
    "CreateDashboard",
    "UpdateDashboard",
    "UpdateDashboardPublishedVersion",
    "UpdateDashboardPermissions",
}


class QuickSight:
    """A real QuickSight client behind botocore's Stubber, as prviz's publisher will call it."""

    def __init__(self, bucket: str, prefix: str):
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
        self.bucket, self.prefix = bucket, prefix
        # fast retries and polls: the QuickSight client is stubbed, nothing is waited for
        self.fields = dict(
            mode="aws", aws_account_id=ACCOUNT, region=REGION, owner_arns=OWNER,
            viewer_group_arn=GROUP, max_retries=1, backoff_base_seconds=0.01,
            poll_interval_seconds=0.01,
        )  # fmt: skip
        self.resource = PublisherResource(**self.fields)
        self.ids = {
            SUMMARY_TABLE.name: self.resource.summary_dataset_id,
            POINTS_TABLE.name: self.resource.points_dataset_id,
        }

    def publisher(self) -> PublisherResource:
        client = self.client

        class StubbedPublisher(PublisherResource):
            def quicksight_client(self):
                return client

        return StubbedPublisher(**self.fields)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    # -- expected calls and their answers --------------------------------------------------------
    def ok(self, method: str, params: dict, response: dict) -> None:
        self.stub.add_response(method, {"Status": 200, **response}, expected_params=params)

    def error(self, method: str, code: str, params: dict, status: int) -> None:
        self.stub.add_client_error(
            method, code, f"{code} from QuickSight", status, expected_params=params
        )

    def key(self, **more) -> dict:
        return {"AwsAccountId": ACCOUNT, **more}

    def arn(self, name: str) -> str:
        return f"{ARN}:dataset/{self.ids[name]}"

    def resources_unchanged(self) -> None:
        """Data sources and datasets exist as prviz would make them: nothing to change."""
        for table in TABLES:
            kind = "summary" if table is SUMMARY_TABLE else "points"
            source_id = f"{self.resource.data_source_id}-{kind}"
            source_arn = f"{ARN}:datasource/{source_id}"
            location = {"Bucket": self.bucket, "Key": f"{self.prefix}/{table.manifest_path}"}
            self.ok(
                "describe_data_source",
                self.key(DataSourceId=source_id),
                {
                    "DataSource": {
                        "Arn": source_arn,
                        "DataSourceId": source_id,
                        "Name": f"prviz {table.name} (S3 manifest)",
                        "Type": "S3",
                        "Status": "CREATION_SUCCESSFUL",
                        "DataSourceParameters": {
                            "S3Parameters": {"ManifestFileLocation": location}
                        },
                    }
                },
            )
            physical, logical = dataset_tables(table, source_arn)
            self.ok(
                "describe_data_set",
                self.key(DataSetId=self.ids[table.name]),
                {
                    "DataSet": {
                        "Arn": self.arn(table.name),
                        "DataSetId": self.ids[table.name],
                        "Name": f"prviz {table.name}",
                        "ImportMode": "SPICE",
                        "PhysicalTableMap": physical,
                        "LogicalTableMap": logical,
                    }
                },
            )

    def create_ingestion(self, name: str, ingestion_id: str, error: str = "") -> None:
        params = self.key(
            DataSetId=self.ids[name], IngestionId=ingestion_id, IngestionType="FULL_REFRESH"
        )
        if error:
            self.error("create_ingestion", error, params, 409 if "Exists" in error else 429)
        else:
            body = {"IngestionId": ingestion_id, "IngestionStatus": "QUEUED"}
            self.ok("create_ingestion", params, body)

    def ingestion(self, name: str, ingestion_id: str, status: str) -> None:
        body = {
            "Arn": f"{self.arn(name)}/ingestion/{ingestion_id}",
            "IngestionId": ingestion_id,
            "IngestionStatus": status,
            "CreatedTime": dt.datetime(2025, 3, 2, 2, 0, tzinfo=dt.UTC),
        }
        if status == "COMPLETED":
            body["RowInfo"] = {"RowsIngested": 4, "RowsDropped": 0, "TotalRowsInDataset": 4}
        if status == "FAILED":
            body["ErrorInfo"] = {"Type": "S3_FILE_INACCESSIBLE", "Message": "try again later"}
        params = self.key(DataSetId=self.ids[name], IngestionId=ingestion_id)
        self.ok("describe_ingestion", params, {"Ingestion": body})

    def dashboard_unchanged(self) -> None:
        definition = dashboard_definition(self.arn(SUMMARY_TABLE.name), self.arn(POINTS_TABLE.name))
        digest = definition_digest("Precision-recall by day", definition, PUBLISH_OPTIONS)
        dashboard_id = self.resource.dashboard_id
        arn = f"{ARN}:dashboard/{dashboard_id}"
        version = {
            "VersionNumber": 3,
            "Status": "UPDATE_SUCCESSFUL",
            "Arn": f"{arn}/version/3",
            "Description": f"prviz definition {digest}",
        }
        key = self.key(DashboardId=dashboard_id)
        dashboard = {"DashboardId": dashboard_id, "Arn": arn, "Name": "Precision-recall by day"}
        self.ok("describe_dashboard", key, {"Dashboard": {**dashboard, "Version": version}})
        grants = [
            {"Principal": OWNER, "Actions": list(OWNER_DASHBOARD_ACTIONS)},
            {"Principal": GROUP, "Actions": list(VIEWER_ACTIONS)},
        ]
        body = {"DashboardId": dashboard_id, "DashboardArn": arn, "Permissions": grants}
        self.ok("describe_dashboard_permissions", key, body)


def csv_of(lake: Lake, table) -> bytes:
    """The CSV the export writes for the day, from the lake's committed table."""
    data = lake.read_partition(table.source, DAY)
    schema = pa.schema([("dt", pa.string()), *table.schema])
    return table_csv_bytes(data.select(table.columns).cast(schema), table.columns)


def ingestion_ids(quicksight: QuickSight, lake: Lake) -> dict[str, str]:
    return {
        table.name: ingestion_id_for(
            quicksight.ids[table.name],
            [DAY],
            {DAY: hashlib.sha256(csv_of(lake, table)).hexdigest()},
        )
        for table in TABLES
    }


def publish_run(settings: Settings, quicksight: QuickSight, instance):
    resources = {**build_resources(settings), "publisher": quicksight.publisher()}
    return dg.materialize(
        publish_assets(settings),
        partition_key=DAY,
        instance=instance,
        resources=resources,
        selection=["quicksight_dataset", "pr_dashboard"],
        raise_on_error=False,
    )


def test_a_quicksight_failure_changes_nothing_there_and_the_asset_is_retried(
    aws_env, home, s3_server, bucket, computed, first_run
):
    settings = s3_settings(home, s3_server, bucket, "quicksight")
    old = {ds: first_run["tables"][ds] for ds in ("pr_summary", "pr_curve_points_thin")}
    lake = seed(settings, {**computed, **old})
    quicksight = QuickSight(bucket, "quicksight")
    quicksight.stub.activate()
    try:
        with dg.instance_for_test() as other:
            # yesterday's publication: everything in QuickSight in place, one ingestion each
            previous_ids = ingestion_ids(quicksight, lake)
            quicksight.resources_unchanged()
            for name, ingestion_id in previous_ids.items():
                quicksight.create_ingestion(name, ingestion_id)
            for name, ingestion_id in previous_ids.items():
                quicksight.ingestion(name, ingestion_id, "COMPLETED")
            quicksight.dashboard_unchanged()
            assert publish_run(settings, quicksight, other).success
            quicksight.stub.assert_no_pending_responses()
            previous = publication(lake)

            # late labels recomputed the day; QuickSight throttles beyond its retries, twice
            seed(settings, {ds: computed[ds] for ds in old})
            new_ids = ingestion_ids(quicksight, lake)
            assert new_ids != previous_ids
            quicksight.calls.clear()
            for _attempt in range(2):  # the run, and the RetryPolicy's second attempt
                quicksight.resources_unchanged()
                for _call in range(2):  # the call, and the publisher's own retry
                    quicksight.create_ingestion(
                        SUMMARY_TABLE.name, new_ids[SUMMARY_TABLE.name], "ThrottlingException"
                    )
            throttled = publish_run(settings, quicksight, other)
            quicksight.stub.assert_no_pending_responses()

            assert not throttled.success
            message = error_text(throttled, "quicksight_dataset")
            assert (
                f"QuickSight CreateIngestion failed for ingestion {new_ids['pr_summary']} of "
                f"dataset {quicksight.ids['pr_summary']} after 2 attempts: ThrottlingException"
            ) in message
            assert len(step_events(throttled, "quicksight_dataset", "STEP_UP_FOR_RETRY")) == 1
            # nothing in QuickSight changed: no update, no ingestion started; yesterday's stands
            assert not MUTATIONS & set(quicksight.names())
            assert [n for n in quicksight.names() if n != "CreateIngestion"] == [
                "DescribeDataSource", "DescribeDataSet", "DescribeDataSource", "DescribeDataSet",
            ] * 2  # fmt: skip
            # the lake holds the new CSVs, each whole (written before the first QuickSight
            # call), the same manifests, and the dashboard page of before (pr_dashboard waited)
            now = publication(lake)
            for table in TABLES:
                assert now[table.day_path(DAY)] == csv_of(lake, table)
                assert now[table.manifest_path] == previous[table.manifest_path]
            assert now[SUMMARY_TABLE.day_path(DAY)] != previous[SUMMARY_TABLE.day_path(DAY)]
            assert now["dashboard/index.html"] == previous["dashboard/index.html"]
            assert shown_predictions(lake) == sum(old["pr_summary"]["n_predictions"].to_pylist())
            assert step_events(throttled, "pr_dashboard", "STEP_START") == []

            # the next run: the summary's ingestion FAILS in QuickSight; the retry starts it
            # again under a suffixed id and reuses the points' ingestion that completed
            quicksight.calls.clear()
            quicksight.resources_unchanged()
            for name, ingestion_id in new_ids.items():
                quicksight.create_ingestion(name, ingestion_id)
            quicksight.ingestion(SUMMARY_TABLE.name, new_ids[SUMMARY_TABLE.name], "FAILED")
            quicksight.resources_unchanged()
            summary_id, points_id = new_ids[SUMMARY_TABLE.name], new_ids[POINTS_TABLE.name]
            quicksight.create_ingestion(SUMMARY_TABLE.name, summary_id, "ResourceExistsException")
            quicksight.ingestion(SUMMARY_TABLE.name, summary_id, "FAILED")
            quicksight.create_ingestion(SUMMARY_TABLE.name, f"{summary_id}-r2")
            quicksight.create_ingestion(POINTS_TABLE.name, points_id, "ResourceExistsException")
            quicksight.ingestion(POINTS_TABLE.name, points_id, "COMPLETED")
            quicksight.ingestion(SUMMARY_TABLE.name, f"{summary_id}-r2", "COMPLETED")
            quicksight.ingestion(POINTS_TABLE.name, points_id, "COMPLETED")
            quicksight.dashboard_unchanged()
            retried = publish_run(settings, quicksight, other)
            quicksight.stub.assert_no_pending_responses()
    finally:
        quicksight.stub.deactivate()

    assert retried.success
    kinds = [e.event_type_value for e in retried.all_events if e.step_key == "quicksight_dataset"]
    assert "STEP_UP_FOR_RETRY" in kinds and "STEP_RESTARTED" in kinds
    assert kinds.index("STEP_UP_FOR_RETRY") < kinds.index("STEP_SUCCESS")
    failed = error_text(retried, "quicksight_dataset", "STEP_UP_FOR_RETRY")
    assert f"SPICE ingestion {summary_id} of dataset prviz-pr-summary ended FAILED" in failed
    assert not MUTATIONS & set(quicksight.names())
    assert step_events(retried, "pr_dashboard", "STEP_SUCCESS")  # rebuilt from the new day
    assert shown_predictions(lake) == sum(computed["pr_summary"]["n_predictions"].to_pylist())
