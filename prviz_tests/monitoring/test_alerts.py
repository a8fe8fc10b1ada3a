"""Alert planning: once per failure, once on recovery, per channel; links into the Dagster UI."""

from prviz.monitoring import alerts as A

BASE = "http://127.0.0.1:3000"


def _obs(passed, day="2025-01-07", check="capture_hours_complete"):
    return A.Observation(
        asset="pr_curves", asset_path=("pr_curves",), check=check, day=day, passed=passed,
        severity="ERROR", description=f"capture data for {day} is incomplete",
        evaluated_at=1736300000.0, run_id="abc",
    )  # fmt: skip


def test_links_use_the_dagster_1_13_asset_routes():
    assert (
        A.asset_link(BASE + "/", ["pr_curves"], "2025-01-07")
        == "http://127.0.0.1:3000/assets/pr_curves?view=partitions&partition=2025-01-07"
    )
    assert (
        A.asset_link(BASE, ["a b", "c/d"], None)
        == "http://127.0.0.1:3000/assets/a%20b/c%2Fd?view=overview"
    )
    assert (
        A.check_link(BASE, ["pr_curves"], "has_positives")
        == "http://127.0.0.1:3000/assets/pr_curves?view=checks&checkDetail=has_positives"
    )


def test_a_failure_is_planned_once_per_channel_then_a_recovery():
    cursor = A.load_cursor(None)
    plan = A.plan_deliveries([_obs(False)], cursor, ["log", "slack"], BASE)
    assert [(c, a.kind) for c, a in plan] == [("log", "failure"), ("slack", "failure")]
    alert = plan[0][1]
    assert alert.title == "[prviz] ERROR pr_curves 2025-01-07: capture_hours_complete failed"
    assert alert.link.endswith("/assets/pr_curves?view=partitions&partition=2025-01-07")
    assert "capture data for 2025-01-07 is incomplete" in alert.text()

    A.apply_delivery(cursor, "log", alert)  # slack was down: only the log was told
    cursor = A.load_cursor(A.dump_cursor(cursor), ["log", "slack"])
    assert cursor["failing"] == {"pr_curves:capture_hours_complete|2025-01-07": {"log": "failed"}}
    plan = A.plan_deliveries([_obs(False)], cursor, ["log", "slack"], BASE)
    assert [(c, a.kind) for c, a in plan] == [("slack", "failure")]
    A.apply_delivery(cursor, "slack", plan[0][1])
    assert A.plan_deliveries([_obs(False)], cursor, ["log", "slack"], BASE) == []

    plan = A.plan_deliveries([_obs(True)], cursor, ["log", "slack"], BASE)
    assert [(c, a.kind) for c, a in plan] == [("log", "recovery"), ("slack", "recovery")]
    assert plan[0][1].title == (
        "[prviz] RECOVERED pr_curves 2025-01-07: capture_hours_complete passes again"
    )
    for channel, alert in plan:
        A.apply_delivery(cursor, channel, alert)
    assert cursor["failing"] == {}
    assert A.plan_deliveries([_obs(True)], cursor, ["log", "slack"], BASE) == []


def test_a_pass_never_seen_failing_sends_nothing():
    assert A.plan_deliveries([_obs(True)], A.load_cursor(None), ["log"], BASE) == []


def test_days_are_independent_and_failures_come_first():
    cursor = A.load_cursor(None)
    A.apply_delivery(cursor, "log", _obs(False, "2025-01-05").alert("failure", BASE))
    plan = A.plan_deliveries(
        [_obs(True, "2025-01-05"), _obs(False, "2025-01-07"), _obs(False, "2025-01-06")],
        cursor,
        ["log"],
        BASE,
    )
    assert [(a.kind, a.day) for _, a in plan] == [
        ("failure", "2025-01-06"),
        ("failure", "2025-01-07"),
        ("recovery", "2025-01-05"),
    ]


def test_foreign_or_broken_cursors_start_afresh_and_removed_channels_are_forgotten():
    assert A.load_cursor("not json") == {"v": 1, "failing": {}}
    assert A.load_cursor('{"v": 99}') == {"v": 1, "failing": {}}
    text = (
        '{"v": 1, "failing": {"k|d": {"log": "failed", "sns": "failed"}, "x|d": {"sns": "failed"}}}'
    )
    assert A.load_cursor(text, ["log"])["failing"] == {"k|d": {"log": "failed"}}
