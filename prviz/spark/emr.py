"""Spark runners that launch `prviz.spark.pipes_job` through Dagster Pipes: locally and on EMR.

All three implement the `SparkRunner` contract (`run(config, days, stages) -> report[stage][day]`)
with one more, optional argument: the Dagster execution context that Pipes needs. Without it the
runner takes the current one (`dg.AssetExecutionContext.get()`), so an asset calling
`spark.run(config, days, stages)` works as it is.

- `PipesLocalSparkRunner`: `python -m prviz.spark.pipes_job` as a subprocess
  (`dg.PipesSubprocessClient`) on local Spark. The same entrypoint and protocol as EMR.
- `EMRSparkRunner`: a transient EMR-on-EC2 cluster per run (`PipesEMRClient`): one
  `spark-submit` step with `ActionOnFailure=TERMINATE_CLUSTER`, `KeepJobFlowAliveWhenNoSteps=False`
  and an `AutoTerminationPolicy` as a safety net.
- `EMRServerlessSparkRunner`: one EMR Serverless job run per run (`PipesEMRServerlessClient`).

What the runners do themselves, because dagster-aws 0.29.27 does not (docs/deploy-aws.md §7):
- Wait for the cluster / job run with their own poll loop and overall timeout
  (`timeout_seconds`; on timeout the cluster is terminated / the job run cancelled). The stock
  EMR client uses botocore's `ClusterTerminated` waiter: 60 attempts x 30 s, so any job longer
  than ~30 minutes fails while the cluster keeps running; and its own final state check compares
  strings with enum members (dead code).
- Decide success themselves: the cluster must end `TERMINATED` with every step `COMPLETED` (a
  `TERMINATED_WITH_ERRORS` cluster, or a failed step, fails the run); the job run must end
  `SUCCESS`. And the job's report must come back: no report, no success.
- Keep the job's own error message: the job sends it as a Pipes custom message before it exits
  non-zero; the runners' message readers keep the session's handler, so the message survives a
  failed run and becomes the exception's message.

Construction makes no AWS call and reads no environment: boto3 clients are built in `run`, with
the configured region, so definitions load on a machine with no AWS settings or credentials.
"""

import hashlib
import json
import math
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg
from dagster_aws.pipes import (
    PipesCloudWatchMessageReader,
    PipesEMRClient,
    PipesEMRServerlessClient,
    PipesS3ContextInjector,
    PipesS3MessageReader,
)

from prviz.config import ConfigError, JobConfig
from prviz.spark.job import STAGES, Report
from prviz.spark.pipes_job import ERROR_MESSAGE, REGION_ENV, REPORT_MESSAGE, job_extras
from prviz.spark.resources import LocalSparkRunner, SparkRunner

ENTRYPOINT_MODULE = "prviz.spark.pipes_job"
DEPS_ALIAS = "deps"  # the dependency archive is unpacked as ./deps (see prviz/packaging.py)
DEFAULT_RELEASE_LABEL = "emr-7.12.0"  # Spark 3.5, Python 3.9 and 3.11 on the nodes
DEFAULT_CLUSTER_PYTHON = "/usr/bin/python3.11"
EMR_SUCCESS_STATE = "TERMINATED"
EMR_END_STATES = ("TERMINATED", "TERMINATED_WITH_ERRORS")
SERVERLESS_END_STATES = ("SUCCESS", "FAILED", "CANCELLED")

# the clock of the poll loops (tests replace these to run state sequences without waiting)
_monotonic = time.monotonic
_sleep = time.sleep


class SparkJobError(RuntimeError):
    """The Spark job failed, its cluster or job run failed, or its report did not come back."""


class SparkJobTimeout(SparkJobError):
    """The cluster or job run did not finish within `timeout_seconds` (it was stopped)."""


# -- message readers that keep the session's handler -------------------------------------------
class _Recorder:
    """Mixin: remembers the Pipes message handler, so custom messages survive a failed run."""

    handler: Any = None

    @contextmanager
    def read_messages(self, handler) -> Iterator[Any]:
        self.handler = handler
        with super().read_messages(handler) as params:  # type: ignore[misc]
            yield params

    def custom_messages(self) -> list[Any]:
        return [] if self.handler is None else list(self.handler.get_custom_messages())


class RecordingTempFileMessageReader(_Recorder, dg.PipesTempFileMessageReader):
    """The subprocess client's default reader (a temp file), recording."""


