"""End to end through the Dagster UI's own API: `dagster dev`, a backfill launched the UI's way.

One `dagster dev -w workspace.yaml` (webserver, daemon, code server) serves the whole module, on a
temporary PRVIZ_HOME with a week of small demo data and a temporary DAGSTER_HOME. The week is
backfilled with the GraphQL mutation the UI sends from the `daily_pr_job` page (*Materialize
all…* → the seven days → *Launch backfill*); the backfill daemon turns it into one run. Then:
what the UI reports (materializations, figures, check evaluations) is compared with the demo
generator's exact report and with the lake; the UI's asset graph and the partitions page of
`pr_curves` are rendered in headless Chromium; the server is stopped by its own PID and no
process of its session may be left.

The week is the seven days that end yesterday (UTC), with the first partition on its first day:
the UI then shows seven partitions, all materialized, and the freshness checks (yesterday, or the
day before before 06:00 UTC) pass. The daily schedule is moved 12 hours away from now so that its
tick cannot add a run of yesterday while the test runs.

The run uses the in-process executor (run config, as the UI's launchpad can send it): with
Dagster's default multiprocess executor each of the run's 12 steps and checks starts its own
Python process, which costs minutes on a loaded 2-core machine and tests nothing of prviz.

`PRVIZ_SCREENSHOT_DIR=docs/img` also writes the two screenshots the README shows.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import shutil
import statistics
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from prviz.demo.generator import DemoReport, DemoSpec, write_demo_data
from prviz.lake.store import Lake
from prviz.monitoring.config import BASELINE_DAYS, MIN_BASELINE_DAYS, MonitoringConfig
from prviz_tests.dagster_dev import (
    DAGSTER_YAML,
    DagsterDev,
    chromium_page,
    clean_env,
    describe,
    find_chromium,
)

pytestmark = pytest.mark.e2e

# Read at import: the shared conftest hides PRVIZ_* variables from every test while it runs.
SCREENSHOT_DIR = os.environ.get("PRVIZ_SCREENSHOT_DIR")

LOCATION = "prviz"
REPOSITORY = "__repository__"  # the name Dagster gives the repository of a Definitions object
JOB = "daily_pr_job"
ASSETS = ("predictions", "labeled_predictions", "score_counts", "pr_curves", "pr_curves_7d",
          "quicksight_dataset", "pr_dashboard")  # fmt: skip
SOURCE_ASSETS = ("sagemaker_data_capture", "model_monitor_ground_truth")
GROUPS = ("capture", "curves", "publish")
VARIANTS = ("challenger", "champion")
ENDPOINT = "fraud-scorer"
# every check of daily_pr_job's assets, with its severity; each is evaluated once per day
DAILY_CHECKS = {
    ("predictions", "volume_near_median"): "WARN",
    ("labeled_predictions", "label_coverage"): "WARN",
    ("pr_curves", "capture_hours_complete"): "ERROR",
    ("pr_curves", "capture_quarantine_rate"): "ERROR",
    ("pr_curves", "has_positives"): "WARN",
    ("pr_curves", "average_precision_vs_baseline"): "WARN",
    ("pr_curves", "best_f1_vs_baseline"): "WARN",
}
FRESHNESS_CHECKS = (("pr_curves", "freshness_check"), ("pr_dashboard", "freshness_check"))

SEED = 7
# Small on purpose: 2,000 records a day still make every hour folder of both variants (what the
# blocking hours check needs) and ~40 positives per variant and day; Spark's time is in the
# ~340 files, not in the records.
RECORDS_PER_DAY = 2_000
N_DAYS = 7
LOAD_TIMEOUT = 300.0
BACKFILL_TIMEOUT = 900.0
PAGE_TIMEOUT = 90.0
WINDOW = (1600, 900)
BODY_TEXT = "document.body ? document.body.innerText : ''"  # no body while the page loads

LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on UnauthorizedError { message }
    ... on PartitionSetNotFoundError { message }
    ... on PartitionKeysNotFoundError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      id status isAssetBackfill partitionNames partitionSetName numPartitions
      error { message stack }
      runs { runId status jobName creationTime startTime endTime tags { key value } }
    }
    ... on PythonError { message }
  }
}
"""
RUN_ERRORS = """
query RunErrors($runId: ID!) {
  logsForRun(runId: $runId, limit: 5000) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on ExecutionStepFailureEvent { stepKey message error { message stack } }
        ... on RunFailureEvent { message }
        ... on EngineEvent { message error { message } }
      }
    }
  }
}
"""
RUN_STEPS = """
query RunSteps($runId: ID!) {
  runOrError(runId: $runId) { ... on Run { stepStats { stepKey startTime endTime } } }
}
"""
METADATA = """
fragment Meta on MetadataEntry {
  label
  __typename
  ... on FloatMetadataEntry { floatValue }
  ... on IntMetadataEntry { intValue intRepr }
  ... on TextMetadataEntry { text }
  ... on JsonMetadataEntry { jsonString }
  ... on MarkdownMetadataEntry { mdStr }
  ... on BoolMetadataEntry { boolValue }
  ... on PathMetadataEntry { path }
}
"""


