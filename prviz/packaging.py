"""Build and upload the code an EMR cluster (or EMR Serverless) runs for prviz.

What the cluster needs, and why it is shipped this way
------------------------------------------------------
The Spark job runs in the driver only: the stages are DataFrame operations (no Python UDF), so
the executors never import prviz or its libraries. The driver imports prviz, pyarrow, numpy,
pandas, boto3 (the S3 lake and the Pipes transport) and dagster-pipes, not dagster, not pyspark
(the cluster's own Spark provides pyspark and py4j).

EMR 7.1+ nodes have Python 3.9 (the default `python3`) and 3.11 (`/usr/bin/python3.11`); prviz
needs 3.11. What else the images pre-install for 3.11 is not a documented contract, so prviz
depends on none of it: every library the driver imports is shipped, built for the cluster's
platform, and put first on `sys.path`. Nothing is installed on the cluster, nothing is
downloaded there (no bootstrap action, no network from the nodes).

Four files, each named with a hash of its content (the same code gives the same names, so an
upload of unchanged code is skipped and a cluster never runs a half-updated mix):

- `prviz-<version>-<hash>.zip` for `--py-files`: the `prviz` package, pure Python. Changes with
  every code change; small.
- `prviz_deps-<hash>.tar.gz` for `--archives …#deps`: the driver's libraries, installed by
  `pip install --target` from binary wheels for the cluster (CPython 3.11, manylinux for
  glibc 2.34 = Amazon Linux 2023, aarch64 for Graviton m6g/r6g nodes or x86_64), pinned to the
  versions installed here, so the cluster runs what the tests ran. YARN unpacks it as `./deps`
  in the driver's working directory. (A zip for `--py-files` cannot carry them: Python does not
  import extension modules from a zip. A venv-pack archive would tie the archive to the build
  machine's interpreter path; a plain `--target` folder only needs a matching Python.)
  Changes only when a pinned version changes; about 80-100 MB.
- `prviz_main-<hash>.py`: the `spark-submit` main file: puts `./deps` first on `sys.path` and
  calls `prviz.spark.pipes_job.main()`.
- `prviz-<version>-py3-none-any.whl` under `code/wheels/<hash>/` (a wheel's name must stay
  valid): the same package for installing the Dagster code location itself (optional).

Building the dependency archive needs PyPI (or `wheelhouse=`, a folder of the wheels, for an
offline build); building the wheel uses `pip wheel` (hatchling, fetched by pip's build
isolation). The zip and the main file need nothing but this checkout.
"""

import gzip
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

DEPS_ALIAS = "deps"  # the archive's folder name in the driver's working directory
# the libraries the driver imports, and what they import (pinned to this environment's versions)
JOB_REQUIREMENTS = (
    "dagster-pipes",
    "pyarrow",
    "numpy",
    "pandas",
    "python-dateutil",
    "six",
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "urllib3",
)
PLATFORMS = ("aarch64", "x86_64")
CLUSTER_GLIBC = (2, 34)  # Amazon Linux 2023 (EMR 7.x)
_EPOCH = (1980, 1, 1, 0, 0, 0)
_HASH_CHARS = 12

MAIN_SOURCE = f'''"""prviz Spark job main file for spark-submit (written by prviz.packaging; do not edit)."""

import os
import sys

_deps = os.path.abspath(os.environ.get("PRVIZ_DEPS_DIR", "{DEPS_ALIAS}"))
if os.path.isdir(_deps):
    sys.path.insert(0, _deps)

from prviz.spark.pipes_job import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
'''


class PackagingError(RuntimeError):
    """Building or uploading the package failed; the message says which step and why."""


@dataclass(frozen=True)
class PackagePaths:
    """The built files (None for a part that was not asked for)."""

    entrypoint: Path
    code_zip: Path
    deps_archive: Path | None = None
    wheel: Path | None = None

    def files(self) -> dict[str, Path]:
        parts = {"entrypoint": self.entrypoint, "code_zip": self.code_zip}
        if self.deps_archive is not None:
            parts["deps_archive"] = self.deps_archive
        if self.wheel is not None:
            parts["wheel"] = self.wheel
        return parts


