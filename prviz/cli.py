"""`prviz`: the project's command line (demo data, backfills, summaries, the dashboard server).

User mistakes (a bad date, a missing Java, an unreachable lake) end with one clear line on stderr
and a non-zero exit, never a traceback.
"""

import argparse
import datetime as dt
import logging
import os
import sys
import time
from pathlib import Path

EXIT_USAGE = 2
log = logging.getLogger("prviz")


class UserError(Exception):
    """Something the user can fix; printed as one line, exit code 2."""


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _settings():
    from prviz.config import Settings

    return Settings.from_env()


def _progress(message: str) -> None:
    """Progress on a terminal overwrites one line; elsewhere it is a plain log line."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[K{message}")
        sys.stderr.flush()
    else:
        log.info(message)


def _end_progress() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\n")


# -- commands ----------------------------------------------------------------------------------
def cmd_demo_data(args) -> int:
    from prviz.demo.generator import DemoSpec, write_demo_data

    if getattr(args, "hostile", False):
        return _hostile_day(args)
    args.days = args.days or 7
    spec = DemoSpec(records_per_day=args.records_per_day)
    out = Path(args.out)
    started = time.monotonic()
    total = {"records": 0, "bytes": 0, "files": 0}
    for offset in range(args.days):
        day = args.start + dt.timedelta(days=offset)
        report = write_demo_data(out, day, 1, seed=args.seed * 100_003 + offset, spec=spec)
        totals = report.totals()
        total["records"] += totals["capture_records"]
        total["bytes"] += totals["capture_bytes"] + totals["label_bytes"]
        total["files"] += totals["capture_files"] + totals["label_files"]
        _progress(
            f"demo data: day {offset + 1}/{args.days} ({day}) · {total['files']} files · "
            f"{total['records']:,} capture records"
        )
    _end_progress()
    seconds = time.monotonic() - started
    print(
        f"wrote {args.days} day(s) of demo data in {seconds:.1f} s: {total['records']:,} capture "
        f"records, {total['files']:,} files, {total['bytes'] / 1e6:.1f} MB"
    )
    print(f"  captures:     {out / 'capture'}")
    print(f"  ground truth: {out / 'ground-truth'}")
    return 0


def _hostile_day(args) -> int:
    """One day of bad input at volume (docs/data-contracts.md): what was written, exactly."""
    from prviz.demo.generator import write_hostile_day

    if args.days not in (None, 1):
        raise UserError("--hostile writes one day: leave out --days (or use --days 1)")
    started = time.monotonic()
    report = write_hostile_day(Path(args.out), args.start, seed=args.seed)
    print(
        f"wrote a hostile day {report.date} in {time.monotonic() - started:.1f} s: "
        f"{report.capture_records:,} capture records = {report.good_records:,} good + "
        f"{report.quarantined_records:,} bad {report.bad_records}, "
        f"{report.capture_bytes / 1e6:.1f} MB (one file of {report.big_file_bytes / 1e6:.1f} MB); "
        f"missing hours {report.missing_hours}; empty streams {report.empty_streams}"
    )
    print(
        f"  labels: {report.label_lines:,} lines = {report.label_lines_matched:,} matched + "
        f"{report.quarantined_label_lines:,} to quarantine {report.label_quarantine}; "
        f"{report.duplicate_keys} duplicate, {report.conflicting_keys} conflicting keys"
    )
    print(f"  captures:     {Path(args.out) / 'capture'}")
    print(f"  ground truth: {Path(args.out) / 'ground-truth'}")
    return 0


def _ensure_dagster_home(home: Path) -> None:
    """Create prviz's own Dagster home on first use (telemetry off: a local tool stays quiet).

    An existing dagster.yaml is never touched.
    """
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(
            "# written by prviz on first use; edit freely\ntelemetry:\n  enabled: false\n"
        )


def run_backfill(settings, start: dt.date, end: dt.date, labels_only: bool = False) -> None:
    """Materialize every asset for [start, end] in one run against the local Dagster instance.

    `labels_only`: what the late-label sensor runs, labeled_predictions and everything
    downstream of it (the parse is not repeated; `predictions` must exist for those days).
    """
    import dagster as dg

    from prviz.definitions import build_definitions
    from prviz.spark.session import java_version

    if end < start:
        raise UserError(f"--end {end} is before --start {start}")
    if start < settings.start_date:
        raise UserError(
            f"{start} is before the first partition ({settings.start_date}): set "
            f"PRVIZ_START_DATE={start.isoformat()} or start later"
        )
    java_version()
    os.environ.setdefault("DAGSTER_HOME", settings.dagster_home)
    _ensure_dagster_home(Path(os.environ["DAGSTER_HOME"]))
    defs = build_definitions(settings)
    instance = dg.DagsterInstance.get()
    job = defs.resolve_job_def("daily_pr_job")
    selection = None
    if labels_only:
        from prviz.monitoring.sensors import recompute_assets

        selection = recompute_assets(defs.get_repository_def())
    what = "labeled_predictions and downstream" if labels_only else "every asset"
    _progress(f"backfill {start}..{end} ({what}): one run, one Spark application")
    result = job.execute_in_process(
        instance=instance,
        asset_selection=selection,
        tags={
            "dagster/asset_partition_range_start": start.isoformat(),
            "dagster/asset_partition_range_end": end.isoformat(),
            "prviz/launched_by": "prviz backfill",
        },
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        raise_on_error=False,
    )
    _end_progress()
    if not result.success:
        failure = next((e for e in result.all_events if e.event_type_value == "STEP_FAILURE"), None)
        detail = failure.event_specific_data.error.message.strip() if failure else "see the logs"
        raise UserError(f"the run {result.run_id} failed: {detail}")


def print_summary(settings, start: dt.date, end: dt.date) -> None:
    import pandas as pd

    from prviz.lake.paths import day_range

    lake = settings.job_config().lake()
    days = day_range(start.isoformat(), end.isoformat())
    table, missing = lake.read_days("pr_summary", days)
    frames = []
    quarantined = {}
    for day in days:
        for dataset in ("quarantine_captures", "quarantine_labels"):
            if lake.has_partition(dataset, day):
                quarantined[day] = (
                    quarantined.get(day, 0) + lake.read_partition(dataset, day, ["reason"]).num_rows
                )
    if table is not None:
        frames.append(table.to_pandas())
    if not frames or frames[0].empty:
        print("no pr_summary rows for that range")
        return
    frame = pd.concat(frames)
    header = (
        f"{'day':<10}  {'endpoint/variant':<28} {'predictions':>11} {'labeled':>8} "
        f"{'coverage':>8} {'positives':>9} {'AP':>7} {'PR-AUC':>7} {'best F1':>7} "
        f"{'@thr':>6} {'quarant.':>8}"
    )
    print(header)
    print("-" * len(header))

    def fmt(value, width, digits=4):
        return (
            f"{'—':>{width}}" if value is None or value != value else f"{value:>{width}.{digits}f}"
        )

    for row in frame.sort_values(["dt", "endpoint", "variant"]).itertuples():
        print(
            f"{row.dt:<10}  {row.endpoint + '/' + row.variant:<28} {row.n_predictions:>11,} "
            f"{row.n_labeled:>8,} {fmt(row.label_coverage, 8, 3)} {row.n_positives:>9,} "
            f"{fmt(row.average_precision, 7)} {fmt(row.pr_auc, 7)} {fmt(row.best_f1, 7)} "
            f"{fmt(row.best_f1_threshold, 6, 3)} {quarantined.get(row.dt, 0):>8,}"
        )
    if missing:
        print(f"(no pr_summary for {', '.join(missing)})")
    print(
        "\nAP = average precision (scikit-learn's step-wise sum); PR-AUC = trapezoid "
        "(Spark MLlib's areaUnderPR); quarant. = quarantined capture + label lines that day"
    )


def _where(settings) -> None:
    from prviz.publish.assets import DASHBOARD_PATH

    lake = settings.job_config().lake()
    print("\nresults:")
    print(f"  lake:       {settings.lake_uri}  (pr_summary/, pr_curve_points/, score_counts/, …)")
    if lake.exists(lake.path(DASHBOARD_PATH)):
        print(f"  dashboard:  {lake.path(DASHBOARD_PATH)}")
        print("  serve it:   prviz serve   ->  http://127.0.0.1:8765/  (read-only, loopback only)")
    print(
        f"  Dagster UI: make dev       ->  http://127.0.0.1:3000/  (DAGSTER_HOME="
        f"{os.environ.get('DAGSTER_HOME', settings.dagster_home)})"
    )


def cmd_backfill(args) -> int:
    settings = _settings()
    started = time.monotonic()
    run_backfill(settings, args.start, args.end, labels_only=args.labels_only)
    print(f"backfilled {args.start}..{args.end} in {time.monotonic() - started:.1f} s\n")
    print_summary(settings, args.start, args.end)
    _where(settings)
    return 0


def cmd_run(args) -> int:
    """The README's first command: a week of demo data through the whole pipeline."""
    from dataclasses import replace

    settings = _settings()
    end = args.start + dt.timedelta(days=args.days - 1)
    if settings.start_date > args.start:
        settings = replace(settings, start_date=args.start)
    from prviz.spark.session import java_version

    java_version()
    demo = argparse.Namespace(
        out=settings.home, start=args.start, days=args.days, seed=args.seed,
        records_per_day=args.records_per_day,
    )  # fmt: skip
    cmd_demo_data(demo)
    started = time.monotonic()
    run_backfill(settings, args.start, end)
    print(f"\npipeline ran {args.start}..{end} in {time.monotonic() - started:.1f} s\n")
    print_summary(settings, args.start, end)
    _where(settings)
    return 0