# -- the deployment ----------------------------------------------------------------------------
@dataclass
class Deployment:
    server: DagsterDev
    root: Path
    home: Path
    days: list[str]
    demo: DemoReport

    @property
    def lake(self) -> Lake:
        return Lake(str(self.home / "lake"))


@dataclass
class Backfill:
    id: str
    status: dict
    run: dict
    seconds: float


def _week_ending_yesterday() -> list[str]:
    today = dt.datetime.now(dt.UTC).date()
    return [(today - dt.timedelta(days=N_DAYS - k)).isoformat() for k in range(N_DAYS)]


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    root = Path(tempfile.mkdtemp(prefix="prviz-e2e-ui-"))
    try:
        home, dagster_home, scratch = root / "prviz_home", root / "dagster_home", root / "tmp"
        for folder in (home, dagster_home, scratch, root / "user"):
            folder.mkdir()
        (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
        days = _week_ending_yesterday()
        demo = write_demo_data(
            home,
            dt.date.fromisoformat(days[0]),
            N_DAYS,
            seed=SEED,
            spec=DemoSpec(records_per_day=RECORDS_PER_DAY),
        )
        away = (dt.datetime.now(dt.UTC).hour + 12) % 24
        env = clean_env(
            {
                "PRVIZ_HOME": str(home),
                "DAGSTER_HOME": str(dagster_home),
                "PRVIZ_START_DATE": days[0],
                "PRVIZ_DAILY_RUN_TIME": f"{away:02d}:00",
                "HOME": str(root / "user"),  # not the developer's home (no ~/.aws, no caches)
                "TMPDIR": str(scratch),  # dagster dev's sockets and workspace file
                "SPARK_LOCAL_DIRS": str(scratch),  # Spark's block manager folders
                "JAVA_TOOL_OPTIONS": f"-Djava.io.tmpdir={scratch}",  # the JVM's native libraries
            }
        )
        server = DagsterDev(env, root / "dagster-dev.log")
        server.start()
        try:
            loaded = server.wait_until_loaded(LOCATION, LOAD_TIMEOUT)
            print(f"\ndagster dev loaded the code location in {loaded:.0f} s")
            yield Deployment(server, root, home, days, demo)
        finally:
            report = server.stop()
            if report.left:  # the last test asserts the clean stop; this is the safety net
                raise AssertionError(
                    f"dagster dev left processes after {report.signals}:\n{describe(report.left)}"
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run_errors(server: DagsterDev, run_id: str) -> str:
    try:
        data = server.graphql(RUN_ERRORS, {"runId": run_id})["logsForRun"]
    except (OSError, AssertionError) as error:
        return f"(run {run_id}: could not read its events: {error})"
    lines = []
    for event in data.get("events", []):
        kind = event["__typename"]
        error = event.get("error") or {}
        if kind == "ExecutionStepFailureEvent":
            lines.append(f"step {event['stepKey']} failed: {error.get('message', '').strip()}")
            lines.append("".join(error.get("stack") or [])[-3000:])
        elif kind == "RunFailureEvent" or (kind == "EngineEvent" and error):
            lines.append(f"{kind}: {event['message']} {error.get('message', '')}".strip())
    return "\n".join(lines) or "(no error events)"


@pytest.fixture(scope="module")
def backfill(deployment: Deployment) -> Backfill:
    """The week, launched as the UI's daily_pr_job page launches a backfill, and waited for."""
    server, days = deployment.server, deployment.days
    params = {
        # what LaunchAssetChoosePartitionsDialog sends for a job target (dagster-webserver 1.13)
        "selector": {
            "partitionSetName": f"{JOB}_partition_set",
            "repositorySelector": {
                "repositoryLocationName": LOCATION,
                "repositoryName": REPOSITORY,
            },
        },
        "assetSelection": [{"path": [name]} for name in ASSETS],
        "partitionNames": days,
        "fromFailure": False,
        "tags": [{"key": "dagster/from_ui", "value": "true"}],
        "runConfigData": {"execution": {"config": {"in_process": {}}}},
    }
    started, launched_at = time.monotonic(), time.time()
    launched = server.graphql(LAUNCH_BACKFILL, {"backfillParams": params})
    launched = launched["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]
    deadline = started + BACKFILL_TIMEOUT
    while True:
        status = server.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        assert status["__typename"] == "PartitionBackfill", status
        if status["status"] not in ("REQUESTED", "CANCELING", "FAILING"):
            break
        if time.monotonic() > deadline:
            runs = ", ".join(f"{r['runId']} {r['status']}" for r in status["runs"]) or "no run"
            pytest.fail(
                f"backfill {backfill_id} still {status['status']} after {BACKFILL_TIMEOUT:.0f} s "
                f"({runs}); server log tail:\n{server.log_tail()}"
            )
        time.sleep(2)
    seconds = time.monotonic() - started
    if status["status"] != "COMPLETED_SUCCESS" or len(status["runs"]) != 1:
        errors = "\n".join(_run_errors(server, r["runId"]) for r in status["runs"])
        pytest.fail(
            f"backfill {backfill_id} ended {status['status']} with {len(status['runs'])} run(s) "
            f"{[(r['runId'], r['status']) for r in status['runs']]}; error: {status['error']}\n"
            f"run errors:\n{errors}\nserver log tail:\n{server.log_tail()}"
        )
    run = status["runs"][0]
    steps = server.graphql(RUN_STEPS, {"runId": run["runId"]})["runOrError"]["stepStats"]
    spark = next(s for s in steps if s["stepKey"] == "spark_stages")
    print(
        f"\nbackfill of {days[0]}..{days[-1]}: {seconds:.0f} s from launch to completed; the run "
        f"was created {run['creationTime'] - launched_at:.0f} s after the launch, ran "
        f"{run['endTime'] - run['startTime']:.0f} s (spark_stages "
        f"{spark['endTime'] - spark['startTime']:.0f} s), and the backfill completed "
        f"{launched_at + seconds - run['endTime']:.0f} s after it ended"
    )
    return Backfill(backfill_id, status, status["runs"][0], seconds)


# -- reading what the UI shows -----------------------------------------------------------------
def _meta(entries: list[dict]) -> dict:
    """Metadata entries as plain values (JSON and markdown as their text)."""
    out = {}
    for entry in entries:
        if entry["__typename"] == "IntMetadataEntry":  # beyond 32 bits only intRepr has it
            value = entry["intValue"] if entry["intValue"] is not None else int(entry["intRepr"])
        else:
            fields = ("floatValue", "text", "jsonString", "mdStr", "boolValue", "path")
            value = next((entry[f] for f in fields if f in entry), None)
        out[entry["label"]] = value
    return out


def _by_day(found: dict, name: str) -> dict[str, dict]:
    return {e["partition"]: _meta(e["metadataEntries"]) for e in found[name]["assetMaterializations"]}  # fmt: skip


def _materializations(server: DagsterDev, days: list[str]) -> dict[str, list[dict]]:
    """Every materialization of each of ASSETS for `days`, with its partition, run and metadata."""
    fields = "\n".join(
        f"""{name}: assetOrError(assetKey: {{path: ["{name}"]}}) {{
              ... on Asset {{
                assetMaterializations(partitions: $days) {{
                  partition runId metadataEntries {{ ...Meta }}
                }}
                definition {{ partitionStats {{ numMaterialized numPartitions numFailed }} }}
              }}
            }}"""
        for name in ASSETS
    )
    data = server.graphql(
        f"query Mats($days: [String!]) {{ {fields} }}\n{METADATA}", {"days": days}
    )
    return {name: data[name] for name in ASSETS}


def _check_executions(server: DagsterDev, run_id: str) -> dict[tuple[str, str], list[dict]]:
    fields = "\n".join(
        f"""c{i}: assetCheckExecutions(
                assetKey: {{path: ["{asset}"]}}, checkName: "{check}", limit: 100) {{
              runId status partition
              evaluation {{ success severity partition description metadataEntries {{ ...Meta }} }}
            }}"""
        for i, (asset, check) in enumerate([*DAILY_CHECKS, *FRESHNESS_CHECKS])
    )
    data = server.graphql(f"query Checks {{ {fields} }}\n{METADATA}")
    keys = [*DAILY_CHECKS, *FRESHNESS_CHECKS]
    return {key: [e for e in data[f"c{i}"] if e["runId"] == run_id] for i, key in enumerate(keys)}


@pytest.fixture(scope="module")
def materializations(deployment: Deployment, backfill: Backfill) -> dict[str, dict]:
    return _materializations(deployment.server, deployment.days)


# -- the backfill ------------------------------------------------------------------------------
def test_ui_backfill_of_the_week_is_one_run_of_the_daily_job(deployment, backfill):
    days, status, run = deployment.days, backfill.status, backfill.run
    assert status["isAssetBackfill"] is False  # a job backfill: the daily_pr_job page's target
    assert status["partitionSetName"] == f"{JOB}_partition_set"
    assert status["partitionNames"] == days
    assert status["numPartitions"] == N_DAYS
    assert run["status"] == "SUCCESS" and run["jobName"] == JOB
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags["dagster/backfill"] == backfill.id
    assert tags["dagster/from_ui"] == "true"
    # one run for the range (BackfillPolicy.single_run), not one per day
    assert tags["dagster/asset_partition_range_start"] == days[0]
    assert tags["dagster/asset_partition_range_end"] == days[-1]


def test_every_asset_has_exactly_one_materialization_per_day_from_that_run(
    deployment, backfill, materializations
):
    days, found = deployment.days, materializations
    for name in ASSETS:
        events = found[name]["assetMaterializations"]
        assert sorted(e["partition"] for e in events) == days, name
        assert {e["runId"] for e in events} == {backfill.run["runId"]}, name
        stats = found[name]["definition"]["partitionStats"]
        assert stats["numMaterialized"] == N_DAYS and stats["numFailed"] == 0, (name, stats)
    # one Spark application computed the whole week: every day says so in its own figures
    predictions = _by_day(found, "predictions")
    assert {day: predictions[day]["range_days"] for day in days} == dict.fromkeys(days, N_DAYS)
    week = _by_day(found, "pr_curves_7d")
    assert [week[day]["days_present"] for day in days] == list(range(1, N_DAYS + 1))


def test_the_uis_figures_are_the_generators_exact_figures(deployment, materializations):
    predictions = _by_day(materializations, "predictions")
    labeled = _by_day(materializations, "labeled_predictions")
    curves = _by_day(materializations, "pr_curves")
    for day in deployment.days:
        truth = deployment.demo.day(day)
        meta = predictions[day]
        assert meta["capture_records"] == truth.capture_records, day
        assert meta["predictions"] == truth.predictions, day
        assert meta["quarantined_records"] == truth.bad_total, day
        assert meta["input_files"] == truth.capture_files, day
        assert meta["input_bytes"] == truth.capture_bytes, day
        assert labeled[day]["n_predictions"] == truth.predictions, day
        assert labeled[day]["n_labeled"] == truth.labeled_predictions_in_window, day
        assert labeled[day]["n_positives"] == truth.labeled_positives_in_window, day
        for variant in VARIANTS:
            expected = truth.by_variant[variant]
            name = f"{ENDPOINT}/{variant}"
            assert curves[day][f"n_predictions/{name}"] == expected.predictions, (day, variant)
            assert curves[day][f"n_labeled/{name}"] == expected.labeled_predictions_in_window
            assert curves[day][f"n_positives/{name}"] == expected.labeled_positives_in_window
            # AP is a float the UI plots by partition
            assert isinstance(curves[day][f"average_precision/{name}"], float), (day, variant)
        assert curves[day]["pr_curve"].startswith("![PR curve"), day


# -- the checks --------------------------------------------------------------------------------
def _baseline_failures(summary: dict[str, dict[str, dict]], days: list[str], metric: str,
                       max_drop: float) -> dict[str, bool]:  # fmt: skip
    """The baseline rule of docs/operations.md, applied to the lake's pr_summary: per day, passed?

    A variant is judged once it has MIN_BASELINE_DAYS earlier values (within BASELINE_DAYS and
    the partitions); it fails when today's value is below their median minus `max_drop`.
    """
    verdicts = {}
    for i, day in enumerate(days):
        earlier = days[max(0, i - BASELINE_DAYS) : i]
        passed = True
        for variant in VARIANTS:
            history = [summary[d][variant][metric] for d in earlier]
            if len(history) >= MIN_BASELINE_DAYS:
                if summary[day][variant][metric] < statistics.median(history) - max_drop:
                    passed = False
        verdicts[day] = passed
    return verdicts


def test_checks_ran_per_day_in_the_run_with_the_expected_outcome(deployment, backfill):
    days, lake = deployment.days, deployment.lake
    executions = _check_executions(deployment.server, backfill.run["runId"])
    summary = {
        day: {r["variant"]: r for r in lake.read_partition("pr_summary", day).to_pylist()}
        for day in days
    }
    config = MonitoringConfig()
    expected = {key: dict.fromkeys(days, True) for key in DAILY_CHECKS}
    # The demo's days are small (~40 positives per variant): AP and best F1 move by more than
    # the 0.05 allowed from one day to the next, so these WARN checks fail on some days by
    # design. Which days follows from the lake's figures.
    expected["pr_curves", "average_precision_vs_baseline"] = _baseline_failures(
        summary, days, "average_precision", config.max_ap_drop
    )
    expected["pr_curves", "best_f1_vs_baseline"] = _baseline_failures(
        summary, days, "best_f1", config.max_f1_drop
    )
    outcome = {}
    for key, severity in DAILY_CHECKS.items():
        evaluations = executions[key]
        assert sorted(e["partition"] for e in evaluations) == days, key  # once per day
        outcome[key] = {}
        for execution in evaluations:
            evaluation = execution["evaluation"]
            assert evaluation["partition"] == execution["partition"]
            assert evaluation["severity"] == severity, key
            assert execution["status"] == ("SUCCEEDED" if evaluation["success"] else "FAILED")
            assert execution["partition"] in evaluation["description"], key  # names its day
            outcome[key][execution["partition"]] = evaluation["success"]
    assert outcome == expected
    print(
        "\nbaseline WARNs: "
        + ", ".join(
            f"{check} {day}"
            for (_, check), verdicts in outcome.items()
            for day, passed in verdicts.items()
            if not passed
        )
    )
    # the first days have no 3-day baseline yet: they pass and say so
    for key in (("pr_curves", "average_precision_vs_baseline"), ("predictions", "volume_near_median")):  # fmt: skip
        first = next(e for e in executions[key] if e["partition"] == days[0])
        assert "baseline" in first["evaluation"]["description"], first
    # freshness (unpartitioned): the day due is in the week, so both pass in the run. Dagster
    # also plans the check once per day of a range run; those plans end SKIPPED, unevaluated.
    for key in FRESHNESS_CHECKS:
        evaluated = [e for e in executions[key] if e["partition"] is None]
        assert [e["status"] for e in evaluated] == ["SUCCEEDED"], (key, executions[key])
        evaluation = evaluated[0]["evaluation"]
        assert evaluation["success"] is True and evaluation["severity"] == "ERROR", evaluation
        assert any(day in evaluation["description"] for day in days), evaluation
        planned = [e for e in executions[key] if e["partition"] is not None]
        assert sorted(e["partition"] for e in planned) == days, key
        assert {(e["status"], e["evaluation"]) for e in planned} == {("SKIPPED", None)}, key


# -- the lake ----------------------------------------------------------------------------------
def test_lake_outputs_exist_for_the_week_and_agree_with_the_ui(deployment, materializations):
    days, lake, demo = deployment.days, deployment.lake, deployment.demo
    curves = _by_day(materializations, "pr_curves")
    for dataset in ("predictions", "labeled_predictions", "score_counts", "pr_summary",
                    "pr_curve_points", "pr_curve_points_thin", "pr_curves_7d_summary",
                    "quarantine_captures"):  # fmt: skip
        assert [day for day in days if not lake.has_partition(dataset, day)] == [], dataset
    for day in days:
        rows = {r["variant"]: r for r in lake.read_partition("pr_summary", day).to_pylist()}
        assert sorted(rows) == list(VARIANTS), day
        for variant, row in rows.items():
            truth = demo.day(day).by_variant[variant]
            assert row["n_predictions"] == truth.predictions
            assert row["n_labeled"] == truth.labeled_predictions_in_window
            assert row["n_positives"] == truth.labeled_positives_in_window
            # the figure the UI plots is the lake's figure
            assert (
                curves[day][f"average_precision/{ENDPOINT}/{variant}"] == row["average_precision"]
            )
        csv_rows = lake.read_bytes(f"quicksight/pr_summary/dt={day}/part.csv").decode().splitlines()
        assert csv_rows[0].startswith("dt,endpoint,variant") and len(csv_rows) == 1 + len(rows)
    # the 7-day curve of the last day merges the whole week (all variants row included)
    week = {r["variant"]: r for r in lake.read_partition("pr_curves_7d_summary", days[-1]).to_pylist()}  # fmt: skip
    assert week["__all__"]["n_labeled"] == sum(demo.day(d).labeled_predictions_in_window for d in days)  # fmt: skip
    assert week["__all__"]["n_positives"] == sum(demo.day(d).labeled_positives_in_window for d in days)  # fmt: skip


def test_embedded_dashboard_shows_the_whole_week(deployment, backfill):
    html = deployment.lake.read_bytes("dashboard/index.html").decode()
    match = re.search(r'<script type="application/json" id="prviz-data">(.*?)</script>', html, re.S)
    assert match, "no prviz-data in the dashboard"
    payload = json.loads(match.group(1))
    summary = payload["summary"]
    dt_col = summary["columns"].index("dt")
    assert sorted({row[dt_col] for row in summary["data"]}) == deployment.days
    assert len(summary["data"]) == N_DAYS * len(VARIANTS)
    week_dt = payload["summary_7d"]["columns"].index("dt")
    assert sorted({row[week_dt] for row in payload["summary_7d"]["data"]}) == deployment.days


# -- the UI in a browser -----------------------------------------------------------------------
def _shown(name: str, lines: set[str]) -> bool:
    """The asset graph shows `name`, or its middle-truncated form (`label…_predictions`)."""
    if name in lines:
        return True
    for line in lines:
        head, sep, tail = line.partition("…")
        if sep and head and tail and name.startswith(head) and name.endswith(tail):
            return True
    return False


def _assert_real_png(data: bytes, size: tuple[int, int]) -> None:
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.size == size, (image.format, image.size)
    rgb = image.convert("RGB")
    colors = rgb.getcolors(maxcolors=1 << 20) or []
    assert len(colors) > 200, f"only {len(colors)} colours: a blank page?"
    background = max(colors)[0] / (size[0] * size[1])
    assert background < 0.9, f"{background:.0%} of the image is one colour"


def _save(name: str, data: bytes, folder: Path) -> None:
    (folder / name).write_bytes(data)
    if SCREENSHOT_DIR:
        target = Path(SCREENSHOT_DIR)
        target.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(data)


def _wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not shown within {timeout:.0f} s")
        time.sleep(0.5)


def test_ui_asset_graph_and_partitions_in_headless_chromium(deployment, backfill):
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium binary (chromium, chromium-browser, google-chrome) on PATH")
    days, url = deployment.days, deployment.server.url
    shots = deployment.root / "screenshots"
    shots.mkdir()
    names = [*SOURCE_ASSETS, *ASSETS]
    # the graph with its three groups open (the UI's own `expanded` query parameter)
    expanded = ",".join(urllib.parse.quote(f"global@global:{group}") for group in GROUPS)
    with chromium_page(binary, *WINDOW) as page:

        def graph_lines() -> set[str] | None:
            lines = {line.strip() for line in page.js(BODY_TEXT).splitlines()}
            return lines if all(_shown(name, lines) for name in names) else None

        page.call("Page.navigate", url=f"{url}/asset-groups?expanded={expanded}")
        lines = _wait_until(graph_lines, PAGE_TIMEOUT, f"the asset graph with {names}")
        assert "Global asset lineage" in lines and set(GROUPS) <= lines
        time.sleep(1.5)  # the nodes' live status arrives after the layout
        graph = page.screenshot()
        _assert_real_png(graph, WINDOW)
        _save("dagster-asset-graph.png", graph, shots)

        # the partitions of pr_curves, opened on the last day with its figures
        last = days[-1]
        page.call("Page.navigate", url=f"{url}/assets/pr_curves?view=partitions&partition={last}")
        expected = (f"Materialized ({N_DAYS})", f"average_precision/{ENDPOINT}/champion")

        def partitions_text() -> str | None:
            text = page.js(BODY_TEXT)
            return text if all(part in text for part in expected) else None

        text = _wait_until(partitions_text, PAGE_TIMEOUT, f"the partitions page with {expected}")
        # a day that started since the fixture began would be a partition still missing
        missing = (dt.datetime.now(dt.UTC).date() - dt.date.fromisoformat(last)).days - 1
        assert f"Missing ({missing})" in text and "Failed (0)" in text
        assert all(day in text for day in days)
        assert backfill.run["runId"][:8] in text  # the run that materialized the day
        champion = next(
            r for r in deployment.lake.read_partition("pr_summary", last).to_pylist()
            if r["variant"] == "champion"
        )  # fmt: skip
        assert repr(champion["average_precision"]) in text  # the lake's AP, as the UI shows it
        time.sleep(1.0)
        partitions = page.screenshot()
        _assert_real_png(partitions, WINDOW)
        _save("dagster-pr-curves-partitions.png", partitions, shots)


# -- the stop ----------------------------------------------------------------------------------
def test_server_stops_on_sigint_and_leaves_no_process(deployment, backfill):
    server = deployment.server
    report = server.stop()
    kinds = " ".join(p.cmdline for p in report.seen)
    for part in ("dagster dev", "dagster_webserver", "dagster._daemon", "code-server start"):
        assert part in kinds, f"{part} was not running before the stop:\n{describe(report.seen)}"
    assert report.left == [], describe(report.left)
    assert report.graceful, f"needed {report.signals}; log tail:\n{server.log_tail()}"
    assert report.signals == ["SIGINT to pid"] and report.exit_code == 0, report
    assert server.processes() == []
    assert "Dagster services shut down." in server.log_tail(20)
    print(f"\ndagster dev stopped in {report.seconds:.1f} s ({len(report.seen)} processes)")