@dataclass
class UploadResult:
    """Where each part is on S3, and which parts were already there (same content hash)."""

    uris: dict[str, str]
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def settings(self) -> dict[str, str]:
        """The settings the EMR runners read (docs/deploy-aws.md §3)."""
        names = {
            "entrypoint": "PRVIZ_CODE_ENTRYPOINT_URI",
            "code_zip": "PRVIZ_CODE_PY_FILES_URI",
            "deps_archive": "PRVIZ_CODE_DEPS_URI",
        }
        return {names[part]: uri for part, uri in self.uris.items() if part in names}


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:_HASH_CHARS]


def _hashed(path: Path, stem: str, suffix: str) -> Path:
    final = path.with_name(f"{stem}-{content_hash(path)}{suffix}")
    path.replace(final)
    return final


def project_root() -> Path:
    """The checkout this prviz comes from (the folder holding pyproject.toml)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise PackagingError(f"{root} has no pyproject.toml: build from a prviz checkout")
    return root


def prviz_version() -> str:
    try:
        return metadata.version("prviz")
    except metadata.PackageNotFoundError:
        return "0"


def _package_files(package_dir: Path) -> list[Path]:
    return sorted(
        path
        for path in package_dir.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc",)
    )


def build_code_zip(out_dir: Path, package_dir: Path | None = None) -> Path:
    """The prviz package as a reproducible zip for `--py-files` (fixed dates and modes)."""
    package_dir = package_dir or Path(__file__).resolve().parent
    temporary = out_dir / "prviz.zip.tmp"
    with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in _package_files(package_dir):
            name = f"{package_dir.name}/{path.relative_to(package_dir).as_posix()}"
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return _hashed(temporary, f"prviz-{prviz_version()}", ".zip")


def build_entrypoint(out_dir: Path) -> Path:
    temporary = out_dir / "prviz_main.py.tmp"
    temporary.write_text(MAIN_SOURCE, encoding="utf-8")
    return _hashed(temporary, "prviz_main", ".py")


def pinned_requirements(names: Sequence[str] = JOB_REQUIREMENTS) -> list[str]:
    """`name==version` for each library as installed here (the versions the tests ran)."""
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            raise PackagingError(f"{name} is not installed here: install prviz first") from None
    return pins


def manylinux_platforms(arch: str, glibc: tuple[int, int] = CLUSTER_GLIBC) -> list[str]:
    """pip `--platform` tags for a glibc (pip does not expand `manylinux_2_X` tags itself)."""
    if arch not in PLATFORMS:
        raise PackagingError(f"platform {arch!r}: use one of {', '.join(PLATFORMS)}")
    major, minor = glibc
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)]
    return [*tags, f"manylinux2014_{arch}"]


def _run(command: list[str], what: str, cwd: Path | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise PackagingError(f"{what} failed (exit {result.returncode}):\n{tail}")


def _tar_reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = 0o755 if info.isdir() or info.mode & 0o111 else 0o644
    return info


def write_tar_gz(source: Path, target: Path) -> None:
    """A reproducible tar.gz of `source`'s contents (sorted, zero dates and owners)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(source.rglob("*")):
            archive.add(path, arcname=path.relative_to(source).as_posix(), recursive=False,
                        filter=_tar_reset)  # fmt: skip
    with open(target, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped:
        zipped.write(buffer.getvalue())


def build_dependencies(
    out_dir: Path,
    *,
    platform: str = "aarch64",
    python_version: str = "3.11",
    wheelhouse: Path | None = None,
    requirements: Sequence[str] | None = None,
) -> Path:
    """The driver's libraries for the cluster, as `prviz_deps-<hash>.tar.gz`."""
    requirements = list(requirements or pinned_requirements())
    with tempfile.TemporaryDirectory(prefix="prviz-deps-") as tmp:
        target = Path(tmp) / DEPS_ALIAS
        command = [
            sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-compile",
            "--target", str(target), "--only-binary=:all:", "--implementation", "cp",
            "--python-version", python_version,
        ]  # fmt: skip
        for tag in manylinux_platforms(platform):
            command += ["--platform", tag]
        if wheelhouse is not None:
            command += ["--no-index", "--find-links", str(wheelhouse)]
        _run([*command, *requirements], f"pip install of the job's libraries for {platform}")
        for junk in [target / "bin", *target.rglob("__pycache__")]:
            shutil.rmtree(junk, ignore_errors=True)
        temporary = out_dir / "prviz_deps.tar.gz.tmp"
        write_tar_gz(target, temporary)
    return _hashed(temporary, "prviz_deps", ".tar.gz")


def build_wheel(out_dir: Path, root: Path | None = None) -> Path:
    """`pip wheel . --no-deps`: the prviz wheel (for the Dagster code location's image)."""
    root = root or project_root()
    with tempfile.TemporaryDirectory(prefix="prviz-wheel-") as tmp:
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                str(root),
                "--no-deps",
                "--disable-pip-version-check",
                "-w",
                tmp,
            ],  # fmt: skip
            "pip wheel of prviz",
        )
        wheels = sorted(Path(tmp).glob("prviz-*.whl"))
        if not wheels:
            raise PackagingError("pip wheel produced no prviz wheel")
        target = out_dir / wheels[-1].name
        shutil.copyfile(wheels[-1], target)
    return target