def cmd_summary(args) -> int:
    print_summary(_settings(), args.start, args.end)
    return 0


def cmd_serve(args) -> int:
    from prviz.publish.server import serve

    settings = _settings()
    lake = settings.job_config().lake()
    if not lake.is_local:
        raise UserError("prviz serve serves a local lake; in aws mode use the QuickSight dashboard")
    folder = Path(lake.path("dashboard"))
    if not (folder / "index.html").exists():
        raise UserError(f"no dashboard at {folder}: run `make run` (or `prviz backfill`) first")
    print(f"serving {folder} read-only on http://127.0.0.1:{args.port}/ (Ctrl-C stops)")
    serve(folder, port=args.port)
    return 0


def _utc_time(text: str) -> dt.datetime:
    from prviz.monitoring.tick import parse_utc_time

    return parse_utc_time(text)


def cmd_alerts_tick(args) -> int:
    """One evaluation of freshness, late labels and alerts, at `--now` (default: now)."""
    from prviz.monitoring.tick import tick_from_settings

    result = tick_from_settings(_settings(), args.now, launch=not args.no_launch)
    for line in result.lines():
        print(line)
    return 0


def cmd_package(args) -> int:
    """Build the Spark job's code for EMR (content-hashed) and upload it under {prefix}/code/."""
    from prviz.packaging import PackagingError, build_package, upload_package

    try:
        paths = build_package(
            args.out,
            deps=not args.no_deps,
            wheel=not args.no_wheel,
            platform=args.platform,
            wheelhouse=args.wheelhouse,
        )
        if not args.s3_prefix:
            print(f"built in {args.out} (no --s3-prefix: nothing uploaded)")
            return 0
        import boto3

        result = upload_package(paths, args.s3_prefix, boto3.client("s3", region_name=args.region))
    except PackagingError as error:
        raise UserError(str(error)) from error
    print(
        f"uploaded {', '.join(result.uploaded) or 'nothing'}; "
        f"already there {', '.join(result.skipped) or 'nothing'}"
    )
    for name, uri in result.settings().items():
        print(f"{name}={uri}")
    return 0


