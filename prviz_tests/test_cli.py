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
