"""What exists in the capture and ground-truth folders for a day, listed without Spark.

Capture layout: `{root}/{endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl`; ground truth:
`{root}/yyyy/mm/dd/hh/*.jsonl`. Endpoint and variant names are read from someone else's bucket,
so each is validated before it is used in a path; unsafe names are reported, never followed.
Hour folders other than `00`…`23` are reported the same way and not read. The day is validated
before anything is listed.

An `s3://` root is read with the same S3 options as the lake (`s3_options`: the S3-compatible
endpoint and region of PRVIZ_S3_ENDPOINT_URL / PRVIZ_S3_REGION; keys from the AWS chain).
"""

import hashlib
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.fs as pafs

from prviz.lake.paths import UnsafePathError, validate_day, validate_segment
from prviz.lake.s3 import S3Options, filesystem_for, split_s3_uri


@dataclass
class DayListing:
    day: str
    hours: dict[str, list[int]] = field(default_factory=dict)  # "endpoint/variant" or "*" -> hours
    files: int = 0
    bytes: int = 0
    latest_mtime: float = 0.0
    unsafe_names: list[str] = field(default_factory=list)

    @property
    def missing_hours(self) -> dict[str, list[int]]:
        return {k: sorted(set(range(24)) - set(v)) for k, v in self.hours.items() if len(v) < 24}

    def data_version(self) -> str:
        text = f"{self.files}:{self.bytes}:{self.latest_mtime}:{sorted(self.hours.items())}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _filesystem(
    uri: str,
    s3_options: S3Options | Mapping | None = None,
    filesystem: pafs.FileSystem | None = None,
) -> tuple[pafs.FileSystem, str]:
    """The filesystem and base path of a root: the given filesystem (the URI is then its path),
    local, `s3://` with the lake's S3 options, or any other URI pyarrow knows (its defaults)."""
    if filesystem is not None:
        return filesystem, uri.split("://", 1)[-1].rstrip("/")
    if "://" not in uri:
        return pafs.LocalFileSystem(), str(Path(uri).resolve())
    options = (
        s3_options if isinstance(s3_options, S3Options) else S3Options.from_mapping(s3_options)
    )
    if uri.startswith("s3://") and not options.is_default:
        bucket, prefix = split_s3_uri(uri)
        return filesystem_for(options, bucket=bucket), posixpath.join(bucket, prefix).rstrip("/")
    return pafs.FileSystem.from_uri(uri)


def _subdirs(fs: pafs.FileSystem, path: str) -> list[str]:
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted(posixpath.basename(i.path) for i in infos if i.type == pafs.FileType.Directory)


def _is_hour(name: str) -> bool:
    return len(name) == 2 and name.isascii() and name.isdigit() and int(name) < 24


def _scan_hours(fs, day_path: str, key: str, listing: DayListing) -> None:
    for hour in _subdirs(fs, day_path):
        if not _is_hour(hour):
            where = "" if key == "*" else f"{key}/"
            listing.unsafe_names.append(f"{where}{listing.day.replace('-', '/')}/{hour}")
            continue
        selector = pafs.FileSelector(posixpath.join(day_path, hour), allow_not_found=True)
        files = [i for i in fs.get_file_info(selector) if i.type == pafs.FileType.File]
        if not files:
            continue
        listing.hours.setdefault(key, []).append(int(hour))
        listing.files += len(files)
        listing.bytes += sum(i.size or 0 for i in files)
        for info in files:
            if info.mtime is not None:
                listing.latest_mtime = max(listing.latest_mtime, info.mtime.timestamp())


def list_capture_day(
    uri: str,
    day: str,
    endpoints: tuple[str, ...] = (),
    variants: tuple[str, ...] = (),
    s3_options: S3Options | Mapping | None = None,
    filesystem: pafs.FileSystem | None = None,
) -> DayListing:
    """Hours, files and bytes of `day` per endpoint/variant under the capture root `uri`."""
    listing = DayListing(validate_day(day))
    fs, root = _filesystem(uri, s3_options, filesystem)
    for endpoint in _subdirs(fs, root):
        if endpoints and endpoint not in endpoints:
            continue
        try:
            validate_segment(endpoint)
        except UnsafePathError:
            listing.unsafe_names.append(endpoint)
            continue
        for variant in _subdirs(fs, posixpath.join(root, endpoint)):
            if variants and variant not in variants:
                continue
            try:
                validate_segment(variant)
            except UnsafePathError:
                listing.unsafe_names.append(f"{endpoint}/{variant}")
                continue
            day_path = posixpath.join(root, endpoint, variant, *day.split("-"))
            _scan_hours(fs, day_path, f"{endpoint}/{variant}", listing)
    return listing


def list_ground_truth_day(
    uri: str,
    day: str,
    s3_options: S3Options | Mapping | None = None,
    filesystem: pafs.FileSystem | None = None,
) -> DayListing:
    """Hours, files and bytes of the labels collected on `day` under the ground-truth root."""
    listing = DayListing(validate_day(day))
    fs, root = _filesystem(uri, s3_options, filesystem)
    _scan_hours(fs, posixpath.join(root, *day.split("-")), "*", listing)
    return listing
