"""The lake on `s3://bucket/prefix`, against a real S3 server (SeaweedFS) on loopback.

The server checks request signatures, so these tests also show that the lake authenticates with
the keys it is given (or the standard AWS chain), and is refused with a wrong secret.
"""

# ruff: noqa: F811
from __future__ import annotations

import io
import json
import time
import uuid

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from prviz.lake.s3 import MANIFEST, s3_filesystem
from prviz.lake.store import Lake, LakeError, open_lake

# The session fixture `s3_server` is imported here (tests take it as an argument: F811).
from prviz_tests.s3_server import S3Server, s3_server  # noqa: F401

DAY, OTHER_DAY = "2025-01-15", "2025-01-16"


def scores(*values: float) -> pa.Table:
    return pa.table(
        {
            "endpoint": pa.array(["fraud-ep"] * len(values), pa.string()),
            "score": pa.array(values, pa.float64()),
        }
    )


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    return s3_server.make_bucket()


@pytest.fixture
def prefix() -> str:
    return f"lake-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def lake(s3_server: S3Server, bucket: str, prefix: str) -> Lake:
    return Lake.from_uri(f"s3://{bucket}/{prefix}", **s3_server.s3_options())


@pytest.fixture
def client(s3_server: S3Server):
    return s3_server.client()


def keys(client, bucket: str, prefix: str) -> list[str]:
    """Every key under `prefix/`, relative to it, as boto3 lists them."""
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{prefix}/"
    ):
        found.extend(item["Key"][len(prefix) + 1 :] for item in page.get("Contents", []))
    return sorted(found)


def test_round_trip_and_whole_day_replacement(lake: Lake, client, bucket, prefix) -> None:
    uri = lake.write_table("predictions", DAY, scores(0.1, 0.2, 0.3))
    assert uri == f"s3://{bucket}/{prefix}/predictions/dt={DAY}"
    lake.write_table("predictions", OTHER_DAY, scores(0.5))
    table = lake.read_partition("predictions", DAY)
    assert table.column_names == ["endpoint", "score", "dt"]
    assert table["score"].to_pylist() == [0.1, 0.2, 0.3] and set(table["dt"].to_pylist()) == {DAY}

    lake.write_table("predictions", DAY, scores(0.7))
    assert lake.read_partition("predictions", DAY)["score"].to_pylist() == [0.7]
    assert lake.read_partition("predictions", OTHER_DAY)["score"].to_pylist() == [0.5]
    day_keys = [k for k in keys(client, bucket, prefix) if k.startswith(f"predictions/dt={DAY}/")]
    assert len(day_keys) == 2 and day_keys[0].endswith(MANIFEST)  # one version + its manifest
    manifest = json.loads(lake.read_bytes(f"predictions/dt={DAY}/{MANIFEST}"))
    (entry,) = manifest["files"]
    assert day_keys[1] == f"predictions/dt={DAY}/{entry['name']}"
    assert entry["name"].startswith(manifest["version"] + "-")
    assert not [k for k in keys(client, bucket, prefix) if k.startswith("_staging")]


def test_rerunning_a_day_is_idempotent_and_leaves_no_staging(lake: Lake, client, bucket, prefix):
    lake.write_table("score_counts", DAY, scores(0.4, 0.6))
    first = lake.read_partition("score_counts", DAY)
    lake.write_table("score_counts", DAY, scores(0.4, 0.6))
    assert lake.read_partition("score_counts", DAY).equals(first)
    assert keys(client, bucket, prefix) == [
        f"score_counts/dt={DAY}/{MANIFEST}",
        lake.partition_files("score_counts", DAY)[0].path.split("/", 2)[2],
    ]


def test_a_spark_style_staged_folder_commits_and_its_staging_goes(
    lake: Lake, client, bucket, prefix
) -> None:
    token = lake.new_staging_token()
    staged = lake.staged_partition_path(token, "predictions", DAY)
    for index, values in enumerate([(0.1,), (0.2, 0.3)]):
        sink = io.BytesIO()
        pq.write_table(scores(*values), sink)
        key = f"{staged.split('/', 1)[1]}/part-0000{index}-abc.c000.zstd.parquet"
        client.put_object(Bucket=bucket, Key=key, Body=sink.getvalue())
    client.put_object(
        Bucket=bucket, Key=f"{prefix}/_staging/{token}/predictions/_SUCCESS", Body=b""
    )
    assert lake.commit("predictions", DAY, staged) == lake.partition_uri("predictions", DAY)
    lake.discard_staging(token)
    assert sorted(lake.read_partition("predictions", DAY)["score"].to_pylist()) == [0.1, 0.2, 0.3]
    uris = lake.partition_file_uris("predictions", DAY)
    assert len(uris) == 2 and all(
        u.startswith(f"s3://{bucket}/{prefix}/predictions/") for u in uris
    )
    assert keys(client, bucket, prefix) == sorted(
        [f"predictions/dt={DAY}/{MANIFEST}", *(u.split("/", 4)[4] for u in uris)]
    )


