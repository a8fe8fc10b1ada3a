"""The one job entrypoint, `python -m prviz.spark.pipes_job`, driven through Dagster Pipes.

One real run on local Spark goes through `PipesLocalSparkRunner` (a subprocess, the path EMR
takes): its report must equal `run_job` called in process on the same demo days. The rest checks
the protocol (days from extras or from the Pipes context, stages, errors) without a JVM.
"""

import datetime as dt
import json
import subprocess
import sys
from types import SimpleNamespace

import dagster as dg
import pytest

from prviz.config import JobConfig
from prviz.demo.generator import DemoSpec, write_demo_data
from prviz.spark import pipes_job
from prviz.spark.emr import PipesLocalSparkRunner, SparkJobError
from prviz.spark.job import STAGES, run_job

pytestmark = pytest.mark.filterwarnings(
    "ignore:AssetExecutionContext.*is deprecated:DeprecationWarning"
)

DAYS = ["2025-02-10", "2025-02-11"]
TIMING_KEYS = {"spark_seconds", "seconds"}


def comparable(report: dict) -> str:
    """The report's figures as canonical JSON (timings dropped; NaN compares equal as text)."""

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in TIMING_KEYS}
        if isinstance(value, list | tuple):
            return [strip(v) for v in value]
        return value

    return json.dumps(strip(pipes_job.plain(report)), sort_keys=True)


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory) -> JobConfig:
    root = tmp_path_factory.mktemp("pipes-demo")
    write_demo_data(
        root / "data",
        dt.date.fromisoformat(DAYS[0]),
        len(DAYS),
        seed=5,
        spec=DemoSpec(records_per_day=300),
    )
    return JobConfig(
        capture_uri=str(root / "data" / "capture"),
        ground_truth_uri=str(root / "data" / "ground-truth"),
        lake_uri=str(root / "lake"),
    )


def run_in_asset(runner, config: JobConfig, days, stages=STAGES, pass_context=False) -> dict:
    """Materialize an asset that calls `runner.run`; return {"report": …} or {"error": …}."""
    outcome: dict = {}

    @dg.asset
    def spark_job(context: dg.AssetExecutionContext, spark: PipesLocalSparkRunner):
        try:
            if pass_context:
                outcome["report"] = spark.run(config, days, stages, context=context)
            else:  # as assets.py calls it today: the runner takes the current context
                outcome["report"] = spark.run(config, days, stages)
        except SparkJobError as error:
            outcome["error"] = error
        return dg.MaterializeResult()

    with dg.instance_for_test() as instance:
        result = dg.materialize([spark_job], resources={"spark": runner}, instance=instance)
    assert result.success
    return outcome


# -- the one Spark run -------------------------------------------------------------------------
@pytest.mark.spark
def test_local_pipes_run_reports_what_run_job_reports_in_process(spark, demo_config):
    outcome = run_in_asset(PipesLocalSparkRunner(master="local[2]"), demo_config, DAYS)
    assert "error" not in outcome, outcome.get("error")
    through_pipes = outcome["report"]
    assert set(through_pipes) == set(STAGES)
    for stage in STAGES:
        assert sorted(through_pipes[stage]) == DAYS
    assert through_pipes["predictions"][DAYS[0]]["capture_records"] > 0
    assert through_pipes["pr_curves"][DAYS[0]]["summary"], "curves were computed"

    # the same lake, recomputed in process: the same rows, so the same figures
    in_process = run_job(spark, demo_config, DAYS, STAGES)
    assert comparable(through_pipes) == comparable(in_process)


# -- failures (no JVM: they fail before a SparkSession is built) -------------------------------
def test_a_failing_job_fails_the_runner_with_the_jobs_error_message(demo_config):
    bad = JobConfig(
        capture_uri=demo_config.capture_uri,
        ground_truth_uri=demo_config.ground_truth_uri,
        lake_uri="ftp://nowhere/lake",
    )
    outcome = run_in_asset(PipesLocalSparkRunner(), bad, DAYS[:1], pass_context=True)
    error = outcome["error"]
    assert "ArrowInvalid" in str(error)
    assert "Unrecognized filesystem type in URI: ftp://nowhere/lake" in str(error)
    assert "local Pipes subprocess" in str(error)


