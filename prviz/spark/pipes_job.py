"""The one Spark job entrypoint: `python -m prviz.spark.pipes_job`, launched through Dagster Pipes.

Every launcher starts this module: `PipesLocalSparkRunner` as a local subprocess, `EMRSparkRunner`
as an EMR step (`spark-submit … prviz_main-<hash>.py`, a two-line file calling `main()`), and
`EMRServerlessSparkRunner` as an EMR Serverless job run. So the path EMR takes is the path the
tests take. The protocol, all of it defined here:

Launcher -> job (Pipes extras, see `job_extras`):
    prviz_protocol   1
    partition_start  first day (YYYY-MM-DD)     Pipes sends no partition *range* to the external
    partition_end    last day, inclusive        process (DESIGN.md §6), so the days travel here;
    days             optional explicit list     only when the days are not one contiguous range
    stages           the selected stages, in any order (run in pipeline order)
    config           `JobConfig.to_dict()`
    spark            {"mode": "local", "master": "local[2]"} or {"mode": "cluster"}
    aws_region       region for the S3 client of the Pipes transport and the report file
    report_uri       optional `s3://…` or local path: the report (or the error) is also written
                     there, for transports that cannot carry a large message (CloudWatch events
                     are cut at 256 KB)

    With no `partition_start`, the job falls back to the Pipes context's own partition
    (a single-partition run), then fails.

Job -> launcher (Pipes messages):
    report_custom_message({"type": "prviz.report", "version": 1, "days": […], "stages": […],
                           "report": report[stage][day] = metadata dict})
    report_custom_message({"type": "prviz.error", "version": 1, "error": "Type: message",
                           "traceback": "…"})  then the Pipes context closes with the exception
                           and the process exits 1.

The report goes as one custom message because `report_asset_materialization` has no partition
argument; the launcher turns it into per-day metadata exactly as `LocalSparkRunner`'s report.

Transport: the context loader and message writer follow the params the launcher injected
(`DAGSTER_PIPES_CONTEXT` / `DAGSTER_PIPES_MESSAGES`): a `bucket` key means S3
(`PipesS3ContextInjector` / `PipesS3MessageReader` on the Dagster side), anything else is Pipes'
default (a temp file, or the launcher's env/stdout). The S3 client uses the standard AWS chain
(the EMR instance profile / job role) in the region the launcher puts in `PRVIZ_AWS_REGION`;
`AWS_ENDPOINT_URL_S3` points it elsewhere in tests.

The SparkSession is only built when a Spark stage is selected (pr_curves alone runs in the
driver from the score counts): locally `prviz.spark.session.local_session()`, on a cluster
`SparkSession.builder.getOrCreate()` with the session settings the job's results depend on.
"""

import datetime as dt
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from prviz.config import JobConfig
from prviz.lake.paths import day_range, validate_day
from prviz.spark.job import STAGES, Report

log = logging.getLogger("prviz.spark.pipes_job")

PROTOCOL_VERSION = 1
REPORT_MESSAGE = "prviz.report"
ERROR_MESSAGE = "prviz.error"
# stages that need a SparkSession; pr_curves reads the (small) score counts in the driver
SPARK_STAGES = ("predictions", "labeled_predictions", "score_counts")
# session settings the job's output depends on (the local session sets them too)
CLUSTER_SESSION_CONF = (
    "spark.sql.session.timeZone",
    "spark.sql.parquet.outputTimestampType",
    "spark.sql.parquet.compression.codec",
    "spark.sql.sources.partitionColumnTypeInference.enabled",
)
_TRACEBACK_CHARS = 8000
# the driver's environment variable with the AWS region of the Pipes S3 transport
REGION_ENV = "PRVIZ_AWS_REGION"
# seconds between the S3 message writer's uploads of messages and logs (dagster-pipes: 10); the
# last chunk is always sent when the job ends, but stopping its log capture can take this long
MESSAGE_INTERVAL_ENV = "PRVIZ_PIPES_MESSAGE_INTERVAL"

JobFunction = Callable[[JobConfig, list[str], list[str], Mapping[str, Any]], Report]


class JobInputError(ValueError):
    """The launcher sent something the job cannot run: the message says what."""


# -- launcher side: what to send ---------------------------------------------------------------
def is_contiguous(days: Sequence[str]) -> bool:
    return list(days) == day_range(days[0], days[-1])


def job_extras(
    config: JobConfig,
    days: Sequence[str],
    stages: Sequence[str],
    *,
    spark: Mapping[str, Any] | None = None,
    aws_region: str | None = None,
    report_uri: str | None = None,
) -> dict[str, Any]:
    """The Pipes extras every launcher sends (the one definition of the protocol)."""
    days = sorted({validate_day(day) for day in days})
    if not days:
        raise JobInputError("no days to run")
    extras: dict[str, Any] = {
        "prviz_protocol": PROTOCOL_VERSION,
        "partition_start": days[0],
        "partition_end": days[-1],
        "stages": [stage for stage in STAGES if stage in set(stages)],
        "config": config.to_dict(),
        "spark": dict(spark or {"mode": "cluster"}),
    }
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise JobInputError(f"unknown stages {sorted(unknown)}: choose from {', '.join(STAGES)}")
    if not is_contiguous(days):
        extras["days"] = days
    if aws_region:
        extras["aws_region"] = aws_region
    if report_uri:
        extras["report_uri"] = report_uri
    return extras