def test_write_bytes_and_read_bytes(lake: Lake, client, bucket, prefix) -> None:
    uri = lake.write_bytes("quicksight/manifests/pr_summary.json", b'{"v": 1}')
    assert uri == f"s3://{bucket}/{prefix}/quicksight/manifests/pr_summary.json"
    lake.write_bytes("quicksight/manifests/pr_summary.json", b'{"v": 2}')
    assert lake.read_bytes("quicksight/manifests/pr_summary.json") == b'{"v": 2}'
    body = client.get_object(Bucket=bucket, Key=f"{prefix}/quicksight/manifests/pr_summary.json")
    assert body["Body"].read() == b'{"v": 2}'
    assert keys(client, bucket, prefix) == ["quicksight/manifests/pr_summary.json"]


def test_days_exist_only_once_committed(lake: Lake, client, bucket, prefix) -> None:
    lake.write_table("pr_summary", OTHER_DAY, scores(0.2))
    lake.write_table("pr_summary", DAY, scores(0.1))
    # objects of a first commit that crashed before its manifest: not a day
    client.put_object(
        Bucket=bucket, Key=f"{prefix}/pr_summary/dt=2025-01-17/v1-part.parquet", Body=b"x"
    )
    assert lake.list_days("pr_summary") == [DAY, OTHER_DAY]
    assert not lake.has_partition("pr_summary", "2025-01-17")
    table, missing = lake.read_days("pr_summary", [DAY, "2025-01-17", OTHER_DAY])
    assert missing == ["2025-01-17"] and table["dt"].to_pylist() == [DAY, OTHER_DAY]
    with pytest.raises(LakeError, match=r"pr_summary has no data for dt=2025-01-17 \(s3://"):
        lake.read_partition("pr_summary", "2025-01-17")
    assert lake.read_dataset("pr_summary").num_rows == 2
    assert lake.list_days("nothing_here") == [] and lake.read_dataset("nothing_here") is None


