"""Publication: the QuickSight-ready dataset and the read-only dashboard.

`quicksight_dataset` writes CSV copies of the curves and summaries plus QuickSight S3 manifests
for the run's days (and, in aws mode, refreshes the SPICE dataset once per run: a backfill is
one ingestion). `pr_dashboard` rebuilds the self-contained page from the lake after every run,
so it always shows every day there is.

Both are retried once (`PUBLISH_RETRY_POLICY`) when they fail: a QuickSight throttle that
outlasted the publisher's own backoff, a failed SPICE ingestion, an S3 lake that was briefly
unreachable. A retry is safe: every CSV, manifest and page is replaced whole, the dataset, data
sources and dashboard are only changed when they differ, and an ingestion id is derived from the
CSVs, so the retry awaits or reuses an ingestion already started (a FAILED one is started again
under a suffixed id). A failed attempt changes nothing in QuickSight that the retry must undo.
A corrupt file in the lake is not retried: the same bytes would be read again (re-run the day).
"""

import contextlib
import datetime as dt
from collections.abc import Iterator

import dagster as dg
import pandas as pd

from prviz.lake.store import CorruptFileError, Lake
from prviz.partitions import partition_days
from prviz.publish.resources import PublisherResource
from prviz.resources import PipelineResource

DASHBOARD_PATH = "dashboard/index.html"
DASHBOARD_DAYS = 90  # the page shows the latest 90 days of the lake
# as the Spark stages' (prviz/spark/assets.py): one retry, after long enough for a throttle or an
# S3 blip to pass; tests pass a policy without the delay to build_publish_assets
PUBLISH_RETRY_POLICY = dg.RetryPolicy(max_retries=1, delay=30)


def _frame(lake: Lake, dataset: str, days: list[str]) -> pd.DataFrame:
    table = lake.read_days(dataset, days)[0]
    return table.to_pandas() if table is not None else pd.DataFrame()


def quarantine_counts(lake: Lake, days: list[str]) -> pd.DataFrame:
    """Quarantined lines per day, source and reason, for `days`."""
    frames = []
    for dataset, source in (
        ("quarantine_captures", "capture"),
        ("quarantine_labels", "ground_truth"),
    ):
        table = lake.read_days(dataset, days, columns=["reason"])[0]
        if table is not None and table.num_rows:
            frame = table.to_pandas()
            counts = frame.groupby(["dt", "reason"]).size().reset_index(name="n")
            frames.append(counts.assign(source=source))
    if not frames:
        return pd.DataFrame(columns=["dt", "source", "reason", "n"])
    return pd.concat(frames, ignore_index=True)[["dt", "source", "reason", "n"]]


def build_dashboard(
    lake: Lake, now: dt.datetime | None = None, max_days: int = DASHBOARD_DAYS
) -> tuple[str, dict]:
    """Render the page from the lake's latest `max_days` days and write it; (uri, figures).

    The window keeps the page's size and the time to build it flat as days accumulate (every
    day stays in the lake and in QuickSight; the page is the business team's recent view).
    """
    from prviz.publish.dashboard import render_dashboard

    window = lake.list_days("pr_summary")[-max_days:]
    summary = _frame(lake, "pr_summary", window)
    html = render_dashboard(
        summary=summary,
        points=_frame(lake, "pr_curve_points_thin", window),
        summary_7d=_frame(lake, "pr_curves_7d_summary", window),
        points_7d=_frame(lake, "pr_curves_7d_points_thin", window),
        quarantine=quarantine_counts(lake, window),
        refreshed_at=now or dt.datetime.now(dt.UTC),
    )
    uri = lake.write_bytes(DASHBOARD_PATH, html.encode("utf-8"))
    days = sorted(summary["dt"].unique()) if not summary.empty else []
    figures = {"days": len(days), "bytes": len(html.encode("utf-8"))}
    if days:
        figures["first_day"], figures["last_day"] = days[0], days[-1]
    return uri, figures


@contextlib.contextmanager
def _corrupt_files_fail_at_once() -> Iterator[None]:
    """A corrupt lake file fails the step without its retries (they would read it again)."""
    try:
        yield
    except CorruptFileError as error:
        raise dg.Failure(description=str(error), allow_retries=False) from error


def build_publish_assets(
    partitions_def: dg.PartitionsDefinition,
    retry_policy: dg.RetryPolicy | None = PUBLISH_RETRY_POLICY,
) -> list[dg.AssetsDefinition]:
    @dg.asset(
        name="quicksight_dataset",
        group_name="publish",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=retry_policy,
        deps=["pr_curves"],
        kinds={"csv", "quicksight"},
        description="CSV copies of pr_summary and the thinned curves under quicksight/ in the "
        "lake, with QuickSight S3 manifests (URI prefixes: a new day needs no manifest change); "
        "in aws mode the SPICE dataset is refreshed once per run.",
    )
    def quicksight_dataset(
        context: dg.AssetExecutionContext, pipeline: PipelineResource, publisher: PublisherResource
    ):
        days = partition_days(context)
        with _corrupt_files_fail_at_once():
            summary = publisher.publisher(pipeline.lake(), log=context.log).publish(days)
        for warning in summary.get("warnings", []):
            context.log.warning(f"quicksight_dataset: {warning}")
        for day in days:
            rows = summary["rows_by_day"][day]
            context.add_asset_metadata(
                {f"rows/{name}": dg.MetadataValue.int(int(n)) for name, n in rows.items()},
                partition_key=day,
            )
        return dg.MaterializeResult(
            metadata={
                "publisher": str(summary.get("publisher", publisher.mode)),
                "published": bool(summary.get("published", False)),
                "manifests": dg.MetadataValue.json(summary["manifests"]),
                "run_days": len(days),
            }
        )

    @dg.asset(
        name="pr_dashboard",
        group_name="publish",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=retry_policy,
        deps=["quicksight_dataset", "pr_curves_7d"],
        kinds={"html"},
        description="The read-only precision-recall dashboard: a self-contained HTML page in the "
        "lake (dashboard/index.html) showing the latest 90 days, rebuilt after each run; `prviz "
        "serve` serves it on "
        "127.0.0.1.",
    )
    def pr_dashboard(context: dg.AssetExecutionContext, pipeline: PipelineResource):
        with _corrupt_files_fail_at_once():
            uri, figures = build_dashboard(pipeline.lake())
        context.log.info(f"dashboard written to {uri} ({figures['days']} days)")
        return dg.MaterializeResult(
            metadata={
                "dashboard": dg.MetadataValue.path(uri.removeprefix("file://")),
                "days_shown": figures["days"],
                "first_day_shown": figures.get("first_day", ""),
                "last_day_shown": figures.get("last_day", ""),
                "page_bytes": figures["bytes"],
            }
        )

    return [quicksight_dataset, pr_dashboard]
