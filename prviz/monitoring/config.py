"""Monitoring settings: when the day runs, when it is late, what is wrong, and who is told.

`MonitoringConfig` holds plain values only. `prviz/config.py` (`Settings`) is the one place the
environment is read; `MonitoringConfig.from_settings` picks the monitoring fields off a `Settings`
and falls back to the defaults below for any field `Settings` does not carry, so the monitoring
package works before and after those fields are added there. Secrets (the Slack webhook URL) and
ids (the SNS topic ARN) are not settings: the notifier resources read them through `dg.EnvVar`
when the sensor starts (see `prviz/monitoring/resources.py`).
"""

import datetime as dt
from dataclasses import dataclass, field, fields

from prviz.config import ConfigError

CHANNELS = ("log", "sns", "slack")
DEFAULT_UI_BASE_URL = "http://127.0.0.1:3000"
BASELINE_DAYS = 7  # trailing days the volume and model-quality baselines are taken from
MIN_BASELINE_DAYS = 3  # fewer days with figures than this: the baseline checks pass, saying so


def parse_time_of_day(name: str, value: str) -> tuple[int, int]:
    """'HH:MM' (UTC) -> (hour, minute)."""
    try:
        parsed = dt.time.fromisoformat(value.strip())
    except (AttributeError, ValueError):
        raise ConfigError(f"{name}={value!r} is not a time of day: use HH:MM (UTC)") from None
    if parsed.second or parsed.microsecond or parsed.tzinfo:
        raise ConfigError(f"{name}={value!r}: use HH:MM (UTC), no seconds or time zone")
    return parsed.hour, parsed.minute


def _as_tuple(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    return tuple(sorted({str(item).strip() for item in value if str(item).strip()}))


@dataclass(frozen=True)
class MonitoringConfig:
    """Everything monitoring needs to know, with the defaults of the local demo.

    Times are UTC, `HH:MM`. Rates and drops are fractions (0.01 = 1 %, 0.05 = 0.05 AP).
    """

    daily_run_time: str = "02:00"  # the schedule asks for yesterday's partition at this time
    freshness_deadline: str = "06:00"  # yesterday's curves and publication must exist by then
    freshness_assets: tuple[str, ...] = ("pr_curves", "pr_dashboard")
    ui_base_url: str = DEFAULT_UI_BASE_URL
    alert_channels: tuple[str, ...] = ("log",)
    alert_log: str = "var/alerts.log"
    max_quarantine_rate: float = 0.01
    max_missing_capture_hours: int = 0
    min_label_coverage: float = 0.5
    label_coverage_grace_days: int = 3
    max_volume_change: float = 0.5
    max_ap_drop: float = 0.05
    max_f1_drop: float = 0.05
    champion_variants: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        self.run_hour_minute  # noqa: B018 - validates
        self.deadline_hour_minute  # noqa: B018 - validates
        for name in ("freshness_assets", "alert_channels", "champion_variants"):
            object.__setattr__(self, name, _as_tuple(getattr(self, name)))
        unknown = set(self.alert_channels) - set(CHANNELS)
        if unknown:
            raise ConfigError(
                f"PRVIZ_ALERT_CHANNELS has unknown channels {sorted(unknown)}: "
                f"use a comma list of {', '.join(CHANNELS)}"
            )
        if not self.freshness_assets:
            raise ConfigError("freshness_assets is empty: name at least pr_curves")
        for name in ("max_quarantine_rate", "min_label_coverage"):
            value = float(getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"PRVIZ_{name.upper()}={value} is out of range [0, 1]")
            object.__setattr__(self, name, value)
        for name in ("max_volume_change", "max_ap_drop", "max_f1_drop"):
            value = float(getattr(self, name))
            if value < 0:
                raise ConfigError(f"PRVIZ_{name.upper()}={value} must not be negative")
            object.__setattr__(self, name, value)
        for name, top in (("max_missing_capture_hours", 24), ("label_coverage_grace_days", 90)):
            value = int(getattr(self, name))
            if not 0 <= value <= top:
                raise ConfigError(f"PRVIZ_{name.upper()}={value} is out of range [0, {top}]")
            object.__setattr__(self, name, value)
        if not self.ui_base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"PRVIZ_UI_BASE_URL={self.ui_base_url!r} must start with http:// or https://"
            )
        object.__setattr__(self, "ui_base_url", self.ui_base_url.rstrip("/"))

    @property
    def run_hour_minute(self) -> tuple[int, int]:
        return parse_time_of_day("PRVIZ_DAILY_RUN_TIME", self.daily_run_time)

    @property
    def deadline_hour_minute(self) -> tuple[int, int]:
        return parse_time_of_day("PRVIZ_FRESHNESS_DEADLINE", self.freshness_deadline)

    @property
    def deadline_cron(self) -> str:
        hour, minute = self.deadline_hour_minute
        return f"{minute} {hour} * * *"

    @classmethod
    def from_settings(cls, settings) -> "MonitoringConfig":
        """The monitoring fields of a `prviz.config.Settings` (defaults for those it lacks).

        The alert log defaults to `{PRVIZ_HOME}/alerts.log`.
        """
        values = {}
        for item in fields(cls):
            if hasattr(settings, item.name) and getattr(settings, item.name) not in (None, ""):
                values[item.name] = getattr(settings, item.name)
        if "alert_log" not in values and getattr(settings, "home", None):
            values["alert_log"] = f"{settings.home}/alerts.log"
        return cls(**values)