# -- job side: what was sent -------------------------------------------------------------------
def days_from(extras: Mapping[str, Any], pipes: Any = None) -> list[str]:
    """The days to run: extras first (ranges), else the Pipes context's single partition key."""
    if extras.get("days"):
        return sorted({validate_day(day) for day in extras["days"]})
    if extras.get("partition_start"):
        return day_range(extras["partition_start"], extras.get("partition_end") or "")
    if pipes is not None and pipes.is_partition_step:
        key_range = pipes.partition_key_range  # a dict on this side
        return day_range(key_range["start"], key_range["end"])
    raise JobInputError(
        "no days: the launcher must send partition_start/partition_end in the Pipes extras "
        "(or run a single partition)"
    )


def stages_from(extras: Mapping[str, Any]) -> list[str]:
    stages = list(extras.get("stages") or STAGES)
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise JobInputError(f"unknown stages {sorted(unknown)}: choose from {', '.join(STAGES)}")
    return [stage for stage in STAGES if stage in stages]


def config_from(extras: Mapping[str, Any]) -> JobConfig:
    if not isinstance(extras.get("config"), Mapping):
        raise JobInputError("the Pipes extras carry no job config ('config')")
    try:
        return JobConfig.from_dict(extras["config"])
    except TypeError as error:
        raise JobInputError(f"bad job config: {error}") from None


def needs_spark(stages: Sequence[str]) -> bool:
    return any(stage in SPARK_STAGES for stage in stages)


def spark_session(options: Mapping[str, Any]):
    """Local Spark when the launcher says so, else the cluster's session (EMR, EMR Serverless)."""
    if options.get("mode") == "local":
        from prviz.spark.session import local_session

        return local_session(app_name="prviz-pipes", master=options.get("master") or "local[*]")
    from pyspark.sql import SparkSession

    from prviz.spark.session import LOCAL_SPARK_CONF

    builder = SparkSession.builder.appName("prviz")
    for key in CLUSTER_SESSION_CONF:
        builder = builder.config(key, LOCAL_SPARK_CONF[key])
    return builder.getOrCreate()


def run_with_spark(
    config: JobConfig, days: list[str], stages: list[str], spark_options: Mapping[str, Any]
) -> Report:
    """The default job: a SparkSession if a Spark stage is selected, then `run_job`."""
    from prviz.spark.job import run_job

    spark = spark_session(spark_options) if needs_spark(stages) else None
    return run_job(spark, config, days, stages)


def plain(value: Any) -> Any:
    """A JSON round trip: numpy scalars, dates and tuples become plain JSON values."""

    def default(obj: Any) -> Any:
        if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
            return obj.item()
        if isinstance(obj, dt.date | dt.datetime):
            return obj.isoformat()
        if isinstance(obj, set | frozenset):
            return sorted(obj)
        if isinstance(obj, Path):
            return str(obj)
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")

    return json.loads(json.dumps(value, default=default))


def _s3_client(region: str | None):
    import boto3

    return boto3.client("s3", region_name=region) if region else boto3.client("s3")


