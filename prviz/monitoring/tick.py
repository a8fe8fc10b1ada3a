"""One monitoring tick on demand, at a chosen time: the demo's "advance the clock".

    python -m prviz.monitoring.tick --now 2025-01-09T07:00:00Z

does what the daemon does continuously, once, as if it were `--now`:

1. evaluates the freshness checks at `--now` (the same rule as Dagster's
   `build_time_partition_freshness_checks`, `prviz.monitoring.freshness`) and records the
   results as check evaluations in the Dagster instance;
2. looks for late labels as of `--now` and runs the recomputes in this process
   (`--no-launch`: only list them);
3. sends the alerts that changed, as the alert sensor does.

Its cursors live in `{PRVIZ_HOME}/monitoring/tick_state.json`, apart from the daemon's sensor
cursors: use the tick when the daemon is not running (`make dev` runs it), or both will alert.
"""

import argparse
import datetime as dt
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from prviz.monitoring import alerts as A
from prviz.monitoring.definitions import MonitoringDefs
from prviz.monitoring.freshness import freshness_day, freshness_evaluation
from prviz.monitoring.sensors import (
    DeliveryReport,
    Recompute,
    deliver_alerts,
    find_late_label_recomputes,
    recompute_assets,
    recompute_run_request,
)

log = logging.getLogger("prviz.monitoring.tick")
STATE_FILE = "monitoring/tick_state.json"


@dataclass
class TickResult:
    freshness: list[tuple[str, str, bool]] = field(default_factory=list)  # asset, day, passed
    recomputes: list[Recompute] = field(default_factory=list)
    runs: list[tuple[str, bool]] = field(default_factory=list)  # run id, success
    alerts: DeliveryReport = field(default_factory=DeliveryReport)

    def lines(self) -> list[str]:
        out = [
            f"freshness {asset} {day}: {'on time' if ok else 'LATE'}"
            for asset, day, ok in self.freshness
        ]
        out += [
            f"late labels ({', '.join(r.label_days)}): recompute {r.start}..{r.end}"
            for r in self.recomputes
        ]
        out += [f"run {run_id}: {'success' if ok else 'FAILED'}" for run_id, ok in self.runs]
        out += [f"alert via {channel}: {alert.title}" for channel, alert in self.alerts.sent]
        out += [f"NOT delivered via {c}: {a.title} ({why})" for c, a, why in self.alerts.failed]
        out.append(self.alerts.summary())
        return out


def _load_state(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _save_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
    temporary.replace(path)


def run_tick(
    defs: dg.Definitions,
    monitoring: MonitoringDefs,
    instance: dg.DagsterInstance,
    now: dt.datetime,
    state_path: Path,
    launch: bool = True,
) -> TickResult:
    result = TickResult()
    state = _load_state(state_path)

    for asset in monitoring.config.freshness_assets:
        key = dg.AssetKey.from_user_string(asset)
        evaluation = freshness_evaluation(
            instance, key, monitoring.partitions_def, monitoring.config, now
        )
        if evaluation is not None:
            instance.report_runless_asset_event(evaluation)
            day = freshness_day(evaluation.metadata) or "?"
            result.freshness.append((asset, day, evaluation.passed))

    keys = sorted(monitoring.resources)
    with dg.build_resources({"pipeline": defs.resources["pipeline"]}) as built:
        pipeline = built.pipeline
    recomputes, label_cursor = find_late_label_recomputes(
        instance,
        pipeline.ground_truth_uri,
        pipeline.label_window_days,
        monitoring.partitions_def,
        state.get("late_labels", {}),
        now,
        log,
        {"endpoint_url": pipeline.s3_endpoint_url, "region": pipeline.s3_region},
    )
    result.recomputes = recomputes
    if launch:
        job = defs.resolve_job_def(monitoring.job_name)
        assets = recompute_assets(defs.get_repository_def()) if recomputes else []
        for recompute in recomputes:
            request = recompute_run_request(recompute, assets, label_cursor["label_days"])
            run = job.execute_in_process(
                instance=instance,
                partition_key=request.partition_key,
                asset_selection=list(request.asset_selection or []),
                tags=request.tags,
                raise_on_error=False,
            )
            result.runs.append((run.run_id, run.success))
        state["late_labels"] = label_cursor

    with dg.build_resources({k: monitoring.resources[k] for k in keys}) as built:
        notifiers = {k: getattr(built, k) for k in keys}
        cursor = A.load_cursor(state.get("alerts"), keys)
        result.alerts = deliver_alerts(
            instance,
            monitoring.monitored_check_keys,
            notifiers,
            cursor,
            monitoring.config.ui_base_url,
            log,
        )
    state["alerts"] = A.dump_cursor(cursor)
    _save_state(state_path, state)
    return result


def parse_utc_time(text: str) -> dt.datetime:
    """An ISO-8601 time (`Z` or an offset; naive = UTC), for `--now` options."""
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: use ISO-8601, e.g. 2025-01-09T07:00:00Z"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m prviz.monitoring.tick",
        description="One monitoring tick (freshness, late labels, alerts) at a chosen time.",
    )
    parser.add_argument(
        "--now", type=parse_utc_time, help="evaluate as of this UTC time (ISO-8601)"
    )
    parser.add_argument(
        "--no-launch", action="store_true", help="list late-label recomputes, do not run them"
    )
    return parser


def tick_from_settings(settings, now: dt.datetime | None, launch: bool = True) -> TickResult:
    """What a `prviz alerts tick` command would call: the code location of `settings`."""
    from prviz.definitions import DAILY_JOB, build_definitions
    from prviz.monitoring.config import MonitoringConfig
    from prviz.monitoring.definitions import build_monitoring
    from prviz.partitions import daily_partitions

    os.environ.setdefault("DAGSTER_HOME", settings.dagster_home)
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    now = now or dt.datetime.now(dt.UTC)
    defs = build_definitions(settings)
    job = next(j for j in defs.jobs if j.name == DAILY_JOB)
    monitoring = build_monitoring(
        MonitoringConfig.from_settings(settings),
        daily_partitions(settings.start_date),
        job,
        clock=lambda: now,
    )
    instance = dg.DagsterInstance.get()
    return run_tick(
        defs, monitoring, instance, now, Path(settings.home) / STATE_FILE, launch=launch
    )


def main(argv: list[str] | None = None) -> int:
    from prviz.config import ConfigError, Settings

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "botocore", "urllib3", "matplotlib", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        result = tick_from_settings(Settings.from_env(), args.now, not args.no_launch)
    except ConfigError as error:
        sys.stderr.write(f"prviz monitoring tick: error: {error}\n")
        return 2
    sys.stdout.write("\n".join(result.lines()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