class RecordingS3MessageReader(_Recorder, PipesS3MessageReader):
    """`PipesS3MessageReader` under a key prefix (dagster-aws writes at the bucket's root), so
    the job role's `s3:PutObject` can be limited to `{bucket}/{key_prefix}*`."""

    def __init__(self, *, bucket: str, client: Any, key_prefix: str = "", **kwargs: Any):
        super().__init__(bucket=bucket, client=client, **kwargs)
        self.key_prefix = key_prefix

    @contextmanager
    def get_params(self) -> Iterator[dict]:
        with super().get_params() as params:
            yield {**params, "key_prefix": f"{self.key_prefix}{params['key_prefix']}"}


class RecordingCloudWatchMessageReader(_Recorder, PipesCloudWatchMessageReader):
    """CloudWatch logs reader (EMR Serverless), recording."""


def custom_messages(reader: Any) -> list[Any]:
    return reader.custom_messages() if isinstance(reader, _Recorder) else []


# -- report ------------------------------------------------------------------------------------
def collect_report(
    payloads: Sequence[Any],
    days: Sequence[str],
    stages: Sequence[str],
    where: str,
    *,
    problems: Sequence[str] = (),
    failure: BaseException | None = None,
) -> Report:
    """The report from the job's payloads; SparkJobError if the job, its launch or the report
    failed (the job's own error message first)."""
    payloads = [p for p in payloads if isinstance(p, Mapping)]
    errors = [p for p in payloads if p.get("type") == ERROR_MESSAGE]
    reports = [p for p in payloads if p.get("type") == REPORT_MESSAGE]
    details = [str(errors[-1].get("error"))] if errors else []
    details += list(problems)
    if failure is not None:
        details.append(f"{type(failure).__name__}: {failure}")
    if details:
        error_class = SparkJobTimeout if isinstance(failure, SparkJobTimeout) else SparkJobError
        raise error_class(f"the prviz Spark job failed ({where}): " + "; ".join(details)) from (
            failure
        )
    if not reports:
        raise SparkJobError(
            f"no report came back from the prviz Spark job ({where}): the job ended without "
            "sending its report through Dagster Pipes; see the run's logs"
        )
    report = reports[-1].get("report") or {}
    missing = [(s, d) for s in stages for d in days if d not in report.get(s, {})]
    if missing:
        raise SparkJobError(
            f"the prviz Spark job's report ({where}) lacks {len(missing)} stage/day entries, "
            f"e.g. {missing[:3]}"
        )
    return {stage: {day: report[stage][day] for day in days} for stage in stages}


def _tag_report(report: Report, key: str, value: str) -> Report:
    for per_day in report.values():
        for meta in per_day.values():
            meta[key] = value
    return report


def current_context(context: Any = None) -> Any:
    """The given Dagster context, else the asset's current one; Pipes cannot run without it."""
    if context is not None:
        return context
    try:
        return dg.AssetExecutionContext.get()
    except dg.DagsterInvariantViolationError:
        raise SparkJobError(
            "a Pipes Spark runner needs the Dagster execution context: call "
            "spark.run(config, days, stages, context=context) inside an asset"
        ) from None


def _run_id(context: Any) -> str:
    run = getattr(context, "run", None)
    return getattr(run, "run_id", None) or "run"


