"""The lake on S3 (AWS, or an S3-compatible store: SeaweedFS, MinIO): connections and commits.

Connections
-----------
`s3_filesystem(...)` builds the `pyarrow.fs.S3FileSystem` that reads and writes Parquet, and
`s3_client(...)` the boto3 client the commit uses; both from the same `S3Options`:

- `endpoint_url`: `None` for AWS; `http(s)://host:port` for an on-prem / local S3 store (path-style
  addressing is used then, as those stores expect).
- `region`: with an endpoint, `None` lets the AWS SDK decide (`AWS_REGION`, the profile, else
  us-east-1); on AWS, `None` means the bucket's own region, looked up once when the lake is
  opened (one anonymous HEAD request, as `pyarrow.fs.FileSystem.from_uri` does).
- credentials: `None` (the default and the production setting) means the standard AWS chain:
  `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`(/`AWS_SESSION_TOKEN`), `AWS_PROFILE` and the shared
  config files, web identity / ECS / EC2 instance roles. Explicit keys are for tests and for
  stores outside AWS; they are never logged, and `repr(S3Options)` hides them.
- timeouts: a store that stops answering must fail a run in seconds, not hang it. boto3 (the
  commit's calls) gets `S3_CONNECT_TIMEOUT` / `S3_READ_TIMEOUT` seconds and `S3_MAX_ATTEMPTS`
  attempts per call (botocore's defaults, 60 s and 4 attempts, took 240 s per call against a
  frozen server); pyarrow keeps the AWS SDK's (1 s connect, 3 s without progress, 3 attempts:
  ~10 s). `connect_timeout`, `read_timeout` and `max_attempts` override both. A store that is
  down (connection refused) fails at once, with the endpoint URL in the message.

`prviz.lake.store.open_lake(uri, s3_options)` (or `Lake.from_uri(uri, endpoint_url=…)`) opens a
lake on `s3://bucket/prefix` with those options; a local folder opens as before and ignores them.
A plain `Lake("s3://…")` still works as before: pyarrow's and boto3's defaults, which also honour
`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`.

How a day is committed on S3 (and why)
--------------------------------------
S3 has no rename, so the local trick (swap the day's folder with two renames) does not exist.
Copying the new objects in and deleting the old ones would let a reader that lists the folder see
the old day, the old day plus part of the new one, or a mix while the old objects are deleted. So
on S3 a day's *manifest* is the commit:

    {dataset}/dt=YYYY-MM-DD/_manifest.json          the committed version: its object names
    {dataset}/dt=YYYY-MM-DD/{version}-part-….parquet objects of that version (unique names)

`Lake.commit` (1) copies the staged objects (`{root}/_staging/{token}/…`) into the day's folder
under names prefixed with a new, time-ordered version id, so they never overwrite an object a
reader may be reading; (2) writes `_manifest.json` in one PUT: that is the commit point, and S3
PUTs are atomic with read-after-write consistency, so a reader gets the old manifest or the new
one, never half of one; (3) deletes every other object of the day (the previous version, and
debris of a commit that crashed before step 2) and the staged objects. After a commit the day
holds exactly one version's objects plus its manifest; a re-run of the day does the same again.
If step 1 or 2 fails, the copied objects are deleted again and the old manifest still rules;
if the manifest PUT reports an error, the manifest is read back first (a PUT whose response was
lost may have been stored) and the objects are only deleted if it is not ours. If the cleanup in
step 3 fails, the commit stands (a warning is logged) and the next commit of the day cleans up.

What readers see:
- `Lake.read_partition` / `read_days` / `read_dataset` / `partition_files` /
  `partition_file_uris` read the manifest first and then only the objects it names: never half a
  day, never two versions mixed. If a concurrent commit deletes the objects between the two reads,
  the read starts again from the new manifest (a few attempts, then LakeError).
- `has_partition` / `list_days`: on S3 a day exists when its manifest exists. Objects without a
  manifest (a first commit that crashed during the copy) are not a day.
- Readers that list the folder instead (Spark reading `dt=…/`, Athena, a crawler) ignore
  `_manifest.json` (`_` files are hidden to them), so they can see, during a commit, the old
  version plus part or all of the new one (step 1 to 3, seconds for a few files), and after a
  commit that crashed in step 1, the old version plus the copied part. They never see a day
  without its old version before the manifest is switched. Read through `partition_file_uris` to
  be exact (the Spark job should: `spark.read.option("basePath", lake.uri(dataset))
  .parquet(*lake.partition_file_uris(dataset, day))`).
- QuickSight reads the CSV export, which is written after the commit as single objects
  (`Lake.write_bytes`: one PUT each, atomic): it sees the previous CSV or the new one. Keep the
  CSV prefix that a QuickSight manifest points at free of `_manifest.json` files (do not write the
  CSV export with `write_table`).

Limits, stated plainly:
- One writer per (dataset, day) at a time. Dagster runs a partition once at a time; a writer
  that finds another version in the manifest after its PUT leaves the cleanup to that one, but
  two commits of the same day that truly overlap can still leave the last manifest naming
  objects the other writer deleted (the day then reads as a LakeError naming the missing object
  until it is re-run). S3 offers no compare-and-swap that would close this fully on every store.
- A reader in the middle of reading a version when the next commit deletes it gets an error:
  `Lake` retries from the new manifest; a Spark task fails (and Spark retries it).
- The copy is server-side: objects up to 1 GiB in one CopyObject, larger ones in 256 MiB parts
  (S3 refuses a single CopyObject above 5 GiB). It is still a copy of each day's data.

Locally nothing changes: the new version is staged as a folder and swapped in with two renames,
and the same `_manifest.json` is written inside it, so a local lake copied to S3 stays readable.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from urllib.parse import urlparse

import pyarrow.fs as pafs

MANIFEST = "_manifest.json"
MANIFEST_FORMAT = "prviz.partition.v1"
COPY_THREADS = 8
# Copies up to this size are one CopyObject call; larger objects are copied in parts (S3 refuses
# a single CopyObject above 5 GiB).
MULTIPART_COPY_THRESHOLD = 1024**3
MULTIPART_COPY_CHUNK = 256 * 1024**2
# boto3 calls: a refused connection fails at once; an unanswered one after the read timeout.
# The read timeout also bounds the wait for a CopyObject's answer (objects up to 1 GiB).
S3_CONNECT_TIMEOUT = 5.0
S3_READ_TIMEOUT = 30.0
S3_MAX_ATTEMPTS = 3  # in all, the first included


class S3ConfigError(ValueError):
    """The S3 options are inconsistent (e.g. an access key without its secret)."""


@dataclass(frozen=True)
class S3Options:
    """How to reach the lake's S3 store. Every field is optional (`None` = the AWS default)."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    # seconds / attempts per call; None = prviz's boto3 defaults above and the AWS SDK's in pyarrow
    connect_timeout: float | None = None
    read_timeout: float | None = None
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout", "max_attempts"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
            ):
                raise S3ConfigError(f"S3 option {name} must be a positive number, not {value!r}")
        if self.max_attempts is not None and self.max_attempts != int(self.max_attempts):
            raise S3ConfigError(f"S3 option max_attempts must be whole, not {self.max_attempts!r}")
        for name in ("endpoint_url", "region", "access_key", "secret_key", "session_token"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise S3ConfigError(f"S3 option {name} must be a string, not {type(value)}")
            if value is not None and not value.strip():
                object.__setattr__(self, name, None)
        if self.endpoint_url is not None:
            parsed = urlparse(self.endpoint_url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise S3ConfigError(
                    f"S3 endpoint {self.endpoint_url!r} must be a URL like "
                    "http://127.0.0.1:8333 or https://s3.example.com"
                )
            if parsed.path not in ("", "/") or parsed.query:
                raise S3ConfigError(
                    f"S3 endpoint {self.endpoint_url!r} must not have a path or query "
                    "(the bucket goes in the lake URI: s3://bucket/prefix)"
                )
            object.__setattr__(self, "endpoint_url", f"{parsed.scheme}://{parsed.netloc}")
        if (self.access_key is None) != (self.secret_key is None):
            raise S3ConfigError(
                "give both the S3 access key and its secret key, or neither "
                "(neither = the standard AWS credential chain)"
            )
        if self.session_token is not None and self.access_key is None:
            raise S3ConfigError("an S3 session token needs its access key and secret key")

    @classmethod
    def from_mapping(cls, values: Mapping | None) -> S3Options:
        if not values:
            return cls()
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise S3ConfigError(
                f"unknown S3 options {sorted(unknown)}: use {', '.join(sorted(known))}"
            )
        return cls(**dict(values))

    @property
    def is_default(self) -> bool:
        return self == S3Options()


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/prefix` -> (`bucket`, `prefix`), the prefix without slashes at its ends."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("s3", "s3a") or not parsed.netloc:
        raise S3ConfigError(f"{uri!r} is not an S3 URI like s3://bucket/prefix")
    if parsed.query or parsed.fragment:
        raise S3ConfigError(
            f"{uri!r}: give S3 options (endpoint, region) as settings, not in the URI"
        )
    return parsed.netloc, parsed.path.strip("/")


def s3_filesystem(
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    *,
    bucket: str | None = None,
) -> pafs.S3FileSystem:
    """A pyarrow S3 filesystem; credentials from the arguments or the standard AWS chain.

    With no endpoint and no region, the region of `bucket` (if given) is looked up (one
    anonymous HEAD request to AWS), as `pyarrow.fs.FileSystem.from_uri` does.
    """
    options = S3Options(endpoint_url, region, access_key, secret_key, session_token)
    return filesystem_for(options, bucket=bucket)


def filesystem_for(options: S3Options, *, bucket: str | None = None) -> pafs.S3FileSystem:
    kwargs: dict = {}
    region = options.region
    if region is None and options.endpoint_url is None and bucket:
        region = pafs.resolve_s3_region(bucket)
    if region is not None:
        kwargs["region"] = region
    if options.endpoint_url is not None:
        parsed = urlparse(options.endpoint_url)
        kwargs["endpoint_override"] = parsed.netloc
        kwargs["scheme"] = parsed.scheme
    if options.access_key is not None:
        kwargs["access_key"] = options.access_key
        kwargs["secret_key"] = options.secret_key
        if options.session_token is not None:
            kwargs["session_token"] = options.session_token
    if options.connect_timeout is not None:
        kwargs["connect_timeout"] = float(options.connect_timeout)
    if options.read_timeout is not None:
        kwargs["request_timeout"] = float(options.read_timeout)
    if options.max_attempts is not None:
        kwargs["retry_strategy"] = pafs.AwsStandardS3RetryStrategy(
            max_attempts=int(options.max_attempts)
        )
    return pafs.S3FileSystem(**kwargs)


_SHARED = {}
_SHARED_LOCK = threading.Lock()


def _boto3_session():
    """A new boto3 session (credentials resolved afresh) sharing one botocore model loader.

    Loading the S3 service model is most of the cost of a client (~0.1-0.3 s); each `Lake`
    builds its own client, so the parsed model is shared between them.
    """
    import boto3
    import botocore.session

    with _SHARED_LOCK:
        core = botocore.session.get_session()
        loader = _SHARED.get("data_loader")
        if loader is None:
            _SHARED["data_loader"] = core.get_component("data_loader")
        else:
            core.register_component("data_loader", loader)
    return boto3.session.Session(botocore_session=core)


def s3_client(options: S3Options, *, region: str | None = None):
    """A boto3 S3 client with the same endpoint, region and credentials as `filesystem_for`.

    Without an explicit endpoint, boto3 may still take one from the AWS configuration
    (`AWS_ENDPOINT_URL_S3`, as pyarrow does); a store outside AWS then gets path-style addressing.
    """
    from botocore.config import Config

    def build(path_style: bool):
        config = Config(
            connect_timeout=options.connect_timeout or S3_CONNECT_TIMEOUT,
            read_timeout=options.read_timeout or S3_READ_TIMEOUT,
            retries={
                "total_max_attempts": int(options.max_attempts or S3_MAX_ATTEMPTS),
                "mode": "standard",
            },
            s3={"addressing_style": "path"} if path_style else {},
            max_pool_connections=max(10, COPY_THREADS * 2),
        )
        return _boto3_session().client(
            "s3",
            endpoint_url=options.endpoint_url,
            region_name=options.region or region,
            aws_access_key_id=options.access_key,
            aws_secret_access_key=options.secret_key,
            aws_session_token=options.session_token,
            config=config,
        )

    if options.endpoint_url:
        return build(path_style=True)
    client = build(path_style=False)
    host = urlparse(client.meta.endpoint_url).hostname or ""
    if not host.endswith((".amazonaws.com", ".amazonaws.com.cn")):
        return build(path_style=True)
    return client


class S3Objects:
    """The few object operations a commit needs, with boto3 (batch deletes, multipart copies).

    Paths are `bucket/key` strings, as pyarrow's S3 filesystem uses them.
    """

    def __init__(self, client):
        self.client = client

    @staticmethod
    def split(path: str) -> tuple[str, str]:
        bucket, _, key = path.partition("/")
        return bucket, key

    def list(self, prefix_path: str) -> list[tuple[str, int]]:
        """(path, size) of every object under the folder `prefix_path` (recursive)."""
        bucket, key = self.split(prefix_path.rstrip("/") + "/")
        paginator = self.client.get_paginator("list_objects_v2")
        found = []
        for page in paginator.paginate(Bucket=bucket, Prefix=key):
            for item in page.get("Contents", []):
                found.append((f"{bucket}/{item['Key']}", int(item["Size"])))
        return found

    def exists(self, path: str) -> bool:
        from botocore.exceptions import ClientError

        bucket, key = self.split(path)
        try:
            self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if _status(error) == 404:
                return False
            raise
        return True

    def get_bytes(self, path: str) -> bytes | None:
        """The object's bytes, or None if there is no such object."""
        from botocore.exceptions import ClientError

        bucket, key = self.split(path)
        try:
            response = self.client.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if _status(error) == 404:
                return None
            raise
        with response["Body"] as body:
            return body.read()

    def put_bytes(self, path: str, data: bytes, content_type: str | None = None) -> None:
        bucket, key = self.split(path)
        extra = {"ContentType": content_type} if content_type else {}
        self.client.put_object(Bucket=bucket, Key=key, Body=data, **extra)

    def copy_many(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Server-side copies (source path, target path), a few at a time."""
        from concurrent.futures import ThreadPoolExecutor

        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(
            multipart_threshold=MULTIPART_COPY_THRESHOLD,
            multipart_chunksize=MULTIPART_COPY_CHUNK,
            use_threads=False,
        )

        def copy(pair: tuple[str, str]) -> None:
            source, target = pair
            source_bucket, source_key = self.split(source)
            bucket, key = self.split(target)
            self.client.copy(
                {"Bucket": source_bucket, "Key": source_key}, bucket, key, Config=config
            )

        pairs = list(pairs)
        if len(pairs) <= 1:
            for pair in pairs:
                copy(pair)
            return
        with ThreadPoolExecutor(max_workers=min(COPY_THREADS, len(pairs))) as pool:
            for future in [pool.submit(copy, pair) for pair in pairs]:
                future.result()

    def delete_many(self, paths: Iterable[str]) -> None:
        """Delete objects (1000 per request); raises if the store refused any of them."""
        by_bucket: dict[str, list[str]] = {}
        for path in paths:
            bucket, key = self.split(path)
            by_bucket.setdefault(bucket, []).append(key)
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), 1000):
                batch = keys[start : start + 1000]
                response = self.client.delete_objects(
                    Bucket=bucket,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
                errors = response.get("Errors") or []
                if errors:
                    first = errors[0]
                    raise OSError(
                        f"S3 refused to delete {len(errors)} object(s), e.g. "
                        f"s3://{bucket}/{first.get('Key')}: {first.get('Code')} "
                        f"{first.get('Message')}"
                    )

    def delete_prefix(self, prefix_path: str) -> int:
        """Delete every object under the folder `prefix_path`; returns how many there were."""
        paths = [path for path, _ in self.list(prefix_path)]
        # Deepest first, so a store that models folders (SeaweedFS) never sees a folder
        # marker deleted before its contents.
        self.delete_many(sorted(paths, key=lambda p: (-p.count("/"), p)))
        return len(paths)


def _status(error) -> int | None:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


def manifest_bytes(dataset: str, day: str, version: str, files: list[tuple[str, int]]) -> bytes:
    """The `_manifest.json` of a committed day: its version and its objects (relative names)."""
    import datetime as dt

    document = {
        "format": MANIFEST_FORMAT,
        "dataset": dataset,
        "dt": day,
        "version": version,
        "committed_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "files": [{"name": name, "size": size} for name, size in files],
    }
    return json.dumps(document, indent=1, sort_keys=True).encode("utf-8")


def parse_manifest(data: bytes, where: str) -> dict:
    """A manifest's content, checked: a version and a list of plain file names."""
    try:
        document = json.loads(data)
        files = document["files"]
        version = document["version"]
        names = [entry["name"] for entry in files]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{where} is not a prviz partition manifest: {error}") from None
    if document.get("format") != MANIFEST_FORMAT or not isinstance(version, str):
        raise ValueError(f"{where} has an unknown manifest format {document.get('format')!r}")
    for name in names:
        if (
            not isinstance(name, str)
            or not name
            or name.startswith(("/", "_", "."))
            or ".." in name.split("/")
        ):
            raise ValueError(f"{where} names an unsafe file {name!r}")
    return document
