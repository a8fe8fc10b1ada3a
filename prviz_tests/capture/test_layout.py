"""The capture layout, listed without Spark, and every place a partition key becomes a path.

Names read from someone else's bucket (endpoints, variants, hour folders) are reported in
`unsafe_names` and never followed; a day that is not `YYYY-MM-DD` is refused before any path is
built, here and at every other entry point (the lake, the Spark job, the Pipes protocol, the
QuickSight export, a Dagster run). Three kinds of trees: a real local folder, an in-memory
pyarrow filesystem that can hold names no local folder can (`..`, NUL, an empty segment) and
records every path it is asked about, and the real S3 server of `prviz_tests/s3_server.py`.
"""

# ruff: noqa: F811
from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from prviz.capture.layout import list_capture_day, list_ground_truth_day
from prviz.config import JobConfig, Settings
from prviz.definitions import DAILY_JOB, build_assets, build_definitions, build_resources
from prviz.lake.paths import UnsafePathError, day_range, shift_day, validate_day, validate_segment
from prviz.lake.store import Lake
from prviz.publish.csv_export import export_quicksight_csv
from prviz.resources import PipelineResource
from prviz.spark.job import run_job
from prviz.spark.pipes_job import days_from, job_extras

# The session fixture `s3_server` is imported here (tests take it as an argument: F811).
from prviz_tests.s3_server import REGION, S3Server, s3_server  # noqa: F401

DAY = "2025-01-15"
DAY_PATH = "2025/01/15"
BAD_DAYS = [
    "../2025-01-01", "2025-01-01/..", "2025-13-01", "2025-02-30", "2025-1-1", "20250101",
    " 2025-01-01", "2025-01-01 ", "2025-01-01\x00", "/2025-01-01", "2025-01-01/../../etc",
    "2025/01/01", "..", "", "2025-01-01T00:00", "+2025-01-01", "2025-01-01\n",
]  # fmt: skip
UNSAFE_NAMES = [
    "..", ".", "...", ".hidden", "..%2F..%2Fetc", "a%2Fb", "a\\b", "-dash", "a b", "a\nb",
    "C:", "~root", "$HOME", "é", "x" * 201, "nul\x00x", "",
]  # fmt: skip


# -- an in-memory pyarrow filesystem that holds any name and records what it is asked ----------
class TreeHandler(pafs.FileSystemHandler):
    """Files given by their full path (segments may be anything, like S3 keys); read-only.

    `asked` is every path the filesystem was asked about, in order.
    """

    def __init__(self, files: dict[str, int]):
        self.files = dict(files)
        self.dirs = {
            "/".join(path.split("/")[:i]) for path in files for i in range(1, path.count("/") + 1)
        }
        self.asked: list[str] = []

    def _info(self, path: str) -> pafs.FileInfo:
        if path in self.files:
            return pafs.FileInfo(path, pafs.FileType.File, size=self.files[path])
        if path in self.dirs:
            return pafs.FileInfo(path, pafs.FileType.Directory)
        return pafs.FileInfo(path, pafs.FileType.NotFound)

    def get_file_info(self, paths):
        self.asked.extend(paths)
        return [self._info(path) for path in paths]

    def get_file_info_selector(self, selector):
        base = selector.base_dir
        self.asked.append(base)
        if base not in self.dirs:
            if selector.allow_not_found:
                return []
            raise FileNotFoundError(base)
        names = {
            path[len(base) + 1 :].split("/")[0]
            for path in (*self.files, *self.dirs)
            if path.startswith(base + "/")
        }
        return [self._info(f"{base}/{name}") for name in sorted(names)]

    def get_type_name(self):
        return "tree"

    def equals(self, other):
        return other is self

    def normalize_path(self, path):
        return path

    def _read_only(self, *args, **kwargs):
        raise OSError("read-only test tree")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = _read_only
    delete_file = move = copy_file = open_input_stream = open_input_file = _read_only
    open_output_stream = open_append_stream = _read_only


def tree(files: dict[str, int]) -> tuple[pafs.PyFileSystem, TreeHandler]:
    handler = TreeHandler(files)
    return pafs.PyFileSystem(handler), handler