def run_token(context: Any, config: JobConfig, days: Sequence[str], stages: Sequence[str],
              code: Sequence[str] = ()) -> str:  # fmt: skip
    """16 hex digits naming one launch: the run, its retry, the range, stages, config and code.

    The same launch gets the same token (an SDK retry of the start call starts nothing new); a
    new run or a retry after a failure gets a new one, since a reused EMR Serverless clientToken
    would hand back the failed job run instead of starting one.
    """
    identity = {
        "run_id": _run_id(context),
        "retry": getattr(context, "retry_number", 0),
        "days": sorted(days),
        "stages": list(stages),
        "config": config.to_dict(),
        "code": list(code),
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()[:16]


def _read_json_s3(s3: Any, uri: str) -> dict | None:
    bucket, _, key = uri[len("s3://") :].partition("/")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception:  # noqa: BLE001 - absent or unreadable: the report did not come back
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


# -- local, through Pipes ----------------------------------------------------------------------
class PipesLocalSparkRunner(SparkRunner):
    """`python -m prviz.spark.pipes_job` as a subprocess through Dagster Pipes, on local Spark.

    The production path (entrypoint, extras, report message, error message) on this machine.
    """

    master: str = "local[2]"
    python: str = ""  # the interpreter; default: the one running Dagster
    env: dict[str, str] = {}  # extra environment for the job (e.g. JAVA_HOME)
    cwd: str = ""

    def command(self) -> list[str]:
        return [self.python or sys.executable, "-m", ENTRYPOINT_MODULE]

    def pipes_client(self) -> dg.PipesSubprocessClient:
        """The Pipes client (tests swap in other transports: a recording reader is required)."""
        return dg.PipesSubprocessClient(
            env=dict(self.env),
            cwd=self.cwd or None,
            message_reader=RecordingTempFileMessageReader(),
        )

    def run(
        self,
        config: JobConfig,
        days: Sequence[str],
        stages: Sequence[str] = STAGES,
        context: Any = None,
    ) -> Report:
        context = current_context(context)
        days = sorted(set(days))
        extras = job_extras(config, days, stages, spark={"mode": "local", "master": self.master})
        stages = extras["stages"]
        client = self.pipes_client()
        failure: BaseException | None = None
        try:
            client.run(context=context, command=self.command(), extras=extras)
        except dg.DagsterExecutionInterruptedError:
            raise
        except Exception as error:  # noqa: BLE001 - reported with the job's own message below
            failure = error
        return collect_report(
            custom_messages(client.message_reader),
            days,
            stages,
            "local Pipes subprocess",
            failure=failure,
        )


# -- EMR and EMR Serverless: shared configuration ---------------------------------------------
class _AWSSparkRunner(SparkRunner):
    region: str
    # the packaged code (`prviz package --s3-prefix …` prints these three URIs)
    entrypoint_uri: str
    py_files_uri: str
    deps_archive_uri: str
    # the Python the driver runs (prviz needs 3.11; "" keeps the platform's default)
    python: str = DEFAULT_CLUSTER_PYTHON
    spark_conf: dict[str, str] = {}
    # Pipes transport: the context file, the message chunks and the report file go under
    # s3://{pipes_bucket}/{pipes_prefix} (give it a lifecycle rule: nothing there is kept)
    pipes_bucket: str
    pipes_prefix: str = "prviz/pipes/"
    include_stdio_in_messages: bool = True
    message_interval_seconds: float = 10.0
    poll_interval_seconds: float = 30.0
    timeout_seconds: int = 8 * 3600
    tags: dict[str, str] = {}

    def _prefix(self) -> str:
        prefix = self.pipes_prefix.strip("/")
        return f"{prefix}/" if prefix else ""

    def _report_uri(self, context: Any, token: str) -> str:
        return f"s3://{self.pipes_bucket}/{self._prefix()}reports/{_run_id(context)}/{token}.json"

    def _code(self) -> list[str]:
        return [self.entrypoint_uri, self.py_files_uri, self.deps_archive_uri]

    def _launch(self, config: JobConfig, days: Sequence[str], stages: Sequence[str], context: Any):
        """What every AWS launch needs: (context, sorted days, run token, report URI, extras)."""
        context = current_context(context)
        days = sorted(set(days))
        token = run_token(context, config, days, stages, self._code())
        report_uri = self._report_uri(context, token)
        extras = job_extras(config, days, stages, aws_region=self.region, report_uri=report_uri)
        return context, days, token, report_uri, extras

    def _check_code(self) -> None:
        for name in ("entrypoint_uri", "py_files_uri", "deps_archive_uri"):
            if not getattr(self, name).startswith("s3://"):
                raise ConfigError(
                    f"{type(self).__name__}.{name}={getattr(self, name)!r} must be an s3:// URI: "
                    "run `prviz package --s3-prefix s3://…` and set the URIs it prints"
                )

    def _s3_transport(self, s3: Any) -> tuple[PipesS3ContextInjector, RecordingS3MessageReader]:
        injector = PipesS3ContextInjector(
            bucket=self.pipes_bucket, client=s3, key_prefix=f"{self._prefix()}context/"
        )
        reader = RecordingS3MessageReader(
            bucket=self.pipes_bucket,
            client=s3,
            key_prefix=f"{self._prefix()}messages/",
            interval=self.message_interval_seconds,
            include_stdio_in_messages=self.include_stdio_in_messages,
        )
        return injector, reader

    def _payloads(self, reader: Any, s3: Any, report_uri: str) -> list[Any]:
        """The job's messages; the report file when no report or error message arrived."""
        payloads = custom_messages(reader)
        if not any(
            isinstance(p, Mapping) and p.get("type") in (REPORT_MESSAGE, ERROR_MESSAGE)
            for p in payloads
        ):
            from_file = _read_json_s3(s3, report_uri)
            if from_file is not None:
                payloads.append(from_file)
        return payloads


# -- EMR on EC2 --------------------------------------------------------------------------------
class _EMRClient(PipesEMRClient):
    """PipesEMRClient with prviz's own wait: a poll loop with an overall timeout that returns
    the final cluster description whatever the end state (the runner decides success)."""

    def __init__(self, *, poll_interval: float, timeout_seconds: float, **kwargs: Any):
        super().__init__(**kwargs)
        self.poll_interval = poll_interval
        self.timeout_seconds = timeout_seconds
        self.cluster_id: str | None = None

    def _start(self, context, session, params):
        response = super()._start(context, session, params)
        self.cluster_id = response["JobFlowId"]
        return response

    def _wait_for_completion(self, context, response):
        cluster_id = response["JobFlowId"]
        deadline = _monotonic() + self.timeout_seconds
        last_state = None
        while True:
            cluster = self._client.describe_cluster(ClusterId=cluster_id)
            state = cluster["Cluster"]["Status"]["State"]
            if state != last_state:
                context.log.info(f"[prviz] EMR cluster {cluster_id}: {state}")
                last_state = state
            if state in EMR_END_STATES:
                return cluster
            if _monotonic() >= deadline:
                context.log.error(
                    f"[prviz] EMR cluster {cluster_id} still {state} after "
                    f"{self.timeout_seconds:.0f} s: terminating it"
                )
                self._client.terminate_job_flows(JobFlowIds=[cluster_id])
                raise SparkJobTimeout(
                    f"EMR cluster {cluster_id} did not finish within {self.timeout_seconds:.0f} s "
                    f"(last state {state}); it was terminated"
                )
            _sleep(self.poll_interval)


class EMRSparkRunner(_AWSSparkRunner):
    """One transient EMR-on-EC2 cluster per run, through `PipesEMRClient` (instance fleets)."""

    cluster_name: str = "prviz"
    release_label: str = DEFAULT_RELEASE_LABEL
    log_uri: str  # s3://bucket/prefix/ for the cluster's logs
    service_role: str = "EMR_DefaultRole"
    job_flow_role: str = "EMR_EC2_DefaultRole"  # the instance profile of the nodes
    subnet_ids: list[str] = []  # several: EMR picks the one with capacity
    ec2_key_name: str = ""
    security_configuration: str = ""
    primary_instance_type: str = "m6g.xlarge"
    core_instance_types: list[str] = ["r6g.4xlarge"]
    core_on_demand_count: int = 2
    core_spot_count: int = 0
    task_instance_types: list[str] = ["r6g.4xlarge", "r6gd.4xlarge", "r7g.4xlarge"]
    task_on_demand_count: int = 0
    task_spot_count: int = 0
    ebs_gb_per_instance: int = 0  # gp3 per core/task node; 0 = EMR's default volumes
    spot_timeout_minutes: int = 10  # then SWITCH_TO_ON_DEMAND
    idle_timeout_seconds: int = 1800  # AutoTerminationPolicy: the safety net
    maximize_resource_allocation: bool = True
    spark_submit_args: list[str] = []

    def _clients(self) -> dict[str, Any]:
        import boto3

        return {
            "emr": boto3.client("emr", region_name=self.region),
            "s3": boto3.client("s3", region_name=self.region),
        }

    def spark_submit_command(self) -> list[str]:
        confs = {
            "spark.yarn.maxAppAttempts": "1",  # one Pipes session: no second driver attempt
            f"spark.yarn.appMasterEnv.{REGION_ENV}": self.region,
        }
        if self.python:
            confs["spark.pyspark.python"] = self.python
            confs["spark.pyspark.driver.python"] = self.python
        confs.update(self.spark_conf)
        args = ["spark-submit", "--deploy-mode", "cluster", "--master", "yarn"]
        for key in sorted(confs):
            args += ["--conf", f"{key}={confs[key]}"]
        args += [
            "--py-files",
            self.py_files_uri,
            "--archives",
            f"{self.deps_archive_uri}#{DEPS_ALIAS}",
        ]
        return [*args, *self.spark_submit_args, self.entrypoint_uri]

    def _fleet(self, name: str, kind: str, types: Sequence[str], on_demand: int, spot: int) -> dict:
        configs = []
        for instance_type in types:
            config: dict[str, Any] = {"InstanceType": instance_type, "WeightedCapacity": 1}
            if self.ebs_gb_per_instance and kind != "MASTER":
                config["EbsConfiguration"] = {
                    "EbsBlockDeviceConfigs": [
                        {
                            "VolumeSpecification": {
                                "VolumeType": "gp3",
                                "SizeInGB": self.ebs_gb_per_instance,
                            },
                            "VolumesPerInstance": 1,
                        }
                    ],
                    "EbsOptimized": True,
                }
            configs.append(config)
        fleet: dict[str, Any] = {
            "Name": name,
            "InstanceFleetType": kind,
            "TargetOnDemandCapacity": on_demand,
            "TargetSpotCapacity": spot,
            "InstanceTypeConfigs": configs,
        }
        if spot:
            fleet["LaunchSpecifications"] = {
                "SpotSpecification": {
                    "TimeoutDurationMinutes": self.spot_timeout_minutes,
                    "TimeoutAction": "SWITCH_TO_ON_DEMAND",
                    "AllocationStrategy": "price-capacity-optimized",
                }
            }
        return fleet

    def run_job_flow_params(self, days: Sequence[str], token: str) -> dict[str, Any]:
        """The RunJobFlow request, before dagster-aws adds the Pipes variables and tags."""
        self._check_code()
        if self.core_on_demand_count + self.core_spot_count < 1:
            raise ConfigError("EMRSparkRunner needs at least one core node")
        if not self.log_uri.startswith("s3://"):
            raise ConfigError(f"EMRSparkRunner.log_uri={self.log_uri!r} must be an s3:// URI")
        first, last = days[0], days[-1]
        fleets = [
            self._fleet("primary", "MASTER", [self.primary_instance_type], 1, 0),
            self._fleet(
                "core",
                "CORE",
                self.core_instance_types,
                self.core_on_demand_count,
                self.core_spot_count,
            ),
        ]
        if self.task_on_demand_count + self.task_spot_count > 0:
            fleets.append(
                self._fleet(
                    "task",
                    "TASK",
                    self.task_instance_types,
                    self.task_on_demand_count,
                    self.task_spot_count,
                )
            )
        instances: dict[str, Any] = {
            "KeepJobFlowAliveWhenNoSteps": False,
            "TerminationProtected": False,
            "InstanceFleets": fleets,
        }
        if self.subnet_ids:
            instances["Ec2SubnetIds"] = list(self.subnet_ids)
        if self.ec2_key_name:
            instances["Ec2KeyName"] = self.ec2_key_name
        tags = {**self.tags, "prviz:days": f"{first}..{last}", "prviz:launch": token}
        params: dict[str, Any] = {
            "Name": f"{self.cluster_name} {first}..{last} {token[:8]}",
            "ReleaseLabel": self.release_label,
            "LogUri": self.log_uri,
            "Applications": [{"Name": "Spark"}],
            "Instances": instances,
            "Steps": [
                {
                    "Name": f"prviz {first}..{last}",
                    "ActionOnFailure": "TERMINATE_CLUSTER",
                    "HadoopJarStep": {
                        "Jar": "command-runner.jar",
                        "Args": self.spark_submit_command(),
                    },
                }
            ],
            "AutoTerminationPolicy": {"IdleTimeout": self.idle_timeout_seconds},
            "JobFlowRole": self.job_flow_role,
            "ServiceRole": self.service_role,
            "VisibleToAllUsers": True,
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(tags.items())],
        }
        # No spark-defaults/spark-env/yarn-env/hadoop-env configuration here: dagster-aws 0.29.27
        # injects the Pipes variables into those, and its merge with one we send drops them.
        # Spark settings go to spark-submit's --conf instead.
        if self.maximize_resource_allocation:
            params["Configurations"] = [
                {"Classification": "spark", "Properties": {"maximizeResourceAllocation": "true"}}
            ]
        if self.security_configuration:
            params["SecurityConfiguration"] = self.security_configuration
        return params

    def run(
        self,
        config: JobConfig,
        days: Sequence[str],
        stages: Sequence[str] = STAGES,
        context: Any = None,
    ) -> Report:
        context, days, token, report_uri, extras = self._launch(config, days, stages, context)
        stages = extras["stages"]
        params = self.run_job_flow_params(days, token)
        clients = self._clients()
        emr, s3 = clients["emr"], clients["s3"]
        injector, reader = self._s3_transport(s3)
        client = _EMRClient(
            message_reader=reader,
            client=emr,
            context_injector=injector,
            poll_interval=self.poll_interval_seconds,
            timeout_seconds=self.timeout_seconds,
        )
        failure: BaseException | None = None
        try:
            client.run(context=context, run_job_flow_params=params, extras=extras)
        except dg.DagsterExecutionInterruptedError:
            raise
        except Exception as error:  # noqa: BLE001 - reported with the cluster's state below
            failure = error
        cluster_id = client.cluster_id
        if cluster_id is None:
            raise SparkJobError(f"EMR did not start a cluster: {failure}") from failure
        problems = (
            [] if isinstance(failure, SparkJobTimeout) else self._check_cluster(emr, cluster_id)
        )
        report = collect_report(
            self._payloads(reader, s3, report_uri),
            days,
            stages,
            f"EMR cluster {cluster_id}",
            problems=problems,
            failure=failure,
        )
        context.log.info(f"[prviz] EMR cluster {cluster_id}: report received")
        return _tag_report(report, "emr_cluster_id", cluster_id)

    @staticmethod
    def _check_cluster(emr: Any, cluster_id: str) -> list[str]:
        """What is wrong with the cluster's end, from EMR itself (nothing: success)."""
        cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
        status = cluster["Status"]
        state = status["State"]
        problems = []
        if state != EMR_SUCCESS_STATE:
            reason = status.get("StateChangeReason") or {}
            problems.append(
                f"cluster ended {state} ({reason.get('Code', '?')}: {reason.get('Message', '')})"
            )
        steps = emr.list_steps(ClusterId=cluster_id).get("Steps", [])
        if not steps:
            problems.append("the cluster lists no step")
        for step in steps:
            step_status = step.get("Status", {})
            if step_status.get("State") != "COMPLETED":
                details = step_status.get("FailureDetails") or {}
                reason = details.get("Reason") or details.get("Message") or ""
                problems.append(
                    f"step {step.get('Name', step.get('Id'))} {step_status.get('State')}"
                    + (f" ({reason})" if reason else "")
                )
        return problems