def write_payload(uri: str, payload: Mapping[str, Any], region: str | None = None) -> None:
    """Write the report (or the error) as JSON to `s3://…` or a local path."""
    body = json.dumps(payload, sort_keys=True).encode("utf-8")
    if uri.startswith("s3://"):
        bucket, _, key = uri[len("s3://") :].partition("/")
        _s3_client(region).put_object(
            Bucket=bucket, Key=key, Body=body, ContentType="application/json"
        )
    else:
        path = Path(uri.removeprefix("file://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


def execute(pipes: Any, job: JobFunction = run_with_spark) -> Report:
    """Read the run from the Pipes context, run the job, send the report back."""
    extras = dict(pipes.extras or {})
    if extras.get("prviz_protocol", PROTOCOL_VERSION) != PROTOCOL_VERSION:
        raise JobInputError(
            f"launcher speaks prviz protocol {extras.get('prviz_protocol')}, this job "
            f"{PROTOCOL_VERSION}: deploy the same prviz version on both sides"
        )
    config = config_from(extras)
    days = days_from(extras, pipes)
    stages = stages_from(extras)
    spark_options = dict(extras.get("spark") or {})
    # fail on a bad lake before paying for a JVM
    from prviz.lake.store import Lake

    Lake(config.lake_uri)
    pipes.log.info(
        f"prviz job: {len(days)} day(s) {days[0]}..{days[-1]}, stages {', '.join(stages)}, "
        f"spark {spark_options.get('mode', 'cluster')}"
    )
    report = plain(job(config, days, stages, spark_options))
    missing = [(s, d) for s in stages for d in days if d not in report.get(s, {})]
    if missing:
        raise RuntimeError(f"the job's report lacks {missing[:5]}")
    payload = {
        "type": REPORT_MESSAGE,
        "version": PROTOCOL_VERSION,
        "days": days,
        "stages": stages,
        "report": report,
    }
    if extras.get("report_uri"):
        write_payload(extras["report_uri"], payload, extras.get("aws_region"))
    pipes.report_custom_message(payload)
    pipes.log.info(f"prviz job: report sent for {len(stages)} stage(s) x {len(days)} day(s)")
    return report


def error_payload(error: BaseException) -> dict[str, Any]:
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return {
        "type": ERROR_MESSAGE,
        "version": PROTOCOL_VERSION,
        "error": f"{type(error).__name__}: {error}",
        "error_type": type(error).__name__,
        "traceback": text[-_TRACEBACK_CHARS:],
    }


def _report_error(pipes: Any, error: BaseException) -> None:
    """Send the error as a custom message (and to report_uri); never mask the original error."""
    payload = error_payload(error)
    extras = dict(pipes.extras or {})
    try:
        pipes.report_custom_message(payload)
    except Exception:  # noqa: BLE001 - the transport itself may be what failed
        log.exception("could not send the error through Dagster Pipes")
    if extras.get("report_uri"):
        try:
            write_payload(extras["report_uri"], payload, extras.get("aws_region"))
        except Exception:  # noqa: BLE001
            log.exception("could not write the error to %s", extras["report_uri"])


# -- transport ---------------------------------------------------------------------------------
def transport(
    params_loader: Any, region: str | None = None, interval: float = 10.0
) -> tuple[Any, Any]:
    """The context loader and message writer matching the params the launcher injected."""
    import dagster_pipes as P

    context_params = params_loader.load_context_params()
    message_params = params_loader.load_messages_params()
    context_loader = (
        P.PipesS3ContextLoader(client=_s3_client(region))
        if "bucket" in context_params
        else P.PipesDefaultContextLoader()
    )
    message_writer = (
        P.PipesS3MessageWriter(client=_s3_client(region), interval=interval)
        if "bucket" in message_params
        else P.PipesDefaultMessageWriter()
    )
    return context_loader, message_writer


class _ToPipes(logging.Handler):
    """Forwards the job's own log records (prviz.*) to the Dagster event log."""

    def __init__(self, pipes: Any):
        super().__init__(logging.INFO)
        self.pipes = pipes

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.pipes.log.log(record.levelno, self.format(record))
        except Exception:  # noqa: BLE001
            self.handleError(record)


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    job: JobFunction = run_with_spark,
) -> int:
    """Run one job through Dagster Pipes; 0 on success, 1 on a failed job, 2 if not launched.

    `environ` (default: the process environment) carries the Pipes bootstrap variables; `job`
    replaces the Spark job (tests drive the protocol without a JVM with it).
    """
    import dagster_pipes as P

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    params_loader = (
        P.PipesEnvVarParamsLoader() if environ is None else P.PipesMappingParamsLoader(environ)
    )
    # the S3 transport's region: set by the EMR launchers in the driver's environment
    env = os.environ if environ is None else environ
    region = env.get(REGION_ENV) or None
    try:
        interval = float(env.get(MESSAGE_INTERVAL_ENV) or 10.0)
    except ValueError:
        interval = 10.0
    if not params_loader.is_dagster_pipes_process():
        log.error(
            "prviz.spark.pipes_job runs through Dagster Pipes only: launch it with a prviz "
            "Spark runner (PipesLocalSparkRunner, EMRSparkRunner, EMRServerlessSparkRunner)"
        )
        return 2
    handler: _ToPipes | None = None
    prviz_log = logging.getLogger("prviz")
    try:
        context_loader, message_writer = transport(params_loader, region, interval)
        with P.open_dagster_pipes(
            context_loader=context_loader,
            message_writer=message_writer,
            params_loader=params_loader,
        ) as pipes:
            handler = _ToPipes(pipes)
            handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
            prviz_log.addHandler(handler)
            try:
                execute(pipes, job)
            except BaseException as error:
                _report_error(pipes, error)
                raise
            finally:
                prviz_log.removeHandler(handler)
    except Exception:  # noqa: BLE001 - reported through Pipes above; exit non-zero
        log.exception("prviz job failed")
        return 1
    finally:
        if handler is not None:
            prviz_log.removeHandler(handler)
        # open_dagster_pipes keeps a process-wide singleton: clear it so a later call (tests
        # driving main() in process) opens its own session
        P.PipesContext.set(None)  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
