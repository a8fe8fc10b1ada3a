"""prviz settings: the one place the environment is read.

`Settings.from_env()` is called by `prviz/definitions.py` (when Dagster loads the code location)
and by the command line, never by assets or at import. Everything else receives a `Settings`
(or the plain `JobConfig` derived from it, which is what travels to a Spark cluster).
"""

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

ENVIRONMENTS = ("local", "aws")
# settings of the Spark runners (prviz/spark/emr.py validates them; docs/deploy-aws.md §3)
SPARK_OPTION_PREFIXES = ("PRVIZ_SPARK_", "PRVIZ_EMR_", "PRVIZ_CODE_", "PRVIZ_PIPES_", "PRVIZ_AWS_")
DEFAULT_START_DATE = "2025-01-01"
DEFAULT_JSON_SCORE_PATH = "$.predictions[*].score"
DEFAULT_LABEL_WINDOW_DAYS = 7
DEFAULT_THIN_POINTS = 200


class ConfigError(ValueError):
    """A setting is missing or malformed; the message says which and what to do."""


def _parse_date(name: str, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a date: use YYYY-MM-DD") from None


def _parse_int(name: str, value: str, minimum: int, maximum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a whole number") from None
    if not minimum <= number <= maximum:
        raise ConfigError(f"{name}={number} is out of range [{minimum}, {maximum}]")
    return number


def _parse_float(name: str, value: str, minimum: float, maximum: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number") from None
    if not minimum <= number <= maximum:
        raise ConfigError(f"{name}={number} is out of range [{minimum}, {maximum}]")
    return number


def _parse_list(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(sorted({item.strip() for item in value.split(",") if item.strip()}))


def _as_uri(value: str) -> str:
    """A local path becomes an absolute path; `s3://…` stays as it is."""
    if "://" in value:
        return value.rstrip("/")
    return str(Path(value).expanduser().resolve())


# Settings that hold a URL or URI, by the variable they come from. None of them may carry
# credentials (`scheme://user:secret@host`): a URL is shown in metadata, logs, alert links and
# the UI, and S3 keys come from the AWS credential chain only. Checked in Settings.__post_init__.
_URL_SETTINGS = {
    "capture_uri": "PRVIZ_CAPTURE_URI",
    "ground_truth_uri": "PRVIZ_GROUND_TRUTH_URI",
    "lake_uri": "PRVIZ_LAKE_URI",
    "s3_endpoint_url": "PRVIZ_S3_ENDPOINT_URL",
    "ui_base_url": "PRVIZ_UI_BASE_URL",
}


def _has_credentials(name: str, value: str) -> bool:
    """True when a URL setting seems to carry a `user:secret@` part.

    Secrets are often base64 (`/` and `+` inside), so the `@` is looked for in the whole URL,
    not only in what a URL parser would call its authority: anywhere in an endpoint or an
    `s3://` URI (where a `:` in the bucket name also gives a key away), before the query in
    other URLs. A local path is not a URL: an `@` in it is just a character.
    """
    if name == "s3_endpoint_url":
        return "@" in value
    if "://" not in value:
        return name == "ui_base_url" and "@" in value.split("?", 1)[0].split("#", 1)[0]
    scheme, rest = value.split("://", 1)
    if scheme.lower() in ("s3", "s3a"):
        return "@" in rest or ":" in rest.split("/", 1)[0]
    return "@" in rest.split("?", 1)[0].split("#", 1)[0]


def _refuse_credentials(name: str, value: str | None) -> None:
    if value and _has_credentials(name, value):
        why = (
            "every alert link would carry them: link to the UI without them"
            if name == "ui_base_url"
            else "prviz takes no keys in URLs: S3 keys come from the standard AWS credential chain"
        )
        # the value is not repeated: the part before '@' is a secret
        raise ConfigError(
            f"{_URL_SETTINGS[name]} contains credentials (a 'user:secret@' part; the value is not "
            f"shown); {why} (docs/operations.md, Credentials and access)"
        )


def _monitoring_from_env(env: Mapping[str, str]) -> dict:
    """PRVIZ_* monitoring settings that are set; the rest keep MonitoringConfig's defaults."""
    values: dict = {}
    texts = {
        "daily_run_time": "PRVIZ_DAILY_RUN_TIME",
        "freshness_deadline": "PRVIZ_FRESHNESS_DEADLINE",
        "ui_base_url": "PRVIZ_UI_BASE_URL",
        "alert_log": "PRVIZ_ALERT_LOG",
    }
    lists = {
        "freshness_assets": "PRVIZ_FRESHNESS_ASSETS",
        "alert_channels": "PRVIZ_ALERT_CHANNELS",
        "champion_variants": "PRVIZ_CHAMPION_VARIANTS",
    }
    fractions = {
        "max_quarantine_rate": "PRVIZ_MAX_QUARANTINE_RATE",
        "min_label_coverage": "PRVIZ_MIN_LABEL_COVERAGE",
        "max_volume_change": "PRVIZ_MAX_VOLUME_CHANGE",
        "max_ap_drop": "PRVIZ_MAX_AP_DROP",
        "max_f1_drop": "PRVIZ_MAX_F1_DROP",
    }
    counts = {
        "max_missing_capture_hours": ("PRVIZ_MAX_MISSING_CAPTURE_HOURS", 24),
        "label_coverage_grace_days": ("PRVIZ_LABEL_COVERAGE_GRACE_DAYS", 90),
    }
    for field_name, var in texts.items():
        if env.get(var, "").strip():
            values[field_name] = env[var].strip()
    for field_name, var in lists.items():
        if env.get(var, "").strip():
            values[field_name] = tuple(i.strip() for i in env[var].split(",") if i.strip())
    for field_name, var in fractions.items():
        if env.get(var, "").strip():
            values[field_name] = _parse_float(var, env[var], 0.0, 1.0)
    for field_name, (var, maximum) in counts.items():
        if env.get(var, "").strip():
            values[field_name] = _parse_int(var, env[var], 0, maximum)
    return values


@dataclass(frozen=True)
class JobConfig:
    """What the Spark job needs to compute a range of days: plain values, JSON-serialisable.

    This is what is sent to the Spark application (in process, or on EMR through Pipes extras).
    """

    capture_uri: str
    ground_truth_uri: str
    lake_uri: str
    label_window_days: int = DEFAULT_LABEL_WINDOW_DAYS
    csv_score_column: int = 0
    json_score_path: str = DEFAULT_JSON_SCORE_PATH
    score_decimals: int | None = None
    endpoints: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()
    thin_points: int = DEFAULT_THIN_POINTS
    s3_endpoint_url: str | None = None
    s3_region: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> "JobConfig":
        values = dict(data)
        for key in ("endpoints", "variants"):
            values[key] = tuple(values.get(key) or ())
        return cls(**values)

    def lake(self):
        """The lake these settings point at (credentials come from the standard AWS chain)."""
        from prviz.lake.store import open_lake

        return open_lake(
            self.lake_uri, {"endpoint_url": self.s3_endpoint_url, "region": self.s3_region}
        )


@dataclass(frozen=True)
class Settings:
    env: str = "local"
    home: str = field(default_factory=lambda: _as_uri("var"))
    capture_uri: str = ""
    ground_truth_uri: str = ""
    lake_uri: str = ""
    dagster_home: str = ""
    start_date: dt.date = dt.date.fromisoformat(DEFAULT_START_DATE)
    label_window_days: int = DEFAULT_LABEL_WINDOW_DAYS
    csv_score_column: int = 0
    json_score_path: str = DEFAULT_JSON_SCORE_PATH
    score_decimals: int | None = None
    endpoints: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()
    thin_points: int = DEFAULT_THIN_POINTS
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    spark_options: tuple[tuple[str, str], ...] = ()
    # monitoring (prviz/monitoring/config.py validates and documents them; unset = its default)
    daily_run_time: str | None = None
    freshness_deadline: str | None = None
    freshness_assets: tuple[str, ...] | None = None
    ui_base_url: str | None = None
    alert_channels: tuple[str, ...] | None = None
    alert_log: str | None = None
    max_quarantine_rate: float | None = None
    max_missing_capture_hours: int | None = None
    min_label_coverage: float | None = None
    label_coverage_grace_days: int | None = None
    max_volume_change: float | None = None
    max_ap_drop: float | None = None
    max_f1_drop: float | None = None
    champion_variants: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.env not in ENVIRONMENTS:
            raise ConfigError(f"PRVIZ_ENV={self.env!r}: use one of {', '.join(ENVIRONMENTS)}")
        home = self.home
        defaults = {
            "capture_uri": f"{home}/capture",
            "ground_truth_uri": f"{home}/ground-truth",
            "lake_uri": f"{home}/lake",
            "dagster_home": f"{home}/dagster_home",
        }
        for name, default in defaults.items():
            if not getattr(self, name):
                object.__setattr__(self, name, default)
        for name in _URL_SETTINGS:
            _refuse_credentials(name, getattr(self, name))
        if not self.json_score_path.startswith("$"):
            raise ConfigError(
                f"PRVIZ_JSON_SCORE_PATH={self.json_score_path!r} must be a JSONPath starting "
                "with '$', e.g. $.predictions[*].score"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Read every PRVIZ_* variable; unset ones take their defaults."""
        env = os.environ if environ is None else environ
        decimals = env.get("PRVIZ_SCORE_DECIMALS", "").strip()
        return cls(
            env=env.get("PRVIZ_ENV", "local").strip().lower() or "local",
            home=_as_uri(env.get("PRVIZ_HOME", "var")),
            capture_uri=_as_uri(env["PRVIZ_CAPTURE_URI"]) if env.get("PRVIZ_CAPTURE_URI") else "",
            ground_truth_uri=(
                _as_uri(env["PRVIZ_GROUND_TRUTH_URI"]) if env.get("PRVIZ_GROUND_TRUTH_URI") else ""
            ),
            lake_uri=_as_uri(env["PRVIZ_LAKE_URI"]) if env.get("PRVIZ_LAKE_URI") else "",
            dagster_home=env.get("DAGSTER_HOME", ""),
            start_date=_parse_date(
                "PRVIZ_START_DATE", env.get("PRVIZ_START_DATE", DEFAULT_START_DATE)
            ),
            label_window_days=_parse_int(
                "PRVIZ_LABEL_WINDOW_DAYS",
                env.get("PRVIZ_LABEL_WINDOW_DAYS", str(DEFAULT_LABEL_WINDOW_DAYS)),
                0,
                90,
            ),
            csv_score_column=_parse_int(
                "PRVIZ_CSV_SCORE_COLUMN", env.get("PRVIZ_CSV_SCORE_COLUMN", "0"), 0, 10_000
            ),
            json_score_path=env.get("PRVIZ_JSON_SCORE_PATH", DEFAULT_JSON_SCORE_PATH),
            score_decimals=(
                _parse_int("PRVIZ_SCORE_DECIMALS", decimals, 0, 12) if decimals else None
            ),
            endpoints=_parse_list(env.get("PRVIZ_ENDPOINTS")),
            variants=_parse_list(env.get("PRVIZ_VARIANTS")),
            thin_points=_parse_int(
                "PRVIZ_THIN_POINTS",
                env.get("PRVIZ_THIN_POINTS", str(DEFAULT_THIN_POINTS)),
                3,
                10_000,
            ),
            # an S3-compatible endpoint (MinIO, SeaweedFS, on-prem); unset = AWS. Keys never come
            # through here: they stay with the standard AWS credential chain.
            s3_endpoint_url=env.get("PRVIZ_S3_ENDPOINT_URL") or None,
            s3_region=env.get("PRVIZ_S3_REGION") or None,
            spark_options=tuple(
                sorted((k, v) for k, v in env.items() if k.startswith(SPARK_OPTION_PREFIXES))
            ),
            **_monitoring_from_env(env),
        )

    def with_home(self, home: str | Path) -> "Settings":
        """The same settings rooted at another home (every default URI moves with it)."""
        return replace(
            self,
            home=_as_uri(str(home)),
            capture_uri="",
            ground_truth_uri="",
            lake_uri="",
            dagster_home="",
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
            endpoints=self.endpoints,
            variants=self.variants,
            thin_points=self.thin_points,
            s3_endpoint_url=self.s3_endpoint_url,
            s3_region=self.s3_region,
        )
