"""The data- and model-quality rules, as plain functions of a day's figures: no Dagster, no I/O.

Each rule returns a `Verdict`: passed or not, one sentence that names the day and says what is
wrong (it becomes the alert text), and the figures behind it (they become check metadata, numbers
stay numbers so the UI plots them by partition). Thresholds are inclusive: a figure exactly at
its threshold passes.

When a rule cannot judge (no baseline yet, no labels yet), it passes and says why, so that one
root cause raises one alert: a day without captures fails `capture_hours_complete`, not also the
quarantine and volume rules; a day without labels fails `label_coverage`, not also
`has_positives`.
"""

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from prviz.monitoring.config import MIN_BASELINE_DAYS

HOURS = tuple(range(24))


@dataclass(frozen=True)
class Verdict:
    passed: bool
    description: str
    metadata: dict = field(default_factory=dict)


def _pct(value: float) -> str:
    return f"{100 * value:.2f} %"


def _reasons(by_reason: Mapping[str, int], total: int) -> str:
    """'malformed_json 100 (1.00 %), unknown_key 3 (0.03 %)': count and share of `total`."""
    parts = [
        f"{reason} {count} ({_pct(count / total) if total else '—'})"
        for reason, count in sorted(by_reason.items())
        if count
    ]
    return ", ".join(parts) or "no reasons"


def _rates_by_reason(prefix: str, by_reason: Mapping[str, int], total: int) -> dict:
    """Per-reason shares as numbers (`{prefix}/{reason}`), so the UI plots each by partition."""
    if total <= 0:
        return {}
    return {f"{prefix}/{reason}": count / total for reason, count in sorted(by_reason.items())}


def quarantine_rate(
    day: str,
    capture_records: int,
    quarantined_records: int,
    by_reason: Mapping[str, int] | None,
    max_rate: float,
) -> Verdict:
    """Share of the day's capture records that could not be parsed must be <= `max_rate`."""
    figures = {
        "day": day,
        "capture_records": capture_records,
        "quarantined_records": quarantined_records,
        "max_quarantine_rate": max_rate,
        "quarantined_by_reason": dict(by_reason or {}),
    }
    if capture_records <= 0:
        return Verdict(
            True,
            f"no capture records on {day}: nothing to judge "
            "(capture_hours_complete reports the missing data)",
            figures,
        )
    rate = quarantined_records / capture_records
    figures["quarantine_rate"] = rate
    figures.update(_rates_by_reason("quarantine_rate", by_reason or {}, capture_records))
    reasons = _reasons(by_reason or {}, capture_records)
    if rate <= max_rate:
        detail = f": {reasons}" if quarantined_records else ""
        return Verdict(
            True,
            f"{_pct(rate)} of {capture_records} capture records quarantined on "
            f"{day} (max {_pct(max_rate)}){detail}",
            figures,
        )
    return Verdict(
        False,
        f"{_pct(rate)} of the capture records of {day} were quarantined ({quarantined_records} of "
        f"{capture_records}; max {_pct(max_rate)}): {reasons}. The curves would be computed on a "
        "biased subset; see quarantine_captures for the bad lines.",
        figures,
    )


