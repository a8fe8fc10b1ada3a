"""Sensors: freshness evaluation, alerts, and late-label recomputes. All run without a click.

* `prviz_freshness_sensor` (Dagster's `build_sensor_for_freshness_checks`) launches the
  freshness checks when they could have become overdue.
* `prviz_alert_sensor` reads the latest evaluations of every monitored check and notifies each
  channel once per failure and once on recovery (`prviz.monitoring.alerts`). Freshness alerts
  are a Dagster+ feature; in open source this sensor is how anyone hears about them.
* `prviz_late_labels_sensor` watches the ground-truth folders and recomputes the prediction days
  whose labels changed after they were computed, from `labeled_predictions` down (never the
  parse).

Late labels: labels collected on day C can belong to any prediction day D in C-window .. C
(day D joins the label folders D .. D+window). When the listing of a *closed* label day C
(C before today, so its folder no longer grows every hour) differs from the one in the cursor,
every day D in C-window .. C that was computed (labeled_predictions materialized) *before* C's
newest label file landed is recomputed. Consecutive days go in one range run (one Spark
application; pr_curves_7d then reads its neighbours' fresh counts in order), each run from
labeled_predictions down to the publication.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dagster as dg

from prviz.capture.layout import list_ground_truth_day
from prviz.lake.paths import shift_day
from prviz.monitoring import alerts as A
from prviz.monitoring.checks import (
    FRESHNESS_CHECK_NAME,
    LABELED_PREDICTIONS,
    latest_materialization_timestamp,
    utc_now,
)
from prviz.monitoring.freshness import DEADLINE_KEY, freshness_day
from prviz.monitoring.resources import Notifier, NotifierError
from prviz.resources import PipelineResource

ALERT_SENSOR = "prviz_alert_sensor"
FRESHNESS_SENSOR = "prviz_freshness_sensor"
LATE_LABELS_SENSOR = "prviz_late_labels_sensor"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
HISTORY_LIMIT = 200  # latest evaluations read per check and tick
MAX_ALERTS_PER_TICK = 50  # more wait for the next tick (a flood guard)

_COMPLETED = ("SUCCEEDED", "FAILED")  # check-execution statuses of a finished evaluation


# -- alerts ----------------------------------------------------------------------------------
def _observation(key: dg.AssetCheckKey, record, day: str | None) -> A.Observation | None:
    entry = record.event
    evaluation = entry.asset_check_evaluation if entry is not None else None
    if evaluation is None:
        return None
    asset = key.asset_key.to_user_string()
    description = evaluation.description or ""
    if key.name == FRESHNESS_CHECK_NAME:
        deadline = getattr(evaluation.metadata.get(DEADLINE_KEY), "value", None)
        by = (
            f"its deadline {dt.datetime.fromtimestamp(deadline, dt.UTC):%Y-%m-%d %H:%M} UTC"
            if deadline is not None
            else "its deadline"
        )
        description = (
            f"{asset} for {day} exists."
            if evaluation.passed
            else f"{asset} for {day} did not exist by {by}. {description} Run the day "
            f"(launch partition {day} of the daily job, or `prviz backfill --start {day} "
            f"--end {day}`) and read that run's logs if it failed."
        )
    return A.Observation(
        asset=asset,
        asset_path=tuple(key.asset_key.path),
        check=key.name,
        day=day,
        passed=evaluation.passed,
        severity=evaluation.severity.value,
        description=description,
        evaluated_at=entry.timestamp,
        run_id=record.run_id or "",
    )


def collect_observations(
    instance: dg.DagsterInstance,
    check_keys: Sequence[dg.AssetCheckKey],
    cursor: dict,
    history_limit: int = HISTORY_LIMIT,
) -> list[A.Observation]:
    """The latest completed evaluation per check and day.

    `instance.get_latest_asset_check_evaluation_record` returns one record per check whatever
    its partition, so a backfill of an old day would hide yesterday's state; the execution
    history (newest first, one row per check, run and partition) keeps every day apart.

    Partitioned checks: the newest evaluation of each day among the latest `history_limit`.
    Freshness checks (unpartitioned): only the newest evaluation counts, since it is about the
    day now due; a day it alerted on earlier recovers once that day is materialized.
    """
    observations = []
    for key in check_keys:
        records = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=history_limit
        )
        seen: set[str | None] = set()
        for record in records:
            if record.status.value not in _COMPLETED:
                continue  # planned: its run is still going
            unpartitioned = record.partition is None
            if unpartitioned and seen:
                break
            evaluation = record.event.asset_check_evaluation if record.event else None
            if evaluation is None:
                continue
            day = record.partition or (
                freshness_day(evaluation.metadata) if unpartitioned else None
            )
            if day in seen:
                continue
            seen.add(day)
            observation = _observation(key, record, day)
            if observation is not None:
                observations.append(observation)
        if key.name == FRESHNESS_CHECK_NAME:
            observations.extend(_stale_freshness(instance, key, cursor, seen))
    return observations


def _stale_freshness(instance, key: dg.AssetCheckKey, cursor: dict, current: set) -> list:
    """Freshness failures told earlier for days no longer due: passed once materialized."""
    asset = key.asset_key.to_user_string()
    prefix = A.alert_key(asset, key.name, None)
    out = []
    for told in cursor.get("failing", {}):
        if not told.startswith(prefix) or not told[len(prefix) :]:
            continue
        day = told[len(prefix) :]
        if day in current:
            continue
        stamp = latest_materialization_timestamp(instance, key.asset_key, day)
        if stamp is not None:
            out.append(
                A.Observation(
                    asset=asset,
                    asset_path=tuple(key.asset_key.path),
                    check=key.name,
                    day=day,
                    passed=True,
                    severity="ERROR",
                    description=f"{asset} for {day} exists now (it was late).",
                    evaluated_at=stamp,
                )
            )
    return out


@dataclass
class DeliveryReport:
    sent: list[tuple[str, A.Alert]] = field(default_factory=list)
    failed: list[tuple[str, A.Alert, str]] = field(default_factory=list)
    deferred: int = 0

    def summary(self) -> str:
        if not (self.sent or self.failed or self.deferred):
            return "no check changed state: nothing to send"
        parts = [f"{len(self.sent)} alert(s) sent"]
        if self.failed:
            channels = sorted({c for c, _, _ in self.failed})
            parts.append(
                f"{len(self.failed)} not delivered via {', '.join(channels)} (retried next tick)"
            )
        if self.deferred:
            parts.append(f"{self.deferred} deferred to the next tick")
        return "; ".join(parts)


def deliver_alerts(
    instance: dg.DagsterInstance,
    check_keys: Sequence[dg.AssetCheckKey],
    notifiers: dict[str, Notifier],
    cursor: dict,
    base_url: str,
    log,
    max_per_tick: int = MAX_ALERTS_PER_TICK,
) -> DeliveryReport:
    """Send what changed since the cursor; update the cursor for each delivery that worked."""
    observations = collect_observations(instance, check_keys, cursor)
    plan = A.plan_deliveries(observations, cursor, sorted(notifiers), base_url)
    report = DeliveryReport(deferred=max(0, len(plan) - max_per_tick))
    for channel, alert in plan[:max_per_tick]:
        try:
            notifiers[channel].send(alert)
        except NotifierError as error:
            report.failed.append((channel, alert, str(error)))
            log.error(f"{alert.title}: not delivered via {channel}, retried next tick: {error}")
            continue
        except Exception as error:  # an unexpected failure: its text may hold a secret
            report.failed.append((channel, alert, type(error).__name__))
            log.error(
                f"{alert.title}: not delivered via {channel}, retried next tick: "
                f"unexpected {type(error).__name__}"
            )
            continue
        A.apply_delivery(cursor, channel, alert)
        report.sent.append((channel, alert))
        level = log.info if alert.kind == "recovery" else log.warning
        level(f"alert sent via {channel}: {alert.title}. {alert.description} {alert.link}")
    if report.deferred:
        log.info(f"{report.deferred} alert(s) deferred to the next tick (at most {max_per_tick})")
    return report


def build_alert_sensor(
    check_keys: Sequence[dg.AssetCheckKey],
    notifier_keys: Sequence[str],
    base_url: str,
    minimum_interval_seconds: int = 60,
) -> dg.SensorDefinition:
    keys = sorted(notifier_keys)

    @dg.sensor(
        name=ALERT_SENSOR,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        required_resource_keys=set(keys),
        description="Notifies once per failing freshness, data-quality or model-quality check "
        f"(and once on recovery) via {', '.join(keys)}. Cursor: what each channel was told.",
    )
    def prviz_alert_sensor(context: dg.SensorEvaluationContext):
        notifiers = {key: getattr(context.resources, key) for key in keys}
        cursor = A.load_cursor(context.cursor, keys)
        report = deliver_alerts(
            context.instance, check_keys, notifiers, cursor, base_url, context.log
        )
        context.update_cursor(A.dump_cursor(cursor))
        return dg.SkipReason(report.summary())

    return prviz_alert_sensor


# -- freshness -------------------------------------------------------------------------------
def build_freshness_sensor(
    freshness_checks: Sequence[dg.AssetChecksDefinition],
) -> dg.SensorDefinition:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.SupersessionWarning)
        return dg.build_sensor_for_freshness_checks(
            freshness_checks=freshness_checks,
            name=FRESHNESS_SENSOR,
            minimum_interval_seconds=60,
            default_status=dg.DefaultSensorStatus.RUNNING,
        )


# -- late labels -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Recompute:
    """One run: prediction days `start`..`end`, because of the label days `label_days`."""

    start: str
    end: str
    label_days: tuple[str, ...]

    @property
    def days(self) -> list[str]:
        out, day = [], self.start
        while day <= self.end:
            out.append(day)
            day = shift_day(day, 1)
        return out


def _blocks(days: list[str]) -> list[list[str]]:
    blocks: list[list[str]] = []
    for day in sorted(days):
        if blocks and shift_day(blocks[-1][-1], 1) == day:
            blocks[-1].append(day)
        else:
            blocks.append([day])
    return blocks


def find_late_label_recomputes(
    instance: dg.DagsterInstance,
    ground_truth_uri: str,
    window_days: int,
    partitions_def: dg.PartitionsDefinition,
    cursor: dict,
    now: dt.datetime,
    log=None,
    s3_options: dict | None = None,
) -> tuple[list[Recompute], dict]:
    """The recompute runs needed now, and the new cursor (`{"v": 1, "label_days": {C: version}}`).

    Label days looked at: the closed days yesterday-window .. yesterday (older label days
    cannot change a day still inside its window).
    """
    today = now.astimezone(dt.UTC).date().isoformat()
    first = partitions_def.get_first_partition_key()
    old = cursor.get("label_days", {}) if cursor.get("v") == 1 else {}
    label_days = [shift_day(today, -k) for k in range(window_days + 1, 0, -1)]
    versions: dict[str, str] = {}
    causes: dict[str, set[str]] = {}
    for label_day in label_days:
        listing = list_ground_truth_day(ground_truth_uri, label_day, s3_options)
        if not listing.files:
            continue
        version = listing.data_version()
        versions[label_day] = version
        if old.get(label_day) == version:
            continue
        if log is not None:
            log.info(
                f"ground truth collected on {label_day} changed: {listing.files} file(s), "
                f"newest {dt.datetime.fromtimestamp(listing.latest_mtime, dt.UTC):%F %T} UTC"
            )
        for back in range(window_days, -1, -1):
            day = shift_day(label_day, -back)
            if first is not None and day < first:
                continue
            computed = latest_materialization_timestamp(instance, LABELED_PREDICTIONS, day)
            if computed is not None and computed < listing.latest_mtime:
                causes.setdefault(day, set()).add(label_day)
    recomputes = [
        Recompute(block[0], block[-1], tuple(sorted(set().union(*(causes[d] for d in block)))))
        for block in _blocks(list(causes))
    ]
    return recomputes, {"v": 1, "label_days": versions}


def recompute_assets(repository_def) -> list[dg.AssetKey]:
    """labeled_predictions and everything downstream of it in the code location."""
    selection = dg.AssetSelection.assets(LABELED_PREDICTIONS).downstream()
    keys = selection.resolve(repository_def.asset_graph)
    return sorted(keys, key=lambda k: k.to_user_string())


def recompute_run_request(recompute: Recompute, assets: Sequence[dg.AssetKey], versions: dict):
    digest = hashlib.sha256(
        json.dumps([recompute.days, {d: versions.get(d) for d in recompute.label_days}]).encode()
    ).hexdigest()[:12]
    tags = {"prviz/trigger": "late-labels", "prviz/label_days": ",".join(recompute.label_days)}
    run_key = f"late-labels:{recompute.start}..{recompute.end}:{digest}"
    if recompute.start == recompute.end:
        return dg.RunRequest(
            run_key=run_key, partition_key=recompute.start, asset_selection=list(assets), tags=tags
        )
    tags.update({RANGE_START_TAG: recompute.start, RANGE_END_TAG: recompute.end})
    return dg.RunRequest(run_key=run_key, asset_selection=list(assets), tags=tags)


def build_late_label_sensor(
    job,
    partitions_def: dg.PartitionsDefinition,
    clock: Callable[[], dt.datetime] = utc_now,
    minimum_interval_seconds: int = 600,
) -> dg.SensorDefinition:
    @dg.sensor(
        name=LATE_LABELS_SENSOR,
        job=job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Recomputes labeled_predictions and everything downstream (not the parse) "
        "for the prediction days whose ground truth changed after they were computed.",
    )
    def prviz_late_labels_sensor(context: dg.SensorEvaluationContext, pipeline: PipelineResource):
        cursor = json.loads(context.cursor) if context.cursor else {}
        recomputes, new_cursor = find_late_label_recomputes(
            context.instance,
            pipeline.ground_truth_uri,
            pipeline.label_window_days,
            partitions_def,
            cursor,
            clock(),
            context.log,
            {"endpoint_url": pipeline.s3_endpoint_url, "region": pipeline.s3_region},
        )
        assets = recompute_assets(context.repository_def) if recomputes else []
        for recompute in recomputes:
            context.log.info(
                f"late labels from {', '.join(recompute.label_days)}: recomputing "
                f"{recompute.start}..{recompute.end} ({', '.join(a.to_user_string() for a in assets)})"
            )
            yield recompute_run_request(recompute, assets, new_cursor["label_days"])
        context.update_cursor(json.dumps(new_cursor, sort_keys=True))

    return prviz_late_labels_sensor
