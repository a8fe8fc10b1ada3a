"""The lake on a local folder: round trips, whole-day replacement, failures, path safety."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prviz.lake.paths import UnsafePathError
from prviz.lake.s3 import MANIFEST, S3ConfigError, S3Options, split_s3_uri
from prviz.lake.store import Lake, LakeError, open_lake

DAY, OTHER_DAY = "2025-01-15", "2025-01-16"


def scores(*values: float, endpoint: str = "fraud-ep") -> pa.Table:
    return pa.table(
        {
            "endpoint": pa.array([endpoint] * len(values), pa.string()),
            "score": pa.array(values, pa.float64()),
        }
    )


def rows(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda row: json.dumps(row, sort_keys=True))


def files_under(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(str(tmp_path / "lake"))


def test_round_trip_adds_dt_and_drops_a_given_one(lake: Lake, tmp_path: Path) -> None:
    uri = lake.write_table(
        "predictions", DAY, scores(0.1, 0.9).append_column("dt", pa.array(["x"] * 2))
    )
    assert uri == f"file://{tmp_path / 'lake' / 'predictions' / f'dt={DAY}'}"
    table = lake.read_partition("predictions", DAY)
    assert table.column_names == ["endpoint", "score", "dt"]
    assert rows(table) == rows(scores(0.1, 0.9).append_column("dt", pa.array([DAY] * 2)))
    assert lake.read_partition("predictions", DAY, columns=["score"]).column_names == [
        "score",
        "dt",
    ]
    assert lake.has_partition("predictions", DAY)
    assert not lake.has_partition("predictions", OTHER_DAY)


def test_a_commit_replaces_the_whole_day_and_only_that_day(lake: Lake, tmp_path: Path) -> None:
    lake.write_table("predictions", DAY, scores(0.1, 0.2, 0.3))
    lake.write_table("predictions", OTHER_DAY, scores(0.5))
    lake.write_table("predictions", DAY, scores(0.7))
    assert lake.read_partition("predictions", DAY)["score"].to_pylist() == [0.7]
    assert lake.read_partition("predictions", OTHER_DAY)["score"].to_pylist() == [0.5]
    folder = tmp_path / "lake" / "predictions" / f"dt={DAY}"
    data = [name for name in files_under(folder) if name != MANIFEST]
    assert len(data) == 1
    manifest = json.loads((folder / MANIFEST).read_text())
    assert [entry["name"] for entry in manifest["files"]] == data
    assert manifest["dataset"] == "predictions" and manifest["dt"] == DAY


def test_rerunning_a_day_is_idempotent_and_leaves_nothing_behind(
    lake: Lake, tmp_path: Path
) -> None:
    first = lake.write_table("score_counts", DAY, scores(0.4, 0.6))
    before = rows(lake.read_partition("score_counts", DAY))
    second = lake.write_table("score_counts", DAY, scores(0.4, 0.6))
    assert first == second
    assert rows(lake.read_partition("score_counts", DAY)) == before
    assert len(lake.partition_files("score_counts", DAY)) == 1
    assert files_under(tmp_path / "lake" / "_staging") == []
    assert files_under(tmp_path / "lake" / "_trash") == []


def test_a_write_that_fails_after_staging_leaves_the_old_version(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake.write_table("pr_summary", DAY, scores(0.1, 0.2))
    staged_seen = []

    def failing_commit(dataset: str, day: str, staged_path: str) -> str:
        staged_seen.append(files_under(Path(staged_path)))
        raise RuntimeError("the driver died between staging and commit")

    monkeypatch.setattr(lake, "commit", failing_commit)
    with pytest.raises(RuntimeError, match="driver died"):
        lake.write_table("pr_summary", DAY, scores(0.9))
    assert staged_seen and len(staged_seen[0]) == 1  # the new version was fully staged
    monkeypatch.undo()
    assert lake.read_partition("pr_summary", DAY)["score"].to_pylist() == [0.1, 0.2]
    assert files_under(tmp_path / "lake" / "_staging") == []


def test_a_commit_whose_second_rename_fails_puts_the_old_version_back(
    lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake.write_table("pr_summary", DAY, scores(0.1, 0.2))
    original_move = lake._move

    def move(source: str, target: str) -> None:
        if "_staging" in source:
            raise OSError("disk full")
        original_move(source, target)

    monkeypatch.setattr(lake, "_move", move)
    with pytest.raises(LakeError, match="could not commit pr_summary dt=2025-01-15.*disk full"):
        lake.write_table("pr_summary", DAY, scores(0.9))
    assert lake.read_partition("pr_summary", DAY)["score"].to_pylist() == [0.1, 0.2]
    assert files_under(tmp_path / "lake" / "_trash") == []
    assert files_under(tmp_path / "lake" / "_staging") == []


def test_a_spark_style_staged_folder_commits_all_its_files(lake: Lake, tmp_path: Path) -> None:
    token = lake.new_staging_token()
    staged = Path(lake.staged_partition_path(token, "predictions", DAY))
    staged.mkdir(parents=True)
    pq.write_table(scores(0.1), staged / "part-00000-a.c000.zstd.parquet")
    pq.write_table(scores(0.2, 0.3), staged / "part-00001-a.c000.zstd.parquet")
    (staged / ".part-00000-a.c000.zstd.parquet.crc").write_bytes(b"crc")
    (staged.parent / "_SUCCESS").write_bytes(b"")
    lake.commit("predictions", DAY, str(staged))
    lake.discard_staging(token)
    assert sorted(lake.read_partition("predictions", DAY)["score"].to_pylist()) == [0.1, 0.2, 0.3]
    uris = lake.partition_file_uris("predictions", DAY)
    assert [uri.rsplit("/", 1)[1] for uri in uris] == [
        "part-00000-a.c000.zstd.parquet",
        "part-00001-a.c000.zstd.parquet",
    ]
    assert all(uri.startswith(f"file://{tmp_path}") for uri in uris)
    assert files_under(tmp_path / "lake" / "_staging") == []


def test_committing_nothing_is_an_error(lake: Lake) -> None:
    staged = lake.staged_partition_path(lake.new_staging_token(), "predictions", DAY)
    with pytest.raises(LakeError, match="nothing staged"):
        lake.commit("predictions", DAY, staged)


def test_list_days_is_sorted_and_ignores_other_folders(lake: Lake, tmp_path: Path) -> None:
    assert lake.list_days("predictions") == []
    for day in (OTHER_DAY, DAY, "2025-01-03"):
        lake.write_table("predictions", day, scores(0.5))
    (tmp_path / "lake" / "predictions" / "notes").mkdir()
    assert lake.list_days("predictions") == ["2025-01-03", DAY, OTHER_DAY]
    assert lake.read_dataset("predictions").num_rows == 3
    assert lake.read_dataset("nothing_here") is None


def test_read_days_returns_the_days_there_are_and_the_missing_ones(lake: Lake) -> None:
    lake.write_table("pr_summary", DAY, scores(0.1, 0.2))
    lake.write_table("pr_summary", "2025-01-17", scores(0.3))
    table, missing = lake.read_days("pr_summary", [DAY, OTHER_DAY, "2025-01-17", "2025-01-18"])
    assert missing == [OTHER_DAY, "2025-01-18"]
    assert table["dt"].to_pylist() == [DAY, DAY, "2025-01-17"]
    assert lake.read_days("pr_summary", [OTHER_DAY]) == (None, [OTHER_DAY])
    with pytest.raises(LakeError, match=r"pr_summary has no data for dt=2025-01-16 \(file://"):
        lake.read_partition("pr_summary", OTHER_DAY)


@pytest.mark.parametrize("dataset", ["..", "../escape", "/etc", "a/b", "", ".hidden", "x..y"])
def test_unsafe_dataset_names_are_refused(lake: Lake, dataset: str) -> None:
    with pytest.raises(UnsafePathError):
        lake.write_table(dataset, DAY, scores(0.1))
    with pytest.raises(UnsafePathError):
        lake.read_partition(dataset, DAY)


@pytest.mark.parametrize("day", ["2025-1-5", "../2025-01-05", "2025-01-05/..", "/2025-01-05"])
def test_unsafe_days_are_refused(lake: Lake, day: str) -> None:
    with pytest.raises(UnsafePathError):
        lake.write_table("predictions", day, scores(0.1))
    with pytest.raises(UnsafePathError):
        lake.has_partition("predictions", day)


@pytest.mark.parametrize("relative", ["../outside.html", "/etc/passwd", "a/../../b", "a//b", ""])
def test_unsafe_object_names_are_refused(lake: Lake, tmp_path: Path, relative: str) -> None:
    (tmp_path / "outside.html").write_text("secret")
    with pytest.raises(UnsafePathError):
        lake.write_bytes(relative, b"x")
    with pytest.raises(UnsafePathError):
        lake.read_bytes(relative)
    assert (tmp_path / "outside.html").read_text() == "secret"


def test_write_bytes_replaces_the_object_whole(lake: Lake, tmp_path: Path) -> None:
    assert lake.write_bytes("dashboard/index.html", b"v1") == (
        f"file://{tmp_path / 'lake' / 'dashboard' / 'index.html'}"
    )
    lake.write_bytes("dashboard/index.html", b"v2")
    assert lake.read_bytes("dashboard/index.html") == b"v2"
    assert files_under(tmp_path / "lake" / "dashboard") == ["index.html"]


def test_a_corrupt_parquet_file_is_a_lake_error_naming_it(lake: Lake) -> None:
    lake.write_table("score_counts", DAY, scores(0.1))
    (info,) = lake.partition_files("score_counts", DAY)
    Path(info.path).write_bytes(b"this is not parquet")
    with pytest.raises(LakeError, match=rf"corrupt Parquet file {info.path}"):
        lake.read_partition("score_counts", DAY)


def test_a_manifest_naming_a_missing_file_is_an_error(lake: Lake) -> None:
    lake.write_table("score_counts", DAY, scores(0.1))
    (info,) = lake.partition_files("score_counts", DAY)
    os.remove(info.path)
    with pytest.raises(LakeError, match=r"names .*part-.*\.parquet, which does not exist"):
        lake.read_partition("score_counts", DAY)


def test_a_broken_manifest_is_a_lake_error(lake: Lake, tmp_path: Path) -> None:
    lake.write_table("score_counts", DAY, scores(0.1))
    manifest = tmp_path / "lake" / "score_counts" / f"dt={DAY}" / MANIFEST
    manifest.write_text(
        '{"format": "prviz.partition.v1", "version": "v1", "files": [{"name": "../x"}]}'
    )
    with pytest.raises(LakeError, match="unsafe file '../x'"):
        lake.read_partition("score_counts", DAY)
    manifest.write_text("{not json")
    with pytest.raises(LakeError, match="not a prviz partition manifest"):
        lake.read_partition("score_counts", DAY)


def test_a_day_written_before_manifests_is_still_read(lake: Lake, tmp_path: Path) -> None:
    folder = tmp_path / "lake" / "predictions" / f"dt={DAY}"
    folder.mkdir(parents=True)
    pq.write_table(scores(0.1, 0.2), folder / "part-0.parquet")
    assert lake.has_partition("predictions", DAY)
    assert lake.list_days("predictions") == [DAY]
    assert lake.read_partition("predictions", DAY).num_rows == 2
    lake.write_table("predictions", DAY, scores(0.3))
    assert lake.read_partition("predictions", DAY)["score"].to_pylist() == [0.3]


def test_a_read_racing_a_commit_returns_one_whole_version(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The day is replaced between reading its file list and its files: read the new one."""
    token = lake.new_staging_token()
    staged = Path(lake.staged_partition_path(token, "predictions", DAY))
    staged.mkdir(parents=True)
    for index in range(3):
        pq.write_table(scores(0.1 * (index + 1)), staged / f"part-{index}.parquet")
    lake.commit("predictions", DAY, str(staged))
    original = lake._read_file
    calls = []

    def read_file(info, columns):
        calls.append(info.path)
        if len(calls) == 2:  # one file of the old version read; now a writer replaces the day
            Lake(lake.root).write_table("predictions", DAY, scores(0.9, 0.8))
        return original(info, columns)

    monkeypatch.setattr(lake, "_read_file", read_file)
    table = lake.read_partition("predictions", DAY)
    assert sorted(table["score"].to_pylist()) == [0.8, 0.9]
    assert len(calls) == 3  # old file read, old file gone (retry), the new version's one file


