"""The lake: Parquet datasets partitioned by `dt=YYYY-MM-DD`, each day replaced whole.

Writers never write into a day's folder directly. They write a complete new version under
`{root}/_staging/{token}/{dataset}/dt=…/` and `commit` swaps it in:

- On a local filesystem the swap is two renames (old version aside, new version in), so a reader
  sees the old day or the new day, never half of one; the old version is deleted only after the
  new one is in place, and put back if the second rename fails.
- On S3 (and any other non-local filesystem) the commit is the day's `_manifest.json`: the new
  objects are copied in under unique names, the manifest naming them is written in one PUT, then
  the other objects of the day are deleted. Readers here read the manifest first and then only
  the objects it names. See `prviz.lake.s3` for the details and what folder-listing readers
  (Spark, Athena, QuickSight) may see.

Both write the same `_manifest.json`, so `Lake` reads a local lake and an S3 lake the same way.
Open a lake with `Lake(root)`, or `open_lake(uri, s3_options)` / `Lake.from_uri(uri, endpoint_url=…)`
for an S3 store that needs an explicit endpoint, region or keys.

A writer killed mid-write (SIGKILL, a lost node) leaves its staging folder, and a local commit
killed between its two renames leaves its `_trash/…` entry; neither is ever read as data. Staging
tokens and trash ids start with their UTC creation time (`20250115T031500Z-…`), and
`sweep_stale` (called by the Spark job when it starts) removes those older than
`STALE_AFTER_SECONDS`, first putting back a trashed old version whose day is missing. The age
must exceed the longest run: a younger folder may belong to a writer that is still running.

Committed files are checked against the sizes their manifest recorded before they are read
(`read_partition`) or handed to Spark (`partition_file_uris`): a file truncated or replaced after
its commit is a LakeError naming it, never data.
"""

import contextlib
import datetime as dt
import io
import logging
import posixpath
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import NoReturn

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from prviz.lake.paths import validate_day, validate_segment
from prviz.lake.s3 import (
    MANIFEST,
    S3Objects,
    S3Options,
    filesystem_for,
    manifest_bytes,
    parse_manifest,
    s3_client,
    split_s3_uri,
)

STAGING = "_staging"
TRASH = "_trash"
READ_ATTEMPTS = 4
# Staging and trash older than this are debris of a killed writer (the Spark job's runs end
# within PRVIZ_SPARK_TIMEOUT_SECONDS, 8 h by default; keep this well above the longest run).
STALE_AFTER_SECONDS = 2 * 24 * 3600
_ID_TIME = re.compile(r"^(\d{8}T\d{6})Z-[0-9a-f]+$")

log = logging.getLogger("prviz.lake")


class LakeError(RuntimeError):
    """The lake could not be read or written; the message names the path."""


class MissingPartitionError(LakeError):
    """A day of a dataset a stage reads was never written: materialize it first (no retry helps)."""


class CorruptFileError(LakeError):
    """A committed file is missing, truncated or not Parquet: not a passing fault.

    Trying again reads the same bytes; re-running the day that wrote the file is the fix.
    """


class _Corrupt(Exception):
    """A committed file is not what its commit wrote (not Parquet, or not its recorded size)."""


_RERUN = "re-run {dataset} for {day} to rewrite it (the lake never reads it as data)"


def _changed_file(name: str, size: int, recorded: int) -> str:
    return (
        f"corrupt Parquet file {name}: it is {size} bytes, but its commit recorded {recorded} "
        "(truncated or replaced after the commit)"
    )


class _Vanished(Exception):
    """A file named by the committed version disappeared while it was being read."""

    def __init__(self, path: str):
        super().__init__(path)
        self.path = path


def _is_storage_error(error: BaseException) -> bool:
    if isinstance(error, OSError):
        return True
    module = type(error).__module__ or ""
    return module.startswith(("botocore", "boto3", "s3transfer"))


@contextlib.contextmanager
def _storage_errors(what: str) -> Iterator[None]:
    """Turn an S3/filesystem failure into a LakeError that says what was being done, and where."""
    try:
        yield
    except (LakeError, _Vanished):
        raise
    except Exception as error:
        if _is_storage_error(error):
            raise LakeError(f"could not {what}: {error}{_hint(error)}") from error
        raise


