"""The command line: clear one-line errors (exit 2, no traceback) and the demo-data command."""

import pytest

from prviz.cli import build_parser, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo-data", "backfill", "run", "summary", "serve", "check-java"):
        assert command in out


def test_a_bad_date_is_a_usage_error_not_a_traceback(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["backfill", "--start", "2025-02-30", "--end", "2025-03-01"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "'2025-02-30' is not a date: use YYYY-MM-DD" in err
    assert "Traceback" not in err


def test_missing_java_says_what_to_do(monkeypatch, capsys):
    monkeypatch.setenv("JAVA_HOME", "/nonexistent/jdk")
    assert main(["check-java"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("prviz check-java: error: Java was not found.")
    assert "Java 17 or newer" in err
    assert "Traceback" not in err


def test_backfill_refuses_a_range_that_ends_before_it_starts(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PRVIZ_HOME", str(tmp_path))
    assert main(["backfill", "--start", "2025-01-05", "--end", "2025-01-01"]) == 2
    assert "--end 2025-01-01 is before --start 2025-01-05" in capsys.readouterr().err


def test_backfill_refuses_days_before_the_first_partition(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PRVIZ_HOME", str(tmp_path))
    monkeypatch.setenv("PRVIZ_START_DATE", "2025-01-10")
    assert main(["backfill", "--start", "2025-01-01", "--end", "2025-01-02"]) == 2
    assert "before the first partition (2025-01-10)" in capsys.readouterr().err


def test_a_bad_setting_is_reported_in_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PRVIZ_HOME", str(tmp_path))
    monkeypatch.setenv("PRVIZ_LABEL_WINDOW_DAYS", "soon")
    assert main(["summary", "--start", "2025-01-01", "--end", "2025-01-01"]) == 2
    assert "PRVIZ_LABEL_WINDOW_DAYS='soon' is not a whole number" in capsys.readouterr().err


def test_demo_data_writes_the_real_layout_and_reports_it(tmp_path, capsys):
    code = main(["demo-data", "--out", str(tmp_path), "--start", "2025-01-30", "--days", "3",
                 "--records-per-day", "200"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "wrote 3 day(s) of demo data" in out
    assert "600 capture records" in out
    for day in ("2025/01/30", "2025/01/31", "2025/02/01"):  # across a month end
        assert len(list((tmp_path / "capture" / "fraud-scorer" / "champion" / day).iterdir())) == 24
    assert any((tmp_path / "ground-truth").rglob("*.jsonl"))


def test_serve_without_a_dashboard_says_how_to_make_one(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PRVIZ_HOME", str(tmp_path))
    assert main(["serve"]) == 2
    assert "run `make run` (or `prviz backfill`) first" in capsys.readouterr().err


def test_parser_rejects_zero_days():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--days", "0"])


@pytest.mark.spark
def test_backfill_labels_only_recomputes_without_the_parse(spark, monkeypatch, tmp_path, capsys):
    """`prviz backfill --labels-only`: the late-label recompute by hand, a real Dagster run."""
    import dagster as dg

    day = "2025-03-01"
    monkeypatch.setenv("PRVIZ_HOME", str(tmp_path))
    monkeypatch.setenv("PRVIZ_START_DATE", day)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    assert main(["demo-data", "--out", str(tmp_path), "--start", day, "--days", "1",
                 "--records-per-day", "200"]) == 0  # fmt: skip

    # nothing parsed yet: one line saying what is missing and what to do
    assert main(["backfill", "--start", day, "--end", day, "--labels-only"]) == 2
    err = capsys.readouterr().err
    assert "predictions is missing for 2025-03-01: materialize predictions" in err
    assert "Traceback" not in err

    assert main(["backfill", "--start", day, "--end", day]) == 0
    assert main(["backfill", "--start", day, "--end", day, "--labels-only"]) == 0
    out = capsys.readouterr().out
    assert "fraud-scorer/champion" in out  # the summary table of the day

    with dg.DagsterInstance.get() as instance:
        runs = instance.get_run_records()  # newest first
        assert len(runs) == 3
        failed = runs[2].dagster_run
        assert not failed.is_success
        kinds = {e.dagster_event.event_type_value for e in instance.all_logs(failed.run_id)
                 if e.dagster_event}  # fmt: skip
        assert "STEP_FAILURE" in kinds and "STEP_UP_FOR_RETRY" not in kinds  # no 30 s retry
        last = runs[0].dagster_run
        assert last.is_success
        recomputed = {k.to_user_string() for k in last.asset_selection}
        assert recomputed == {"labeled_predictions", "score_counts", "pr_curves", "pr_curves_7d",
                              "quicksight_dataset", "pr_dashboard"}  # fmt: skip

        def materializations(asset: str) -> int:
            return len(instance.fetch_materializations(dg.AssetKey(asset), limit=10).records)

        assert materializations("predictions") == 1  # the parse ran once
        assert materializations("labeled_predictions") == 2
        assert materializations("pr_dashboard") == 2


def test_demo_data_hostile_writes_one_hostile_day(tmp_path, capsys):
    from prviz.demo.generator import write_hostile_day

    assert main(["demo-data", "--out", str(tmp_path / "cli"), "--start", "2025-06-01",
                 "--hostile"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    import datetime as dt

    expected = write_hostile_day(tmp_path / "direct", dt.date(2025, 6, 1), seed=0)
    assert "wrote a hostile day 2025-06-01" in out
    assert f"{expected.capture_records:,} capture records = {expected.good_records:,} good" in out
    assert f"{expected.label_lines:,} lines = {expected.label_lines_matched:,} matched" in out
    big = tmp_path / "cli" / expected.big_file
    assert big.stat().st_size == expected.big_file_bytes >= 100_000_000
    assert main(["demo-data", "--out", str(tmp_path / "x"), "--start", "2025-06-01",
                 "--hostile", "--days", "2"]) == 2  # fmt: skip
    assert "--hostile writes one day" in capsys.readouterr().err