def cmd_check_java(args) -> int:
    from prviz.spark.session import java_version

    print(f"Java {java_version()}: OK for Spark")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prviz",
        description="Daily precision-recall curves from SageMaker Data Capture (Dagster + Spark).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo-data", help="write demo captures and labels in the real formats")
    p.add_argument("--out", required=True, help="folder to write capture/ and ground-truth/ into")
    p.add_argument("--start", type=_date, required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--days", type=_positive, default=None, help="number of days (default 7)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--records-per-day",
        type=_positive,
        default=20_000,
        help="capture records per day across variants (default 20000)",
    )
    p.add_argument(
        "--hostile",
        action="store_true",
        help="instead: one day of bad input at volume (1%% malformed, unknown encodings, bad "
        "scores, unknown/duplicate/conflicting labels, a missing hour, an empty variant, a 100 MB "
        "file)",
    )
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("backfill", help="run every asset for a range of days (one run)")
    p.add_argument("--start", type=_date, required=True, help="first day, YYYY-MM-DD")
    p.add_argument("--end", type=_date, required=True, help="last day, YYYY-MM-DD (inclusive)")
    p.add_argument(
        "--labels-only",
        action="store_true",
        help="recompute from labeled_predictions down (late labels): no parse of the captures",
    )
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("run", help="demo data for a week -> local Spark -> curves -> dashboard")
    p.add_argument("--start", type=_date, default=dt.date(2025, 1, 1), help="first day")
    p.add_argument("--days", type=_positive, default=7, help="number of days (default 7)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--records-per-day",
        type=_positive,
        default=20_000,
        help="capture records per day (default 20000)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("summary", help="print the per-day, per-variant summary table")
    p.add_argument("--start", type=_date, required=True)
    p.add_argument("--end", type=_date, required=True)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("serve", help="serve the embedded dashboard on 127.0.0.1 (GET only)")
    p.add_argument("--port", type=int, default=8765)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "alerts-tick",
        help="evaluate freshness, late labels and alerts once (see docs/operations.md)",
    )
    p.add_argument("--now", type=_utc_time, default=None, help="evaluate as of this UTC time")
    p.add_argument("--no-launch", action="store_true", help="list late-label recomputes only")
    p.set_defaults(func=cmd_alerts_tick)

    p = sub.add_parser("package", help="build the Spark job's code for EMR and upload it to S3")
    p.add_argument("--s3-prefix", help="s3://bucket/prefix: upload to {prefix}/code/")
    p.add_argument("--out", default="dist/emr", help="build folder (default dist/emr)")
    p.add_argument("--platform", choices=("aarch64", "x86_64"), default="aarch64")
    p.add_argument("--region", default=None, help="AWS region of the bucket")
    p.add_argument("--wheelhouse", default=None, help="folder of wheels for an offline build")
    p.add_argument("--no-deps", action="store_true", help="skip the dependency archive")
    p.add_argument("--no-wheel", action="store_true", help="skip the prviz wheel")
    p.set_defaults(func=cmd_package)

    p = sub.add_parser("check-java", help="check that Java 17+ is there for Spark")
    p.set_defaults(func=cmd_check_java)
    return parser


def main(argv: list[str] | None = None) -> int:
    from prviz.config import ConfigError
    from prviz.lake.paths import UnsafePathError
    from prviz.lake.store import LakeError
    from prviz.spark.session import JavaMissingError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("py4j", "botocore", "urllib3", "matplotlib", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.func(args)
    except (UserError, ConfigError, JavaMissingError, LakeError, UnsafePathError) as error:
        print(f"prviz {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