def _raise_commit_error(dataset: str, day: str, where: str, error: BaseException) -> NoReturn:
    """Re-raise a commit failure; a storage failure becomes a LakeError naming the day."""
    if isinstance(error, Exception) and _is_storage_error(error):
        message = f"could not commit {dataset} dt={day} at {where}: {error}{_hint(error)}"
        raise LakeError(message) from error
    raise error


def _hint(error: BaseException) -> str:
    response = getattr(error, "response", None)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") if response else None
    text = str(error)
    if status == 403 or "ACCESS_DENIED" in text or "SIGNATURE_DOES_NOT_MATCH" in text:
        return " (access denied: check the AWS credentials and the bucket's permissions)"
    return ""


def _is_data_name(relative: str) -> bool:
    """A data file, not `_SUCCESS`, `_manifest.json`, `.crc`, `_temporary/…` or a folder marker."""
    parts = relative.split("/")
    return all(part and not part.startswith(("_", ".")) for part in parts)


def _new_version() -> str:
    """A time-ordered, unique version id: `v20250115T031500123456-1a2b3c4d`."""
    return f"v{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"


def _is_safe(name: str) -> bool:
    try:
        validate_segment(name)
    except ValueError:
        return False
    return True


def _new_id() -> str:
    """A unique staging token / trash id that says when it was made: `20250115T031500Z-<hex>`."""
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}Z-{uuid.uuid4().hex}"


def _id_time(name: str) -> float | None:
    """The creation time (epoch seconds) in a `_new_id` name; None for other names."""
    match = _ID_TIME.match(name)
    if not match:
        return None
    return dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC).timestamp()


