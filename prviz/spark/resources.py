"""Spark runners: how the one Spark application of a run is started.

`LocalSparkRunner` (the embedded default) runs the job module in this process on local Spark.
The production runners (`prviz/spark/emr.py`: EMR on EC2 and EMR Serverless through Dagster
Pipes, and a local Pipes subprocess runner) implement the same `run` contract: the same job
module, the same report back.
"""

from collections.abc import Sequence

import dagster as dg

from prviz.config import JobConfig
from prviz.spark.job import STAGES, Report


class SparkRunner(dg.ConfigurableResource):
    """Runs the selected stages of the Spark job for a list of days and returns its report."""

    def run(
        self,
        config: JobConfig,
        days: Sequence[str],
        stages: Sequence[str] = STAGES,
        context: dg.AssetExecutionContext | None = None,
    ) -> Report:
        raise NotImplementedError


class LocalSparkRunner(SparkRunner):
    """Local Spark in this process (`local[*]` by default); one session per process."""

    master: str = "local[*]"

    def run(
        self,
        config: JobConfig,
        days: Sequence[str],
        stages: Sequence[str] = STAGES,
        context: dg.AssetExecutionContext | None = None,
    ) -> Report:
        from prviz.spark.job import run_job
        from prviz.spark.session import local_session

        return run_job(local_session(master=self.master), config, days, stages)
