"""Resources shared by every stage: where the data lives and how the job is configured."""

import dagster as dg

from prviz.config import DEFAULT_JSON_SCORE_PATH, JobConfig, Settings
from prviz.lake.store import Lake


class PipelineResource(dg.ConfigurableResource):
    """Where captures, labels and the lake are, and how captures are read.

    Built from `Settings` in definitions.py; assets never read the environment themselves.
    """

    capture_uri: str
    ground_truth_uri: str
    lake_uri: str
    label_window_days: int = 7
    csv_score_column: int = 0
    json_score_path: str = DEFAULT_JSON_SCORE_PATH
    score_decimals: int | None = None
    endpoints: list[str] = []
    variants: list[str] = []
    thin_points: int = 200
    s3_endpoint_url: str | None = None
    s3_region: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "PipelineResource":
        config = settings.job_config()
        return cls(
            capture_uri=config.capture_uri,
            ground_truth_uri=config.ground_truth_uri,
            lake_uri=config.lake_uri,
            label_window_days=config.label_window_days,
            csv_score_column=config.csv_score_column,
            json_score_path=config.json_score_path,
            score_decimals=config.score_decimals,
            endpoints=list(config.endpoints),
            variants=list(config.variants),
            thin_points=config.thin_points,
            s3_endpoint_url=config.s3_endpoint_url,
            s3_region=config.s3_region,
        )

    def job_config(self) -> JobConfig:
        return JobConfig(
            capture_uri=self.capture_uri,
            ground_truth_uri=self.ground_truth_uri,
            lake_uri=self.lake_uri,
            label_window_days=self.label_window_days,
            csv_score_column=self.csv_score_column,
            json_score_path=self.json_score_path,
            score_decimals=self.score_decimals,
            endpoints=tuple(self.endpoints),
            variants=tuple(self.variants),
            thin_points=self.thin_points,
            s3_endpoint_url=self.s3_endpoint_url,
            s3_region=self.s3_region,
        )

    def lake(self) -> Lake:
        return self.job_config().lake()
