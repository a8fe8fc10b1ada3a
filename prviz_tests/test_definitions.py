"""The code location loads for each environment, with the lineage graph and daily partitions."""

import datetime as dt

import dagster as dg
import pytest

from prviz.config import ConfigError, Settings
from prviz.definitions import build_definitions

ASSETS = {
    "sagemaker_data_capture", "model_monitor_ground_truth", "predictions", "labeled_predictions",
    "score_counts", "pr_curves", "pr_curves_7d", "quicksight_dataset", "pr_dashboard",
}  # fmt: skip


def _defs(tmp_path, **env):
    return build_definitions(Settings.from_env({"PRVIZ_HOME": str(tmp_path), **env}))


def test_local_definitions_load_with_every_asset(tmp_path):
    graph = _defs(tmp_path).resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == ASSETS


def test_lineage_is_one_graph_from_captures_to_dashboard(tmp_path):
    graph = _defs(tmp_path).resolve_asset_graph()

    def parents(key):
        return {p.to_user_string() for p in graph.get(dg.AssetKey(key)).parent_keys}

    assert parents("predictions") == {"sagemaker_data_capture"}
    assert parents("labeled_predictions") == {"predictions", "model_monitor_ground_truth"}
    assert parents("score_counts") == {"labeled_predictions"}
    assert parents("pr_curves") == {"score_counts"}
    assert parents("pr_curves_7d") == {"score_counts"}
    assert parents("quicksight_dataset") == {"pr_curves"}
    assert parents("pr_dashboard") == {"quicksight_dataset", "pr_curves_7d"}


def test_daily_utc_partitions_start_at_the_configured_date(tmp_path):
    defs = _defs(tmp_path, PRVIZ_START_DATE="2024-06-01")
    partitions = defs.resolve_assets_def("pr_curves_7d").partitions_def
    assert isinstance(partitions, dg.DailyPartitionsDefinition)
    assert partitions.timezone == "UTC"
    assert partitions.get_first_partition_key() == "2024-06-01"


def test_the_spark_stages_are_one_subsettable_single_run_multi_asset(tmp_path):
    spark_stages = _defs(tmp_path).resolve_assets_def("predictions")
    assert {k.to_user_string() for k in spark_stages.keys} == {
        "predictions", "labeled_predictions", "score_counts", "pr_curves"
    }  # fmt: skip
    assert spark_stages.can_subset
    assert spark_stages.backfill_policy == dg.BackfillPolicy.single_run()


def test_settings_defaults_and_errors(tmp_path):
    settings = Settings.from_env({"PRVIZ_HOME": str(tmp_path)})
    assert settings.env == "local"
    assert settings.lake_uri == f"{tmp_path}/lake"
    assert settings.capture_uri == f"{tmp_path}/capture"
    assert settings.ground_truth_uri == f"{tmp_path}/ground-truth"
    assert settings.label_window_days == 7
    assert settings.start_date == dt.date(2025, 1, 1)
    with pytest.raises(ConfigError, match="PRVIZ_START_DATE='2025-13-01' is not a date"):
        Settings.from_env({"PRVIZ_START_DATE": "2025-13-01"})
    with pytest.raises(ConfigError, match="PRVIZ_ENV='prod': use one of local, aws"):
        Settings.from_env({"PRVIZ_ENV": "prod"})
    with pytest.raises(ConfigError, match=r"PRVIZ_LABEL_WINDOW_DAYS=-1 is out of range"):
        Settings.from_env({"PRVIZ_LABEL_WINDOW_DAYS": "-1"})
    restricted = Settings.from_env({"PRVIZ_VARIANTS": "b, a,,a"})
    assert restricted.variants == ("a", "b")


def test_importing_the_code_location_reads_nothing(monkeypatch):
    import importlib

    import prviz.definitions

    monkeypatch.setenv("PRVIZ_ENV", "not-an-env")
    importlib.reload(prviz.definitions)  # the env is read only when Dagster loads `defs`
    with pytest.raises(ConfigError):
        prviz.definitions.defs()


AWS_ENV = {
    "PRVIZ_ENV": "aws",
    "PRVIZ_LAKE_URI": "s3://example-lake/prviz",
    "PRVIZ_CAPTURE_URI": "s3://example-capture/datacapture",
    "PRVIZ_GROUND_TRUTH_URI": "s3://example-capture/groundtruth",
    "PRVIZ_AWS_REGION": "eu-west-1",
    "PRVIZ_CODE_ENTRYPOINT_URI": "s3://example-lake/code/main-abc.py",
    "PRVIZ_CODE_PY_FILES_URI": "s3://example-lake/code/prviz-abc.zip",
    "PRVIZ_CODE_DEPS_URI": "s3://example-lake/code/deps-abc.tar.gz",
    "PRVIZ_PIPES_BUCKET": "example-lake",
    "PRVIZ_EMR_LOG_URI": "s3://example-lake/emr-logs/",
}


def test_aws_definitions_load_with_no_aws_access(monkeypatch, tmp_path):
    import boto3

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_REGION",
                 "AWS_DEFAULT_REGION"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)

    def no_aws(*args, **kwargs):
        raise AssertionError("loading definitions must not create an AWS client")

    monkeypatch.setattr(boto3, "client", no_aws)
    monkeypatch.setattr(boto3.session.Session, "client", no_aws)
    defs = _defs(tmp_path, **AWS_ENV)
    assert type(defs.resources["spark"]).__name__ == "EMRSparkRunner"
    assert defs.resources["publisher"].mode == "aws"
    assert {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()} == ASSETS


def test_aws_mode_names_a_missing_setting(tmp_path):
    env = {k: v for k, v in AWS_ENV.items() if k != "PRVIZ_CODE_DEPS_URI"}
    with pytest.raises(ConfigError, match="PRVIZ_CODE_DEPS_URI"):
        _defs(tmp_path, **env)