def assert_never_followed(handler: TreeHandler, root: str) -> None:
    """Every capture path asked about is the root, a safe endpoint, or a safe endpoint/variant's
    day folder or real hour folder: no unsafe name was ever part of a path that was used."""
    for path in handler.asked:
        if path == root:
            continue
        assert path.startswith(root + "/"), path
        segments = path[len(root) + 1 :].split("/")
        for segment in segments:
            validate_segment(segment)  # raises on the first unsafe name that was followed
        assert len(segments) in (1, 5, 6), path  # endpoint | endpoint/variant/y/m/d[/hh]
        if len(segments) >= 5:
            assert "/".join(segments[2:5]) == DAY_PATH, path
        if len(segments) == 6:
            assert len(segments[5]) == 2 and int(segments[5]) < 24, path


# -- capture: unsafe endpoint and variant names, bad hour folders ------------------------------
def test_unsafe_names_in_any_form_are_reported_and_never_followed() -> None:
    safe = {
        f"cap/fraud-scorer/champion/{DAY_PATH}/07/a.jsonl": 100,
        f"cap/fraud-scorer/champion/{DAY_PATH}/23/b.jsonl": 20,
        f"cap/fraud-scorer/challenger/{DAY_PATH}/00/c.jsonl": 3,
    }
    hostile = {}
    for name in UNSAFE_NAMES:
        hostile[f"cap/{name}/champion/{DAY_PATH}/07/x.jsonl"] = 1000  # an unsafe endpoint
        hostile[f"cap/fraud-scorer/{name}/{DAY_PATH}/07/x.jsonl"] = 1000  # an unsafe variant
    for hour in ("24", "7", "007", "ab", "-1", "..", "\uff10\uff17", "07 ", ""):  # ０７: digits
        hostile[f"cap/fraud-scorer/champion/{DAY_PATH}/{hour}/x.jsonl"] = 1000
    filesystem, handler = tree({**safe, **hostile})

    listing = list_capture_day("cap", DAY, filesystem=filesystem)

    assert listing.hours == {"fraud-scorer/champion": [7, 23], "fraud-scorer/challenger": [0]}
    assert (listing.files, listing.bytes) == (3, 123)  # nothing below an unsafe name counted
    expected = sorted(
        list(UNSAFE_NAMES)
        + [f"fraud-scorer/{name}" for name in UNSAFE_NAMES]
        + [
            f"fraud-scorer/champion/{DAY_PATH}/{hour}"
            for hour in ("24", "7", "007", "ab", "-1", "..", "\uff10\uff17", "07 ", "")
        ]
    )
    assert sorted(listing.unsafe_names) == expected
    assert_never_followed(handler, "cap")
    # the safe part alone gives the same listing and the same data version
    alone = list_capture_day("cap", DAY, filesystem=tree(safe)[0])
    assert alone.data_version() == listing.data_version()


def test_a_real_folder_tree_with_unsafe_names(tmp_path: Path) -> None:
    """The same on disk, with every unsafe name a local folder can have."""
    root = tmp_path / "capture"

    def put(relative: str, size: int) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)

    put(f"fraud-scorer/champion/{DAY_PATH}/07/a.jsonl", 100)
    put(f"fraud-scorer/champion/{DAY_PATH}/23/b.jsonl", 20)
    put(f"fraud-scorer/challenger/{DAY_PATH}/00/c.jsonl", 3)
    put(f"fraud-scorer/challenger/{DAY_PATH}/01/empty/.keep", 0)  # a folder, not a file: no hour
    on_disk = [n for n in UNSAFE_NAMES if n not in ("..", ".", "", "nul\x00x")] + ["y" * 255]
    for name in on_disk:
        put(f"{name}/champion/{DAY_PATH}/07/x.jsonl", 1000)
        put(f"fraud-scorer/{name}/{DAY_PATH}/07/x.jsonl", 1000)
    bad_hours = ("24", "7", "ab", "\uff10\uff17")
    for hour in bad_hours:
        put(f"fraud-scorer/champion/{DAY_PATH}/{hour}/x.jsonl", 1000)
    # a file named like an endpoint is not a folder: neither listed nor reported
    (root / "not-a-folder").write_text("x")

    listing = list_capture_day(str(root), DAY)

    assert listing.hours == {"fraud-scorer/champion": [7, 23], "fraud-scorer/challenger": [0]}
    assert (listing.files, listing.bytes) == (3, 123)
    assert sorted(listing.unsafe_names) == sorted(
        on_disk
        + [f"fraud-scorer/{name}" for name in on_disk]
        + [f"fraud-scorer/champion/{DAY_PATH}/{hour}" for hour in bad_hours]
    )
    assert listing.missing_hours["fraud-scorer/challenger"] == list(range(1, 24))
    # a restriction to some endpoints/variants looks at nothing else, safe or not
    only = list_capture_day(str(root), DAY, endpoints=("fraud-scorer",), variants=("champion",))
    assert only.hours == {"fraud-scorer/champion": [7, 23]}
    assert sorted(only.unsafe_names) == [
        f"fraud-scorer/champion/{DAY_PATH}/{h}" for h in sorted(bad_hours)
    ]