def build_package(
    out_dir: str | Path,
    *,
    deps: bool = True,
    wheel: bool = True,
    platform: str = "aarch64",
    python_version: str = "3.11",
    wheelhouse: str | Path | None = None,
) -> PackagePaths:
    """Build the main file, the code zip, and (optionally) the dependency archive and wheel."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return PackagePaths(
        entrypoint=build_entrypoint(out),
        code_zip=build_code_zip(out),
        deps_archive=(
            build_dependencies(
                out,
                platform=platform,
                python_version=python_version,
                wheelhouse=Path(wheelhouse) if wheelhouse else None,
            )
            if deps
            else None
        ),
        wheel=build_wheel(out) if wheel else None,
    )


def _split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise PackagingError(f"{uri!r} is not an s3://bucket/prefix URI")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    return bucket, prefix.strip("/")


def _exists(s3_client, bucket: str, key: str, size: int) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        head = s3_client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            return False
        raise PackagingError(f"cannot check s3://{bucket}/{key}: {error}") from error
    except BotoCoreError as error:  # no credentials, no endpoint...
        raise PackagingError(f"cannot reach s3://{bucket}/{key}: {error}") from error
    return int(head.get("ContentLength", -1)) == size


def upload_package(paths: PackagePaths, s3_prefix: str, s3_client) -> UploadResult:
    """Upload each part to `{s3_prefix}/code/` (the wheel to `code/wheels/<hash>/`), skipping
    a part whose content-hashed key is already there with the same size."""
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = _split_s3(s3_prefix)
    base = f"{prefix}/code" if prefix else "code"
    result = UploadResult(uris={})
    for part, path in paths.files().items():
        name = path.name
        if part == "wheel":
            name = f"wheels/{content_hash(path)}/{path.name}"
        key = f"{base}/{name}"
        size = path.stat().st_size
        result.uris[part] = f"s3://{bucket}/{key}"
        if _exists(s3_client, bucket, key, size):
            result.skipped.append(part)
            continue
        try:
            s3_client.upload_file(
                str(path), bucket, key, Config=TransferConfig(multipart_threshold=64 << 20)
            )
        except (BotoCoreError, ClientError) as error:
            raise PackagingError(
                f"upload of {path.name} to s3://{bucket}/{key} failed: {error}"
            ) from error
        result.uploaded.append(part)
    return result
