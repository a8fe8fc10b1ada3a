"""The publisher resource: local files by default, QuickSight in aws mode.

In aws mode every id comes through `dg.EnvVar`, resolved when a run starts, so the code location
loads with no AWS settings and no secret is stored in definitions.
"""

import dagster as dg

from prviz.lake.store import Lake


class PublisherResource(dg.ConfigurableResource):
    """`local`: CSV + manifests only. `aws`: also the QuickSight dataset, ingestion, dashboard."""

    mode: str = "local"
    aws_account_id: str = ""
    region: str = ""
    data_source_id: str = "prviz"
    summary_dataset_id: str = "prviz-pr-summary"
    points_dataset_id: str = "prviz-pr-curve-points"
    dashboard_id: str = "prviz-pr-dashboard"
    owner_arns: str = ""  # comma-separated QuickSight user/group ARNs with full rights
    viewer_group_arn: str = ""  # the business team's group: viewer actions only
    # each QuickSight call: retries of throttling/5xx with backoff (base · 2^n s, capped at 60 s);
    # beyond them the asset fails and its RetryPolicy runs it again (prviz/publish/assets.py)
    max_retries: int = 5
    backoff_base_seconds: float = 1.0
    poll_interval_seconds: float = 15.0

    def publisher(self, lake: Lake, log=None):
        from prviz.publish.quicksight import LocalPublisher, QuickSightConfig, QuickSightPublisher

        if self.mode == "local":
            return LocalPublisher(lake)
        config = QuickSightConfig(
            aws_account_id=self.aws_account_id,
            region=self.region,
            data_source_id=self.data_source_id,
            summary_dataset_id=self.summary_dataset_id,
            points_dataset_id=self.points_dataset_id,
            dashboard_id=self.dashboard_id,
            owner_arns=tuple(a.strip() for a in self.owner_arns.split(",") if a.strip()),
            viewer_group_arn=self.viewer_group_arn,
            max_retries=self.max_retries,
            backoff_base_seconds=self.backoff_base_seconds,
            poll_interval_seconds=self.poll_interval_seconds,
        )
        return QuickSightPublisher(lake, self.quicksight_client(), config, log=log)

    def quicksight_client(self):
        """The boto3 QuickSight client for `region` (tests put botocore's Stubber on one)."""
        from prviz.publish.quicksight import quicksight_client

        return quicksight_client(self.region)


def aws_publisher() -> PublisherResource:
    """QuickSight ids from the environment at launch (docs/quicksight.md lists them)."""
    return PublisherResource(
        mode="aws",
        aws_account_id=dg.EnvVar("PRVIZ_QUICKSIGHT_ACCOUNT_ID"),
        region=dg.EnvVar("PRVIZ_QUICKSIGHT_REGION"),
        owner_arns=dg.EnvVar("PRVIZ_QUICKSIGHT_OWNER_ARNS"),
        viewer_group_arn=dg.EnvVar("PRVIZ_QUICKSIGHT_VIEWER_GROUP_ARN"),
    )
