"""Monitoring fits the real code location: the asset keys exist, the daily job runs the checks."""

import dagster as dg

from prviz.config import Settings
from prviz.definitions import DAILY_JOB, build_assets, build_resources
from prviz.monitoring.config import MonitoringConfig
from prviz.monitoring.definitions import build_monitoring
from prviz.partitions import daily_partitions


def test_monitoring_loads_with_the_real_assets(tmp_path):
    settings = Settings().with_home(tmp_path)
    partitions = daily_partitions(settings.start_date)
    daily_job = dg.define_asset_job(
        DAILY_JOB,
        selection=dg.AssetSelection.all()
        - dg.AssetSelection.assets("sagemaker_data_capture", "model_monitor_ground_truth"),
    )
    monitoring = build_monitoring(MonitoringConfig.from_settings(settings), partitions, daily_job)
    defs = dg.Definitions(
        assets=build_assets(settings),
        asset_checks=monitoring.asset_checks,
        jobs=[daily_job],
        schedules=monitoring.schedules,
        sensors=monitoring.sensors,
        resources={**build_resources(settings), **monitoring.resources},
    )
    dg.Definitions.validate_loadable(defs)

    job_checks = defs.resolve_job_def(DAILY_JOB).asset_layer.asset_graph.asset_check_keys
    assert set(monitoring.monitored_check_keys) <= set(job_checks)
    assert {s.name: s.default_status for s in monitoring.sensors} == {
        "prviz_freshness_sensor": dg.DefaultSensorStatus.RUNNING,
        "prviz_alert_sensor": dg.DefaultSensorStatus.RUNNING,
        "prviz_late_labels_sensor": dg.DefaultSensorStatus.RUNNING,
    }
    [schedule] = [defs.resolve_schedule_def(s.name) for s in monitoring.schedules]
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert monitoring.config.alert_log == f"{tmp_path}/alerts.log"

    # the late-label recompute is labeled_predictions and everything below it: never the parse
    from prviz.monitoring.sensors import recompute_assets

    keys = {k.to_user_string() for k in recompute_assets(defs.get_repository_def())}
    assert "predictions" not in keys
    assert {"labeled_predictions", "score_counts", "pr_curves", "pr_dashboard"} <= keys