def test_open_lake_and_from_uri_open_a_local_folder_as_before(tmp_path: Path) -> None:
    folder = str(tmp_path / "lake")
    for lake in (
        open_lake(folder),
        open_lake(folder, {"endpoint_url": "http://127.0.0.1:1"}),
        Lake.from_uri(folder, endpoint_url="http://127.0.0.1:1"),
    ):
        assert lake.is_local and lake.base == folder
    open_lake(folder).write_table("predictions", DAY, scores(0.5))
    assert Lake(folder).read_partition("predictions", DAY).num_rows == 1


def test_s3_options_are_checked_and_keep_secrets_out_of_repr() -> None:
    options = S3Options("http://127.0.0.1:8333/", "eu-west-1", "AKIAEXAMPLE", "very-secret")
    assert options.endpoint_url == "http://127.0.0.1:8333"
    assert "very-secret" not in repr(options)
    assert S3Options.from_mapping({"region": "eu-west-1"}).region == "eu-west-1"
    assert S3Options(region="  ").is_default
    with pytest.raises(S3ConfigError, match="both the S3 access key and its secret"):
        S3Options(access_key="AKIAEXAMPLE")
    with pytest.raises(S3ConfigError, match="must be a URL"):
        S3Options(endpoint_url="127.0.0.1:8333")
    with pytest.raises(S3ConfigError, match="must not have a path"):
        S3Options(endpoint_url="http://127.0.0.1:8333/bucket")
    with pytest.raises(S3ConfigError, match="unknown S3 options"):
        S3Options.from_mapping({"endpoint": "http://x"})
    assert split_s3_uri("s3://bucket/some/prefix/") == ("bucket", "some/prefix")
    assert split_s3_uri("s3://bucket") == ("bucket", "")
    with pytest.raises(S3ConfigError):
        split_s3_uri("/local/path")