# -- EMR Serverless ----------------------------------------------------------------------------
class _EMRServerlessClient(PipesEMRServerlessClient):
    """PipesEMRServerlessClient with prviz's wait: an overall timeout (then cancel_job_run) and
    the final job run kept for the runner, whatever its state."""

    def __init__(self, *, timeout_seconds: float, **kwargs: Any):
        super().__init__(**kwargs)
        self.timeout_seconds = timeout_seconds
        self.job_run_id: str | None = None
        self.final_job_run: dict | None = None

    def _start(self, context, params):
        response = super()._start(context, params)
        self.job_run_id = response["jobRunId"]
        return response

    def _wait_for_completion(self, context, start_response):
        application_id = start_response["applicationId"]
        job_run_id = start_response["jobRunId"]
        deadline = _monotonic() + self.timeout_seconds
        last_state = None
        while True:
            response = self.client.get_job_run(applicationId=application_id, jobRunId=job_run_id)
            state = response["jobRun"]["state"]
            if state != last_state:
                context.log.info(f"[prviz] EMR Serverless job run {job_run_id}: {state}")
                last_state = state
            if state in SERVERLESS_END_STATES:
                self.final_job_run = response["jobRun"]
                return response
            if _monotonic() >= deadline:
                context.log.error(
                    f"[prviz] EMR Serverless job run {job_run_id} still {state} after "
                    f"{self.timeout_seconds:.0f} s: cancelling it"
                )
                self.client.cancel_job_run(applicationId=application_id, jobRunId=job_run_id)
                raise SparkJobTimeout(
                    f"EMR Serverless job run {job_run_id} did not finish within "
                    f"{self.timeout_seconds:.0f} s (last state {state}); it was cancelled"
                )
            _sleep(self.poll_interval)