def test_ground_truth_bad_hour_folders_are_reported_and_not_read() -> None:
    files = {
        f"gt/{DAY_PATH}/07/a.jsonl": 10,
        f"gt/{DAY_PATH}/7/b.jsonl": 1000,
        f"gt/{DAY_PATH}/../c.jsonl": 1000,
        f"gt/{DAY_PATH}/../d/e.jsonl": 1000,
        f"gt/{DAY_PATH}/24/f.jsonl": 1000,
        f"gt/{DAY_PATH}/nul\x00/g.jsonl": 1000,
        f"gt/{DAY_PATH}/note.txt": 1000,  # a file in the day folder: not an hour
    }
    filesystem, handler = tree(files)
    listing = list_ground_truth_day("gt", DAY, filesystem=filesystem)
    assert listing.hours == {"*": [7]} and (listing.files, listing.bytes) == (1, 10)
    assert sorted(listing.unsafe_names) == sorted(
        f"{DAY_PATH}/{hour}" for hour in ("7", "..", "24", "nul\x00")
    )
    assert sorted(handler.asked) == sorted([f"gt/{DAY_PATH}", f"gt/{DAY_PATH}/07"])


def _keys(asset) -> set:
    """The asset keys of an assets definition or a source asset."""
    return set(getattr(asset, "keys", None) or {asset.key})


# -- a day that is not a day is refused before any path is built --------------------------------
@pytest.mark.parametrize("day", BAD_DAYS)
def test_the_path_validators_refuse_every_malformed_day(day: str) -> None:
    with pytest.raises(UnsafePathError, match="is not a day in the form YYYY-MM-DD"):
        validate_day(day)
    for call in (
        lambda: shift_day(day, 1),
        lambda: day_range(day, DAY),
        lambda: day_range(DAY, day),
    ):
        with pytest.raises(UnsafePathError):
            call()


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_the_segment_validator_refuses_every_unsafe_name(name: str) -> None:
    with pytest.raises(UnsafePathError, match="is not a safe path segment"):
        validate_segment(name)


def test_safe_names_and_days_pass() -> None:
    for name in ("fraud-scorer", "AllTraffic", "v2.1", "dt=2025-01-15", "a_b", "x" * 200):
        assert validate_segment(name) == name
    assert validate_day("2024-02-29") == "2024-02-29"


@pytest.mark.parametrize("day", ["../2025-01-01", "2025-01-01/..", "2025-13-01"])
def test_listings_refuse_a_bad_day_before_touching_the_filesystem(day: str) -> None:
    filesystem, handler = tree({f"cap/ep/v/{DAY_PATH}/07/a.jsonl": 1, f"gt/{DAY_PATH}/07/b": 1})
    with pytest.raises(UnsafePathError):
        list_capture_day("cap", day, filesystem=filesystem)
    with pytest.raises(UnsafePathError):
        list_ground_truth_day("gt", day, filesystem=filesystem)
    assert handler.asked == []


@pytest.mark.parametrize("day", ["../2025-01-01", "2025-01-01/..", "2025-13-01"])
def test_the_lake_refuses_a_bad_day_at_every_entry_point(tmp_path: Path, day: str) -> None:
    lake = Lake(str(tmp_path / "lake"))
    table = pa.table({"score": [0.5]})
    entry_points = [
        lambda: lake.partition_path("predictions", day),
        lambda: lake.partition_uri("predictions", day),
        lambda: lake.staged_partition_path("token", "predictions", day),
        lambda: lake.write_table("predictions", day, table),
        lambda: lake.read_partition("predictions", day),
        lambda: lake.has_partition("predictions", day),
        lambda: lake.partition_files("predictions", day),
        lambda: lake.read_days("predictions", [DAY, day]),
        lambda: export_quicksight_csv(lake, [day]),
    ]
    for call in entry_points:
        with pytest.raises(UnsafePathError):
            call()
    assert not (tmp_path / "lake").exists() or not any((tmp_path / "lake").rglob("*"))
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["lake"])