def capture_hours_complete(
    day: str,
    hours_present: Mapping[str, int] | None,
    hours_missing: Mapping[str, Sequence[int]] | None,
    expected_streams: Iterable[str],
    max_missing_hours: int,
    empty_streams: Iterable[str] = (),
) -> Verdict:
    """Every capture stream (endpoint/variant) must have data for every hour of the day.

    `hours_present`/`hours_missing` are the job's figures for the day (streams with at least one
    hour folder). A stream in `expected_streams` (those seen the day before) that has no hour at
    all today is missing all 24 hours. A stream may miss at most `max_missing_hours` hours.
    `empty_streams` (hour folders, not one record) are named here but judged by
    `capture_streams_have_records`: one root cause, one alert.
    """
    present = dict(hours_present or {})
    reported = {k: sorted(int(h) for h in v) for k, v in (hours_missing or {}).items()}
    streams = sorted(set(present) | set(reported) | set(expected_streams))
    missing = {}
    for stream in streams:
        if stream in reported:
            missing[stream] = reported[stream]
        elif stream not in present:
            missing[stream] = list(HOURS)
    figures = {
        "day": day,
        "streams": len(streams),
        "max_missing_capture_hours": max_missing_hours,
        "missing_hours_by_stream": missing,
        "missing_hours_total": sum(len(v) for v in missing.values()),
        "worst_stream_missing_hours": max((len(v) for v in missing.values()), default=0),
        "empty_streams": sorted(empty_streams),
    }
    if not streams:
        figures["worst_stream_missing_hours"] = 24
        return Verdict(
            False,
            f"no capture data at all for {day}: every hour is missing. Check "
            "the endpoint's Data Capture configuration and the capture prefix.",
            figures,
        )
    bad = {k: v for k, v in missing.items() if len(v) > max_missing_hours}
    if not bad:
        tolerated = "; ".join(
            f"{k}: hours {_hour_ranges(v)}" for k, v in sorted(missing.items()) if v
        )
        empty = ", ".join(figures["empty_streams"])
        return Verdict(
            True,
            f"{len(streams)} capture stream(s) complete for {day} "
            f"({figures['missing_hours_total']} hour(s) missing, "
            f"max {max_missing_hours} per stream)"
            + (f"; missing within the tolerance: {tolerated}" if tolerated else "")
            + (
                f"; {empty} has hour folders but no record (see capture_streams_have_records)"
                if empty
                else ""
            ),
            figures,
        )
    detail = "; ".join(f"{k}: hours {_hour_ranges(v)}" for k, v in sorted(bad.items()))
    return Verdict(
        False,
        f"capture data for {day} is incomplete (max {max_missing_hours} missing hour(s) per "
        f"stream): {detail}. The day's curves would cover only part of the traffic; re-run the "
        "day once the late files have landed.",
        figures,
    )


def capture_streams_have_records(
    day: str, records_by_stream: Mapping[str, int] | None, hours_present: Mapping[str, int] | None
) -> Verdict:
    """Every capture stream with hour folders on the day must hold at least one record.

    `records_by_stream` is the job's `capture_records_by_variant` (0 for a stream whose folders
    hold only empty files or blank lines). Such a stream has no curve at all that day; the other
    streams' curves are unaffected, so this is a warning rather than a blocker.
    """
    records = {k: int(v) for k, v in (records_by_stream or {}).items()}
    present = dict(hours_present or {})
    empty = sorted(k for k, v in records.items() if v <= 0)
    figures: dict = {"day": day, "streams": len(records), "empty_streams": empty}
    for stream, count in sorted(records.items()):
        figures[f"capture_records/{stream}"] = count
    if not records:
        return Verdict(
            True,
            f"no capture stream on {day}: nothing to judge (capture_hours_complete reports it)",
            figures,
        )
    if not empty:
        return Verdict(True, f"all {len(records)} capture stream(s) of {day} have records", figures)
    detail = ", ".join(f"{k} ({present.get(k, 0)} hour folder(s))" for k in empty)
    return Verdict(
        False,
        f"capture stream(s) with files but not one record on {day}: {detail}. The files are "
        "empty or blank, so the variant has no curve for the day. Check its traffic and its Data "
        "Capture destination (a writer or copy job producing empty objects).",
        figures,
    )