class EMRServerlessSparkRunner(_AWSSparkRunner):
    """One EMR Serverless job run per run, through `PipesEMRServerlessClient`."""

    application_id: str
    execution_role_arn: str
    name: str = "prviz"
    python: str = ""  # the image's default; a custom image with Python 3.11 sets its path
    log_uri: str = ""  # s3://… for the job run's logs (S3 monitoring), optional
    # "s3" (default): messages through S3, no size limit; "cloudwatch": the driver's stdout in
    # CloudWatch Logs (messages are read after the job ends; the report also goes to S3)
    messages: str = "s3"
    log_group_name: str = "/aws/emr-serverless/prviz"

    def _clients(self) -> dict[str, Any]:
        import boto3

        clients = {
            "emr-serverless": boto3.client("emr-serverless", region_name=self.region),
            "s3": boto3.client("s3", region_name=self.region),
        }
        if self.messages == "cloudwatch":
            clients["logs"] = boto3.client("logs", region_name=self.region)
        return clients

    def spark_submit_parameters(self) -> str:
        confs = {
            "spark.submit.pyFiles": self.py_files_uri,
            "spark.archives": f"{self.deps_archive_uri}#{DEPS_ALIAS}",
            f"spark.emr-serverless.driverEnv.{REGION_ENV}": self.region,
        }
        if self.python:
            confs["spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON"] = self.python
            confs["spark.emr-serverless.driverEnv.PYSPARK_PYTHON"] = self.python
            confs["spark.executorEnv.PYSPARK_PYTHON"] = self.python
        confs.update(self.spark_conf)
        return " ".join(f"--conf {key}={confs[key]}" for key in sorted(confs))

    def client_token(self, days: Sequence[str], token: str) -> str:
        return f"prviz-{days[0]}-{days[-1]}-{token}"

    def start_job_run_params(self, days: Sequence[str], token: str) -> dict[str, Any]:
        """The StartJobRun request, before dagster-aws adds the Pipes variables and tags."""
        self._check_code()
        if self.messages not in ("s3", "cloudwatch"):
            raise ConfigError(
                f"EMRServerlessSparkRunner.messages={self.messages!r}: use s3 or cloudwatch"
            )
        first, last = days[0], days[-1]
        monitoring: dict[str, Any] = {}
        if self.log_uri:
            monitoring["s3MonitoringConfiguration"] = {"logUri": self.log_uri}
        if self.messages == "cloudwatch":
            monitoring["cloudWatchLoggingConfiguration"] = {
                "enabled": True,
                "logGroupName": self.log_group_name,
            }
        params: dict[str, Any] = {
            "applicationId": self.application_id,
            "clientToken": self.client_token(days, token),
            "executionRoleArn": self.execution_role_arn,
            "name": f"{self.name} {first}..{last}",
            "jobDriver": {
                "sparkSubmit": {
                    "entryPoint": self.entrypoint_uri,
                    "sparkSubmitParameters": self.spark_submit_parameters(),
                }
            },
            "executionTimeoutMinutes": max(1, math.ceil(self.timeout_seconds / 60)),
            "tags": {**self.tags, "prviz:days": f"{first}..{last}", "prviz:launch": token},
        }
        if monitoring:
            params["configurationOverrides"] = {"monitoringConfiguration": monitoring}
        return params

    def run(
        self,
        config: JobConfig,
        days: Sequence[str],
        stages: Sequence[str] = STAGES,
        context: Any = None,
    ) -> Report:
        context, days, token, report_uri, extras = self._launch(config, days, stages, context)
        stages = extras["stages"]
        params = self.start_job_run_params(days, token)
        clients = self._clients()
        s3 = clients["s3"]
        injector, reader = self._s3_transport(s3)
        if self.messages == "cloudwatch":
            reader = RecordingCloudWatchMessageReader(client=clients["logs"])
        client = _EMRServerlessClient(
            client=clients["emr-serverless"],
            context_injector=injector,
            message_reader=reader,
            poll_interval=self.poll_interval_seconds,
            timeout_seconds=self.timeout_seconds,
        )
        failure: BaseException | None = None
        try:
            client.run(context=context, start_job_run_params=params, extras=extras)
        except dg.DagsterExecutionInterruptedError:
            raise
        except Exception as error:  # noqa: BLE001 - reported with the job run's state below
            failure = error
        if client.job_run_id is None:
            raise SparkJobError(f"EMR Serverless did not start a job run: {failure}") from failure
        problems = []
        final = client.final_job_run
        if final is not None and final.get("state") != "SUCCESS":
            problems.append(
                f"job run ended {final.get('state')}: {final.get('stateDetails', '')}".rstrip()
            )
        report = collect_report(
            self._payloads(reader, s3, report_uri),
            days,
            stages,
            f"EMR Serverless job run {client.job_run_id}",
            problems=problems,
            failure=failure,
        )
        context.log.info(f"[prviz] EMR Serverless job run {client.job_run_id}: report received")
        return _tag_report(report, "emr_serverless_job_run_id", client.job_run_id)