@pytest.mark.parametrize("day", ["../2025-01-01", "2025-01-01/..", "2025-13-01"])
def test_the_spark_job_and_the_pipes_protocol_refuse_a_bad_day_first(
    tmp_path: Path, day: str
) -> None:
    config = JobConfig(
        capture_uri=str(tmp_path / "capture"),
        ground_truth_uri=str(tmp_path / "gt"),
        lake_uri=str(tmp_path / "lake"),
    )
    with pytest.raises(UnsafePathError):
        run_job(None, config, [DAY, day])  # no Spark session: refused before it is needed
    with pytest.raises(UnsafePathError):
        job_extras(config, [DAY, day], ["predictions"])
    for extras in ({"days": [DAY, day]}, {"partition_start": day, "partition_end": DAY}):
        with pytest.raises(UnsafePathError):
            days_from(extras)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def code_location(tmp_path_factory: pytest.TempPathFactory):
    """The code location's assets, resources and daily job, on an empty home."""
    home = tmp_path_factory.mktemp("home")
    settings = Settings(start_date=dt.date(2025, 1, 1)).with_home(home)
    dashboard = [a for a in build_assets(settings) if dg.AssetKey("pr_dashboard") in _keys(a)]
    job = build_definitions(settings).resolve_job_def(DAILY_JOB)
    return home, dashboard, build_resources(settings), job


def test_a_dagster_run_for_a_bad_partition_key_is_refused(code_location) -> None:
    """Single key or range tags: Dagster refuses the run before any asset body runs."""
    home, dashboard, resources, job = code_location
    with dg.instance_for_test() as instance:
        for day in ("../2025-01-01", "2025-01-01/..", "2025-13-01"):
            with pytest.raises(dg.DagsterUnknownPartitionError):
                dg.materialize(dashboard, partition_key=day, instance=instance, resources=resources)
            for start, end in ((day, DAY), (DAY, day)):
                tags = {
                    "dagster/asset_partition_range_start": start,
                    "dagster/asset_partition_range_end": end,
                }
                with pytest.raises(ValueError, match="does not match format"):
                    job.execute_in_process(
                        instance=instance, tags=tags, asset_selection=[dg.AssetKey("pr_dashboard")]
                    )
        assert not [r for r in instance.get_runs() if r.status == dg.DagsterRunStatus.SUCCESS]
    assert list(home.iterdir()) == []