def label_quarantine_rate(
    day: str,
    label_lines: int,
    quarantined: int,
    by_reason: Mapping[str, int] | None,
    max_rate: float,
    unknown_key_window: str = "",
    prediction_days_available: int | None = None,
    prediction_days_missing: Sequence[str] = (),
) -> Verdict:
    """Share of the ground-truth lines collected on the day that were quarantined <= `max_rate`.

    Every reason counts, `unknown_key` included (a valid line whose key matches no prediction of
    `unknown_key_window`). With prediction days of that window not in the lake
    (`prediction_days_missing`), labels of those days count as unknown until they are processed
    and the day is re-run; the description says so.
    """
    reasons = dict(by_reason or {})
    unknown = int(reasons.get("unknown_key", 0))
    missing = list(prediction_days_missing or ())
    figures: dict = {
        "day": day,
        "label_lines": label_lines,
        "quarantined_labels": quarantined,
        "label_lines_matched": label_lines - quarantined,
        "unknown_key_labels": unknown,
        "max_quarantine_rate": max_rate,
        "quarantined_labels_by_reason": reasons,
        "unknown_key_window": unknown_key_window,
        "unknown_key_prediction_days_missing": missing,
    }
    if prediction_days_available is not None:
        figures["unknown_key_prediction_days"] = int(prediction_days_available)
    if label_lines <= 0:
        return Verdict(
            True,
            f"no ground-truth line was collected on {day}: nothing to judge "
            "(label_coverage reports missing labels)",
            figures,
        )
    rate = quarantined / label_lines
    figures["label_quarantine_rate"] = rate
    figures.update(_rates_by_reason("label_quarantine_rate", reasons, label_lines))
    text = _reasons(reasons, label_lines)
    note = ""
    if unknown:
        note = f" {unknown} valid line(s) match no prediction of {unknown_key_window}"
        if missing:
            total = len(missing) + int(prediction_days_available or 0)
            note += (
                f" ({len(missing)} of those {total} prediction days are not in the lake: "
                f"labels of those days count as unknown until they are processed and {day} "
                "is re-run)"
            )
        note += "."
    if rate <= max_rate:
        detail = f": {text}." if quarantined else "."
        return Verdict(
            True,
            f"{_pct(rate)} of {label_lines} ground-truth lines collected on {day} quarantined "
            f"(max {_pct(max_rate)}){detail}{note}",
            figures,
        )
    return Verdict(
        False,
        f"{_pct(rate)} of the ground-truth lines collected on {day} were quarantined "
        f"({quarantined} of {label_lines}; max {_pct(max_rate)}): {text}.{note} The lines are in "
        "quarantine_labels with their reason; unknown keys usually mean the label feed's eventIds "
        "do not match the captures' inferenceIds (or labels came after their window).",
        figures,
    )


def conflicting_labels(
    day: str, delivered_keys: int, conflicting_keys: int, duplicate_keys: int, max_rate: float
) -> Verdict:
    """Share of the day's labeled keys that received conflicting labels must be <= `max_rate`.

    A conflict (two different values for one key within the window) is resolved by keeping the
    latest delivery; duplicates (the same value again) are harmless and only reported.
    """
    figures: dict = {
        "day": day,
        "label_delivered_keys": delivered_keys,
        "conflicting_keys": conflicting_keys,
        "duplicate_keys": duplicate_keys,
        "max_conflicting_rate": max_rate,
    }
    if delivered_keys <= 0:
        return Verdict(
            True, f"no key of {day} has a label yet: no conflict or duplicate to judge", figures
        )
    rate = conflicting_keys / delivered_keys
    figures["conflicting_rate"] = rate
    figures["duplicate_rate"] = duplicate_keys / delivered_keys
    duplicates = (
        f"{duplicate_keys} key(s) received the same label more than once "
        f"({_pct(duplicate_keys / delivered_keys)}; harmless)"
    )
    if rate <= max_rate:
        return Verdict(
            True,
            f"{conflicting_keys} of {delivered_keys} labeled keys of {day} received conflicting "
            f"labels ({_pct(rate)}, max {_pct(max_rate)}; the latest delivery is kept); "
            f"{duplicates}",
            figures,
        )
    return Verdict(
        False,
        f"{_pct(rate)} of the labeled keys of {day} received conflicting labels "
        f"({conflicting_keys} of {delivered_keys}; max {_pct(max_rate)}): the latest delivery is "
        f"kept, so the day's curves rest on the label source's last word. Ask the label source "
        f"why labels change; {duplicates}.",
        figures,
    )


def _hour_ranges(hours: Sequence[int]) -> str:
    """[0, 1, 2, 5, 23] -> '00-02, 05, 23'."""
    out, start, prev = [], None, None
    for hour in sorted(hours):
        if start is None:
            start = prev = hour
        elif hour == prev + 1:
            prev = hour
        else:
            out.append((start, prev))
            start = prev = hour
    if start is not None:
        out.append((start, prev))
    return ", ".join(f"{a:02d}" if a == b else f"{a:02d}-{b:02d}" for a, b in out)