def test_the_runner_needs_a_dagster_context_outside_an_asset(demo_config):
    with pytest.raises(SparkJobError, match="needs the Dagster execution context"):
        PipesLocalSparkRunner().run(demo_config, DAYS[:1])


def test_main_refuses_to_run_without_dagster_pipes():
    assert pipes_job.main(environ={}) == 2


def test_the_entrypoint_imports_neither_dagster_nor_matplotlib():
    """The cluster ships dagster-pipes only: the job module must not pull dagster in."""
    code = (
        "import sys, prviz.spark.pipes_job; "
        "print(sorted(m for m in ('dagster', 'matplotlib', 'dagster_aws') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


# -- the protocol ------------------------------------------------------------------------------
def _config() -> JobConfig:
    return JobConfig(capture_uri="/c", ground_truth_uri="/g", lake_uri="/l")


def test_extras_carry_the_range_the_stages_in_order_and_the_config():
    extras = pipes_job.job_extras(
        _config(), ["2025-01-03", "2025-01-01", "2025-01-02"], ["pr_curves", "predictions"]
    )
    assert extras["partition_start"] == "2025-01-01"
    assert extras["partition_end"] == "2025-01-03"
    assert "days" not in extras  # contiguous: start/end say it all
    assert extras["stages"] == ["predictions", "pr_curves"]
    assert JobConfig.from_dict(extras["config"]) == _config()
    assert pipes_job.days_from(extras) == ["2025-01-01", "2025-01-02", "2025-01-03"]


def test_a_non_contiguous_list_of_days_travels_explicitly():
    extras = pipes_job.job_extras(_config(), ["2025-01-05", "2025-01-01"], STAGES)
    assert extras["days"] == ["2025-01-01", "2025-01-05"]
    assert pipes_job.days_from(extras) == ["2025-01-01", "2025-01-05"]


def test_without_extras_the_days_come_from_the_pipes_partition():
    pipes = SimpleNamespace(
        is_partition_step=True, partition_key_range={"start": "2025-01-07", "end": "2025-01-07"}
    )
    assert pipes_job.days_from({}, pipes) == ["2025-01-07"]
    unpartitioned = SimpleNamespace(is_partition_step=False)
    with pytest.raises(pipes_job.JobInputError, match="partition_start"):
        pipes_job.days_from({}, unpartitioned)


def test_bad_stages_and_bad_config_are_refused():
    with pytest.raises(pipes_job.JobInputError, match="unknown stages"):
        pipes_job.job_extras(_config(), ["2025-01-01"], ["parse"])
    with pytest.raises(pipes_job.JobInputError, match="unknown stages"):
        pipes_job.stages_from({"stages": ["parse"]})
    with pytest.raises(pipes_job.JobInputError, match="bad job config"):
        pipes_job.config_from({"config": {"lake_url": "/l"}})


def test_only_spark_stages_need_a_session():
    assert not pipes_job.needs_spark(["pr_curves"])
    assert pipes_job.needs_spark(["score_counts", "pr_curves"])


def test_execute_sends_the_whole_report_as_one_custom_message(tmp_path):
    sent: list = []
    logs: list = []
    extras = pipes_job.job_extras(
        JobConfig(capture_uri="/c", ground_truth_uri="/g", lake_uri=str(tmp_path / "lake")),
        ["2025-01-01", "2025-01-02"],
        ["score_counts"],
        report_uri=str(tmp_path / "report.json"),
    )
    pipes = SimpleNamespace(
        extras=extras,
        report_custom_message=sent.append,
        log=SimpleNamespace(info=logs.append),
    )

    def job(config, days, stages, spark_options):
        import numpy as np

        return {s: {d: {"n": np.int64(3), "warnings": []} for d in days} for s in stages}

    report = pipes_job.execute(pipes, job)
    assert report == {"score_counts": {d: {"n": 3, "warnings": []} for d in extras_days(extras)}}
    (message,) = sent
    assert message["type"] == pipes_job.REPORT_MESSAGE
    assert message["report"] == report
    assert json.loads((tmp_path / "report.json").read_text()) == message


def extras_days(extras: dict) -> list[str]:
    return pipes_job.days_from(extras)
