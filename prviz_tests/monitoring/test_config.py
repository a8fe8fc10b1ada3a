"""Monitoring settings: defaults, parsing, validation, and reading them off `Settings`."""

import pytest

from prviz.config import ConfigError, Settings
from prviz.monitoring.config import MonitoringConfig


def test_defaults():
    config = MonitoringConfig()
    assert config.run_hour_minute == (2, 0)
    assert config.deadline_cron == "0 6 * * *"
    assert config.freshness_assets == ("pr_curves", "pr_dashboard")
    assert config.alert_channels == ("log",)


def test_from_settings_takes_the_home_and_any_monitoring_field(tmp_path):
    settings = Settings().with_home(tmp_path)
    assert MonitoringConfig.from_settings(settings).alert_log == f"{tmp_path}/alerts.log"

    class WithFields:
        home = str(tmp_path)
        freshness_deadline = "07:30"
        alert_channels = "slack, log"
        max_quarantine_rate = "0.02"
        champion_variants = ("fraud-scorer/champion",)

    config = MonitoringConfig.from_settings(WithFields())
    assert config.deadline_cron == "30 7 * * *"
    assert config.alert_channels == ("log", "slack")
    assert config.max_quarantine_rate == 0.02
    assert config.champion_variants == ("fraud-scorer/champion",)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"daily_run_time": "2am"}, "PRVIZ_DAILY_RUN_TIME='2am' is not a time of day"),
        ({"freshness_deadline": "06:00:30"}, "no seconds"),
        ({"alert_channels": ("log", "pager")}, "unknown channels ['pager']"),
        ({"max_quarantine_rate": 1.5}, "PRVIZ_MAX_QUARANTINE_RATE=1.5 is out of range"),
        ({"max_ap_drop": -0.1}, "must not be negative"),
        ({"max_missing_capture_hours": 25}, "out of range [0, 24]"),
        ({"ui_base_url": "127.0.0.1:3000"}, "must start with http"),
    ],
)
def test_bad_values_say_what_to_do(values, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        MonitoringConfig(**values)