def test_a_commit_that_fails_before_its_manifest_changes_nothing(
    lake: Lake, client, bucket, prefix, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake.write_table("pr_summary", DAY, scores(0.1, 0.2))
    before = keys(client, bucket, prefix)

    def put_bytes(path, data, content_type=None):
        raise OSError("connection reset while writing the manifest")

    monkeypatch.setattr(lake._objects, "put_bytes", put_bytes)
    with pytest.raises(LakeError, match="could not commit pr_summary dt=2025-01-15.*reset"):
        lake.write_table("pr_summary", DAY, scores(0.9))
    monkeypatch.undo()
    assert lake.read_partition("pr_summary", DAY)["score"].to_pylist() == [0.1, 0.2]
    assert keys(client, bucket, prefix) == before  # copies removed, staging removed

    # debris a crashed commit could not remove is invisible, and the next commit removes it
    debris = f"{prefix}/pr_summary/dt={DAY}/v0-part-crashed.parquet"
    client.put_object(Bucket=bucket, Key=debris, Body=b"half")
    assert lake.read_partition("pr_summary", DAY).num_rows == 2
    lake.write_table("pr_summary", DAY, scores(0.5))
    assert lake.read_partition("pr_summary", DAY)["score"].to_pylist() == [0.5]
    assert len(keys(client, bucket, prefix)) == 2


def test_a_manifest_put_that_reports_an_error_but_was_stored_is_a_commit(
    lake: Lake, client, bucket, prefix, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A timeout on the PUT's response must not delete the objects the new manifest names."""
    lake.write_table("pr_summary", DAY, scores(0.1, 0.2))
    original = lake._objects.put_bytes

    def put_bytes(path, data, content_type=None):
        original(path, data, content_type)
        raise OSError("read timeout on the response")

    monkeypatch.setattr(lake._objects, "put_bytes", put_bytes)
    lake.write_table("pr_summary", DAY, scores(0.9))
    monkeypatch.undo()
    assert lake.read_partition("pr_summary", DAY)["score"].to_pylist() == [0.9]
    assert len(keys(client, bucket, prefix)) == 2  # one version and its manifest


def test_a_missing_bucket_is_a_lake_error_naming_it(s3_server: S3Server) -> None:
    lake = Lake.from_uri("s3://prviz-no-such-bucket/lake", **s3_server.s3_options())
    with pytest.raises(LakeError, match="prviz-no-such-bucket"):
        lake.write_table("pr_summary", DAY, scores(0.1))
    assert not lake.has_partition("pr_summary", DAY)


def test_a_read_racing_a_commit_never_mixes_versions(
    lake: Lake,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = lake.new_staging_token()
    staged = lake.staged_partition_path(token, "predictions", DAY)
    for index in range(3):
        with lake.fs.open_output_stream(f"{staged}/part-{index}.parquet") as out:
            pq.write_table(scores(0.1 * (index + 1)), out)
    lake.commit("predictions", DAY, staged)
    other_writer = Lake.from_uri(lake.root, **s3_server.s3_options())
    original, calls = lake._read_file, []

    def read_file(info, columns):
        calls.append(info.path)
        if len(calls) == 2:
            other_writer.write_table("predictions", DAY, scores(0.9, 0.8))
        return original(info, columns)

    monkeypatch.setattr(lake, "_read_file", read_file)
    assert sorted(lake.read_partition("predictions", DAY)["score"].to_pylist()) == [0.8, 0.9]
    assert len(calls) == 3


def test_a_wrong_secret_key_is_refused(
    s3_server: S3Server,
    bucket: str,
    prefix: str,
    client,
) -> None:
    options = {**s3_server.s3_options(), "secret_key": "not-the-secret"}
    bad = Lake.from_uri(f"s3://{bucket}/{prefix}", **options)
    with pytest.raises(
        LakeError, match="SIGNATURE_DOES_NOT_MATCH|ACCESS_DENIED|SignatureDoesNotMatch"
    ):
        bad.write_table("predictions", DAY, scores(0.1))
    with pytest.raises(LakeError, match=r"403.*\(access denied: check the AWS credentials"):
        bad.has_partition("predictions", DAY)
    with pytest.raises(LakeError, match="SignatureDoesNotMatch"):
        bad.list_days("predictions")
    with pytest.raises(ClientError) as refused:
        s3_server.client(secret_key="not-the-secret").list_objects_v2(Bucket=bucket)
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    with pytest.raises(OSError, match="SIGNATURE_DOES_NOT_MATCH"):
        s3_filesystem(**options).get_file_info(pafs.FileSelector(bucket, recursive=True))
    assert keys(client, bucket, prefix) == []  # nothing was written


def test_credentials_come_from_the_standard_aws_chain(
    s3_server: S3Server,
    bucket: str,
    prefix: str,
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    lake = open_lake(
        f"s3://{bucket}/{prefix}",
        {"endpoint_url": s3_server.endpoint_url, "region": s3_server.region},
    )
    lake.write_table("pr_summary", DAY, scores(0.4))
    assert lake.read_partition("pr_summary", DAY).num_rows == 1


def test_pyarrow_and_boto3_see_the_same_objects(lake: Lake, client, bucket, prefix) -> None:
    lake.write_table("pr_summary", DAY, scores(0.1, 0.2))
    lake.write_table("pr_summary", OTHER_DAY, scores(0.3))
    lake.write_bytes("dashboard/index.html", b"<html></html>")
    seen_by_pyarrow = sorted(
        info.path.split("/", 1)[1][len(prefix) + 1 :]
        for info in lake.fs.get_file_info(pafs.FileSelector(lake.base, recursive=True))
        if info.type == pafs.FileType.File
    )
    assert seen_by_pyarrow == keys(client, bucket, prefix)
    (info,) = lake.partition_files("pr_summary", DAY)
    raw = client.get_object(Bucket=bucket, Key=info.path.split("/", 1)[1])["Body"].read()
    assert pq.read_table(io.BytesIO(raw)).equals(
        lake.read_partition("pr_summary", DAY).drop(["dt"])
    )


def test_the_server_can_go_away_and_come_back(
    s3_server: S3Server,
    lake: Lake,
) -> None:
    lake.write_table("pr_summary", DAY, scores(0.1))
    old_pid = s3_server.pid
    started = time.monotonic()
    with s3_server.pause():
        assert not s3_server.is_running()
        with pytest.raises(LakeError, match="could not"):
            lake.has_partition("pr_summary", DAY)
    assert s3_server.is_running() and s3_server.pid != old_pid
    assert time.monotonic() - started < 15
    assert lake.read_partition("pr_summary", DAY)["score"].to_pylist() == [0.1]


def test_a_plain_s3_uri_follows_the_aws_configuration(
    s3_server: S3Server, bucket: str, prefix: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Lake("s3://…")` with no options: endpoint and keys from the AWS environment variables."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_REGION", s3_server.region)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    lake = Lake(f"s3://{bucket}/{prefix}")
    lake.write_table("pr_summary", DAY, scores(0.1))
    lake.write_table("pr_summary", DAY, scores(0.2))
    assert lake.read_partition("pr_summary", DAY)["score"].to_pylist() == [0.2]
    assert lake.list_days("pr_summary") == [DAY]