def label_coverage(
    day: str,
    n_predictions: int,
    n_labeled: int,
    min_coverage: float,
    age_days: int,
    grace_days: int,
) -> Verdict:
    """Share of the day's predictions with a label must be >= `min_coverage`.

    Labels arrive over days, so the minimum applies only once the day is `grace_days` old
    (`age_days` = today - day); before that only "no label at all" fails. The check runs again
    whenever late labels recompute the day.
    """
    coverage = n_labeled / n_predictions if n_predictions else 0.0
    figures = {
        "day": day,
        "n_predictions": n_predictions,
        "n_labeled": n_labeled,
        "label_coverage": coverage,
        "min_label_coverage": min_coverage,
        "age_days": age_days,
        "grace_days": grace_days,
    }
    if n_predictions <= 0:
        return Verdict(True, f"no predictions on {day}: nothing to label", figures)
    if n_labeled <= 0:
        return Verdict(
            False,
            f"no ground-truth label has arrived for any of the {n_predictions} "
            f"predictions of {day}: check the ground-truth delivery",
            figures,
        )
    if age_days < grace_days:
        return Verdict(
            True,
            f"label coverage of {day} is {_pct(coverage)} so far; the minimum "
            f"{_pct(min_coverage)} applies from {grace_days} days after the day "
            "(labels arrive late)",
            figures,
        )
    if coverage >= min_coverage:
        return Verdict(
            True, f"label coverage of {day} is {_pct(coverage)} (min {_pct(min_coverage)})", figures
        )
    return Verdict(
        False,
        f"only {_pct(coverage)} of the predictions of {day} have a label {age_days} days later "
        f"(min {_pct(min_coverage)}): its curves rest on a small, possibly biased sample. Check "
        "the ground-truth delivery and that its eventIds match the captures' inferenceIds.",
        figures,
    )


def volume_near_median(
    day: str, count: int, history: Mapping[str, int], max_change: float
) -> Verdict:
    """The day's prediction count must be within ±`max_change` (relative) of the median of the
    trailing days in `history` (day -> count; at least MIN_BASELINE_DAYS of them)."""
    figures = {
        "day": day,
        "predictions": count,
        "baseline_days": len(history),
        "max_volume_change": max_change,
    }
    if len(history) < MIN_BASELINE_DAYS:
        return Verdict(
            True,
            f"{count} predictions on {day}; only {len(history)} earlier day(s) "
            f"with figures, need {MIN_BASELINE_DAYS} for a baseline",
            figures,
        )
    median = float(statistics.median(history.values()))
    figures["baseline_median"] = median
    if median <= 0:
        return Verdict(
            True,
            f"{count} predictions on {day}; the trailing median is 0, no relative change to judge",
            figures,
        )
    change = (count - median) / median
    figures["volume_change"] = change
    if abs(count - median) <= max_change * median:
        return Verdict(
            True,
            f"{count} predictions on {day}, {change:+.1%} from the trailing "
            f"median {median:.0f} (max ±{max_change:.0%})",
            figures,
        )
    return Verdict(
        False,
        f"{count} predictions on {day} is {change:+.1%} from the median {median:.0f} of the "
        f"{len(history)} previous days (max ±{max_change:.0%}): traffic changed, or captures "
        "are missing or duplicated.",
        figures,
    )


def has_positives(day: str, rows: Sequence[Mapping]) -> Verdict:
    """Every variant with labeled predictions must have at least one positive (else AP is
    undefined). `rows` are the day's pr_summary rows."""
    figures = {"day": day, "variants": len(rows)}
    none = sorted(
        f"{r['endpoint']}/{r['variant']}"
        for r in rows
        if int(r.get("n_labeled") or 0) > 0 and int(r.get("n_positives") or 0) == 0
    )
    figures["variants_without_positives"] = none
    for row in rows:
        figures[f"n_positives/{row['endpoint']}/{row['variant']}"] = int(row["n_positives"] or 0)
    if not rows:
        return Verdict(False, f"pr_summary of {day} has no rows: nothing was computed", figures)
    if not none:
        return Verdict(True, f"every labeled variant has positives on {day}", figures)
    return Verdict(
        False,
        f"no positive label on {day} for {', '.join(none)}: average precision and the curve are "
        "undefined for that day (shown as '—'). Check the label feed or the base rate.",
        figures,
    )


def _median_by_variant(history: Sequence[Mapping], metric: str) -> dict[str, tuple[float, int]]:
    values: dict[str, list[float]] = {}
    for row in history:
        value = row.get(metric)
        if value is None or value != value:  # None or NaN
            continue
        values.setdefault(f"{row['endpoint']}/{row['variant']}", []).append(float(value))
    return {k: (float(statistics.median(v)), len(v)) for k, v in values.items()}


