"""The quality rules on crafted figures, at and just past their exact thresholds."""

import pytest

from prviz.monitoring import rules

DAY = "2025-01-08"


@pytest.mark.parametrize(
    ("quarantined", "passed"), [(0, True), (100, True), (101, False), (10_000, False)]
)
def test_quarantine_rate_threshold_is_inclusive(quarantined, passed):
    verdict = rules.quarantine_rate(DAY, 10_000, quarantined, {"malformed_json": quarantined}, 0.01)
    assert verdict.passed is passed
    assert verdict.metadata["quarantine_rate"] == quarantined / 10_000
    assert verdict.metadata["day"] == DAY
    if not passed:
        assert DAY in verdict.description and "malformed_json" in verdict.description


def test_quarantine_rate_without_records_leaves_it_to_the_capture_check():
    verdict = rules.quarantine_rate(DAY, 0, 0, {}, 0.01)
    assert verdict.passed and "capture_hours_complete" in verdict.description


def test_capture_hours_complete_and_missing_hours():
    full = {"ep/a": 24, "ep/b": 24}
    assert rules.capture_hours_complete(DAY, full, {}, ["ep/a"], 0).passed

    verdict = rules.capture_hours_complete(
        DAY, {"ep/a": 21, "ep/b": 24}, {"ep/a": [0, 1, 23]}, [], 0
    )
    assert not verdict.passed
    assert "ep/a: hours 00-01, 23" in verdict.description
    assert verdict.metadata["missing_hours_by_stream"] == {"ep/a": [0, 1, 23]}
    assert verdict.metadata["worst_stream_missing_hours"] == 3
    # a tolerance of 3 missing hours per stream lets exactly that through
    assert rules.capture_hours_complete(DAY, {"ep/a": 21}, {"ep/a": [0, 1, 23]}, [], 3).passed


def test_a_stream_seen_yesterday_and_absent_today_misses_every_hour():
    verdict = rules.capture_hours_complete(DAY, {"ep/a": 24}, {}, ["ep/a", "ep/b"], 0)
    assert not verdict.passed
    assert verdict.metadata["missing_hours_by_stream"] == {"ep/b": list(range(24))}
    assert "ep/b: hours 00-23" in verdict.description


def test_no_capture_at_all_fails():
    verdict = rules.capture_hours_complete(DAY, {}, {}, [], 0)
    assert not verdict.passed and "no capture data at all" in verdict.description


@pytest.mark.parametrize(
    ("labeled", "age", "passed"),
    [
        (5_000, 3, True),  # exactly the minimum, once the grace period is over
        (4_999, 3, False),
        (4_999, 2, True),  # still inside the grace period
        (1, 1, True),
        (0, 1, False),  # no label at all fails at once
        (0, 30, False),
    ],
)
def test_label_coverage(labeled, age, passed):
    verdict = rules.label_coverage(DAY, 10_000, labeled, 0.5, age, 3)
    assert verdict.passed is passed
    assert verdict.metadata["label_coverage"] == labeled / 10_000


def test_label_coverage_without_predictions_passes():
    assert rules.label_coverage(DAY, 0, 0, 0.5, 10, 3).passed


HISTORY = {
    f"2025-01-0{d}": n
    for d, n in zip(range(1, 8), [900, 1000, 1100, 1000, 950, 1050, 1000], strict=True)
}


@pytest.mark.parametrize(
    ("count", "passed"), [(1000, True), (1500, True), (1501, False), (500, True), (499, False)]
)
def test_volume_near_median_is_relative_to_the_median(count, passed):
    verdict = rules.volume_near_median(DAY, count, HISTORY, 0.5)
    assert verdict.metadata["baseline_median"] == 1000.0
    assert verdict.passed is passed


def test_volume_needs_three_days_of_history():
    assert rules.volume_near_median(DAY, 1, {"2025-01-06": 1000, "2025-01-07": 1000}, 0.5).passed
    assert not rules.volume_near_median(DAY, 1, dict(list(HISTORY.items())[:3]), 0.5).passed


def _row(variant, **values):
    row = {"endpoint": "ep", "variant": variant, "n_labeled": 100, "n_positives": 5}
    row.update(values)
    return row


def test_has_positives():
    assert rules.has_positives(DAY, [_row("a"), _row("b")]).passed
    verdict = rules.has_positives(DAY, [_row("a"), _row("b", n_positives=0)])
    assert not verdict.passed and "ep/b" in verdict.description
    assert verdict.metadata["variants_without_positives"] == ["ep/b"]
    # no labels at all is the label-coverage check's finding, not this one's
    assert rules.has_positives(DAY, [_row("a", n_labeled=0, n_positives=0)]).passed
    assert not rules.has_positives(DAY, []).passed


def _history(values, metric="average_precision"):
    return [_row("a", **{metric: v, "dt": f"2025-01-0{i + 1}"}) for i, v in enumerate(values)]


@pytest.mark.parametrize(("today", "passed"), [(0.55, True), (0.549, False), (0.70, True)])
def test_metric_vs_baseline_exact_drop(today, passed):
    history = _history([0.58, 0.60, 0.62, 0.60, 0.61])  # median 0.60
    verdict = rules.metric_vs_baseline(
        DAY, "average_precision", [_row("a", average_precision=today)], history, 0.05
    )
    assert verdict.passed is passed
    assert verdict.metadata["baseline/ep/a"] == pytest.approx(0.60)
    if not passed:
        assert "ep/a 0.5490 vs median 0.6000" in verdict.description


