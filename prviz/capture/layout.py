"""What exists in the capture and ground-truth folders for a day, listed without Spark.

Capture layout: `{root}/{endpoint}/{variant}/yyyy/mm/dd/hh/*.jsonl`; ground truth:
`{root}/yyyy/mm/dd/hh/*.jsonl`. Endpoint and variant names are read from someone else's bucket,
so each is validated before it is used in a path; unsafe names are reported, never followed.
"""

import hashlib
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.fs as pafs

from prviz.lake.paths import UnsafePathError, validate_day, validate_segment


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


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), str(Path(uri).resolve())


def _subdirs(fs: pafs.FileSystem, path: str) -> list[str]:
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted(posixpath.basename(i.path) for i in infos if i.type == pafs.FileType.Directory)


def _scan_hours(fs, day_path: str, key: str, listing: DayListing) -> None:
    for hour in _subdirs(fs, day_path):
        if not (len(hour) == 2 and hour.isdigit() and int(hour) < 24):
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
    uri: str, day: str, endpoints: tuple[str, ...] = (), variants: tuple[str, ...] = ()
) -> DayListing:
    fs, root = _filesystem(uri)
    listing = DayListing(validate_day(day))
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


def list_ground_truth_day(uri: str, day: str) -> DayListing:
    fs, root = _filesystem(uri)
    listing = DayListing(validate_day(day))
    _scan_hours(fs, posixpath.join(root, *day.split("-")), "*", listing)
    return listing