# -- from settings -----------------------------------------------------------------------------
RUNNER_KINDS = ("local", "pipes-local", "emr", "emr-serverless")


def _get(options: Mapping[str, str], name: str, default: str = "") -> str:
    return (options.get(name) or default).strip()


def _required(options: Mapping[str, str], name: str, why: str) -> str:
    value = _get(options, name)
    if not value:
        raise ConfigError(f"{name} is not set: {why}")
    return value


def _int(options: Mapping[str, str], name: str, default: int) -> int:
    value = _get(options, name, str(default))
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a whole number") from None


def _list(options: Mapping[str, str], name: str) -> list[str] | None:
    value = _get(options, name)
    return [item.strip() for item in value.split(",") if item.strip()] if value else None


def _pairs(options: Mapping[str, str], name: str) -> dict[str, str]:
    pairs = {}
    for item in _list(options, name) or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{name}: {item!r} is not KEY=VALUE (use KEY=VALUE,KEY=VALUE)")
        pairs[key.strip()] = value.strip()
    return pairs


def spark_runner_from_options(env: str, options: Mapping[str, str]) -> SparkRunner:
    """The Spark runner for `PRVIZ_ENV` and the `PRVIZ_SPARK_*`, `PRVIZ_EMR_*`,
    `PRVIZ_EMR_SERVERLESS_*`, `PRVIZ_CODE_*` and `PRVIZ_PIPES_*` settings (a plain mapping that
    config.py collects; nothing is read from the environment here). docs/deploy-aws.md §3."""
    kind = _get(options, "PRVIZ_SPARK_RUNNER", "emr" if env == "aws" else "local").lower()
    if kind not in RUNNER_KINDS:
        raise ConfigError(f"PRVIZ_SPARK_RUNNER={kind!r}: use one of {', '.join(RUNNER_KINDS)}")
    if kind == "local":
        return LocalSparkRunner(master=_get(options, "PRVIZ_SPARK_MASTER", "local[*]"))
    if kind == "pipes-local":
        return PipesLocalSparkRunner(master=_get(options, "PRVIZ_SPARK_MASTER", "local[2]"))
    why = "the EMR runners need it (docs/deploy-aws.md §3)"
    common: dict[str, Any] = {
        "region": _required(options, "PRVIZ_AWS_REGION", why),
        "entrypoint_uri": _required(options, "PRVIZ_CODE_ENTRYPOINT_URI", why),
        "py_files_uri": _required(options, "PRVIZ_CODE_PY_FILES_URI", why),
        "deps_archive_uri": _required(options, "PRVIZ_CODE_DEPS_URI", why),
        "pipes_bucket": _required(options, "PRVIZ_PIPES_BUCKET", why),
        "pipes_prefix": _get(options, "PRVIZ_PIPES_PREFIX", "prviz/pipes/"),
        "spark_conf": _pairs(options, "PRVIZ_SPARK_CONF"),
        "timeout_seconds": _int(options, "PRVIZ_SPARK_TIMEOUT_SECONDS", 8 * 3600),
        "poll_interval_seconds": float(_int(options, "PRVIZ_SPARK_POLL_SECONDS", 30)),
        "tags": _pairs(options, "PRVIZ_AWS_TAGS"),
    }
    if "PRVIZ_SPARK_PYTHON" in options:
        common["python"] = _get(options, "PRVIZ_SPARK_PYTHON")
    if kind == "emr-serverless":
        return EMRServerlessSparkRunner(
            **common,
            application_id=_required(options, "PRVIZ_EMR_SERVERLESS_APPLICATION_ID", why),
            execution_role_arn=_required(options, "PRVIZ_EMR_SERVERLESS_EXECUTION_ROLE_ARN", why),
            log_uri=_get(options, "PRVIZ_EMR_SERVERLESS_LOG_URI"),
            messages=_get(options, "PRVIZ_EMR_SERVERLESS_MESSAGES", "s3").lower(),
        )
    fields: dict[str, Any] = {
        "log_uri": _required(options, "PRVIZ_EMR_LOG_URI", why),
        "release_label": _get(options, "PRVIZ_EMR_RELEASE_LABEL", DEFAULT_RELEASE_LABEL),
        "service_role": _get(options, "PRVIZ_EMR_SERVICE_ROLE", "EMR_DefaultRole"),
        "job_flow_role": _get(options, "PRVIZ_EMR_INSTANCE_PROFILE", "EMR_EC2_DefaultRole"),
        "subnet_ids": _list(options, "PRVIZ_EMR_SUBNET_IDS") or [],
        "ec2_key_name": _get(options, "PRVIZ_EMR_EC2_KEY_NAME"),
        "security_configuration": _get(options, "PRVIZ_EMR_SECURITY_CONFIGURATION"),
        "primary_instance_type": _get(options, "PRVIZ_EMR_PRIMARY_INSTANCE_TYPE", "m6g.xlarge"),
        "core_on_demand_count": _int(options, "PRVIZ_EMR_CORE_ON_DEMAND", 2),
        "core_spot_count": _int(options, "PRVIZ_EMR_CORE_SPOT", 0),
        "task_on_demand_count": _int(options, "PRVIZ_EMR_TASK_ON_DEMAND", 0),
        "task_spot_count": _int(options, "PRVIZ_EMR_TASK_SPOT", 0),
        "ebs_gb_per_instance": _int(options, "PRVIZ_EMR_EBS_GB", 0),
        "idle_timeout_seconds": _int(options, "PRVIZ_EMR_IDLE_TIMEOUT_SECONDS", 1800),
    }
    for name, field in (
        ("PRVIZ_EMR_CORE_INSTANCE_TYPES", "core_instance_types"),
        ("PRVIZ_EMR_TASK_INSTANCE_TYPES", "task_instance_types"),
    ):
        types = _list(options, name)
        if types:
            fields[field] = types
    return EMRSparkRunner(**common, **fields)