# -- s3:// roots honour the S3-compatible endpoint, as the lake does ---------------------------
@pytest.fixture
def s3_chain(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The server's keys in the standard AWS chain (as in production); nothing else of AWS."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return s3_server


def _put(server: S3Server, bucket: str, keys: dict[str, int]) -> None:
    client = server.client()
    for key, size in keys.items():
        client.put_object(Bucket=bucket, Key=key, Body=b"x" * size)


def test_s3_roots_use_the_configured_endpoint_and_report_unsafe_names(s3_chain: S3Server) -> None:
    bucket = s3_chain.make_bucket()
    _put(
        s3_chain,
        bucket,
        {
            f"cap/fraud-scorer/champion/{DAY_PATH}/07/a.jsonl": 100,
            f"cap/fraud-scorer/champion/{DAY_PATH}/25/b.jsonl": 1000,
            f"cap/fraud-scorer/..%2F..%2Fetc/{DAY_PATH}/07/c.jsonl": 1000,
            f"cap/.hidden/v/{DAY_PATH}/07/d.jsonl": 1000,
            f"cap/a%2Fb/v/{DAY_PATH}/07/e.jsonl": 1000,
            f"cap/{'L' * 300}/v/{DAY_PATH}/07/f.jsonl": 1000,
            f"gt/{DAY_PATH}/07/g.jsonl": 10,
            f"gt/{DAY_PATH}/7/h.jsonl": 1000,
        },
    )
    settings = Settings.from_env(
        {
            "PRVIZ_CAPTURE_URI": f"s3://{bucket}/cap",
            "PRVIZ_GROUND_TRUTH_URI": f"s3://{bucket}/gt/",
            "PRVIZ_LAKE_URI": f"s3://{bucket}/lake",
            "PRVIZ_S3_ENDPOINT_URL": s3_chain.endpoint_url,
            "PRVIZ_S3_REGION": REGION,
        }
    )
    options = {"endpoint_url": settings.s3_endpoint_url, "region": settings.s3_region}

    capture = list_capture_day(settings.capture_uri, DAY, s3_options=options)
    assert capture.hours == {"fraud-scorer/champion": [7]}
    assert (capture.files, capture.bytes) == (1, 100)
    assert sorted(capture.unsafe_names) == sorted(
        [
            ".hidden",
            "L" * 300,
            "a%2Fb",
            "fraud-scorer/..%2F..%2Fetc",
            f"fraud-scorer/champion/{DAY_PATH}/25",
        ]
    )
    labels = list_ground_truth_day(settings.ground_truth_uri, DAY, s3_options=options)
    assert labels.hours == {"*": [7]} and (labels.files, labels.bytes) == (1, 10)
    assert labels.unsafe_names == [f"{DAY_PATH}/7"]


def test_the_capture_observation_reads_s3_through_the_configured_endpoint(
    s3_chain: S3Server,
) -> None:
    """The observable source assets, run by Dagster from settings, list an s3:// root on the
    S3-compatible endpoint of PRVIZ_S3_ENDPOINT_URL (not AWS's)."""
    bucket = s3_chain.make_bucket()
    today = dt.datetime.now(dt.UTC).date()
    folder = today.strftime("%Y/%m/%d")
    _put(
        s3_chain,
        bucket,
        {
            f"cap/fraud-scorer/champion/{folder}/05/a.jsonl": 7,
            f"cap/.hidden/champion/{folder}/05/a.jsonl": 1000,
            f"gt/{folder}/06/b.jsonl": 5,
        },
    )
    settings = Settings.from_env(
        {
            "PRVIZ_START_DATE": (today - dt.timedelta(days=3)).isoformat(),
            "PRVIZ_CAPTURE_URI": f"s3://{bucket}/cap",
            "PRVIZ_GROUND_TRUTH_URI": f"s3://{bucket}/gt",
            "PRVIZ_LAKE_URI": f"s3://{bucket}/lake",
            "PRVIZ_S3_ENDPOINT_URL": s3_chain.endpoint_url,
            "PRVIZ_S3_REGION": REGION,
        }
    )
    sources = [a for a in build_assets(settings) if getattr(a, "is_observable", False)]
    assert {key.to_user_string() for a in sources for key in _keys(a)} == {
        "sagemaker_data_capture",
        "model_monitor_ground_truth",
    }
    defs = dg.Definitions(
        assets=sources,
        jobs=[
            dg.define_asset_job(
                "observe_inputs", selection=dg.AssetSelection.all(include_sources=True)
            )
        ],
        resources={"pipeline": PipelineResource.from_settings(settings)},
    )
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("observe_inputs").execute_in_process(instance=instance)
        assert result.success
        observed = {}
        for event in result.all_events:
            if event.event_type_value == "ASSET_OBSERVATION":
                observation = event.event_specific_data.asset_observation
                # (Dagster adds one observation per data version, without prviz's figures)
                if observation.partition == today.isoformat() and "files" in observation.metadata:
                    observed[observation.asset_key.to_user_string()] = {
                        k: v.value for k, v in observation.metadata.items()
                    }
    capture = observed["sagemaker_data_capture"]
    assert (capture["files"], capture["bytes"], capture["hours_present"]) == (1, 7, 1)
    assert capture["unsafe_names_skipped"] == [".hidden"]
    labels = observed["model_monitor_ground_truth"]
    assert (labels["files"], labels["bytes"], labels["hours_by_stream"]) == (1, 5, {"*": [6]})


def test_an_unreachable_endpoint_is_an_error_not_aws(s3_chain: S3Server) -> None:
    """With an endpoint configured, nothing goes to AWS: a dead endpoint fails fast and says so."""
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    options = {"endpoint_url": f"http://127.0.0.1:{port}", "region": REGION}
    with pytest.raises(OSError, match=f"connect to 127.0.0.1:{port}") as raised:
        list_ground_truth_day("s3://prviz-nowhere/gt", DAY, s3_options=options)
    assert "amazonaws" not in str(raised.value)
