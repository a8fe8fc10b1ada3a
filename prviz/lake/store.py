"""The lake: Parquet datasets partitioned by `dt=YYYY-MM-DD`, each day replaced whole.

Writers never write into a day's folder directly. They write a complete new version under
`{root}/_staging/{token}/{dataset}/dt=…/` and `commit` swaps it in. On a local filesystem the swap
is two renames (old version aside, new version in), so a reader sees the old day or the new day,
never half of one; the old version is deleted only after the new one is in place. The same
interface runs over `s3://` through pyarrow's S3 filesystem (see docs/architecture.md for how the
S3 commit differs).
"""

import io
import posixpath
import uuid
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from prviz.lake.paths import validate_day, validate_segment

STAGING = "_staging"
TRASH = "_trash"


class LakeError(RuntimeError):
    """The lake could not be read or written; the message names the path."""


class Lake:
    """A lake rooted at a local folder or an `s3://bucket/prefix` URI."""

    def __init__(self, root: str, filesystem: pafs.FileSystem | None = None):
        self.root = root.rstrip("/")
        if filesystem is not None:
            self.fs = filesystem
            self.base = self.root.split("://", 1)[-1]
        elif "://" in self.root:
            self.fs, self.base = pafs.FileSystem.from_uri(self.root)
        else:
            self.fs = pafs.LocalFileSystem()
            self.base = str(Path(self.root).resolve())
        self.is_local = isinstance(self.fs, pafs.LocalFileSystem)

    def __repr__(self) -> str:
        return f"Lake({self.root!r})"

    # -- paths ---------------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return posixpath.join(self.base, *parts)

    def partition_path(self, dataset: str, day: str) -> str:
        return self.path(validate_segment(dataset), f"dt={validate_day(day)}")

    def uri(self, *parts: str) -> str:
        """A URI for Spark and for people: `file:///…` locally, `s3://…` on S3."""
        path = self.path(*parts)
        return f"file://{path}" if self.is_local else f"s3://{path}"

    def partition_uri(self, dataset: str, day: str) -> str:
        return self.uri(validate_segment(dataset), f"dt={validate_day(day)}")

    def new_staging_token(self) -> str:
        return uuid.uuid4().hex

    def staging_uri(self, token: str, dataset: str) -> str:
        return self.uri(STAGING, validate_segment(token), validate_segment(dataset))

    def staged_partition_path(self, token: str, dataset: str, day: str) -> str:
        return self.path(STAGING, token, dataset, f"dt={validate_day(day)}")

    # -- queries -------------------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        return self.fs.get_file_info(path).type != pafs.FileType.NotFound

    def has_partition(self, dataset: str, day: str) -> bool:
        return self.exists(self.partition_path(dataset, day))

    def list_days(self, dataset: str) -> list[str]:
        folder = self.path(validate_segment(dataset))
        if not self.exists(folder):
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        days = []
        for info in infos:
            name = posixpath.basename(info.path)
            if info.type == pafs.FileType.Directory and name.startswith("dt="):
                days.append(name[3:])
        return sorted(days)

    def partition_files(self, dataset: str, day: str) -> list[pafs.FileInfo]:
        return self._data_files(self.partition_path(dataset, day))

    def _data_files(self, folder: str) -> list[pafs.FileInfo]:
        if not self.exists(folder):
            return []
        selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
        return sorted(
            (
                info
                for info in self.fs.get_file_info(selector)
                if info.type == pafs.FileType.File
                and not posixpath.basename(info.path).startswith(("_", "."))
            ),
            key=lambda info: info.path,
        )

    # -- writes --------------------------------------------------------------------------------
    def commit(self, dataset: str, day: str, staged_path: str) -> str:
        """Replace `dataset`'s day with the complete version at `staged_path`; returns its URI."""
        final = self.partition_path(dataset, day)
        if not self.exists(staged_path):
            raise LakeError(f"nothing staged at {staged_path} for {dataset} dt={day}")
        self.fs.create_dir(posixpath.dirname(final), recursive=True)
        if self.is_local:
            trash = self.path(TRASH, uuid.uuid4().hex, dataset, f"dt={day}")
            had_old = self.exists(final)
            if had_old:
                self.fs.create_dir(posixpath.dirname(trash), recursive=True)
                self.fs.move(final, trash)
            self.fs.move(staged_path, final)
            if had_old:
                self.fs.delete_dir(posixpath.dirname(posixpath.dirname(trash)))
        else:
            # Object stores have no rename: copy the new objects in (unique names), then delete
            # the objects of the old version. Readers may briefly list both versions, never a
            # partial new one; QuickSight reads only after the commit (see docs/architecture.md).
            old = {info.path for info in self._data_files(final)}
            for info in self._data_files(staged_path):
                relative = posixpath.relpath(info.path, staged_path)
                self.fs.copy_file(info.path, posixpath.join(final, relative))
            new = {
                posixpath.join(final, posixpath.relpath(i.path, staged_path))
                for i in self._data_files(staged_path)
            }
            for path in sorted(old - new):
                self.fs.delete_file(path)
            self.fs.delete_dir(staged_path)
        return self.partition_uri(dataset, day)

    def write_table(self, dataset: str, day: str, table: pa.Table) -> str:
        """Write one day's table (without its `dt` column) and commit it atomically."""
        if "dt" in table.column_names:
            table = table.drop(["dt"])
        token = self.new_staging_token()
        staged = self.staged_partition_path(token, dataset, day)
        self.fs.create_dir(staged, recursive=True)
        with self.fs.open_output_stream(posixpath.join(staged, f"part-{token}.parquet")) as out:
            pq.write_table(table, out, compression="zstd")
        uri = self.commit(dataset, day, staged)
        self.discard_staging(token)
        return uri

    def discard_staging(self, token: str) -> None:
        path = self.path(STAGING, validate_segment(token))
        if self.exists(path):
            self.fs.delete_dir(path)

    def write_bytes(self, relative: str, data: bytes) -> str:
        """Write a small object (a manifest, the dashboard) atomically; returns its URI."""
        target = self.path(*[validate_segment(p) for p in relative.split("/")])
        self.fs.create_dir(posixpath.dirname(target), recursive=True)
        if self.is_local:
            temporary = f"{target}.{uuid.uuid4().hex}.tmp"
            with self.fs.open_output_stream(temporary) as out:
                out.write(data)
            self.fs.move(temporary, target)
        else:
            with self.fs.open_output_stream(target) as out:
                out.write(data)
        return self.uri(relative)

    def read_bytes(self, relative: str) -> bytes:
        with self.fs.open_input_stream(self.path(relative)) as stream:
            return stream.read()

    # -- reads ---------------------------------------------------------------------------------
    def read_partition(self, dataset: str, day: str, columns: list[str] | None = None) -> pa.Table:
        """One day of a dataset, with its `dt` column; an error if the day is missing/corrupt."""
        files = self.partition_files(dataset, day)
        if not files:
            raise LakeError(
                f"{dataset} has no data for dt={day} ({self.partition_uri(dataset, day)})"
            )
        tables = []
        for info in files:
            try:
                with self.fs.open_input_file(info.path) as handle:
                    tables.append(pq.read_table(handle, columns=columns))
            except (pa.ArrowInvalid, OSError) as error:
                raise LakeError(f"corrupt Parquet file {info.path}: {error}") from error
        table = pa.concat_tables(tables, promote_options="permissive")
        return table.append_column("dt", pa.array([day] * table.num_rows, pa.string()))

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


def table_to_csv_bytes(table: pa.Table) -> bytes:
    import pyarrow.csv as pacsv

    sink = io.BytesIO()
    pacsv.write_csv(table, sink)
    return sink.getvalue()