def test_metric_vs_baseline_skips_short_baselines_and_missing_values():
    verdict = rules.metric_vs_baseline(
        DAY, "best_f1", [_row("a", best_f1=0.1)], _history([0.9, 0.9], "best_f1"), 0.05
    )
    assert verdict.passed and verdict.metadata["variants_not_judged"] == ["ep/a"]
    verdict = rules.metric_vs_baseline(
        DAY, "best_f1", [_row("a", best_f1=None)], _history([0.9] * 7, "best_f1"), 0.05
    )
    assert verdict.passed and verdict.metadata["variants_judged"] == 0


@pytest.mark.parametrize(
    ("challenger", "passed", "note"),
    [(0.55, True, ""), (0.549, False, ""), (0.66, True, "promotion candidate")],
)
def test_challenger_vs_champion(challenger, passed, note):
    today = [
        _row("champion", average_precision=0.60),
        _row("challenger", average_precision=challenger),
    ]
    verdict = rules.challenger_vs_champion(DAY, today, ("champion",), 0.05)
    assert verdict.passed is passed
    assert note in verdict.description
    assert verdict.metadata["ap_minus_champion/ep/challenger"] == pytest.approx(challenger - 0.60)


def test_champion_can_be_named_per_endpoint():
    today = [
        _row("blue", average_precision=0.60),
        _row("green", average_precision=0.40),
        {**_row("blue", average_precision=0.30), "endpoint": "other"},
        {**_row("green", average_precision=0.90), "endpoint": "other"},
    ]
    verdict = rules.challenger_vs_champion(DAY, today, ("ep/blue", "other/green"), 0.05)
    assert not verdict.passed
    assert "ep/green 0.4000 vs champion blue" in verdict.description
    assert "other/blue 0.3000 vs champion green" in verdict.description
    assert verdict.metadata["challengers_compared"] == 2


def test_quarantine_rate_gives_the_rate_of_every_reason():
    verdict = rules.quarantine_rate(
        DAY, 10_000, 30, {"malformed_json": 20, "unparseable_score": 10}, 0.01
    )
    assert verdict.passed
    assert verdict.metadata["quarantine_rate/malformed_json"] == 0.002
    assert verdict.metadata["quarantine_rate/unparseable_score"] == 0.001
    assert verdict.description.endswith(
        ": malformed_json 20 (0.20 %), unparseable_score 10 (0.10 %)"
    )


def test_tolerated_missing_hours_and_empty_streams_are_named():
    verdict = rules.capture_hours_complete(
        DAY, {"ep/a": 23, "ep/b": 24}, {"ep/a": [13]}, [], 1, ["ep/b"]
    )
    assert verdict.passed
    assert "missing within the tolerance: ep/a: hours 13" in verdict.description
    assert "ep/b has hour folders but no record" in verdict.description
    assert verdict.metadata["empty_streams"] == ["ep/b"]


def test_capture_streams_have_records():
    assert rules.capture_streams_have_records(DAY, {"ep/a": 5, "ep/b": 1}, {}).passed
    verdict = rules.capture_streams_have_records(DAY, {"ep/a": 5, "ep/b": 0}, {"ep/b": 24})
    assert not verdict.passed
    assert "ep/b (24 hour folder(s))" in verdict.description
    assert verdict.metadata["empty_streams"] == ["ep/b"]
    assert verdict.metadata["capture_records/ep/a"] == 5
    verdict = rules.capture_streams_have_records(DAY, {}, {})
    assert verdict.passed and "capture_hours_complete" in verdict.description


@pytest.mark.parametrize(("quarantined", "passed"), [(0, True), (100, True), (101, False)])
def test_label_quarantine_rate_threshold_is_inclusive(quarantined, passed):
    by_reason = {"unknown_key": quarantined}
    verdict = rules.label_quarantine_rate(
        DAY, 10_000, quarantined, by_reason, 0.01, "2025-01-01..2025-01-08", 8, []
    )
    assert verdict.passed is passed
    assert verdict.metadata["label_quarantine_rate"] == quarantined / 10_000
    assert verdict.metadata["label_lines_matched"] == 10_000 - quarantined
    assert verdict.metadata["unknown_key_labels"] == quarantined
    if quarantined:
        assert f"{quarantined} valid line(s) match no prediction of 2025-01-01..2025-01-08." in (
            verdict.description
        )
        assert "not in the lake" not in verdict.description


def test_label_quarantine_rate_says_when_unknown_keys_are_provisional():
    verdict = rules.label_quarantine_rate(
        DAY, 1_000, 500, {"unknown_key": 450, "invalid_label": 50}, 0.01,
        "2025-01-01..2025-01-08", 6, ["2025-01-01", "2025-01-02"],
    )  # fmt: skip
    assert not verdict.passed
    assert "invalid_label 50 (5.00 %), unknown_key 450 (45.00 %)" in verdict.description
    assert (
        "2 of those 8 prediction days are not in the lake: labels of those days count as "
        f"unknown until they are processed and {DAY} is re-run" in verdict.description
    )
    assert verdict.metadata["unknown_key_prediction_days_missing"] == ["2025-01-01", "2025-01-02"]
    assert rules.label_quarantine_rate(DAY, 0, 0, {}, 0.01).passed


@pytest.mark.parametrize(("conflicting", "passed"), [(0, True), (90, True), (91, False)])
def test_conflicting_labels_threshold_and_duplicates_never_fail(conflicting, passed):
    verdict = rules.conflicting_labels(DAY, 9_000, conflicting, 9_000, 0.01)
    assert verdict.passed is passed
    assert verdict.metadata["conflicting_rate"] == conflicting / 9_000
    assert verdict.metadata["duplicate_rate"] == 1.0
    assert "9000 key(s) received the same label more than once" in verdict.description
    assert rules.conflicting_labels(DAY, 0, 0, 0, 0.01).passed