def metric_vs_baseline(
    day: str, metric: str, today: Sequence[Mapping], history: Sequence[Mapping], max_drop: float
) -> Verdict:
    """Per variant, today's `metric` (e.g. average_precision) must be >= the median of the
    trailing days' values minus `max_drop` (absolute). Variants with fewer than
    MIN_BASELINE_DAYS earlier values, or no value today, are not judged."""
    baselines = _median_by_variant(history, metric)
    figures: dict = {"day": day, "metric": metric, f"max_{metric}_drop": max_drop}
    drops, judged, skipped = [], 0, []
    for row in sorted(today, key=lambda r: (r["endpoint"], r["variant"])):
        name = f"{row['endpoint']}/{row['variant']}"
        value = row.get(metric)
        base, n = baselines.get(name, (None, 0))
        if value is None or value != value or base is None or n < MIN_BASELINE_DAYS:
            skipped.append(name)
            continue
        judged += 1
        figures[f"{metric}/{name}"] = float(value)
        figures[f"baseline/{name}"] = base
        figures[f"change/{name}"] = float(value) - base
        if float(value) < base - max_drop:
            drops.append(
                f"{name} {float(value):.4f} vs median {base:.4f} ({float(value) - base:+.4f})"
            )
    figures["variants_judged"] = judged
    figures["variants_not_judged"] = skipped
    label = metric.replace("_", " ")
    if drops:
        return Verdict(
            False,
            f"{label} on {day} dropped by more than {max_drop:.3f} below the median of the "
            f"previous days: {'; '.join(drops)}. Look for a model or data change (and a low "
            "label coverage, which biases a young day).",
            figures,
        )
    if not judged:
        return Verdict(
            True,
            f"{label} on {day}: no variant has both a value and a "
            f"{MIN_BASELINE_DAYS}-day baseline yet",
            figures,
        )
    return Verdict(
        True,
        f"{label} on {day} within {max_drop:.3f} of the trailing median for {judged} variant(s)",
        figures,
    )


def _champion_of(endpoint: str, variants: Iterable[str], champions: Sequence[str]) -> str | None:
    """A champion is configured as `endpoint/variant`, or as a variant name for every endpoint."""
    names = set(variants)
    for item in champions:
        if "/" in item:
            ep, var = item.split("/", 1)
            if ep == endpoint and var in names:
                return var
    for item in champions:
        if "/" not in item and item in names:
            return item
    return None


def challenger_vs_champion(
    day: str, today: Sequence[Mapping], champions: Sequence[str], max_drop: float
) -> Verdict:
    """Per endpoint with a configured champion, every other variant's AP must be >= the
    champion's AP minus `max_drop`; a challenger that beats the champion by more than
    `max_drop` is reported (it passes: that is a promotion candidate, not an incident)."""
    figures: dict = {"day": day, "max_ap_drop": max_drop, "champions": list(champions)}
    by_endpoint: dict[str, dict[str, Mapping]] = {}
    for row in today:
        by_endpoint.setdefault(row["endpoint"], {})[row["variant"]] = row
    worse, better, compared = [], [], 0
    for endpoint, variants in sorted(by_endpoint.items()):
        champion = _champion_of(endpoint, variants, champions)
        if champion is None:
            continue
        champ_ap = variants[champion].get("average_precision")
        if champ_ap is None or champ_ap != champ_ap:
            continue
        for name, row in sorted(variants.items()):
            ap = row.get("average_precision")
            if name == champion or ap is None or ap != ap:
                continue
            compared += 1
            delta = float(ap) - float(champ_ap)
            figures[f"ap_minus_champion/{endpoint}/{name}"] = delta
            text = f"{endpoint}/{name} {float(ap):.4f} vs champion {champion} {float(champ_ap):.4f}"
            if delta < -max_drop:
                worse.append(f"{text} ({delta:+.4f})")
            elif delta > max_drop:
                better.append(f"{text} ({delta:+.4f})")
    figures["challengers_compared"] = compared
    if worse:
        return Verdict(
            False,
            f"challenger AP on {day} is more than {max_drop:.3f} below its champion: "
            f"{'; '.join(worse)}. The challenger's traffic share is served worse; consider "
            "reducing it.",
            figures,
        )
    if not compared:
        return Verdict(True, f"no champion/challenger pair with an AP on {day}", figures)
    note = f"; promotion candidate(s): {'; '.join(better)}" if better else ""
    return Verdict(
        True,
        f"{compared} challenger(s) within {max_drop:.3f} AP of their champion on {day}{note}",
        figures,
    )