class _FsObjects:
    """`S3Objects`' operations over any pyarrow filesystem (used when the lake is not on S3)."""

    def __init__(self, fs: pafs.FileSystem):
        self.fs = fs

    def list(self, prefix_path: str) -> list[tuple[str, int]]:
        selector = pafs.FileSelector(prefix_path, recursive=True, allow_not_found=True)
        return [
            (info.path, int(info.size or 0))
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File
        ]

    def exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type == pafs.FileType.File

    def get_bytes(self, path: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(path) as stream:
                return stream.read()
        except FileNotFoundError:
            return None

    def put_bytes(self, path: str, data: bytes, content_type: str | None = None) -> None:
        self.fs.create_dir(posixpath.dirname(path), recursive=True)
        with self.fs.open_output_stream(path) as out:
            out.write(data)

    def copy_many(self, pairs: Iterable[tuple[str, str]]) -> None:
        for source, target in pairs:
            self.fs.create_dir(posixpath.dirname(target), recursive=True)
            self.fs.copy_file(source, target)

    def delete_many(self, paths: Iterable[str]) -> None:
        for path in paths:
            self.fs.delete_file(path)

    def delete_prefix(self, prefix_path: str) -> int:
        count = len(self.list(prefix_path))
        if self.fs.get_file_info(prefix_path).type != pafs.FileType.NotFound:
            self.fs.delete_dir(prefix_path)
        return count


class Lake:
    """A lake rooted at a local folder or an `s3://bucket/prefix` URI.

    `s3_options` (an `S3Options` or a mapping of its fields) gives an S3 lake an explicit
    endpoint, region or keys; without it an `s3://` root uses pyarrow's defaults and the standard
    AWS credential chain, as before. A local root ignores it.
    """

    def __init__(
        self,
        root: str,
        filesystem: pafs.FileSystem | None = None,
        *,
        s3_options: S3Options | Mapping | None = None,
    ):
        self.root = root.rstrip("/")
        self.s3_options = (
            s3_options if isinstance(s3_options, S3Options) else S3Options.from_mapping(s3_options)
        )
        if filesystem is not None:
            self.fs = filesystem
            self.base = self.root.split("://", 1)[-1]
        elif "://" in self.root:
            if self.root.startswith("s3://") and not self.s3_options.is_default:
                bucket, prefix = split_s3_uri(self.root)
                self.fs = filesystem_for(self.s3_options, bucket=bucket)
                self.base = posixpath.join(bucket, prefix) if prefix else bucket
            else:
                self.fs, self.base = pafs.FileSystem.from_uri(self.root)
        else:
            self.fs = pafs.LocalFileSystem()
            self.base = str(Path(self.root).resolve())
        self.is_local = isinstance(self.fs, pafs.LocalFileSystem)
        self._object_store = None

    @classmethod
    def from_uri(
        cls,
        uri: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
    ) -> "Lake":
        """A lake at `uri`; for `s3://…`, with an explicit endpoint/region/keys if given."""
        options = S3Options(endpoint_url, region, access_key, secret_key, session_token)
        return open_lake(uri, options)

    def __repr__(self) -> str:
        return f"Lake({self.root!r})"

    @property
    def _objects(self) -> S3Objects | _FsObjects:
        """Object operations for commits on a non-local lake (boto3 on S3)."""
        if self._object_store is None:
            if isinstance(self.fs, pafs.S3FileSystem):
                client = s3_client(self.s3_options, region=self.fs.region)
                self._object_store = S3Objects(client)
            else:
                self._object_store = _FsObjects(self.fs)
        return self._object_store

    # -- paths ---------------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return posixpath.join(self.base, *parts)

    def partition_path(self, dataset: str, day: str) -> str:
        return self.path(validate_segment(dataset), f"dt={validate_day(day)}")

    def uri(self, *parts: str) -> str:
        """A URI for Spark and for people: `file:///…` locally, `s3://…` on S3."""
        return self._path_uri(self.path(*parts))

    def _path_uri(self, path: str) -> str:
        return f"file://{path}" if self.is_local else f"s3://{path}"

    def _display(self, path: str) -> str:
        """How a message names a file: its path locally, its URI elsewhere."""
        return path if self.is_local else self._path_uri(path)

    def partition_uri(self, dataset: str, day: str) -> str:
        return self.uri(validate_segment(dataset), f"dt={validate_day(day)}")

    def new_staging_token(self) -> str:
        """A new staging token; it starts with its creation time (see `sweep_stale`)."""
        return _new_id()

    def staging_uri(self, token: str, dataset: str) -> str:
        return self.uri(STAGING, validate_segment(token), validate_segment(dataset))

    def staged_partition_path(self, token: str, dataset: str, day: str) -> str:
        return self.path(STAGING, token, dataset, f"dt={validate_day(day)}")

    # -- queries -------------------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def has_partition(self, dataset: str, day: str) -> bool:
        """Locally: the day's folder exists. Elsewhere: the day has a committed manifest."""
        folder = self.partition_path(dataset, day)
        if self.is_local:
            return self.exists(folder)
        with _storage_errors(f"check {self._path_uri(folder)}"):
            return self._objects.exists(posixpath.join(folder, MANIFEST))

    def list_days(self, dataset: str) -> list[str]:
        folder = self.path(validate_segment(dataset))
        if not self.is_local:
            return self._committed_days(folder)
        if not self.exists(folder):
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        days = []
        for info in infos:
            name = posixpath.basename(info.path)
            if info.type == pafs.FileType.Directory and name.startswith("dt="):
                days.append(name[3:])
        return sorted(days)

    def _committed_days(self, folder: str) -> list[str]:
        days = set()
        with _storage_errors(f"list {self._path_uri(folder)}"):
            listed = self._objects.list(folder)
        for path, _ in listed:
            relative = posixpath.relpath(path, folder).split("/")
            if len(relative) == 2 and relative[1] == MANIFEST and relative[0].startswith("dt="):
                with contextlib.suppress(ValueError):
                    days.add(validate_day(relative[0][3:]))
        return sorted(days)

    def partition_files(self, dataset: str, day: str) -> list[pafs.FileInfo]:
        """The data files of the committed version of a day (empty if there is none)."""
        return self._committed(dataset, day)[1]

    def partition_file_uris(self, dataset: str, day: str) -> list[str]:
        """URIs of the committed version's files: what Spark should read to honour the commit.

        Each file is checked to exist with the size its commit recorded, so a file deleted,
        truncated or replaced after the commit is a LakeError naming it, not input to Spark
        (one listing of the day's folder on S3, a stat per file locally).
        """
        for _ in range(READ_ATTEMPTS):
            version, files = self._committed(dataset, day)
            problem = self._size_problem(dataset, day, version, files)
            if problem is None:
                return [self._path_uri(info.path) for info in files]
            if version is not None and self._committed(dataset, day)[0] != version:
                continue  # replaced while we looked: check the new version
            raise CorruptFileError(problem)
        raise LakeError(
            f"{dataset} dt={day} was replaced {READ_ATTEMPTS} times while being read; try again"
        )

    def _size_problem(
        self, dataset: str, day: str, version: str | None, files: list[pafs.FileInfo]
    ) -> str | None:
        """What is wrong with the committed files on the store, or None if nothing is."""
        if not files:
            return None
        folder = self.partition_path(dataset, day)
        with _storage_errors(f"list {self._path_uri(folder)}"):
            if isinstance(self.fs, pafs.S3FileSystem):
                stored = dict(self._objects.list(folder))
            else:
                stored = {
                    info.path: int(info.size or 0)
                    for info in self.fs.get_file_info([info.path for info in files])
                    if info.type == pafs.FileType.File
                }
        rerun = _RERUN.format(dataset=dataset, day=day)
        for info in files:
            name = self._display(info.path)
            if info.path not in stored:
                return (
                    f"{dataset} dt={day}: the committed version {version} names {name}, which "
                    f"does not exist; {rerun}"
                )
            if info.size is not None and stored[info.path] != info.size:
                changed = _changed_file(name, stored[info.path], info.size)
                return f"{dataset} dt={day}: {changed}; {rerun}"
        return None

    def _committed(self, dataset: str, day: str) -> tuple[str | None, list[pafs.FileInfo]]:
        """(version, files) of a day: from its manifest; a local day without one is listed."""
        folder = self.partition_path(dataset, day)
        manifest = self._read_manifest(folder)
        if manifest is not None:
            files = [
                pafs.FileInfo(
                    posixpath.join(folder, entry["name"]),
                    type=pafs.FileType.File,
                    size=entry.get("size"),
                )
                for entry in manifest["files"]
            ]
            return manifest["version"], files
        if self.is_local:  # a day committed before manifests existed
            return None, self._data_files(folder)
        return None, []

    def _read_manifest(self, folder: str) -> dict | None:
        path = posixpath.join(folder, MANIFEST)
        with _storage_errors(f"read {self._path_uri(path)}"):
            if self.is_local:
                try:
                    with self.fs.open_input_stream(path) as stream:
                        data = stream.read()
                except FileNotFoundError:
                    return None
            else:
                data = self._objects.get_bytes(path)
                if data is None:
                    return None
        try:
            return parse_manifest(data, self._path_uri(path))
        except ValueError as error:
            raise LakeError(str(error)) from None

    def _data_files(self, folder: str) -> list[pafs.FileInfo]:
        if not self.exists(folder):
            return []
        selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
        return sorted(
            (
                info
                for info in self.fs.get_file_info(selector)
                if info.type == pafs.FileType.File
                and _is_data_name(posixpath.relpath(info.path, folder))
            ),
            key=lambda info: info.path,
        )

    # -- writes --------------------------------------------------------------------------------
    def commit(self, dataset: str, day: str, staged_path: str) -> str:
        """Replace `dataset`'s day with the complete version at `staged_path`; returns its URI."""
        final = self.partition_path(dataset, day)
        if self.is_local:
            self._commit_local(dataset, day, final, staged_path)
        else:
            self._commit_objects(dataset, day, final, staged_path)
        return self.partition_uri(dataset, day)

    def _move(self, source: str, target: str) -> None:
        self.fs.move(source, target)

    def _commit_local(self, dataset: str, day: str, final: str, staged_path: str) -> None:
        files = self._data_files(staged_path)
        if not files:
            raise LakeError(f"nothing staged at {staged_path} for {dataset} dt={day}")
        listed = [(posixpath.relpath(i.path, staged_path), int(i.size or 0)) for i in files]
        with self.fs.open_output_stream(posixpath.join(staged_path, MANIFEST)) as out:
            out.write(manifest_bytes(dataset, day, _new_version(), listed))
        self.fs.create_dir(posixpath.dirname(final), recursive=True)
        trash_root = self.path(TRASH, _new_id())
        trash = posixpath.join(trash_root, dataset, f"dt={day}")
        had_old = self.exists(final)
        if had_old:
            self.fs.create_dir(posixpath.dirname(trash), recursive=True)
            self._move(final, trash)
        try:
            self._move(staged_path, final)
        except BaseException as error:
            if had_old:  # put the old version back: the day must never go missing
                self._move(trash, final)
                self.fs.delete_dir(trash_root)
            if isinstance(error, OSError):
                raise LakeError(
                    f"could not commit {dataset} dt={day} at {final}: {error}"
                ) from error
            raise
        if had_old:
            try:
                self.fs.delete_dir(trash_root)
            except OSError as error:
                log.warning(
                    "committed %s dt=%s; could not delete %s: %s", dataset, day, trash_root, error
                )

    def _commit_objects(self, dataset: str, day: str, final: str, staged_path: str) -> None:
        objects = self._objects
        where = self._path_uri(final)
        with _storage_errors(
            f"list the staged {dataset} dt={day} at {self._path_uri(staged_path)}"
        ):
            staged = sorted(
                (path, size)
                for path, size in objects.list(staged_path)
                if _is_data_name(posixpath.relpath(path, staged_path))
            )
        if not staged:
            raise LakeError(f"nothing staged at {staged_path} for {dataset} dt={day}")
        version = _new_version()
        names = [
            (f"{version}-{posixpath.relpath(path, staged_path).replace('/', '-')}", size)
            for path, size in staged
        ]
        targets = [posixpath.join(final, name) for name, _ in names]
        manifest_path = posixpath.join(final, MANIFEST)
        # 1. the new version's objects, under names no reader is using
        try:
            objects.copy_many(zip([path for path, _ in staged], targets, strict=True))
        except BaseException as error:
            with contextlib.suppress(Exception):
                objects.delete_many(targets)  # the old version's manifest still rules
            _raise_commit_error(dataset, day, where, error)
        # 2. the commit point: one PUT of the manifest
        try:
            objects.put_bytes(
                manifest_path, manifest_bytes(dataset, day, version, names), "application/json"
            )
        except BaseException as error:
            # The PUT may have reached the store even though we got an error (a timeout on the
            # response): look before deleting objects a committed manifest may name.
            try:
                current = objects.get_bytes(manifest_path)
                stored = parse_manifest(current, where)["version"] if current else None
                committed = stored == version
            except Exception:
                committed = None  # unknown: keep our objects; the next commit removes them
            if committed is False:
                with contextlib.suppress(Exception):
                    objects.delete_many(targets)
            if not committed:
                _raise_commit_error(dataset, day, where, error)
            log.warning(
                "%s dt=%s: the manifest PUT reported %r but was stored", dataset, day, error
            )
        # 3. committed: remove the previous version, debris of failed commits, and the staging
        try:
            current = objects.get_bytes(manifest_path)
            current_version = parse_manifest(current, where)["version"] if current else None
            if current_version == version:
                keep = {*targets, manifest_path}
                stale = [
                    path
                    for path, _ in objects.list(final)
                    if path not in keep and not path.endswith("/")
                ]
                objects.delete_many(stale)
            else:
                log.warning(
                    "%s dt=%s: another commit (%s) replaced version %s; leaving cleanup to it",
                    dataset,
                    day,
                    current_version,
                    version,
                )
            objects.delete_prefix(staged_path)
        except Exception as error:
            if not (_is_storage_error(error) or isinstance(error, ValueError)):
                raise
            log.warning(
                "committed %s dt=%s (%s); cleanup failed and is left to the next commit: %s",
                dataset,
                day,
                version,
                error,
            )

    def write_table(self, dataset: str, day: str, table: pa.Table) -> str:
        """Write one day's table (without its `dt` column) and commit it atomically."""
        if "dt" in table.column_names:
            table = table.drop(["dt"])
        token = self.new_staging_token()
        staged = self.staged_partition_path(token, dataset, day)
        try:
            with _storage_errors(f"write {dataset} dt={day} to {self._path_uri(staged)}"):
                if not isinstance(self.fs, pafs.S3FileSystem):  # S3 needs no folders
                    self.fs.create_dir(staged, recursive=True)
                target = posixpath.join(staged, f"part-{token}.parquet")
                with self.fs.open_output_stream(target) as out:
                    pq.write_table(table, out, compression="zstd")
            return self.commit(dataset, day, staged)
        finally:
            try:
                self.discard_staging(token)
            except LakeError as error:
                log.warning("could not remove staging %s: %s", token, error)

    def discard_staging(self, token: str) -> None:
        path = self.path(STAGING, validate_segment(token))
        with _storage_errors(f"remove staging {self._path_uri(path)}"):
            if self.is_local:
                if self.exists(path):
                    self.fs.delete_dir(path)
            else:
                self._objects.delete_prefix(path)

    def sweep_stale(
        self, max_age_seconds: float = STALE_AFTER_SECONDS, now: float | None = None
    ) -> dict[str, list[str]]:
        """Remove the staging folders and commit trash that killed writers left behind.

        Only what is older than `max_age_seconds` goes (a younger folder may belong to a writer
        that is still running). A trashed old version whose day is missing (a local commit
        killed between its two renames) is put back first. Returns what was done:
        `{"staging": [tokens], "trash": [ids], "restored": ["dataset dt=day", ...]}`.
        """
        now = time.time() if now is None else now
        done: dict[str, list[str]] = {"staging": [], "trash": [], "restored": []}
        for token in self._stale_children(STAGING, now - max_age_seconds):
            self.discard_staging(token)
            done["staging"].append(token)
            log.warning("removed the staging folder %s left by a writer that did not finish", token)
        if self.is_local:
            for trash_id in self._stale_children(TRASH, now - max_age_seconds):
                with _storage_errors(f"empty {self._path_uri(self.path(TRASH, trash_id))}"):
                    done["restored"] += self._empty_trash(trash_id)
                done["trash"].append(trash_id)
        return done

    def _stale_children(self, folder: str, cutoff: float) -> list[str]:
        """Names of the sub-folders of `{root}/{folder}` made before `cutoff` (epoch seconds)."""
        path = self.path(folder)
        with _storage_errors(f"list {self._path_uri(path)}"):
            if isinstance(self.fs, pafs.S3FileSystem):
                # the folders that hold objects (a store that models folders, like SeaweedFS,
                # keeps listing a folder emptied by an earlier cleanup)
                listed = self._objects.list(path)
                names = {posixpath.relpath(key, path).split("/")[0] for key, _ in listed}
                children = [pafs.FileInfo(posixpath.join(path, n)) for n in sorted(names)]
            else:
                selector = pafs.FileSelector(path, allow_not_found=True)
                children = [
                    info
                    for info in self.fs.get_file_info(selector)
                    if info.type == pafs.FileType.Directory
                ]
            stale = []
            for child in children:
                name = posixpath.basename(child.path)
                if not _is_safe(name):
                    continue
                made = _id_time(name)
                if made is None:  # a name from before ids carried their time: its newest file
                    selector = pafs.FileSelector(child.path, recursive=True)
                    times = [
                        info.mtime.timestamp()
                        for info in [child, *self.fs.get_file_info(selector)]
                        if info.mtime is not None
                    ]
                    made = max(times, default=None)
                if made is not None and made < cutoff:
                    stale.append(name)
        return sorted(stale)

    def _empty_trash(self, trash_id: str) -> list[str]:
        """Delete one local trash entry, first putting back any old version whose day is gone."""
        root = self.path(TRASH, trash_id)
        restored = []
        for dataset_info in self.fs.get_file_info(pafs.FileSelector(root)):
            dataset = posixpath.basename(dataset_info.path)
            if not _is_safe(dataset):
                continue
            for day_info in self.fs.get_file_info(pafs.FileSelector(dataset_info.path)):
                name = posixpath.basename(day_info.path)
                try:
                    final = self.partition_path(dataset, name.removeprefix("dt="))
                except ValueError:
                    continue
                if not self.exists(final):
                    self.fs.create_dir(posixpath.dirname(final), recursive=True)
                    self._move(day_info.path, final)
                    restored.append(f"{dataset} {name}")
                    log.warning(
                        "%s %s was missing (a commit was killed between its renames): "
                        "put its previous version back from %s",
                        dataset,
                        name,
                        root,
                    )
        self.fs.delete_dir(root)
        return restored

    def _relative_path(self, relative: str, *, reading: bool = False) -> str:
        """A path under the root; a read may also name `_` files (a day's `_manifest.json`)."""
        parts = relative.split("/") if isinstance(relative, str) else [relative]
        checked = []
        for part in parts:
            name = part[1:] if reading and isinstance(part, str) and part[:1] == "_" else part
            validate_segment(name)
            checked.append(part)
        return self.path(*checked)

    def write_bytes(self, relative: str, data: bytes) -> str:
        """Write a small object (a manifest, the dashboard) atomically; returns its URI.

        Locally: a temporary file renamed over the target. On S3: one PUT, which readers see
        whole or not at all.
        """
        target = self._relative_path(relative)
        with _storage_errors(f"write {self._path_uri(target)}"):
            if self.is_local:
                self.fs.create_dir(posixpath.dirname(target), recursive=True)
                temporary = f"{target}.{uuid.uuid4().hex}.tmp"
                with self.fs.open_output_stream(temporary) as out:
                    out.write(data)
                self.fs.move(temporary, target)
            else:
                self._objects.put_bytes(target, data)
        return self.uri(relative)

    def read_bytes(self, relative: str) -> bytes:
        with self.fs.open_input_stream(self._relative_path(relative, reading=True)) as stream:
            return stream.read()

    # -- reads ---------------------------------------------------------------------------------
    def read_partition(self, dataset: str, day: str, columns: list[str] | None = None) -> pa.Table:
        """One day of a dataset, with its `dt` column; an error if the day is missing/corrupt.

        Only the committed version is read: if a concurrent commit replaces the day while it is
        being read, the read starts again from the new version.
        """
        for _ in range(READ_ATTEMPTS):
            version, files = self._committed(dataset, day)
            if not files:
                raise LakeError(
                    f"{dataset} has no data for dt={day} ({self.partition_uri(dataset, day)})"
                )
            try:
                tables = [self._read_file(info, columns) for info in files]
            except _Corrupt as corrupt:
                raise CorruptFileError(
                    f"{dataset} dt={day}: {corrupt}; {_RERUN.format(dataset=dataset, day=day)}"
                ) from corrupt.__cause__
            except _Vanished as vanished:
                if self._committed(dataset, day)[0] == version and version is not None:
                    raise CorruptFileError(
                        f"{dataset} dt={day}: the committed version {version} names "
                        f"{self._path_uri(vanished.path)}, which does not exist; "
                        f"{_RERUN.format(dataset=dataset, day=day)}"
                    ) from None
                continue  # replaced while we read it: read the new version
            table = pa.concat_tables(tables, promote_options="permissive")
            return table.append_column("dt", pa.array([day] * table.num_rows, pa.string()))
        raise LakeError(
            f"{dataset} dt={day} was replaced {READ_ATTEMPTS} times while being read; try again"
        )

    def _read_file(self, info: pafs.FileInfo, columns: list[str] | None) -> pa.Table:
        """One committed file; its size must be the one its commit recorded.

        Off the local disk the whole object is fetched first, so that a store that goes away
        mid-read is reported as such ("could not read"), not as a corrupt file.
        """
        uri, name = self._path_uri(info.path), self._display(info.path)
        try:
            handle = self.fs.open_input_file(info.path)
        except FileNotFoundError:
            raise _Vanished(info.path) from None
        except OSError as error:
            raise LakeError(f"could not read {uri}: {error}{_hint(error)}") from error
        with handle:
            try:
                size = handle.size()
                if info.size is not None and size != info.size:
                    raise _Corrupt(_changed_file(name, size, info.size))
                source = handle if self.is_local else pa.BufferReader(handle.read())
            except OSError as error:
                raise LakeError(f"could not read {uri}: {error}{_hint(error)}") from error
            try:
                return pq.read_table(source, columns=columns)
            except (pa.ArrowException, OSError) as error:
                raise _Corrupt(f"corrupt Parquet file {name}: {error}") from error

    def read_days(
        self, dataset: str, days: Iterable[str], columns: list[str] | None = None
    ) -> tuple[pa.Table | None, list[str]]:
        """The days that exist, concatenated, and the list of days that were missing."""
        tables, missing = [], []
        for day in days:
            if self.has_partition(dataset, day):
                tables.append(self.read_partition(dataset, day, columns))
            else:
                missing.append(day)
        if not tables:
            return None, missing
        return pa.concat_tables(tables, promote_options="permissive"), missing

    def read_dataset(self, dataset: str, columns: list[str] | None = None) -> pa.Table | None:
        return self.read_days(dataset, self.list_days(dataset), columns)[0]


def open_lake(uri: str, s3_options: S3Options | Mapping | None = None) -> Lake:
    """The lake at `uri`: a local folder, or `s3://bucket/prefix` reached with `s3_options`."""
    return Lake(uri, s3_options=s3_options if uri.startswith("s3://") else None)


def table_to_csv_bytes(table: pa.Table) -> bytes:
    import pyarrow.csv as pacsv

    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    return sink.getvalue()
